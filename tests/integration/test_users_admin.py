"""Who is acting: users whose roles and scopes a workflow declares, corrected and disabled, and the access log.

On SQLite and PostgreSQL, through the engine's API: a role or scope no
loaded workflow declares is refused (nothing stored); a user is corrected
with ``edit_user``; a disabled user cannot act on any path and is sent no
role messages; every change to a user and every read a shell reports goes
to the access log with the operating-system user and host of the process.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from engine import Casework, CaseworkError, Code, FixedClock, InputError, load_definition
from engine.store.access import AccessRow
from engine.store.tables import access_log, outbox
from notifications.relay import list_outbox
from tests.integration.test_service import WF, household, stored


def _refused(call: Callable[[], object]) -> CaseworkError:
    try:
        call()
    except CaseworkError as exc:
        return exc
    raise AssertionError("the call was not refused")


def _who() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        pytest.skip("this process has no user name")
    return user, socket.gethostname()


def _usernames(svc: Casework) -> list[str]:
    return [u.username for u in svc.users()]


@pytest.fixture
def svc(svc: Casework) -> Casework:
    """The usual service, its access log cleared of the fixture's own user additions (kept as rows elsewhere)."""
    with svc.engine.begin() as conn:
        conn.execute(access_log.delete())
    return svc


# --------------------------------------------------------- declared roles and scopes


@pytest.mark.parametrize(
    ("roles", "scopes", "field", "says"),
    [
        (["nonsense"], ["芗城区"], "role", "'nonsense' is not a role of any loaded workflow; known: approver, clerk"),
        (["reviewr"], ["芗城区"], "role", "'reviewr' is not a role of any loaded workflow; did you mean 'reviewer'?"),
        (["clerk"], ["芗城"], "scope", "'芗城' is not a scope of any loaded workflow"),
        (["clerk"], ["Mars"], "scope", "known: 东山县"),
    ],
)
def test_a_role_or_scope_no_workflow_declares_is_refused_and_nothing_stored(
    svc: Casework, roles: list[str], scopes: list[str], field: str, says: str
) -> None:
    before = _usernames(svc)
    exc = _refused(lambda: svc.add_user("zhang", "张三", roles, scopes))
    assert isinstance(exc, InputError) and exc.exit_code == 2
    assert exc.code is Code.INVALID_USER
    assert [p["field"] for p in exc.facts["problems"]] == [field]
    assert says in exc.message
    assert _usernames(svc) == before
    assert svc.access_log() == []  # a refusal changes nothing, the log included


def test_a_near_scope_is_suggested_and_star_and_every_declared_value_are_accepted(svc: Casework) -> None:
    exc = _refused(lambda: svc.add_user("zhang", "张三", ["clerk"], ["芗城"]))
    assert "did you mean '芗城区'?" in exc.message
    svc.add_user("zhang", "张三", ["clerk", "reviewer"], ["芗城区", "东山县"])
    svc.add_user("qian", "钱芳", ["supervisor"], ["*"])  # a role that takes no step is still declared
    assert {"zhang", "qian"} <= set(_usernames(svc))


def test_with_no_workflow_loaded_a_user_is_refused_until_one_is(engine: Engine, clock: FixedClock) -> None:
    svc = Casework(engine, clock)
    exc = _refused(lambda: svc.add_user("lin", "林晓", ["clerk"], ["*"]))
    assert exc.code is Code.INVALID_USER
    assert "no workflow is loaded yet" in exc.message and "load the workflow first" in exc.message
    assert svc.users() == []


_FREE_SCOPE = """\
workflow: free_scope
version: 1
title: 自由范围
ref_prefix: FS
roles:
  keeper: 保管人
fields:
  name: {type: text, label: 姓名}
  office: {type: text, label: 单位, scope: true}
states:
  open: {label: 打开, initial: true}
  shut: {label: 关闭, final: true}
transitions:
  shut: {label: 关闭, from: open, to: shut, by: keeper}
"""


def test_a_scope_field_of_free_text_lets_any_scope_through(engine: Engine, clock: FixedClock) -> None:
    svc = Casework(engine, clock)
    svc.load_workflow(load_definition(_FREE_SCOPE, "free.yaml"))
    svc.add_user("keeper1", "保管一", ["keeper"], ["第三车间"])  # no list to check against
    exc = _refused(lambda: svc.add_user("keeper2", "保管二", ["clerk"], ["第三车间"]))
    assert "'clerk' is not a role of any loaded workflow; known: keeper" in exc.message


def test_malformed_and_undeclared_values_are_reported_together(svc: Casework) -> None:
    exc = _refused(lambda: svc.add_user("x y", "", ["nonsense"], ["Mars"]))
    assert sorted(p["field"] for p in exc.facts["problems"]) == ["name", "role", "scope", "username"]


# ------------------------------------------------------------------------ edit


