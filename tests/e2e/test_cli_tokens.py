"""``casework token``: an operator makes, lists and revokes the HTTP API's tokens, as a user types it.

The command runs on the real clock; what needs time to pass (a token that
has expired) is set up, or checked, with the engine on a :class:`FixedClock`
over the same database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Casework, FixedClock, TokenRefused
from engine.logins import hash_token
from engine.tokens import TOKEN_PREFIX
from tests.e2e.conftest import Seeded
from tests.e2e.runner import casework
from tests.e2e.test_cli import json_refusal, ok, ok_json, refused

_SECRET = re.compile(rf"^{TOKEN_PREFIX}[A-Za-z0-9_-]{{40,}}$")


def created(url: str, *args: str) -> str:
    """``token create ARGS`` succeeded; the secret it printed (alone on stdout)."""
    r = casework(url, "token", "create", *args)
    lines = ok(r).splitlines()
    assert len(lines) == 1 and _SECRET.match(lines[0]), r.out
    return lines[0]


def db_bytes(url: str) -> bytes:
    """Every byte of the SQLite database: the file and its write-ahead log."""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


@pytest.fixture
def api(sqlite_seeded: Seeded) -> Iterator[Any]:
    """A TestClient of the HTTP API on the same database (the server as `casework serve` builds it)."""
    from starlette.testclient import TestClient

    from casework.web import create_app

    with TestClient(create_app(sqlite_seeded.svc), base_url="http://testserver") as client:
        yield client


def get_cases(client: Any, secret: str) -> Any:
    return client.get("/api/v1/cases", headers={"Authorization": f"Bearer {secret}"})


def test_create_prints_the_secret_once_and_it_opens_the_api(sqlite_seeded: Seeded, api: Any) -> None:
    r = casework(sqlite_seeded.url, "token", "create", "lin", "--name", "provincial-platform", "--expires", "30")
    secret = ok(r).strip()
    assert _SECRET.match(secret) and r.out == secret + "\n"
    # the note is on stderr, so `TOKEN=$(casework token create ...)` captures the secret alone
    assert "only time it is shown" in r.err and secret not in r.err
    assert get_cases(api, secret).status_code == 200
    acting = sqlite_seeded.svc.tokens.authenticate(secret, "GET", "/api/v1/cases")
    assert (acting.username, acting.token) == ("lin", "provincial-platform")


def test_create_json_gives_the_secret_and_the_token(sqlite_seeded: Seeded) -> None:
    r = casework(sqlite_seeded.url, "token", "create", "wu", "--name", "sync", "--scope", "芗城区", "--json")
    doc = ok_json(r)
    assert _SECRET.match(doc["token"])
    assert doc["username"] == "wu" and doc["name"] == "sync" and doc["status"] == "live"
    assert doc["scopes"] == ["芗城区"] and doc["roles"] is None and doc["expires_at"] is None


def test_the_database_keeps_only_the_sha256(sqlite_seeded: Seeded) -> None:
    secret = created(sqlite_seeded.url, "lin", "--name", "platform")
    stored = db_bytes(sqlite_seeded.url)
    assert secret.encode() not in stored
    assert secret.removeprefix(TOKEN_PREFIX).encode() not in stored
    assert hash_token(secret).encode() in stored


def test_list_shows_status_and_last_use_never_a_secret(sqlite_seeded: Seeded, api: Any) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    used = created(url, "lin", "--name", "used")
    unused = created(url, "wu", "--name", "unused", "--role", "reviewer")
    assert get_cases(api, used).status_code == 200
    ok(casework(url, "token", "revoke", "wu", "unused"))
    # an expired one: made a year ago for a day, on the engine's clock
    past = Casework(svc.engine, FixedClock(dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)))
    old, _ = past.tokens.create("lin", "old", days=1)

    text = casework(url, "token", "list")
    listing = ok(text)
    for secret in (used, unused, old):
        assert secret not in listing and secret.removeprefix(TOKEN_PREFIX)[:12] not in listing
    doc = ok_json(casework(url, "token", "list", "--json"))
    assert {t["name"]: t["status"] for t in doc} == {"used": "live", "unused": "revoked", "old": "expired"}
    by_name = {t["name"]: t for t in doc}
    assert by_name["used"]["last_used_at"] is not None and by_name["unused"]["last_used_at"] is None
    assert by_name["unused"]["roles"] == ["reviewer"]
    assert all("token" not in t for t in doc)
    assert all(not any(str(v).startswith(TOKEN_PREFIX) for v in t.values()) for t in doc)
    # one user's
    assert [t["name"] for t in ok_json(casework(url, "token", "list", "wu", "--json"))] == ["unused"]
    for word in ("used", "live", "revoked", "expired", "never"):
        assert word in listing


def test_revoke_makes_the_token_401(sqlite_seeded: Seeded, api: Any) -> None:
    url = sqlite_seeded.url
    secret = created(url, "lin", "--name", "platform")
    assert get_cases(api, secret).status_code == 200
    r = casework(url, "token", "revoke", "lin", "platform")
    assert "revoked lin's token 'platform'" in ok(r)
    answer = get_cases(api, secret)
    assert answer.status_code == 401
    assert answer.json()["code"] == "token_invalid" and answer.json()["facts"]["why"] == "revoked"
    # revoking again: there is no live token of that name
    refused(casework(url, "token", "revoke", "lin", "platform"), "lin has no live token called 'platform'")


def test_an_expired_token_is_refused(sqlite_seeded: Seeded, api: Any) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    secret = created(url, "lin", "--name", "short", "--expires", "1")
    later = Casework(svc.engine, FixedClock(dt.datetime.now(dt.UTC) + dt.timedelta(days=1, minutes=1)))
    with pytest.raises(TokenRefused) as refusal:
        later.tokens.authenticate(secret, "GET", "/api/v1/cases")
    assert refusal.value.facts["why"] == "expired"
    # and a token made for a day a year ago is refused by the server, which runs on the real clock
    past = Casework(svc.engine, FixedClock(dt.datetime(2025, 1, 6, 9, 0, tzinfo=dt.UTC)))
    old, _ = past.tokens.create("lin", "old", days=1)
    answer = get_cases(api, old)
    assert answer.status_code == 401 and answer.json()["facts"]["why"] == "expired"


def test_a_second_live_token_of_the_same_name_is_refused(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    first = created(url, "lin", "--name", "platform")
    before = svc.tokens.list()
    r = casework(url, "token", "create", "lin", "--name", "platform", "--json")
    assert json_refusal(r)["code"] == "token_exists"
    refused(r, "lin already has a live token called 'platform'", "casework token revoke lin platform")
    assert svc.tokens.list() == before
    assert svc.tokens.authenticate(first, "GET", "/").token == "platform"
    # once revoked, the name is free again
    ok(casework(url, "token", "revoke", "lin", "platform"))
    created(url, "lin", "--name", "platform")


def test_a_role_beyond_the_users_is_refused_and_nothing_is_made(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    r = casework(url, "token", "create", "lin", "--name", "x", "--role", "approver", "--json")
    error = json_refusal(r)
    assert error["code"] == "invalid_input" and error["facts"]["option"] == "--role"
    refused(r, "approver is not the user's", rc=2)
    r = casework(url, "token", "create", "lin", "--name", "y", "--scope", "龙文区")
    refused(r, "龙文区 is not the user's", rc=2)
    r = casework(url, "token", "create", "lin", "--name", "z", "--expires", "0")
    refused(r, "--expires must be a number of days", rc=2)
    assert svc.tokens.list() == []
    assert svc.access_log(action="create_token") == []


def test_an_unknown_user_is_refused(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    refused(casework(url, "token", "create", "nobody", "--name", "x"), "nobody")
    refused(casework(url, "token", "list", "nobody"), "nobody")
    refused(casework(url, "token", "revoke", "nobody", "x"), "nobody")
    assert svc.tokens.list() == []


def test_making_and_revoking_are_in_the_access_log(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    created(url, "lin", "--name", "platform")
    ok(casework(url, "token", "revoke", "lin", "platform"))
    (made,) = svc.access_log(action="create_token")
    (revoked,) = svc.access_log(action="revoke_token")
    assert made.detail["user"] == revoked.detail["user"] == "lin"
    assert made.detail["token"] == revoked.detail["token"] == "platform"
