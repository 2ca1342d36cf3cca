"""Moving cases to a newer workflow version (``Casework.migrate``), on a SQLite file and on PostgreSQL.

The workflow is a small petition (信访) workflow: version 1 registers,
handles and closes; version 2 adds a 回访 (revisit) step before closing and
deadlines with reminders; version 3 renames 登记 ``register`` to ``intake``,
makes the phone number required and drops one choice. Each test checks that
``casework check`` and ``audit verify`` still prove every case afterwards.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from engine import Casework, FixedClock, load_definition, load_definition_file
from engine.errors import Code, InputError, RefusedError, WorkflowNotFound
from engine.store import tables
from engine.version_moves import strands
from tests.conftest import BUNDLED

V1 = """\
workflow: petition
version: 1
title: 信访件办理
ref_prefix: XF
roles:
  clerk: 登记员
  handler: 承办人
fields:
  petitioner: {type: text, label: 信访人, required: true, pii: name, max: 40}
  county: {type: choice, label: 所属县区, scope: true, choices: [芗城区, 龙文区]}
  kind: {type: choice, label: 类别, choices: [咨询, 投诉, 求助]}
  phone: {type: text, label: 联系电话, pii: phone, max: 20}
states:
  register: {label: 登记, initial: true}
  handle: {label: 办理}
  closed: {label: 办结, final: true}
transitions:
  submit: {label: 提交, from: register, to: handle, by: clerk}
  close: {label: 办结, from: handle, to: closed, by: handler}
  withdraw: {label: 撤回, from: [register, handle], to: closed, by: clerk}
"""

# version 2: a 回访 step before closing; handling now has a deadline with a reminder and an escalation
V2 = """\
workflow: petition
version: 2
title: 信访件办理
ref_prefix: XF
roles:
  clerk: 登记员
  handler: 承办人
fields:
  petitioner: {type: text, label: 信访人, required: true, pii: name, max: 40}
  county: {type: choice, label: 所属县区, scope: true, choices: [芗城区, 龙文区]}
  kind: {type: choice, label: 类别, choices: [咨询, 投诉, 求助]}
  phone: {type: text, label: 联系电话, pii: phone, max: 20}
states:
  register: {label: 登记, initial: true}
  handle:
    label: 办理
    deadline: 10 working days
    remind: [{before: 2 working days, to: handler}]
    escalate: {after: 1 working day, to: handler}
  revisit: {label: 回访, deadline: 5 working days}
  closed: {label: 办结, final: true}
transitions:
  submit: {label: 提交, from: register, to: handle, by: clerk}
  close: {label: 办理完毕, from: handle, to: revisit, by: handler}
  finish: {label: 回访办结, from: revisit, to: closed, by: handler}
  withdraw: {label: 撤回, from: [register, handle], to: closed, by: clerk}
