"""Logins on both backends: Argon2id hashes, sessions in the database, idle timeout, lockout, disabled users."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from db import schema
from engine import Casework, Code, LoginRefused, PermissionDenied, RefusedError, UserNotFound
from engine.logins import LoginPolicy, hash_token

PASSWORD = "correct-horse-7"
# Argon2id at light costs, as the web tests log in (~10 ms a hash instead of ~200 ms): what most tests here
# check — sessions, lockouts, refusals — does not depend on the costs. The hash stored at the default costs,
# the rehash to them, and parallel guesses while slow hashes are checked are tested at the defaults.
LIGHT = LoginPolicy(argon2_time_cost=1, argon2_memory_kib=8192)


@pytest.fixture
def svc_pw(svc: Casework) -> Casework:
    """``svc`` whose logins hash at :data:`LIGHT` costs, lin's password set."""
    svc.logins = svc.logins_with(LIGHT)
    svc.logins.set_password("lin", PASSWORD)
    return svc


@pytest.fixture
def svc_default_pw(svc: Casework) -> Casework:
    """``svc`` at the default costs, lin's password set."""
    svc.logins.set_password("lin", PASSWORD)
    return svc


def test_the_password_is_stored_only_as_an_argon2id_hash(svc_default_pw: Casework) -> None:
    with svc_default_pw.engine.connect() as conn:
        stored = conn.execute(select(schema.users.c.password_hash).where(schema.users.c.username == "lin")).scalar_one()
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # argon2-cffi's defaults: 64 MiB, 3 passes
    assert PASSWORD not in stored


def test_a_login_opens_a_session_found_by_its_token_and_stored_only_as_its_hash(svc_pw: Casework) -> None:
    token, session = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    assert svc_pw.logins.session(token) == session
    assert session.roles == ("clerk",) and session.scopes == ("芗城区",)
    with svc_pw.engine.connect() as conn:
        hashes = conn.execute(select(schema.web_sessions.c.token_hash)).scalars().all()
    assert hashes == [hash_token(token)] and token not in hashes
    assert [e.action for e in svc_pw.access_log(action="login")] == ["login"]


def test_each_login_gets_a_new_token_and_ends_the_one_it_replaces(svc_pw: Casework) -> None:
    first, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    second, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1", replaces=first)
    assert first != second
    assert svc_pw.logins.session(first) is None
    assert svc_pw.logins.session(second) is not None


def test_a_wrong_password_and_an_unknown_user_get_the_same_refusal(svc_pw: Casework) -> None:
    refusals = []
    for username, password in (("lin", "wrong-password-1"), ("nobody", "wrong-password-1"), ("chen", PASSWORD)):
        with pytest.raises(LoginRefused) as caught:
            svc_pw.logins.login(username, password, "10.0.0.2")
        refusals.append(json.dumps(caught.value.to_json(), sort_keys=True))
    assert len(set(refusals)) == 1  # code, message and facts: nothing tells which usernames exist
    assert json.loads(refusals[0])["code"] == Code.LOGIN_FAILED
    assert len(svc_pw.access_log(action="login_failed")) == 3


def test_five_failures_lock_the_user_even_with_the_right_password_until_the_window_passes(
    svc_pw: Casework, clock: object
) -> None:
    for _ in range(5):
        with pytest.raises(LoginRefused):
            svc_pw.logins.login("lin", "wrong-password-1", "10.0.0.3")
        clock.advance(seconds=10)  # type: ignore[attr-defined]
    with pytest.raises(LoginRefused) as caught:
        svc_pw.logins.login("lin", PASSWORD, "10.0.0.4")
    assert caught.value.code == Code.LOGIN_LOCKED
    assert caught.value.facts["locked"] == "user"
    assert 0 < caught.value.facts["retry_after"] <= 15 * 60
    # attempts while locked are not counted: the lock ends on time
    clock.advance(seconds=caught.value.facts["retry_after"])  # type: ignore[attr-defined]
    token, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.4")
    assert svc_pw.logins.session(token) is not None


def test_too_many_failures_from_one_address_lock_that_address_for_every_user(svc_pw: Casework) -> None:
    assert LoginPolicy().max_client_failures == 20  # the default; a smaller limit here keeps the test quick
    logins = svc_pw.logins_with(dataclasses.replace(LIGHT, max_client_failures=6))
    logins.set_password("chen", PASSWORD)
    for i in range(6):
        with pytest.raises(LoginRefused):
            logins.login(f"guess{i}", "wrong-password-1", "10.9.9.9")
    with pytest.raises(LoginRefused) as caught:
        logins.login("chen", PASSWORD, "10.9.9.9")
    assert caught.value.code == Code.LOGIN_LOCKED and caught.value.facts["locked"] == "client"
    token, _ = logins.login("chen", PASSWORD, "10.9.9.10")  # another address is not locked
    assert token


def test_a_session_ends_after_its_idle_timeout_and_after_its_lifetime(svc_pw: Casework, clock: object) -> None:
    token, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    clock.advance(minutes=29)  # type: ignore[attr-defined]
    assert svc_pw.logins.session(token) is not None  # used: the idle clock starts again
    clock.advance(minutes=29)  # type: ignore[attr-defined]
    assert svc_pw.logins.session(token) is not None
    clock.advance(minutes=31)  # type: ignore[attr-defined]
    assert svc_pw.logins.session(token) is None
    token, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    for _ in range(21):  # used every 29 minutes, still over after 10 hours
        clock.advance(minutes=29)  # type: ignore[attr-defined]
        svc_pw.logins.session(token)
    assert svc_pw.logins.session(token) is None


