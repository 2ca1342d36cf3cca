"""One case acting on another: a step's ``then:`` takes a step on the case its field names, in one transaction.

The bundled workflows use it: an annual review's ``exit`` exits its archive
(poverty_archive v4, annual_review v2). Both backends, real databases.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from casework.synthetic import SyntheticPeople
from engine import Casework, FixedClock, load_definition, load_definition_file
from engine.errors import CODES, Code, CommentRequired, PermissionDenied, RefusedError
from engine.links import MAX_DEPTH
from tests.conftest import ROOT, SHANGHAI
from tests.integration.test_publicity_period import ALL_MATERIALS, through_publicity

ANNUAL = ROOT / "workflows" / "annual_review.yaml"
FILE_IT = [("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "wu"), ("grant", "su"), ("record", "lin")]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def archive(svc: Casework, seed: int, *, county: str = "芗城区", clerk: str = "lin", until: str = "filed") -> str:
    """An archive opened by ``clerk`` and taken through its steps until it is in ``until``."""
    data = SyntheticPeople(seed).household()
    data.update(county=county, materials=list(ALL_MATERIALS))
    ref = svc.create_case("poverty_archive", clerk, data).ref
    for trigger, actor in FILE_IT:
        if svc.get_case(ref).state == until:
            break
        through_publicity(svc, ref)
        svc.fire(ref, trigger, clerk if actor == "lin" else actor)
    assert svc.get_case(ref).state == until
    return ref


def review(svc: Casework, archive_ref: str, *, county: str = "芗城区", clerk: str = "lin") -> str:
    """An annual review of ``archive_ref``, surveyed and waiting in confirm."""
    ref = svc.create_case("annual_review", clerk, {"archive_ref": archive_ref, "county": county}).ref
    svc.fire(ref, "report", clerk, data={"finding": "家庭收入已稳定", "income_per_capita": "3200"})
    assert svc.get_case(ref).state == "confirm"
    return ref


def snapshot(svc: Casework, *refs: str) -> dict[str, Any]:
    return {r: (svc.get_case(r).to_json(), [e.to_json() for e in svc.history(r)]) for r in refs}


def documented(exc: RefusedError) -> bool:
    return set(exc.facts) <= set(CODES[exc.code].facts)


@pytest.fixture
def annual(svc: Casework) -> Casework:
    svc.load_workflow(load_definition_file(ANNUAL))
    return svc


# ----------------------------------------------------------------- the bundled workflows


def test_the_bundled_versions_link_a_review_exit_to_its_archive(annual: Casework) -> None:
    archive_wf, review_wf = annual.workflow("poverty_archive"), annual.workflow("annual_review")
    assert (archive_wf.version, review_wf.version) == (4, 2)
    then = review_wf.transitions["exit"].then
    assert then is not None and (then.case, then.fire) == ("archive_ref", "exit")
    exited = archive_wf.states["exited"]
    assert exited.label == "解困脱困" and exited.final and not exited.void
    exit_ = archive_wf.transitions["exit"]
    assert exit_.sources == ("filed",) and exit_.by == ("reviewer",) and exit_.comment_required


def test_a_review_exit_exits_its_archive_in_the_same_step(annual: Casework) -> None:
    ref = archive(annual, 1)
    fh = review(annual, ref)
    before = len(annual.history(ref))
    annual.fire(fh, "exit", "wu", comment="家庭人均收入超过当地最低生活保障标准")
    assert annual.get_case(fh).state == "exited"
    assert annual.get_case(ref).state == "exited"
    events = annual.history(ref)
    assert len(events) == before + 1
    last = events[-1]
    assert (last.action, last.trigger, last.actor, last.role) == ("fired", "exit", "wu", "reviewer")
    assert (last.from_state, last.to_state) == ("filed", "exited")
    assert last.comment == f"家庭人均收入超过当地最低生活保障标准 — by annual_review {fh} exit"
    assert annual.history(fh)[-1].trigger == "exit"
    assert annual.check().ok, annual.check().violations
    assert annual.verify_audit().ok


def test_an_exited_archive_keeps_its_id_number(annual: Casework) -> None:
    """Decided: exited is on file, not void, so the household cannot be filed a second time."""
    ref = archive(annual, 2)
    annual.fire(review(annual, ref), "exit", "wu", comment="脱困")
    data = SyntheticPeople(2).household()
    data.update(county="芗城区")
    with pytest.raises(RefusedError) as refused:
        annual.create_case("poverty_archive", "lin", data)
    assert refused.value.code is Code.DUPLICATE and refused.value.facts["existing_case"] == ref


def test_a_refused_archive_exit_changes_neither_case(annual: Casework) -> None:
    ref = archive(annual, 3, until="enter")  # not filed yet: its exit applies only from filed
    fh = review(annual, ref)
    before = snapshot(annual, ref, fh)
    with pytest.raises(RefusedError) as refused:
        annual.fire(fh, "exit", "wu", comment="脱困")
    exc = refused.value
    assert exc.code is Code.WRONG_STATE
    assert exc.facts["case"] == ref and exc.facts["trigger"] == "exit" and exc.facts["state"] == "enter"
    assert exc.facts["linked_from"] == {
        "case": fh,
        "workflow": "annual_review",
        "trigger": "exit",
        "field": "archive_ref",
    }
    assert documented(exc)
    assert f"exit on {fh} also takes exit on {ref}" in exc.message and "neither was done" in exc.message
    assert snapshot(annual, ref, fh) == before
    assert annual.check().ok


def test_the_archive_is_judged_by_its_own_rules_scope_included(annual: Casework) -> None:
    """A reviewer covering the review's county but not the archive's is refused on the archive: neither moves."""
    annual.add_user("fang", "方静", ["reviewer"], ["芗城区"])
    ref = archive(annual, 4, county="龙文区", clerk="chen")
    fh = review(annual, ref, county="芗城区")  # a review filed in the wrong county, say
    before = snapshot(annual, ref, fh)
    with pytest.raises(PermissionDenied) as refused:
        annual.fire(fh, "exit", "fang", comment="脱困")
    assert refused.value.code is Code.SCOPE_NOT_COVERED and refused.value.facts["case"] == ref
    assert refused.value.facts["linked_from"]["case"] == fh and documented(refused.value)
    assert snapshot(annual, ref, fh) == before


def test_a_reference_that_is_no_case_is_refused(annual: Casework) -> None:
    fh = review(annual, "ZZ-2026-999999")
    before = snapshot(annual, fh)
    with pytest.raises(RefusedError) as refused:
        annual.fire(fh, "exit", "wu", comment="脱困")
    exc = refused.value
    assert exc.code is Code.LINKED_CASE_NOT_FOUND and documented(exc)
    assert exc.facts == {
        "case": fh,
        "trigger": "exit",
        "field": "archive_ref",
        "linked_case": "ZZ-2026-999999",
    }
    assert "no case is 'ZZ-2026-999999'" in exc.message
    assert snapshot(annual, fh) == before


def test_keep_takes_no_step_on_the_archive(annual: Casework) -> None:
    ref = archive(annual, 5)
    fh = review(annual, ref)
    annual.fire(fh, "keep", "wu")
    assert annual.get_case(ref).state == "filed"


def test_the_next_campaign_skips_an_archive_exited_through_its_review(annual: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-11-02T09:00"))
    stays, leaves = archive(annual, 6), archive(annual, 7)

    def campaign() -> str:
        (outcome,) = [o for job, _, o in annual.run_due_schedules() if job == "poverty_archive:annual_review"]
        return outcome

    clock.set(at("2027-01-02T08:05"))
    assert campaign() == "open_cases: opened 2 annual_review cases, skipped 0"
    reviews = {r.data["archive_ref"]: r.ref for r in annual.list_cases(workflow="annual_review")}
    for fh in reviews.values():
        annual.fire(fh, "report", "lin", data={"finding": "入户复核", "income_per_capita": "2100"})
    annual.fire(reviews[stays], "keep", "wu")
    annual.fire(reviews[leaves], "exit", "wu", comment="家庭收入稳定，解困脱困")
    assert annual.get_case(leaves).state == "exited"
    clock.set(at("2028-01-02T08:05"))
    assert campaign() == "open_cases: opened 1 annual_review case, skipped 0"
    opened = [r for r in annual.list_cases(workflow="annual_review") if r.ref not in reviews.values()]
    assert [r.data["archive_ref"] for r in opened] == [stays]
    assert annual.check().ok


def test_fire_many_exits_each_review_with_its_archive_and_reports_a_refused_one(annual: Casework) -> None:
    """A bulk step with a then: takes each case the single-case way, in a savepoint: a refusal undoes that case only."""
    good, early = archive(annual, 8), archive(annual, 9, until="enter")
    fh_good, fh_early = review(annual, good), review(annual, early)
    before = snapshot(annual, early, fh_early)
    report = annual.fire_many([fh_good, fh_early], "exit", "wu", comment="年度复核：解困脱困")
    assert report.fired == [fh_good]
    (refused,) = report.refused
    assert refused.ref == fh_early and refused.code == Code.WRONG_STATE and refused.facts["case"] == early
    assert annual.get_case(good).state == "exited" and annual.get_case(fh_good).state == "exited"
    assert snapshot(annual, early, fh_early) == before
    assert annual.check().ok


# ----------------------------------------------------------------- chains, on small workflows of their own

CHAIN_YAML = """\
workflow: chain_test
version: 1
title: 连锁
ref_prefix: CT
roles:
  clerk: 经办人
