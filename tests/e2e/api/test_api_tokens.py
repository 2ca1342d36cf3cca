"""Tokens at the door of the API: revoked, expired, a disabled user's, narrowed ones, and every use logged."""

from __future__ import annotations

from typing import Any

from tests.e2e.api.conftest import ApiClient, id_number


def refused(answer: Any, why: str) -> dict[str, Any]:
    """A 401 ``token_invalid`` problem for ``why``."""
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    doc = dict(answer.json())
    assert doc["code"] == "token_invalid" and doc["facts"]["why"] == why, doc
    return doc


def test_a_revoked_token_is_401(api: ApiClient) -> None:
    assert api.call("GET", "/cases", "lin").status_code == 200
    api.site.svc.tokens.revoke("lin", "tests")
    refused(api.call("GET", "/cases", "lin"), "revoked")
    opened = api.open_case("lin")
    refused(opened, "revoked")
    assert api.site.svc.list_cases(limit=10) == []


def test_an_expired_token_is_401(api: ApiClient) -> None:
    site = api.site
    api.tokens["lin"] = site.svc.tokens.create("lin", "a-day", days=1)[0]
    site.clock.advance(hours=23, minutes=59)
    assert api.call("GET", "/cases", "lin").status_code == 200
    site.clock.advance(minutes=1)
    refused(api.call("GET", "/cases", "lin"), "expired")


def test_a_disabled_users_token_is_401(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    site.svc.disable_user("lin", "left the office")
    refused(api.call("GET", f"/cases/{ref}", "lin"), "user_disabled")
    refused(api.call("POST", f"/cases/{ref}/steps/submit", "lin", json={}, If_Match='"1"'), "user_disabled")
    assert site.svc.get_case(ref).state == "apply"
    # enabled again, the same token works: its rights are read from the user at every request
    site.svc.enable_user("lin")
    assert api.call("GET", f"/cases/{ref}", "lin").status_code == 200


def test_a_token_narrowed_to_one_county_sees_no_other(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("chen", county="龙文区", id_number=id_number(1, "350603"))
    assert api.call("GET", f"/cases/{ref}", "wu").status_code == 200  # wu covers 芗城区 and 龙文区
    api.tokens["wu-xc"] = site.svc.tokens.create("wu", "xc-only", scopes=["芗城区"])[0]
    hidden = api.call("GET", f"/cases/{ref}", "wu-xc")
    assert hidden.status_code == 404 and hidden.json()["code"] == "case_not_found"
    listed = api.call("GET", "/cases", "wu-xc")
    assert listed.status_code == 200 and ref not in listed.text
    # a case of its own county it still sees
    mine = site.open_case("lin")
    assert api.call("GET", f"/cases/{mine}", "wu-xc").status_code == 200


def test_a_token_narrowed_to_fewer_roles_is_offered_only_its_roles_steps(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    site.svc.fire(ref, "submit", "lin")
    api.tokens["ye-clerk"] = site.svc.tokens.create("ye", "clerk-only", roles=["clerk"])[0]
    seen = api.call("GET", f"/cases/{ref}", "ye-clerk")
    assert seen.status_code == 200
    assert [a["trigger"] for a in seen.json()["actions"]] == ["withdraw"]  # a clerk's step, not a reviewer's
    # ye's full token is offered the review (ye reviews; lin submitted)
    assert "pass_review" in [a["trigger"] for a in api.call("GET", f"/cases/{ref}", "ye").json()["actions"]]


def test_a_token_narrowed_to_fewer_roles_may_not_take_the_others_steps(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    site.svc.fire(ref, "submit", "lin")
    api.tokens["ye-clerk"] = site.svc.tokens.create("ye", "clerk-only", roles=["clerk"])[0]
    before = [e.hash for e in site.svc.history(ref)]
    answer = api.call("POST", f"/cases/{ref}/steps/pass_review", "ye-clerk", json={}, If_Match='"2"')
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "role_needed"
    assert site.svc.get_case(ref).state == "review"
    assert [e.hash for e in site.svc.history(ref)] == before


def test_a_token_narrowed_to_one_county_may_not_take_a_step_in_another(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("chen", county="龙文区", id_number=id_number(1, "350603"))
    site.svc.fire(ref, "submit", "chen")
    api.tokens["wu-xc"] = site.svc.tokens.create("wu", "xc-only", scopes=["芗城区"])[0]
    answer = api.call("POST", f"/cases/{ref}/steps/pass_review", "wu-xc", json={}, If_Match='"2"')
    assert answer.status_code == 404, answer.text  # as for a case that does not exist: no county leaks
    assert answer.json()["code"] == "case_not_found"
    assert site.svc.get_case(ref).state == "review"


def test_every_use_is_in_the_access_log_with_the_tokens_name(api: ApiClient) -> None:
    site = api.site
    api.tokens["lin"] = site.svc.tokens.create("lin", "provincial-platform")[0]
    ref = api.open_case("lin").json()["ref"]
    api.call("GET", f"/cases/{ref}", "lin")
    api.call("GET", f"/cases/{ref}/history", "lin")
    api.call("GET", "/cases/ZZ-2026-999999", "lin")  # refused requests are logged too
    entries = site.svc.access_log(action="api")
    assert [(e.actor, e.detail["token"], e.detail["method"], e.detail["path"]) for e in entries] == [
        ("lin", "provincial-platform", "POST", "/api/v1/cases"),
        ("lin", "provincial-platform", "GET", f"/api/v1/cases/{ref}"),
        ("lin", "provincial-platform", "GET", f"/api/v1/cases/{ref}/history"),
        ("lin", "provincial-platform", "GET", "/api/v1/cases/ZZ-2026-999999"),
    ]
    assert {e.detail["client"] for e in entries} == {"testclient"}  # the caller's address (Starlette's test client)
    (token,) = [t for t in site.svc.tokens.list("lin") if t.name == "provincial-platform"]
    assert token.last_used_at == site.clock.now()