def test_edit_fixes_a_scope_and_the_change_is_logged_old_to_new(svc: Casework) -> None:
    ref = svc.create_case(WF, "chen", household(seed=1, county="龙文区")).ref
    assert _refused(lambda: svc.fire(ref, "submit", "lin")).code is Code.SCOPE_NOT_COVERED

    info, changes = svc.edit_user("lin", scopes=["龙文区"])

    assert info.scopes == ("龙文区",)
    assert changes == {"scopes": [["芗城区"], ["龙文区"]]}
    assert svc.user("lin").scopes == ("龙文区",)
    svc.fire(ref, "submit", "lin")  # lin covers the case now
    (entry,) = svc.access_log()
    os_user, host = _who()
    assert (entry.action, entry.actor, entry.os_user, entry.host) == ("edit_user", None, os_user, host)
    assert entry.detail == {"user": "lin", "changes": {"scopes": [["芗城区"], ["龙文区"]]}}


def test_edit_checks_what_add_checks_and_a_refused_edit_changes_nothing(svc: Casework) -> None:
    before = svc.user("lin")
    for call, field in [
        (lambda: svc.edit_user("lin", roles=["clerck"]), "role"),
        (lambda: svc.edit_user("lin", scopes=["Mars"]), "scope"),
        (lambda: svc.edit_user("lin", name="  "), "name"),
        (lambda: svc.edit_user("lin", email="not-an-address"), "email"),
    ]:
        exc = _refused(call)
        assert exc.code is Code.INVALID_USER and [p["field"] for p in exc.facts["problems"]] == [field]
    assert "did you mean 'clerk'?" in _refused(lambda: svc.edit_user("lin", roles=["clerck"])).message
    assert svc.user("lin") == before
    assert svc.access_log() == []
    assert _refused(lambda: svc.edit_user("nobody", name="某人")).code is Code.USER_NOT_FOUND
    assert _refused(lambda: svc.edit_user("system", name="调度")).code is Code.SYSTEM_RESERVED


def test_edit_without_a_change_logs_nothing_and_an_empty_email_removes_it(svc: Casework) -> None:
    assert svc.edit_user("lin", name="林晓", roles=["clerk"]) == (svc.user("lin"), {})
    assert svc.access_log() == []
    svc.edit_user("lin", email="lin@zzgh.example")
    info, changes = svc.edit_user("lin", email="")
    assert info.email is None and changes == {"email": ["lin@zzgh.example", None]}
    assert [e.action for e in svc.access_log()] == ["edit_user", "edit_user"]


# --------------------------------------------------------------------- disable


def _disabled_paths(svc: Casework, review: str, public: str) -> dict[str, Callable[[], object]]:
    """Every way a user can act (or read as themselves): each must refuse a disabled user."""
    return {
        "fire": lambda: svc.fire(review, "pass_review", "wu"),
        "fire, unknown case": lambda: svc.fire("ZZ-2026-999999", "pass_review", "wu"),
        "update": lambda: svc.update_case(review, "wu", {"household_size": 3}),
        "pause": lambda: svc.pause(review, "wu", "等待补充材料"),
        "objection": lambda: svc.add_objection(public, "wu", "群众来电反映情况"),
        "fire many": lambda: svc.fire_many([review], "pass_review", "wu"),
        "show as": lambda: svc.get_case(review, "wu"),
        "list as": lambda: svc.list_cases(actor="wu"),
        "inbox": lambda: svc.waiting_for("wu"),
        "history as": lambda: svc.history(review, "wu"),
    }


def test_a_disabled_user_cannot_act_on_any_path_and_nothing_changes(svc: Casework) -> None:
    review = svc.create_case(WF, "lin", household(seed=1)).ref
    svc.fire(review, "submit", "lin")
    public = svc.create_case(WF, "lin", household(seed=2)).ref
    svc.fire(public, "submit", "lin")
    svc.fire(public, "pass_review", "xu")
    before = {ref: stored(svc, ref) for ref in (review, public)}

    info, changed = svc.disable_user("wu", "调离岗位")
    assert changed and info.disabled_at is not None

    for name, call in _disabled_paths(svc, review, public).items():
        exc = _refused(call)
        assert exc.code is Code.USER_DISABLED, (name, exc)
        assert exc.exit_code == 1 and exc.facts["user"] == "wu", name
        assert "was disabled at" in exc.message and "--" not in exc.message, name
    assert {ref: stored(svc, ref) for ref in (review, public)} == before

    (entry,) = svc.access_log()
    assert (entry.action, entry.detail) == ("disable_user", {"user": "wu", "reason": "调离岗位"})
    assert svc.user("wu").disabled_at == info.disabled_at

    assert svc.enable_user("wu", "复岗")[1] is True
    svc.fire(review, "pass_review", "wu")
    assert svc.get_case(review).state == "publicise"
    assert [e.action for e in svc.access_log()] == ["disable_user", "enable_user"]
    assert svc.access_log()[1].detail["disabled_at"] is not None


def test_disabling_twice_or_enabling_an_enabled_user_changes_and_logs_nothing(svc: Casework) -> None:
    first, changed = svc.disable_user("wu")
    assert changed
    again, changed = svc.disable_user("wu", "再次")
    assert not changed and again.disabled_at == first.disabled_at
    assert svc.enable_user("lin") == (svc.user("lin"), False)
    assert [e.action for e in svc.access_log()] == ["disable_user"]
    assert _refused(lambda: svc.disable_user("nobody")).code is Code.USER_NOT_FOUND