def test_disabling_a_user_ends_their_sessions_at_once_and_they_cannot_log_in(svc_pw: Casework) -> None:
    token, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    svc_pw.disable_user("lin", "left the office")
    assert svc_pw.logins.session(token) is None
    with svc_pw.engine.connect() as conn:
        why = conn.execute(select(schema.web_sessions.c.ended_why)).scalar_one()
    assert why == "disabled"
    with pytest.raises(PermissionDenied) as caught:
        svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    assert caught.value.code == Code.USER_DISABLED


def test_logout_ends_the_session_and_is_logged(svc_pw: Casework) -> None:
    token, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    assert svc_pw.logins.logout(token) is True
    assert svc_pw.logins.session(token) is None
    assert svc_pw.logins.logout(token) is False
    assert [e.action for e in svc_pw.access_log()][-2:] == ["login", "logout"]


def test_changing_ones_password_needs_the_old_one_and_ends_the_other_sessions(svc_pw: Casework) -> None:
    here, session = svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    elsewhere, _ = svc_pw.logins.login("lin", PASSWORD, "10.0.0.2")
    with pytest.raises(LoginRefused) as caught:
        svc_pw.logins.change_password(session, "wrong-password-1", "a-new-password-9")
    assert caught.value.code == Code.LOGIN_FAILED
    svc_pw.logins.change_password(session, PASSWORD, "a-new-password-9")
    assert svc_pw.logins.session(here) is not None
    assert svc_pw.logins.session(elsewhere) is None
    with pytest.raises(LoginRefused):
        svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")
    assert svc_pw.logins.login("lin", "a-new-password-9", "10.0.0.1")[0]


@pytest.mark.parametrize(
    ("password", "why"),
    [("short-1", "at least 10"), ("xx-lin-xx-2026", "username"), ("aaaaaaaaaaaa", "repeated")],
)
def test_a_weak_password_is_refused_and_the_old_one_stays(svc_pw: Casework, password: str, why: str) -> None:
    with pytest.raises(LoginRefused) as caught:
        svc_pw.logins.set_password("lin", password)
    assert caught.value.code == Code.WEAK_PASSWORD and why in caught.value.message
    assert svc_pw.logins.login("lin", PASSWORD, "10.0.0.1")[0]


def test_no_password_for_system_or_an_unknown_user(svc: Casework) -> None:
    with pytest.raises(UserNotFound):
        svc.logins.set_password("nobody", PASSWORD)
    with pytest.raises(RefusedError) as caught:
        svc.logins.set_password("system", PASSWORD)
    assert caught.value.code == Code.SYSTEM_RESERVED


def test_parallel_guesses_are_counted_before_the_password_is_checked(svc_default_pw: Casework) -> None:
    # at the default costs: twelve guesses overlap while their hashes are checked
    def guess(i: int) -> str:
        try:
            svc_default_pw.logins.login("lin", f"wrong-password-{i}", f"10.1.0.{i}")
        except LoginRefused as exc:
            return str(exc.code)
        return "in"

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(guess, range(12)))
    # at most max_failures passwords are ever checked in a window, however many arrive at once
    assert outcomes.count(Code.LOGIN_FAILED) == 5
    assert outcomes.count(Code.LOGIN_LOCKED) == 7


def test_a_user_without_a_password_cannot_log_in(svc: Casework) -> None:
    with pytest.raises(LoginRefused) as caught:
        svc.logins.login("chen", "", "10.0.0.1")
    assert caught.value.code == Code.LOGIN_FAILED


def test_a_person_administering_users_must_hold_the_supervisor_role_in_the_engine(svc: Casework) -> None:
    """Whatever front end calls them, user changes by a named person are checked by the engine."""
    svc.add_user("luo", "罗国平", ["supervisor"], ["*"])
    for change in (
        lambda by: svc.add_user("new1", "新人", ["clerk"], ["芗城区"], by=by),
        lambda by: svc.edit_user("chen", scopes=["芗城区"], by=by),
        lambda by: svc.disable_user("chen", "test", by=by),
        lambda by: svc.logins.set_password("chen", PASSWORD, by=by),
    ):
        with pytest.raises(PermissionDenied) as caught:
            change("wu")  # a reviewer
        assert caught.value.code == Code.ROLE_NEEDED and caught.value.facts["needed"] == ["supervisor"]
        change("luo")
    assert [e.actor for e in svc.access_log()][-4:] == ["luo"] * 4
    assert svc.user("chen").scopes == ("芗城区",) and svc.user("chen").disabled_at is not None


def test_a_hash_made_with_other_costs_is_rehashed_at_the_next_login(svc: Casework) -> None:
    light = svc.logins_with(LoginPolicy(argon2_time_cost=1, argon2_memory_kib=8192))
    light.set_password("lin", PASSWORD)
    svc.logins.login("lin", PASSWORD, "10.0.0.1")
    with svc.engine.connect() as conn:
        stored = conn.execute(select(schema.users.c.password_hash).where(schema.users.c.username == "lin")).scalar_one()
    assert "$m=65536,t=3,p=4$" in stored