fields:
  next: {type: text, label: 下一件, max: 40}
  county: {type: choice, label: 县区, scope: true, choices: [芗城区, 龙文区]}
states:
  open: {label: 待办, initial: true}
  waiting: {label: 等待, timeout: {after: 1 days, fire: auto}}
  done: {label: 办结, final: true}
  moved: {label: 已转, final: true}
transitions:
  close: {label: 办结, from: open, to: done, by: clerk, then: {case: next, fire: close}}
  move: {label: 转出, from: open, to: moved, by: clerk, then: {case: next, fire: justify}}
  justify: {label: 说明, from: open, to: done, by: clerk, comment: required}
  wait: {label: 等待, from: open, to: waiting, by: clerk}
  auto: {label: 到期办结, from: waiting, to: done, by: system, then: {case: next, fire: close, comment: 到期}}
"""

# the end of a chain: its close acts on nothing more (and the scheduler may take it)
END_YAML = """\
workflow: chain_end
version: 1
title: 连锁终点
ref_prefix: CE
roles:
  clerk: 经办人
fields:
  county: {type: choice, label: 县区, scope: true, choices: [芗城区, 龙文区]}
states:
  open: {label: 待办, initial: true}
  done: {label: 办结, final: true}
transitions:
  close: {label: 办结, from: open, to: done, by: [clerk, system]}