def test_a_disabled_user_can_still_be_corrected(svc: Casework) -> None:
    svc.disable_user("wu")
    info, _ = svc.edit_user("wu", scopes=["芗城区"])
    assert info.disabled_at is not None and info.scopes == ("芗城区",)


def _told(engine: Engine, ref: str) -> set[str]:
    return {r.recipient for r in list_outbox(engine) if r.case_ref == ref and r.channel == "inbox"}


def test_a_disabled_user_is_sent_no_role_messages(svc: Casework, engine: Engine) -> None:
    # on entering review the bundled workflow tells every reviewer covering the county
    control = svc.create_case(WF, "lin", household(seed=1)).ref
    svc.fire(control, "submit", "lin")
    assert _told(engine, control) == {"wu", "ye", "xu"}

    svc.disable_user("wu")
    one = svc.create_case(WF, "lin", household(seed=2)).ref
    svc.fire(one, "submit", "lin")  # a single step
    many = svc.create_case(WF, "lin", household(seed=3)).ref
    svc.fire_many([many], "submit", "lin")  # the bulk path reads the directory itself

    assert _told(engine, one) == {"ye", "xu"}
    assert _told(engine, many) == {"ye", "xu"}


def _outbox_problems(svc: Casework) -> list[str]:
    return [v.detail for v in svc.check().violations if v.check == "outbox"]


def test_check_expects_messages_by_who_users_were_when_each_event_happened(
    svc: Casework, engine: Engine, clock: FixedClock
) -> None:
    """``casework check`` judges each event by the users' roles, scopes and standing at its time, not now."""

    def submitted() -> str:
        ref = svc.create_case(WF, "lin", household(seed=len(refs) + 1)).ref
        svc.fire(ref, "submit", "lin")
        clock.advance(minutes=1)
        return ref

    refs: list[str] = []
    refs.append(submitted())  # wu, ye, xu told
    svc.disable_user("wu")
    clock.advance(minutes=1)
    refs.append(submitted())  # ye, xu
    svc.enable_user("wu")
    svc.edit_user("wu", scopes=["龙文区"])  # no longer covers 芗城区
    clock.advance(minutes=1)
    refs.append(submitted())  # ye, xu
    svc.disable_user("ye")  # disabled now, told before
    clock.advance(minutes=1)
    refs.append(submitted())  # xu
    assert [_told(engine, ref) for ref in refs] == [{"wu", "ye", "xu"}, {"ye", "xu"}, {"ye", "xu"}, {"xu"}]

    assert _outbox_problems(svc) == []

    # and it still sees a message that is missing: wu's for the first case, when wu did cover 芗城区
    with engine.begin() as conn:
        conn.execute(outbox.delete().where(outbox.c.recipient == "wu"))
    (problem,) = _outbox_problems(svc)
    assert problem.endswith("no inbox message for wu (reviewer)")


def test_users_show_when_they_were_disabled(svc: Casework) -> None:
    svc.disable_user("wu")
    shown = {u.username: u.to_json() for u in svc.users()}
    assert shown["wu"]["disabled_at"] is not None
    assert shown["lin"]["disabled_at"] is None


# ------------------------------------------------------------------ access log


def test_a_read_is_logged_with_os_user_host_and_the_named_actor(svc: Casework, clock: FixedClock) -> None:
    ref = svc.create_case(WF, "lin", household(seed=1)).ref
    svc.log_access("read_case", {"refs": [ref]}, actor="lin")
    svc.log_access("list_cases", {"filters": {"state": "apply"}, "refs": [ref]})

    first, second = svc.access_log()
    os_user, host = _who()
    assert first.to_json() == {
        "id": first.id,
        "at": "2026-11-30T09:00:00+08:00",
        "os_user": os_user,
        "host": host,
        "actor": "lin",
        "action": "read_case",
        "detail": {"refs": [ref]},
    }
    assert (second.actor, second.action, second.detail["filters"]) == (None, "list_cases", {"state": "apply"})


def test_the_access_log_is_read_since_a_time_by_action_and_newest_last(svc: Casework, clock: FixedClock) -> None:
    svc.log_access("read_case", {"refs": ["A"]})
    clock.advance(hours=1)
    svc.log_access("read_case", {"refs": ["B"]})
    svc.add_user("zhang", "张三", ["clerk"], ["*"])
    svc.log_access("list_cases", {"refs": ["C"]})

    def refs(entries: list[Any]) -> list[Any]:
        return [e.detail.get("refs", e.detail.get("user")) for e in entries]

    assert refs(svc.access_log()) == [["A"], ["B"], "zhang", ["C"]]
    assert refs(svc.access_log(since=clock.now())) == [["B"], "zhang", ["C"]]
    assert refs(svc.access_log(action="read_case")) == [["A"], ["B"]]
    assert refs(svc.access_log(limit=2)) == ["zhang", ["C"]]


def test_the_access_row_type_matches_its_table() -> None:
    assert AccessRow._fields == tuple(c.name for c in access_log.columns)