"""

# version 3: register renamed intake, phone required, 求助 no longer a kind
V3 = (
    V2.replace("version: 2", "version: 3")
    .replace("register: {label: 登记, initial: true}", "intake: {label: 受理, initial: true}")
    .replace("from: register,", "from: intake,")
    .replace("from: [register, handle]", "from: [intake, handle]")
    .replace(
        "phone: {type: text, label: 联系电话, pii: phone, max: 20}",
        "phone: {type: text, label: 联系电话, pii: phone, max: 20, required: true}",
    )
    .replace("choices: [咨询, 投诉, 求助]", "choices: [咨询, 投诉]")
)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


TEMPLATES = {
    "deadline_reminder.subject": "待办提醒：{{ case.ref }}",
    "deadline_reminder.txt": "{{ case.ref }} 即将到期。\n",
    "deadline_escalation.subject": "超期：{{ case.ref }}",
    "deadline_escalation.txt": "{{ case.ref }} 已超期。\n",
}


def load(svc: Casework, source: str, **kw: Any) -> None:
    svc.load_workflow(load_definition(source, "petition.yaml", templates=TEMPLATES), **kw)


@pytest.fixture
def petition(engine: Any) -> Casework:
    """A fresh database with petition version 1 and a clerk and a handler."""
    svc = Casework(engine, FixedClock(dt.datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)))
    load(svc, V1)
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    svc.add_user("wu", "吴明辉", ["handler"], ["*"])
    return svc


def open_cases(svc: Casework, n: int, *, submit: bool = False, **data: Any) -> list[str]:
    refs = []
    for i in range(n):
        ref = svc.create_case("petition", "lin", {"petitioner": f"信访人{i}", "county": "芗城区", **data}).ref
        if submit:
            svc.fire(ref, "submit", "lin")
        refs.append(ref)
    return refs


def proven(svc: Casework) -> None:
    """The invariants hold and every case replays from its trail."""
    report = svc.check()
    assert report.ok, report.violations
    verified = svc.verify_audit()
    assert verified.ok, (verified.breaks, verified.violations)


def case_row(svc: Casework, ref: str) -> Any:
    with svc.engine.connect() as conn:
        return conn.execute(text("SELECT * FROM cases WHERE ref = :r"), {"r": ref}).one()


def timers_of(svc: Casework, ref: str) -> list[Any]:
    with svc.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT t.kind, t.state, t.status, t.due_at FROM timers t JOIN cases c ON c.id = t.case_id "
                    "WHERE c.ref = :r ORDER BY t.id"
                ),
                {"r": ref},
            )
        )


def test_the_eleven_cases_in_apply_move_to_the_fix_and_replay_clean(petition: Casework) -> None:
    """The issue: 11 cases in 申请 on version 1 had no way forward once the fix was loaded as version 2."""
    svc = petition
    waiting = open_cases(svc, 11)
    handled = open_cases(svc, 2, submit=True)
    closed = open_cases(svc, 1, submit=True)
    svc.fire(closed[0], "close", "wu")
    load(svc, V2)

    dry = svc.migrate("petition", 2)
    assert dry.dry_run and dry.moved == 0
    groups = {(g.from_version, g.state): g for g in dry.groups}
    assert (groups[(1, "register")].cases, groups[(1, "register")].movable) == (11, 11)
    assert (groups[(1, "handle")].cases, groups[(1, "handle")].movable) == (2, 2)
    assert groups[(1, "closed")].movable == 0 and groups[(1, "closed")].blocked[0].reason == "final"
    assert case_row(svc, waiting[0]).workflow_version_id == case_row(svc, closed[0]).workflow_version_id  # unchanged

    report = svc.migrate("petition", 2, dry_run=False, batch=5)
    assert report.moved == 13 and report.movable == 13 and not report.dry_run
    for ref in waiting + handled:
        assert svc.get_case(ref).workflow_version == 2
    assert svc.get_case(closed[0]).workflow_version == 1  # finished under version 1: stays as it happened
    proven(svc)

    # the moved case now has the 回访 step: close goes to revisit, not closed
    assert svc.fire(handled[0], "close", "wu").state == "revisit"
    assert svc.fire(handled[0], "finish", "wu").state == "closed"
    events = svc.history(handled[0])
    migrated = next(e for e in events if e.action == "migrated")
    assert migrated.actor == "system"
    assert migrated.changes["workflow_version"] == [1, 2]
    proven(svc)


def test_the_event_records_versions_mapping_and_origin(petition: Casework) -> None:
    svc = petition
    (ref,) = open_cases(svc, 1, kind="咨询", phone="13800000000")
    load(svc, V2)
    load(svc, V3)
    svc.migrate("petition", 3, {"register": "intake"}, dry_run=False)
    with svc.engine.connect() as conn:
        case_id = conn.execute(select(tables.cases.c.id).where(tables.cases.c.ref == ref)).scalar_one()
        row = conn.execute(
            select(tables.events).where(tables.events.c.case_id == case_id).order_by(tables.events.c.seq.desc())
        ).first()
    assert row is not None
    assert (row.action, row.from_state, row.to_state, row.actor) == ("migrated", "register", "intake", "system")
    assert row.changes == {"workflow_version": [1, 3], "state": ["register", "intake"]}
    ctx = row.context
    assert ctx["workflow"]["version"] == 3 and ctx["workflow"]["name"] == "petition"
    assert ctx["migration"]["map"] == {"register": "intake"}
    assert ctx["migration"]["from_version"] == 1 and ctx["migration"]["to_version"] == 3
    assert set(ctx["origin"]) == {"os_user", "host"}
    assert ctx["migration"]["by"] == f"{ctx['origin']['os_user']}@{ctx['origin']['host']}"
    case = svc.get_case(ref)
    assert (case.state, case.workflow_version) == ("intake", 3)
    proven(svc)


def test_deadlines_and_timers_are_counted_again_from_entry(petition: Casework) -> None:
    """Version 2 gives 办理 a deadline with a reminder and an escalation: moved cases get them, from entry."""
    svc = petition
    clock = svc.clock
    assert isinstance(clock, FixedClock)
    (early,) = open_cases(svc, 1, submit=True)  # entered handle on Mon 2 Nov
    clock.advance(days=8)
    (late,) = open_cases(svc, 1, submit=True)  # entered handle on Tue 10 Nov
    assert svc.get_case(early).deadline is None and timers_of(svc, early) == []
    load(svc, V2)
    clock.set(dt.datetime(2026, 11, 13, 9, 0, tzinfo=SHANGHAI))
    svc.migrate("petition", 2, dry_run=False)

    entered = case_row(svc, early).entered_at
    for ref in (early, late):
        row = case_row(svc, ref)
        assert row.deadline_at is not None
        kinds = {(t.kind, t.state) for t in timers_of(svc, ref)}
        assert kinds == {("remind", "handle"), ("escalate", "handle")}
    # counted from when it entered handle: 10 working days from Mon 2 Nov ends at the start of Tue 17 Nov
    assert svc.get_case(early).deadline == dt.datetime(2026, 11, 17, 0, 0, tzinfo=SHANGHAI)
    assert case_row(svc, early).entered_at == entered  # the stay in the state is the same stay
    # the early case's reminder (due 13 Nov 00:00) was already due when it moved: recorded, not sent late
    early_timers = {t.kind: t.status for t in timers_of(svc, early)}
    assert early_timers == {"remind": "cancelled", "escalate": "pending"}
    assert {t.kind: t.status for t in timers_of(svc, late)} == {"remind": "pending", "escalate": "pending"}
    history = svc.history(early)
    assert history[-1].changes["deadline"][0] is None and history[-1].changes["deadline"][1].startswith("2026-11-17")
    proven(svc)


def test_what_cannot_move_stays_and_is_named(petition: Casework) -> None:
    svc = petition
    ok = open_cases(svc, 3, kind="投诉", phone="13800000000")
    no_phone = open_cases(svc, 2, kind="投诉")
    help_kind = open_cases(svc, 1, kind="求助", phone="13800000000")
    in_handle = open_cases(svc, 1, submit=True, phone="13800000000")
    load(svc, V2)
    load(svc, V3)

    # without a mapping, nothing in register can move: version 3 has no register
    dry = svc.migrate("petition", 3)
    reg = next(g for g in dry.groups if g.state == "register")
    assert reg.movable == 0 and reg.to_state is None
    assert [(b.reason, b.detail, b.cases) for b in reg.blocked] == [("unmapped_state", "register", 6)]

    dry = svc.migrate("petition", 3, {"register": "intake"})
    reg = next(g for g in dry.groups if g.state == "register")
    assert (reg.cases, reg.movable, reg.to_state) == (6, 3, "intake")
    blocked = {(b.reason, b.detail): b for b in reg.blocked}
    assert blocked[("required_field", "phone")].refs == no_phone
    assert blocked[("value_refused", "kind")].refs == help_kind
    handle = next(g for g in dry.groups if g.state == "handle")
    assert (handle.movable, handle.to_state) == (1, "handle")
    # refs only: no personal data in the report
    assert "信访人" not in str(dry.to_json()) and "13800000000" not in str(dry.to_json())

    report = svc.migrate("petition", 3, {"register": "intake"}, dry_run=False)
    assert report.moved == 4
    for ref in ok + in_handle:
        assert svc.get_case(ref).workflow_version == 3
    for ref in no_phone + help_kind:
        assert svc.get_case(ref).workflow_version == 1  # left on their version, still workable there
    assert svc.fire(no_phone[0], "submit", "lin").state == "handle"
    proven(svc)


def test_a_paused_case_stays(petition: Casework) -> None:
    svc = petition
    load(svc, V2)
    # a case on version 2 in handle (which has a deadline there) can be paused; move a version-2 case to 3
    (paused,) = open_cases(svc, 1, submit=True, phone="1", kind="咨询")
    svc.pause(paused, "wu", "材料不全")
    load(svc, V3)
    dry = svc.migrate("petition", 3)
    group = next(g for g in dry.groups if g.from_version == 2)
    assert group.movable == 0 and group.blocked[0].reason == "paused" and group.blocked[0].refs == [paused]


@pytest.mark.parametrize(
    ("variant", "mapping", "why"),
    [
        # a mapping to a state the new version lacks
        (V2, {"register": "registr"}, "has no state 'registr' (did you mean 'register'?)"),
        # a mapping into a final state: closed without the step that closes it
        (V2, {"handle": "closed"}, "closed (办结) is final"),
    ],
)
def test_a_move_that_would_strand_cases_moves_nothing(
    petition: Casework, variant: str, mapping: dict[str, str], why: str
) -> None:
    svc = petition
    refs = open_cases(svc, 3, submit=True) + open_cases(svc, 2)
    load(svc, variant)
    before = {ref: (case_row(svc, ref).workflow_version_id, case_row(svc, ref).version) for ref in refs}
    dry = svc.migrate("petition", 2, mapping)
    assert any(why in s for s in dry.strands), dry.strands
    with pytest.raises(RefusedError) as caught:
        svc.migrate("petition", 2, mapping, dry_run=False)
    assert caught.value.code is Code.MIGRATION_STRANDS
    assert why in caught.value.message and "Nothing was moved" in caught.value.message
    assert {ref: (case_row(svc, ref).workflow_version_id, case_row(svc, ref).version) for ref in refs} == before
    proven(svc)


def test_a_state_no_step_leads_out_of_strands() -> None:
    """The loader refuses such a state today; a version stored before that check could still have one."""
    wf = load_definition(V2, "petition.yaml", templates=TEMPLATES)
    dead = dataclasses.replace(wf, transitions={k: t for k, t in wf.transitions.items() if k != "finish"})
    assert strands(dead, ["revisit", "handle"]) == [("revisit", "no step of version 2 leads out of revisit (回访)")]
    assert strands(wf, ["revisit", "handle", "register"]) == []


def test_refusals_of_the_request_itself(petition: Casework) -> None:
    svc = petition
    open_cases(svc, 2)
    load(svc, V2)
    with pytest.raises(RefusedError) as caught:
        svc.migrate("petition", 1)
    assert caught.value.code is Code.VERSION_NOT_NEWER and "oldest" in caught.value.message
    with pytest.raises(WorkflowNotFound) as missing:
        svc.migrate("petiton", 2)
    assert "did you mean 'petition'" in missing.value.message
    with pytest.raises(WorkflowNotFound) as no_version:
        svc.migrate("petition", 7)
    assert "version 7" in no_version.value.message
    with pytest.raises(InputError) as unknown:
        svc.migrate("petition", 2, {"regster": "register"})
    assert unknown.value.code is Code.MIGRATION_MAP and "did you mean 'register'" in unknown.value.message
    with pytest.raises(InputError) as empty:
        svc.migrate("petition", 2, {"handle": "register"})
    assert empty.value.code is Code.MIGRATION_MAP and "no case" in empty.value.message


def test_a_forged_version_pin_is_still_caught(petition: Casework) -> None:
    """Moving a case by rewriting cases.workflow_version_id, without a migrated event, is named by the replay."""
    svc = petition
    moved, forged = open_cases(svc, 2)
    load(svc, V2)
    # moved properly: replays clean
    svc.migrate("petition", 2, dry_run=False, batch=1)
    proven(svc)
    with svc.engine.begin() as conn:
        v1 = conn.execute(text("SELECT id FROM workflow_versions WHERE version = 1")).scalar_one()
        # put one back on version 1 behind the engine's back
        conn.execute(text("UPDATE cases SET workflow_version_id = :v WHERE ref = :r"), {"v": v1, "r": forged})
    report = svc.verify_audit()
    details = [(v.ref, v.detail) for v in report.violations if v.check == "replay"]
    assert (forged, "workflow.version: stored 1, the trail says 2") in details
    assert not [d for d in details if d[0] == moved]


def test_a_forged_move_without_the_engine_is_caught(petition: Casework) -> None:
    """A version 1 case pointed at version 2 without a migrated event: its first event still pins version 1."""
    svc = petition
    (ref,) = open_cases(svc, 1)
    load(svc, V2)
    with svc.engine.begin() as conn:
        v2 = conn.execute(text("SELECT id FROM workflow_versions WHERE version = 2")).scalar_one()
        conn.execute(text("UPDATE cases SET workflow_version_id = :v WHERE ref = :r"), {"v": v2, "r": ref})
    report = svc.verify_audit()
    assert (ref, "workflow.version: stored 2, the trail says 1") in [(v.ref, v.detail) for v in report.violations]


def test_many_cases_move_in_batches(petition: Casework) -> None:
    svc = petition
    report = svc.import_cases(
        "petition", "lin", [(i + 2, {"petitioner": f"人{i}", "county": "龙文区"}) for i in range(1203)]
    )
    assert len(report.imported) == 1203
    load(svc, V2)
    # a spy on the real transaction: how many cases each one moved
    real = svc.db.transaction
    sizes: list[int] = []

    def counted(work: Any) -> Any:
        before = _migrated(svc)
        result = real(work)
        sizes.append(_migrated(svc) - before)
        return result

    svc.db.transaction = counted  # type: ignore[method-assign]
    moved = svc.migrate("petition", 2, dry_run=False, batch=500)
    svc.db.transaction = real  # type: ignore[method-assign]
    assert moved.moved == 1203
    assert sizes == [500, 500, 203]
    assert _migrated(svc) == 1203
    assert svc.migrate("petition", 2).cases == 0  # nothing left on version 1
    proven(svc)


def _migrated(svc: Casework) -> int:
    with svc.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_events WHERE action = 'migrated'")).scalar_one())
    proven(svc)


def _bundled_next(tmp_path: Path) -> Path:
    """The bundled workflow as its next version (same rules), with its templates beside it."""
    wf = load_definition_file(BUNDLED)
    copy = tmp_path / BUNDLED.name
    copy.write_text(
        BUNDLED.read_text(encoding="utf-8").replace(f"version: {wf.version}\n", f"version: {wf.version + 1}\n", 1),
        encoding="utf-8",
    )
    shutil.copytree(BUNDLED.parent / "templates", tmp_path / "templates")
    return copy


def test_a_case_in_publicity_keeps_its_published_period(svc: Casework, tmp_path: Path) -> None:
    """公示: a published case moves only into the publicity state of the same name, its period and end kept."""
    from tests.integration.test_publicity import WF, on_list, publicised

    listed, _ = on_list(svc, 1)
    waiting, _ = publicised(svc, 2, county="龙文区")  # in publicity, not yet on a notice
    reviewing = svc.create_case(WF, "lin", {**_household(3), "county": "芗城区"}).ref
    svc.fire(reviewing, "submit", "lin")
    period_end = svc.get_case(listed).deadline
    assert period_end is not None
    old = svc.get_case(listed).workflow_version
    svc.load_workflow(load_definition_file(_bundled_next(tmp_path)))

    # out of publicity by a mapping: it would leave a published period behind
    dry = svc.migrate(WF, old + 1, {"publicise": "review"})
    group = next(g for g in dry.groups if g.state == "publicise")
    assert group.movable == 0 and group.blocked[0].reason == "publicity"
    assert set(group.blocked[0].refs) == {listed, waiting}
    # into publicity by a mapping: it would be in publicity on no notice
    dry = svc.migrate(WF, old + 1, {"review": "publicise"})
    assert next(g for g in dry.groups if g.state == "review").blocked[0].reason == "publicity"

    report = svc.migrate(WF, old + 1, dry_run=False)
    assert report.moved == 3
    assert svc.get_case(listed).deadline == period_end  # the period the public read
    assert svc.get_case(waiting).deadline is None
    ends = [t for t in timers_of(svc, listed) if t.status == "pending"]
    assert [(t.kind, t.state) for t in ends] == [("timeout", "publicise")]
    assert not [t for t in timers_of(svc, waiting) if t.status == "pending"]
    proven(svc)


def _household(seed: int) -> dict[str, Any]:
    from casework.synthetic import SyntheticPeople
    from tests.integration.test_publicity import ALL_MATERIALS

    return {**SyntheticPeople(seed).household(), "materials": list(ALL_MATERIALS)}


# version 1 ends at 办结 closed; version 2 keeps closed but manages it further (a 回访 after closing)
V2_REOPENS = (
    V1.replace("version: 1", "version: 2")
    .replace("closed: {label: 办结, final: true}", "closed: {label: 办结}\n  revisited: {label: 已回访, final: true}")
    .replace(
        "withdraw: {label: 撤回, from: [register, handle], to: closed, by: clerk}",
        "withdraw: {label: 撤回, from: [register, handle], to: gone, by: clerk}\n"
        "  revisit: {label: 回访, from: closed, to: revisited, by: handler}",
    )
    .replace("  closed: {label: 办结}\n", "  closed: {label: 办结}\n  gone: {label: 已撤回, final: true, void: true}\n")
)


def test_a_case_ended_in_a_state_the_new_version_manages_further_moves_on(petition: Casework) -> None:
    """An archive 已建档 (final in poverty_archive v2) must reach v3, where it can still exit: a final case
    moves when the new version keeps its state and gives it a way on; one whose state is final there stays."""
    svc = petition
    (done,) = open_cases(svc, 1, submit=True)
    svc.fire(done, "close", "wu")
    (gone,) = open_cases(svc, 1)
    svc.fire(gone, "withdraw", "lin")  # closed too, in v1 (withdraw leads to closed there)
    load(svc, V2_REOPENS)

    dry = svc.migrate("petition", 2)
    closed = next(g for g in dry.groups if g.state == "closed")
    assert (closed.cases, closed.movable, closed.to_state) == (2, 2, "closed")

    # mapping a state a case ended in elsewhere would rewrite where it ended: it stays
    load(svc, V2_REOPENS.replace("version: 2", "version: 3"))
    mapped = svc.migrate("petition", 3, {"closed": "handle"})
    closed = next(g for g in mapped.groups if g.state == "closed")
    assert closed.movable == 0 and closed.blocked[0].reason == "final"

    svc.migrate("petition", 2, dry_run=False)
    assert svc.get_case(done).workflow_version == 2
    assert svc.fire(done, "revisit", "wu").state == "revisited"
    proven(svc)
