"""API tokens and idempotency keys in the engine, on both backends.

A token is stored as a hash, acts with at most its user's rights, is counted
(and limited) in the database so every worker shares one count, and names
itself on every event it writes; an idempotency key is claimed in the change's
transaction, so a retry — even one sent at the same moment — never opens or
moves a case twice.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from db import schema
from engine import Casework, Code, FixedClock, InputError, NotFound, RefusedError, TokenRefused
from engine.acting import acting_through
from engine.idnumber import check_digit
from engine.logins import hash_token
from engine.tokens import TOKEN_PREFIX, TokenPolicy
from tests.casedata import case_data

DATA = case_data()


def _cases(svc: Casework) -> int:
    with svc.engine.connect() as conn:
        return len(conn.execute(select(schema.cases.c.id)).all())


def test_a_token_is_shown_once_and_stored_only_as_its_hash(svc: Casework) -> None:
    secret, info = svc.tokens.create("lin", "provincial-platform", days=30)
    assert secret.startswith(TOKEN_PREFIX) and len(secret) > 40
    assert info.status == "live" and info.expires_at is not None
    with svc.engine.connect() as conn:
        rows = conn.execute(select(schema.api_tokens)).mappings().all()
    assert [r["token_hash"] for r in rows] == [hash_token(secret)]
    assert all(secret not in str(dict(r)) for r in rows)
    assert "token" not in svc.tokens.list()[0].to_json()  # no listing shows a secret
    assert [e.action for e in svc.access_log(action="create_token")] == ["create_token"]


def test_a_request_is_counted_logged_and_acts_as_its_user(svc: Casework) -> None:
    secret, _ = svc.tokens.create("lin", "portal")
    acting = svc.tokens.authenticate(secret, "GET", "/api/v1/inbox")
    assert (acting.username, acting.token) == ("lin", "portal")
    entry = svc.access_log(action="api")[-1]
    assert entry.actor == "lin" and entry.detail == {"token": "portal", "method": "GET", "path": "/api/v1/inbox"}
    assert svc.tokens.list("lin")[0].last_used_at is not None


@pytest.mark.parametrize(("secret", "why"), [(None, "missing"), ("", "missing"), ("cwk_not-one-we-made", "unknown")])
def test_a_missing_or_unknown_token_is_refused(svc: Casework, secret: str | None, why: str) -> None:
    with pytest.raises(TokenRefused) as caught:
        svc.tokens.authenticate(secret, "GET", "/api/v1/cases")
    assert caught.value.code == Code.TOKEN_INVALID and caught.value.facts["why"] == why


def test_revoked_expired_and_disabled_tokens_are_refused(svc: Casework, clock: FixedClock) -> None:
    revoked, _ = svc.tokens.create("lin", "old")
    svc.tokens.revoke("lin", "old")
    short, _ = svc.tokens.create("lin", "short", days=1)
    wus, _ = svc.tokens.create("wu", "review-bot")
    svc.disable_user("wu", "left the office")
    clock.advance(days=1, seconds=1)
    for secret, why in ((revoked, "revoked"), (short, "expired"), (wus, "user_disabled")):
        with pytest.raises(TokenRefused) as caught:
            svc.tokens.authenticate(secret, "GET", "/api/v1/cases")
        assert caught.value.facts["why"] == why
    assert [t.status for t in svc.tokens.list("lin")] == ["revoked", "expired"]
    # each use of a dead token is in the access log: a leaked one still tried is what an inspector looks for
    logged = svc.access_log(action="api_refused")
    assert [(e.actor, e.detail["token"], e.detail["why"]) for e in logged] == [
        ("lin", "old", "revoked"),
        ("lin", "short", "expired"),
        ("wu", "review-bot", "user_disabled"),
    ]


def test_a_second_live_token_of_one_name_is_refused_and_nothing_is_made(svc: Casework) -> None:
    svc.tokens.create("lin", "portal")
    with pytest.raises(RefusedError) as caught:
        svc.tokens.create("lin", "portal")
    assert caught.value.code == Code.TOKEN_EXISTS
    assert len(svc.tokens.list("lin")) == 1
    svc.tokens.revoke("lin", "portal")
    svc.tokens.create("lin", "portal")  # the name is free once the old one is revoked
    with pytest.raises(NotFound) as missing:
        svc.tokens.revoke("lin", "nothing-of-that-name")
    assert missing.value.code == Code.TOKEN_NOT_FOUND


@pytest.mark.parametrize(
    ("kw", "option"),
    [({"roles": ["approver"]}, "--role"), ({"scopes": ["龙文区"]}, "--scope"), ({"scopes": ["*"]}, "--scope")],
)
def test_a_token_cannot_have_more_than_its_user(svc: Casework, kw: dict[str, list[str]], option: str) -> None:
    with pytest.raises(InputError) as caught:
        svc.tokens.create("lin", "too-much", **kw)  # type: ignore[arg-type]
    assert caught.value.facts["option"] == option
    assert svc.tokens.list() == []


def test_a_narrowed_token_acts_with_fewer_rights_and_names_itself_on_the_trail(svc: Casework) -> None:
    ref = svc.create_case("poverty_archive", "ye", DATA).ref
    secret, _ = svc.tokens.create("ye", "intake", roles=["clerk"])
    acting = svc.tokens.authenticate(secret, "POST", f"/api/v1/cases/{ref}/steps/submit")
    with acting_through(acting):
        svc.fire(ref, "submit", "ye")
        # ye is a reviewer too, but not through this token
        assert [a.trigger for a in svc.get_case(ref, "ye").actions or ()] == ["withdraw"]  # the clerk's only
        with pytest.raises(RefusedError) as caught:
            svc.fire(ref, "pass_review", "ye")
    assert caught.value.code == Code.ROLE_NEEDED
    assert svc.get_case(ref).state == "review"
    events = svc.history(ref)
    assert events[-1].origin is not None
    assert (events[-1].origin["via"], events[-1].origin["token"]) == ("api", "intake")
    assert events[0].origin is not None and "via" not in events[0].origin  # opened from the console
    assert svc.verify_audit(ref).ok


def test_a_token_narrowed_to_one_county_does_not_see_or_move_the_others(svc: Casework) -> None:
    theirs = svc.create_case("poverty_archive", "chen", {**DATA, "county": "龙文区", "id_number": "350603198501012332"})
    svc.fire(theirs.ref, "submit", "chen")
    secret, _ = svc.tokens.create("wu", "xiangcheng-only", scopes=["芗城区"])
    attempts = {
        "read": lambda: svc.get_case(theirs.ref, "wu"),
        "step": lambda: svc.fire(theirs.ref, "pass_review", "wu"),
        "edit": lambda: svc.update_case(theirs.ref, "wu", {"household_size": 4}),
        "pause": lambda: svc.pause(theirs.ref, "wu", "补正"),
    }
    with acting_through(svc.tokens.authenticate(secret, "POST", "/")):
        for what, attempt in attempts.items():
            with pytest.raises(RefusedError) as caught:
                attempt()
            assert caught.value.code == Code.SCOPE_NOT_COVERED, what
        bulk = svc.fire_many([theirs.ref], "pass_review", "wu")
        # a case of another user's county acted on through the token is not this token's to move
        chen_may = svc.get_case(theirs.ref, "chen").ref
    assert [r.code for r in bulk.refused] == [Code.SCOPE_NOT_COVERED] and bulk.fired == []
    assert chen_may == theirs.ref  # another user, in the same request context, is not narrowed
    assert svc.get_case(theirs.ref).state == "review" and len(svc.history(theirs.ref)) == 2
    assert svc.get_case(theirs.ref, "wu").ref == theirs.ref  # wu, outside the token, still sees it


def test_the_rate_limit_is_counted_in_the_database_across_workers(svc: Casework, clock: FixedClock) -> None:
    secret, _ = svc.tokens.create("lin", "busy")
    policy = TokenPolicy(requests_per_window=3, window=dt.timedelta(minutes=1))
    # two "workers": two engines' token parts on one database
    workers = [svc.tokens_with(policy), Casework(svc.engine, clock).tokens_with(policy)]
    for i in range(3):
        workers[i % 2].authenticate(secret, "GET", "/api/v1/inbox")
    with pytest.raises(TokenRefused) as caught:
        workers[1].authenticate(secret, "GET", "/api/v1/inbox")
    assert caught.value.code == Code.RATE_LIMITED
    assert caught.value.facts["retry_after"] == 60 and caught.value.facts["limit"] == 3
    assert [e.action for e in svc.access_log(action="api_limited")] == ["api_limited"]
    clock.advance(seconds=61)
    assert workers[0].authenticate(secret, "GET", "/api/v1/inbox").username == "lin"


def test_a_retried_create_returns_the_first_case_and_opens_no_second(svc: Casework) -> None:
    first = svc.create_case("poverty_archive", "lin", DATA, idempotency_key="req-1")
    again = svc.create_case("poverty_archive", "lin", DATA, idempotency_key="req-1")
    assert (again.ref, again.replayed, first.replayed) == (first.ref, True, False)
    assert _cases(svc) == 1
    with pytest.raises(RefusedError) as caught:
        svc.create_case("poverty_archive", "lin", {**DATA, "household_size": 4}, idempotency_key="req-1")
    assert caught.value.code == Code.IDEMPOTENCY_KEY_REUSED and caught.value.facts["case"] == first.ref
    assert _cases(svc) == 1


def test_a_key_is_the_users_own(svc: Casework) -> None:
    mine = svc.create_case("poverty_archive", "lin", DATA, idempotency_key="same")
    other = svc.create_case(
        "poverty_archive", "ye", {**DATA, "id_number": "350602198601012333"}, idempotency_key="same"
    )
    assert mine.ref != other.ref and not other.replayed


def test_a_retried_step_moves_the_case_once(svc: Casework) -> None:
    ref = svc.create_case("poverty_archive", "lin", DATA).ref
    moved = svc.fire(ref, "submit", "lin", idempotency_key="step-1")
    again = svc.fire(ref, "submit", "lin", idempotency_key="step-1")
    assert (moved.state, again.state, again.version, again.replayed) == ("review", "review", moved.version, True)
    assert len(svc.history(ref)) == 2


def test_a_refused_request_keeps_no_key_so_it_can_be_sent_again(svc: Casework) -> None:
    with pytest.raises(RefusedError):
        svc.create_case("poverty_archive", "lin", {**DATA, "household_size": "x"}, idempotency_key="fix-me")
    with pytest.raises(RefusedError):
        svc.create_case("poverty_archive", "lin", {**DATA, "household_size": "x"}, idempotency_key="fix-me")
    with svc.engine.connect() as conn:
        assert conn.execute(select(schema.idempotency_keys)).all() == []


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "键"])
def test_an_unusable_key_is_refused_before_anything_is_done(svc: Casework, key: str) -> None:
    with pytest.raises(InputError) as caught:
        svc.create_case("poverty_archive", "lin", DATA, idempotency_key=key)
    assert caught.value.facts["option"] == "Idempotency-Key"
    assert _cases(svc) == 0


def test_eight_creates_with_one_key_at_once_open_one_case(svc: Casework) -> None:
    def send(_: int) -> str:
        return svc.create_case("poverty_archive", "lin", DATA, idempotency_key="burst").ref

    with ThreadPoolExecutor(8) as pool:
        refs = set(pool.map(send, range(8)))
    assert len(refs) == 1 and _cases(svc) == 1
    assert svc.check().ok


def test_two_tokens_of_one_user_keep_their_keys_apart(svc: Casework) -> None:
    # two systems acting as one user, each counting its keys from 1, must not receive each other's cases
    first, _ = svc.tokens.create("lin", "platform")
    second, _ = svc.tokens.create("lin", "portal")
    opened = {}
    for secret, n in ((first, 1), (second, 2)):
        with acting_through(svc.tokens.authenticate(secret, "POST", "/api/v1/cases")):
            data = {**DATA, "id_number": f"35060219850101{n:03d}"}
            data["id_number"] += check_digit(data["id_number"])
            opened[secret] = svc.create_case("poverty_archive", "lin", data, idempotency_key="1")
    assert opened[first].ref != opened[second].ref
    assert not opened[second].replayed and _cases(svc) == 2
