"""The inbox (``Casework.waiting_for``): what waits for whom, in which order, a page at a time, on both databases."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import event

from casework.synthetic import SyntheticPeople
from engine import Casework, FixedClock, InboxPage, InputError, UserNotFound, WorkflowNotFound, load_definition
from engine.store import inbox as store_inbox
from tests.conftest import BUNDLED
from tests.integration.test_publicity_period import through_publicity

WF = "poverty_archive"
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
_seeds = iter(range(1000, 100_000))


def new_case(svc: Casework, county: str = "芗城区", clerk: str = "lin") -> str:
    data = SyntheticPeople(next(_seeds)).household()
    data.update(county=county, materials=list(ALL_MATERIALS))
    return svc.create_case(WF, clerk, data).ref


def refs(page: InboxPage) -> list[str]:
    return [v.ref for v in page.items]


def inbox(svc: Casework, user: str, **kw: Any) -> list[str]:
    return refs(svc.waiting_for(user, **kw))


@pytest.fixture
def scene(svc: Casework) -> dict[str, str]:
    """Cases in both counties and in several states, open and final."""
    cases = {
        "xc_apply": new_case(svc),
        "lw_apply": new_case(svc, "龙文区", "chen"),
        "xc_review": new_case(svc),
        "lw_review": new_case(svc, "龙文区", "chen"),
        "xc_publicise": new_case(svc),
        "xc_filed": new_case(svc),
        "xc_rejected": new_case(svc),
    }
    svc.fire(cases["xc_review"], "submit", "lin")
    svc.fire(cases["lw_review"], "submit", "chen")
    svc.fire(cases["xc_publicise"], "submit", "lin")
    svc.fire(cases["xc_publicise"], "pass_review", "wu")
    svc.fire(cases["xc_rejected"], "submit", "lin")
    svc.fire(cases["xc_rejected"], "reject", "wu", comment="收入高于认定标准")
    ref = cases["xc_filed"]
    for trigger, who in (("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "xu"), ("grant", "su")):
        through_publicity(svc, ref)
        svc.fire(ref, trigger, who)
    svc.fire(ref, "record", "lin")
    assert svc.get_case(ref).state == "filed"
    return cases


def test_a_case_waits_for_the_roles_that_may_act_in_its_state_and_scope(svc: Casework, scene: dict[str, str]) -> None:
    c = scene
    # a case waits for the work that moves it forward: the clerk's submit (and record), only in their county;
    # withdrawing (allowed to clerks and reviewers in every open state) ends a case void, which is something
    # one may do, not what the case waits for (issue 12)
    assert set(inbox(svc, "lin")) == {c["xc_apply"]}
    assert set(inbox(svc, "chen")) == {c["lw_apply"]}
    # the reviewer covers both counties: pass_review, end_publicity
    assert set(inbox(svc, "wu")) == {c["xc_review"], c["lw_review"], c["xc_publicise"]}
    # an approver (scope *) may only reject in review (void) and send a case in publicity back (a correction):
    # nothing here waits for them
    assert set(inbox(svc, "su")) == set()
    # ye holds both roles (芗城区): the clerk's work and the reviewer's
    assert set(inbox(svc, "ye")) == {c["xc_apply"], c["xc_review"], c["xc_publicise"]}
    # final states (filed, rejected) never wait for anyone
    everyone = {r for u in ("lin", "chen", "wu", "ye", "su", "xu") for r in inbox(svc, u)}
    assert c["xc_filed"] not in everyone and c["xc_rejected"] not in everyone


def test_a_user_whose_roles_take_no_step_has_an_empty_inbox(svc: Casework, scene: dict[str, str]) -> None:
    svc.add_user("zhao", "赵主任", ["supervisor"], ["*"])  # told about escalations, takes no step
    assert svc.waiting_for("zhao") == InboxPage(items=[], page=1, per_page=50, has_more=False)


def test_soonest_deadline_first_then_no_deadline_then_paused(svc: Casework, clock: FixedClock) -> None:
    apply_ref = new_case(svc)  # no deadline in apply
    late, early, paused = new_case(svc), new_case(svc), new_case(svc)
    svc.fire(paused, "submit", "lin")  # due first of all, but its clock is then stopped
    clock.advance(days=1)
    svc.fire(early, "submit", "lin")
    clock.advance(days=2)
    svc.fire(late, "submit", "lin")
    svc.pause(paused, "wu", "缺收入证明")
    page = svc.waiting_for("ye")  # clerk and reviewer: the case in apply waits for them too
    assert refs(page) == [early, late, apply_ref, paused]
    views = page.items
    assert views[0].deadline is not None and views[0].deadline < views[1].deadline  # type: ignore[operator]
    assert views[2].deadline is None and not views[2].paused
    assert views[3].paused and views[3].deadline is None and "paused" in (views[3].time_left or "")
    svc.resume(paused, "wu")
    assert inbox(svc, "ye")[-1] == apply_ref  # running again: back in deadline order


def test_same_deadline_is_ordered_by_case_id(svc: Casework) -> None:
    made = [new_case(svc) for _ in range(4)]
    for ref in reversed(made):
        svc.fire(ref, "submit", "lin")  # same clock: same deadline
    assert inbox(svc, "wu") == made


def test_pages_follow_each_other_and_has_more_says_if_one_follows(svc: Casework, clock: FixedClock) -> None:
    made = []
    for _ in range(5):
        made.append(new_case(svc))
        svc.fire(made[-1], "submit", "lin")
        clock.advance(hours=30)
    made += [new_case(svc) for _ in range(2)]  # no deadline: after the dated ones
    assert inbox(svc, "ye") == made  # clerk and reviewer: cases in review and in apply
    pages = [svc.waiting_for("ye", page=n, per_page=3) for n in (1, 2, 3, 4)]
    assert [refs(p) for p in pages] == [made[0:3], made[3:6], made[6:7], []]
    assert [p.has_more for p in pages] == [True, True, False, False]
    assert (pages[1].page, pages[1].per_page) == (2, 3)
    exact = svc.waiting_for("ye", per_page=7)
    assert refs(exact) == made and not exact.has_more


def test_many_ranges_are_asked_in_several_statements_with_the_same_answer(
    svc: Casework, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for county, clerk in (("芗城区", "lin"), ("龙文区", "chen")) * 3:
        ref = new_case(svc, county, clerk)
        svc.fire(ref, "submit", clerk)
        clock.advance(hours=20)
        new_case(svc, county, clerk)
    whole = [inbox(svc, "wu", page=n, per_page=4) for n in (1, 2, 3, 4)]
    assert sum(len(p) for p in whole) == 6  # the cases in review (those in apply wait for the clerks)
    monkeypatch.setattr(store_inbox, "_RANGES_PER_QUERY", 1)  # wu's 4 ranges (2 states × 2 counties) in 4 statements
    assert [inbox(svc, "wu", page=n, per_page=4) for n in (1, 2, 3, 4)] == whole


def test_other_counties_and_other_workflows_are_left_out(svc: Casework) -> None:
    mine, theirs = new_case(svc), new_case(svc, "龙文区", "chen")
    assert inbox(svc, "lin") == [mine]
    assert inbox(svc, "chen") == [theirs]
    assert inbox(svc, "lin", workflow=WF) == [mine]
    with pytest.raises(WorkflowNotFound, match="poverty_archiv"):
        svc.waiting_for("lin", workflow="poverty_archiv")


def test_each_case_is_judged_by_the_workflow_version_it_is_on(svc: Casework) -> None:
    old = new_case(svc)
    source = BUNDLED.read_text(encoding="utf-8")
    version = re.search(r"^version: (\d+)$", source, re.MULTILINE)
    record = "    from: enter\n    to: filed\n    by: clerk\n"
    assert version is not None and source.count(record) == 1
    # the next version: recording into the system moves from clerks to approvers
    following = int(version.group(1)) + 1
    v2 = source.replace(version.group(0), f"version: {following}").replace(record, record.replace("clerk", "approver"))
    loaded = svc.workflow(WF)
    svc.load_workflow(load_definition(v2, "poverty_archive_next.yaml", templates=loaded.templates.sources))
    assert svc.workflow(WF).version == following == loaded.version + 1
    new = new_case(svc)
    for ref in (old, new):
        for trigger, who in (("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "xu"), ("grant", "su")):
            through_publicity(svc, ref)
            svc.fire(ref, trigger, who)
    assert [svc.get_case(r).state for r in (old, new)] == ["enter", "enter"]
    assert inbox(svc, "lin") == [old]  # on the bundled version a clerk records
    assert inbox(svc, "su") == [new]  # on the next, an approver does (on both they may only send it back)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"page": 0}, "page must be a whole number from 1 up, not 0"),
        ({"page": -3}, "from 1 up"),
        ({"per_page": 0}, "from 1 to 500, not 0"),
        ({"per_page": 501}, "from 1 to 500, not 501"),
    ],
)
def test_bad_paging_is_refused_saying_what_is_allowed(svc: Casework, kw: dict[str, int], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        svc.waiting_for("lin", page=kw.get("page", 1), per_page=kw.get("per_page", 50))


def test_the_largest_page_is_allowed_and_an_unknown_user_is_refused(svc: Casework) -> None:
    ref = new_case(svc)
    assert inbox(svc, "lin", per_page=500) == [ref]
    with pytest.raises(UserNotFound, match="no user 'nobody'"):
        svc.waiting_for("nobody")


def _inbox_statements(svc: Casework) -> list[tuple[str, Any]]:
    """The inbox SELECTs sent for wu (two counties: the scoped index) and su (scope *: the unscoped one)."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "UNION ALL" in statement:  # the candidates, not the rows fetched by id
            seen.append((statement, parameters))

    new_case(svc)
    event.listen(svc.engine, "before_cursor_execute", capture)
    try:
        svc.waiting_for("wu")
        svc.waiting_for("su")
    finally:
        event.remove(svc.engine, "before_cursor_execute", capture)
    assert len(seen) == 2
    return seen