"""


@pytest.fixture
def chain(svc: Casework) -> Casework:
    svc.load_workflow(load_definition(CHAIN_YAML, "chain.yaml"))
    svc.load_workflow(load_definition(END_YAML, "end.yaml"))
    return svc


def item(svc: Casework, next_ref: str | None = None) -> str:
    data = {"county": "芗城区", **({"next": next_ref} if next_ref else {})}
    return svc.create_case("chain_test", "lin", data).ref


def end(svc: Casework) -> str:
    return svc.create_case("chain_end", "lin", {"county": "芗城区"}).ref


def links_to(svc: Casework, last: str, count: int) -> list[str]:
    """``count`` chain cases, each closing the next, the last closing ``last``; the first is the one to fire."""
    refs = [last]
    for _ in range(count):
        refs.insert(0, item(svc, refs[0]))
    return refs


def test_a_chain_as_deep_as_allowed_moves_every_case_each_saying_why(chain: Casework) -> None:
    refs = links_to(chain, end(chain), MAX_DEPTH)  # MAX_DEPTH linked steps after the first
    chain.fire(refs[0], "close", "lin", comment="一并办结")
    assert [chain.get_case(r).state for r in refs] == ["done"] * len(refs)
    for cause, linked in itertools.pairwise(refs):
        assert chain.history(linked)[-1].comment == f"一并办结 — by chain_test {cause} close"
    assert chain.check().ok


def test_one_case_deeper_is_refused_and_changes_nothing(chain: Casework) -> None:
    refs = links_to(chain, end(chain), MAX_DEPTH + 1)
    before = snapshot(chain, *refs)
    with pytest.raises(RefusedError) as deep:
        chain.fire(refs[0], "close", "lin")
    exc = deep.value
    assert exc.code is Code.LINKED_CHAIN and documented(exc)
    assert exc.facts["limit"] == MAX_DEPTH and len(exc.facts["chain"]) == MAX_DEPTH + 1
    assert exc.facts["linked_from"]["case"] == refs[MAX_DEPTH - 1]  # the innermost step that took the refused one
    assert snapshot(chain, *refs) == before
    assert chain.check().ok


def test_cycles_are_refused_and_change_nothing(chain: Casework) -> None:
    a = item(chain)
    b = item(chain, a)
    chain.update_case(a, "lin", {"next": b})
    before = snapshot(chain, a, b)
    with pytest.raises(RefusedError) as cycle:
        chain.fire(a, "close", "lin")
    exc = cycle.value
    assert exc.code is Code.LINKED_CHAIN and documented(exc)
    assert exc.facts["chain"] == [f"chain_test {a} close", f"chain_test {b} close"]
    assert exc.facts["linked_case"] == a and exc.facts["linked_from"]["case"] == a
    assert "comes back to" in exc.message
    assert snapshot(chain, a, b) == before
    me = item(chain)  # a self-link: the shortest cycle
    chain.update_case(me, "lin", {"next": me})
    with pytest.raises(RefusedError) as itself:
        chain.fire(me, "close", "lin")
    assert itself.value.code is Code.LINKED_CHAIN and chain.get_case(me).state == "open"


def test_an_empty_link_field_is_refused(chain: Casework) -> None:
    lone = item(chain)
    with pytest.raises(RefusedError) as refused:
        chain.fire(lone, "close", "lin")
    assert refused.value.code is Code.LINKED_CASE_NOT_FOUND and documented(refused.value)
    assert refused.value.facts == {"case": lone, "trigger": "close", "field": "next"}
    assert "which is empty" in refused.value.message
    assert chain.get_case(lone).state == "open" and len(chain.history(lone)) == 1


def test_a_linked_step_that_needs_a_comment_is_refused_without_one(chain: Casework) -> None:
    target = item(chain)
    mover = item(chain, target)
    with pytest.raises(CommentRequired) as refused:
        chain.fire(mover, "move", "lin")
    assert refused.value.facts["case"] == target and refused.value.facts["linked_from"]["case"] == mover
    assert documented(refused.value)
    assert chain.get_case(mover).state == "open" and chain.get_case(target).state == "open"
    chain.fire(mover, "move", "lin", comment="转出说明")
    assert chain.history(target)[-1].comment == f"转出说明 — by chain_test {mover} move"


def test_the_scheduler_takes_a_then_step_as_system_or_holds_the_timer(chain: Casework, clock: FixedClock) -> None:
    last = end(chain)
    good = item(chain, last)
    bad = item(chain, "CE-2026-999999")
    for ref in (good, bad):
        chain.fire(ref, "wait", "lin")
    clock.set(clock.now() + dt.timedelta(days=2))
    report = chain.sweep()
    assert (report.fired, report.held, report.failed) == (1, 1, 0), report
    assert chain.get_case(good).state == "done" and chain.get_case(last).state == "done"
    event = chain.history(last)[-1]
    assert (event.actor, event.comment) == ("system", f"到期 — by chain_test {good} auto")
    assert chain.get_case(bad).state == "waiting"
    (held,) = [t for t in chain.timers(status=None) if t.case_ref == bad]
    assert "no case is 'CE-2026-999999'" in (held.last_error or "")
    assert chain.check().ok
