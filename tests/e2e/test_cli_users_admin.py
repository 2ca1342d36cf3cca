"""The operator's console and who is acting: ``user add/edit/disable/enable``, and ``audit access``.

The CLI trusts ``--as``: it is the operator's console. These tests hold it
to being accountable about that: a user's roles and scopes must be ones a
loaded workflow declares (exit 2, nothing stored, "did you mean"); a mistake
is fixed with ``user edit``; a disabled user cannot act; and every read of
full personal data (``case show``, ``case list --json``, ``case inbox
--json``) and every change to a user is in ``audit access`` with the
operating-system user and host beside the named user.
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

import pytest

from tests.e2e.conftest import Seeded
from tests.e2e.test_cli import ID_1, WF, casework, full_household, ok, ok_json, refused, sets


def _who() -> tuple[str, str]:
    try:
        return getpass.getuser(), socket.gethostname()
    except (KeyError, OSError):
        pytest.skip("this process has no user name")


def _access(url: str, *args: str) -> list[dict[str, Any]]:
    entries = ok_json(casework(url, "audit", "access", "--json", *args))
    assert isinstance(entries, list)
    return entries


def _reads(url: str) -> list[dict[str, Any]]:
    """The access log without the user additions the fixture made."""
    return [e for e in _access(url) if e["action"] != "add_user"]


def _users(url: str) -> dict[str, dict[str, Any]]:
    return {u["username"]: u for u in ok_json(casework(url, "user", "list", "--json"))}


def _new_case(seeded: Seeded) -> str:
    """A case lin opened in 芗城区, with everything its submit needs (set up through the API)."""
    return seeded.svc.create_case(WF, "lin", full_household()).ref


# ------------------------------------------------------------------------ user add


def test_user_add_with_a_role_no_workflow_declares_is_refused_and_nothing_stored(seeded: Seeded) -> None:
    url = seeded.url
    r = casework(url, "user", "add", "zhang", "--name", "张三", "--role", "nonsense", "--scope", "芗城区")
    refused(r, "--role 'nonsense' is not a role of any loaded workflow", "known: approver, clerk", rc=2)
    r = casework(url, "user", "add", "zhang", "--name", "张三", "--role", "reviewr", "--scope", "芗城区")
    refused(r, "did you mean 'reviewer'?", rc=2)
    assert "zhang" not in _users(url)
    assert [e for e in _access(url) if e["detail"].get("user") == "zhang"] == []


def test_user_add_with_an_unknown_scope_is_refused_with_a_suggestion(seeded: Seeded) -> None:
    url = seeded.url
    r = casework(url, "user", "add", "zhang", "--name", "张三", "--role", "clerk", "--scope", "芗城", "--json")
    line = refused(r, "--scope '芗城' is not a scope of any loaded workflow", "did you mean '芗城区'?", rc=2)
    assert "error" in ok_json(r._replace(rc=0))  # the refusal as data too
    assert "zhang" not in _users(url), line
    ok(casework(url, "user", "add", "zhang", "--name", "张三", "--role", "clerk", "--scope", "*"))
    assert _users(url)["zhang"]["scopes"] == ["*"]


def test_user_add_before_any_workflow_is_loaded_says_load_it_first(db_url: str) -> None:
    r = casework(db_url, "user", "add", "lin", "--name", "林晓", "--role", "clerk", "--scope", "芗城区")
    refused(r, "no workflow is loaded yet", "load the workflow first", rc=2)
    assert _users(db_url) == {}


# ----------------------------------------------------------------------- user edit


def test_user_edit_fixes_a_scope_and_the_change_is_in_the_access_log(seeded: Seeded) -> None:
    url = seeded.url
    assert ok(casework(url, "user", "edit", "lin", "--scope", "龙文区")).strip() == "lin: scopes 芗城区 → 龙文区"
    assert _users(url)["lin"]["scopes"] == ["龙文区"]
    new = ["case", "new", WF, "--as", "lin", *sets(applicant_name="陈志强", id_number=ID_1, county="龙文区")]
    assert ok(casework(url, *new)).strip()  # lin covers 龙文区 now

    (entry,) = _reads(url)
    os_user, host = _who()
    assert (entry["action"], entry["os_user"], entry["host"], entry["actor"]) == ("edit_user", os_user, host, None)
    assert entry["detail"] == {"user": "lin", "changes": {"scopes": [["芗城区"], ["龙文区"]]}}


def test_user_edit_refuses_what_add_refuses_and_needs_something_to_change(seeded: Seeded) -> None:
    url = seeded.url
    refused(casework(url, "user", "edit", "lin", "--role", "clerck"), "did you mean 'clerk'?", rc=2)
    refused(casework(url, "user", "edit", "nobody", "--name", "某人"), "no user 'nobody'")
    r = casework(url, "user", "edit", "lin")
    assert r.rc == 2 and "nothing to change" in r.err
    assert (
        ok(casework(url, "user", "edit", "lin", "--name", "林晓")).strip() == "lin: no change (values already as given)"
    )
    assert _users(url)["lin"]["roles"] == ["clerk"]
    assert _reads(url) == []


# -------------------------------------------------------------- user disable/enable


def test_a_disabled_user_cannot_fire_and_nothing_changes_until_enabled(seeded: Seeded) -> None:
    url = seeded.url
    ref = _new_case(seeded)
    before = ok_json(casework(url, "case", "show", ref, "--json"))

    assert ok(casework(url, "user", "disable", "lin", "--reason", "调离岗位")).strip() == "disabled lin (林晓)"
    r = casework(url, "case", "fire", ref, "submit", "--as", "lin", "--json")
    refused(r, "lin was disabled at", "can no longer act")
    assert ok_json(r._replace(rc=0))["error"]["code"] == "user_disabled"
    after = ok_json(casework(url, "case", "show", ref, "--json"))
    assert (after["state"], after["version"]) == (before["state"], before["version"]) == ("apply", before["version"])
    assert len(ok_json(casework(url, "case", "history", ref, "--json"))) == 1  # only the opening

    table = ok(casework(url, "user", "list"))
    (lin_row,) = [line for line in table.splitlines() if [c.strip() for c in line.split("│")][1:2] == ["lin"]]
    assert _users(url)["lin"]["disabled_at"] in lin_row
    assert _users(url)["chen"]["disabled_at"] is None
    assert "already disabled" in ok(casework(url, "user", "disable", "lin"))

    assert ok(casework(url, "user", "enable", "lin")).strip() == "enabled lin (林晓)"
    assert ok(casework(url, "case", "fire", ref, "submit", "--as", "lin")).startswith(f"{ref}: submit → review")
    actions = [(e["action"], e["detail"].get("reason")) for e in _reads(url) if e["action"].endswith("_user")]
    assert actions == [("disable_user", "调离岗位"), ("enable_user", None)]


def test_a_disabled_reviewer_gets_no_message_for_their_role(seeded: Seeded) -> None:
    url = seeded.url
    ok(casework(url, "user", "disable", "wu"))
    ref = _new_case(seeded)
    ok(casework(url, "case", "fire", ref, "submit", "--as", "lin"))
    told = {m["recipient"] for m in ok_json(casework(url, "outbox", "list", "--json")) if m["case_ref"] == ref}
    assert told == {"ye"}  # the other reviewer covering 芗城区; wu is disabled


# --------------------------------------------------------------------- audit access


def test_full_data_reads_are_in_audit_access_with_os_user_and_host(seeded: Seeded) -> None:
    url = seeded.url
    ref = _new_case(seeded)
    os_user, host = _who()

    ok(casework(url, "case", "show", ref))
    ok(casework(url, "case", "show", ref, "--as", "wu", "--json"))
    ok(casework(url, "case", "list", "--state", "apply", "--json"))
    ok(casework(url, "case", "inbox", "--as", "lin", "--json"))

    entries = _reads(url)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("read_case", None),
        ("read_case", "wu"),
        ("list_cases", None),
        ("inbox_cases", "lin"),
    ]
    assert all((e["os_user"], e["host"]) == (os_user, host) for e in entries)
    assert entries[0]["detail"] == {"refs": [ref]}
    assert entries[2]["detail"] == {"filters": {"state": "apply"}, "refs": [ref]}
    assert entries[3]["detail"] == {"page": 1, "refs": [ref]}

    text = ok(casework(url, "audit", "access", "--action", "read_case"))
    assert f"{os_user}@{host}" in text and ref in text and "2 entries" in text


def test_masked_output_and_refused_reads_are_not_logged(seeded: Seeded) -> None:
    url = seeded.url
    ref = _new_case(seeded)
    ok(casework(url, "case", "list"))  # the table masks the applicant's name
    ok(casework(url, "case", "history", ref))  # masked
    refused(casework(url, "case", "show", "ZZ-2026-999999"), "no case")
    refused(casework(url, "case", "show", ref, "--as", "chen"), "chen covers 龙文区")  # not shown: not logged
    assert _reads(url) == []


def test_audit_access_since_and_limit(seeded: Seeded) -> None:
    url = seeded.url
    ref = _new_case(seeded)
    for _ in range(3):
        ok(casework(url, "case", "show", ref))
    assert len(_access(url, "--action", "read_case", "--limit", "2")) == 2
    assert _access(url, "--since", "2999-01-01") == []
    r = casework(url, "audit", "access", "--since", "yesterday")
    assert r.rc == 2 and "--since" in r.err