INDEXES = ("ix_cases_inbox_scope", "ix_cases_inbox")


def test_each_branch_reads_one_range_of_an_inbox_index_in_order(svc: Casework, backend: str) -> None:
    """The plan, not just the answer: every branch is an index range already in order; nothing big is sorted.

    (bench/inbox.py measures what that buys at 1,000,000 cases.)
    """
    for (statement, parameters), index in zip(_inbox_statements(svc), INDEXES, strict=True):
        if backend == "sqlite":
            _check_sqlite_plan(svc, statement, parameters, index)
        else:
            _check_postgresql_plan(svc, statement, parameters)


def _check_sqlite_plan(svc: Casework, statement: str, parameters: Any, index: str) -> None:
    with svc.engine.connect() as conn:
        plan = list(conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
    ranges = [(parent, what) for _, parent, _, what in plan if "cases" in what.split()]
    assert ranges and all(what.startswith(f"SEARCH cases USING COVERING INDEX {index} (") for _, what in ranges), plan
    # a branch reads its range in order: no sort next to the read (only the merge sorts its few rows)
    branches = {parent for parent, _ in ranges}
    assert not [w for _, parent, _, w in plan if parent in branches and "TEMP B-TREE" in w], plan


def _check_postgresql_plan(svc: Casework, statement: str, parameters: Any) -> None:
    with svc.engine.begin() as conn:
        # A handful of rows is cheaper to scan and sort, so the planner would; forbid that to see
        # whether each branch *can* be read in order from the index, which is what matters at scale.
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
            conn.exec_driver_sql(f"SET LOCAL {setting} = off")
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    reads: list[tuple[str, str]] = []

    def walk(node: dict[str, Any], parent: dict[str, Any] | None) -> None:
        if node.get("Relation Name") == "cases":
            assert node["Node Type"] in ("Index Scan", "Index Only Scan"), node
            assert parent is not None, node
            reads.append((node["Index Name"], parent["Node Type"]))
        for child in node.get("Plans", []):
            walk(child, node)

    walk(plan[0]["Plan"], None)
    # one statement for any number of ranges: three reads each for scoped and unscoped ranges (arrays joined
    # LATERAL), every one straight from its index range into its Limit
    assert sorted(reads) == [("ix_cases_inbox", "Limit")] * 3 + [("ix_cases_inbox_scope", "Limit")] * 3, reads


def test_times_shown_are_those_of_the_view(svc: Casework, clock: FixedClock) -> None:
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    view = svc.waiting_for("wu").items[0]
    assert view == svc.get_case(ref)
    assert view.deadline is not None and view.deadline > clock.now()
    assert view.time_left == "5 working days left"
    assert view.deadline.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat().startswith("2026-12-08")
