"""What an HTTP client can rely on: versions (ETag/If-Match), retries (Idempotency-Key), refusals as
problem details equal to the engine's, the rate limit, tokens versus cookies, and no county leaking."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from casework.web import create_app
from casework.web.settings import WebSettings
from db import make_engine
from engine import Casework, CaseworkError, FixedClock, load_definition_file
from tests.e2e.api.conftest import WORKFLOW, ApiClient, id_number
from tests.e2e.web.conftest import BUNDLED, START, WEB_USERS, Site, WebClient, case_data, light_logins

PROBLEM = "application/problem+json"


def count_cases(site: Site) -> int:
    return len(site.svc.list_cases(limit=1000))


def trail(site: Site, ref: str) -> list[str]:
    return [e.hash for e in site.svc.history(ref)]


def as_json(value: Any) -> Any:
    """``value`` as it reads after a trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def engine_refusal(work: Callable[[], object]) -> CaseworkError:
    """The refusal the engine gives for ``work`` (a refusal changes nothing, so it can be asked again)."""
    with pytest.raises(CaseworkError) as refused:
        work()
    return refused.value


def assert_problem(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].split(";")[0] == PROBLEM
    doc = dict(answer.json())
    assert doc["status"] == status and doc["code"] == code, doc
    assert doc["type"] == f"urn:casework:problem:{code}"
    return doc


# ------------------------------------------------------------------ ETag / If-Match


def test_a_change_without_if_match_is_428_and_changes_nothing(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    before = trail(site, ref)
    patched = api.call("PATCH", f"/cases/{ref}", "lin", json={"data": {"household_size": 4}})
    doc = assert_problem(patched, 428, "precondition_required")
    assert doc["facts"] == {"case": ref}
    stepped = api.call("POST", f"/cases/{ref}/steps/submit", "lin", json={})
    assert_problem(stepped, 428, "precondition_required")
    view = site.svc.get_case(ref)
    assert view.version == 1 and view.state == "apply" and view.data["household_size"] == 3
    assert trail(site, ref) == before


def test_two_clients_racing_the_second_gets_412_and_the_case_is_as_the_first_left_it(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    # lin and ye (both clerks of 芗城区) read the case at version 1
    seen_by_lin = api.call("GET", f"/cases/{ref}", "lin").headers["ETag"]
    seen_by_ye = api.call("GET", f"/cases/{ref}", "ye").headers["ETag"]
    assert seen_by_lin == seen_by_ye == '"1"'
    first = api.call("PATCH", f"/cases/{ref}", "lin", json={"data": {"household_size": 4}}, If_Match=seen_by_lin)
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] == '"2"'
    after_first = trail(site, ref)
    second = api.call("POST", f"/cases/{ref}/steps/submit", "ye", json={}, If_Match=seen_by_ye)
    doc = assert_problem(second, 412, "conflict")
    assert doc["facts"]["expected_version"] == 1 and doc["facts"]["found_version"] == 2
    view = site.svc.get_case(ref)
    assert (view.state, view.version, view.data["household_size"]) == ("apply", 2, 4)
    assert trail(site, ref) == after_first


def test_if_match_star_is_accepted(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    patched = api.call("PATCH", f"/cases/{ref}", "lin", json={"data": {"household_size": 5}}, If_Match="*")
    assert patched.status_code == 200, patched.text
    stepped = api.call("POST", f"/cases/{ref}/steps/submit", "lin", json={}, If_Match="*")
    assert stepped.status_code == 200, stepped.text
    view = site.svc.get_case(ref)
    assert (view.state, view.data["household_size"]) == ("review", 5)


# ------------------------------------------------------------------ Idempotency-Key


def test_a_retried_create_gives_the_same_case_once(api: ApiClient) -> None:
    body = {"workflow": WORKFLOW, "data": case_data()}
    first = api.call("POST", "/cases", "lin", json=body, Idempotency_Key="3f0c-open-1")
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = api.call("POST", "/cases", "lin", json=body, Idempotency_Key="3f0c-open-1")
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["ref"] == first.json()["ref"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert count_cases(api.site) == 1


def test_the_same_key_with_another_body_is_refused_and_makes_nothing(api: ApiClient) -> None:
    first = api.call("POST", "/cases", "lin", json={"workflow": WORKFLOW, "data": case_data()}, Idempotency_Key="k-7")
    assert first.status_code == 201
    other = {"workflow": WORKFLOW, "data": case_data(applicant_name="李四", id_number=id_number(2))}
    reused = api.call("POST", "/cases", "lin", json=other, Idempotency_Key="k-7")
    doc = assert_problem(reused, 422, "idempotency_key_reused")
    assert doc["facts"]["key"] == "k-7"
    assert count_cases(api.site) == 1


def test_a_retried_step_moves_the_case_once(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    # the retry is the same request: the same If-Match, though the first one moved the case on
    first = api.call("POST", f"/cases/{ref}/steps/submit", "lin", json={}, If_Match='"1"', Idempotency_Key="s-1")
    assert first.status_code == 200, first.text
    after = trail(site, ref)
    again = api.call("POST", f"/cases/{ref}/steps/submit", "lin", json={}, If_Match='"1"', Idempotency_Key="s-1")
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["state"] == "review" and again.json()["version"] == first.json()["version"]
    assert trail(site, ref) == after
    assert [e.trigger for e in site.svc.history(ref)].count("submit") == 1


def concurrent_creates(base: str, secret: str, n: int = 4) -> list[Any]:
    """``n`` identical creates with one Idempotency-Key, sent at the same moment from ``n`` threads."""
    import httpx2 as httpx

    body = {"workflow": WORKFLOW, "data": case_data()}
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "same-moment"}
    start = threading.Barrier(n)
    answers: list[Any] = [None] * n

    def send(i: int) -> None:
        with httpx.Client(base_url=base, timeout=20) as client:
            start.wait()
            answers[i] = client.post("/api/v1/cases", json=body, headers=headers)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return answers


def assert_one_case(answers: list[Any], svc: Casework) -> None:
    assert all(a is not None for a in answers)
    assert sorted(a.status_code for a in answers) == [200] * (len(answers) - 1) + [201], [a.text for a in answers]
    assert len({a.json()["ref"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == len(answers) - 1
    assert len(svc.list_cases(limit=1000)) == 1


def test_concurrent_creates_with_one_key_make_one_case(api: ApiClient, live: str) -> None:
    assert_one_case(concurrent_creates(live, api.tokens["lin"]), api.site.svc)


@pytest.fixture
def pg_live(pg_server: Any) -> Iterator[tuple[str, Casework, str]]:
    """The web tests' site on a fresh PostgreSQL database, served by uvicorn: (base URL, engine, lin's token)."""
    import os
    import time

    import uvicorn

    from tests.e2e.web.conftest import _free_port

    if pg_server is None:
        if os.environ.get("CASEWORK_PG_BINDIR"):
            pytest.fail("CASEWORK_PG_BINDIR is set but no PostgreSQL server could be found")
        pytest.skip("PostgreSQL unavailable")
    name = f"api{os.getpid()}_{time.monotonic_ns()}"
    url = pg_server.create_database(name, template="casework_template")
    engine = make_engine(url)
    svc = light_logins(Casework(engine, FixedClock(START)))
    svc.load_workflow(load_definition_file(BUNDLED))
    for username, full_name, roles, scopes in WEB_USERS:
        svc.add_user(username, full_name, roles, scopes)
    secret = svc.tokens.create("lin", "tests")[0]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", svc, secret
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        pg_server.drop_database(name)


@pytest.mark.postgres
def test_concurrent_creates_with_one_key_make_one_case_on_postgresql(pg_live: tuple[str, Casework, str]) -> None:
    base, svc, secret = pg_live
    assert_one_case(concurrent_creates(base, secret), svc)


# ------------------------------------------------------------------ problem details


def test_four_eyes_is_the_engines_refusal(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("ye")
    site.svc.fire(ref, "submit", "ye")
    before = trail(site, ref)
    answer = api.step(ref, "pass_review", "ye")
    doc = assert_problem(answer, 403, "four_eyes")
    engine = engine_refusal(lambda: site.svc.fire(ref, "pass_review", "ye"))
    assert doc["code"] == str(engine.code) and doc["facts"] == as_json(engine.facts)
    assert doc["detail"] == engine.message
    assert trail(site, ref) == before


def test_a_step_the_state_does_not_allow_is_409_as_the_engine_says(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    site.svc.fire(ref, "submit", "lin")
    answer = api.step(ref, "grant", "su")
    engine = engine_refusal(lambda: site.svc.fire(ref, "grant", "su"))
    doc = assert_problem(answer, 409, str(engine.code))
    assert doc["facts"] == as_json(engine.facts) and doc["detail"] == engine.message
    assert site.svc.get_case(ref).state == "review"


def test_missing_fields_are_422_with_an_error_per_field(api: ApiClient) -> None:
    site = api.site
    data = case_data()
    del data["cause"], data["household_size"]
    ref = site.svc.create_case(WORKFLOW, "lin", data).ref
    answer = api.step(ref, "submit", "lin")
    engine = engine_refusal(lambda: site.svc.fire(ref, "submit", "lin"))
    doc = assert_problem(answer, 422, "missing_fields")
    assert doc["facts"] == as_json(engine.facts)
    assert sorted(e["field"] for e in doc["errors"]) == ["data.cause", "data.household_size"]
    assert site.svc.get_case(ref).state == "apply"


def test_bad_data_is_422_with_an_error_per_field(api: ApiClient) -> None:
    site = api.site
    bad = case_data(household_size=0, income_per_capita="lots")
    answer = api.call("POST", "/cases", "lin", json={"workflow": WORKFLOW, "data": bad})
    engine = engine_refusal(lambda: site.svc.create_case(WORKFLOW, "lin", bad))
    doc = assert_problem(answer, 422, str(engine.code))
    assert doc["facts"] == as_json(engine.facts)
    fields = {e["field"] for e in doc["errors"]}
    assert {"data.household_size", "data.income_per_capita"} <= fields
    assert all(e["message"] for e in doc["errors"])
    assert count_cases(site) == 0


def test_a_malformed_body_is_422_naming_the_body_field(api: ApiClient) -> None:
    answer = api.call("POST", "/cases", "lin", json={"data": case_data(), "colour": "red"})
    doc = assert_problem(answer, 422, "invalid_input")
    fields = {e["field"] for e in doc["errors"]}
    assert "body.workflow" in fields and "body.colour" in fields
    not_json = api.http.post(
        "/api/v1/cases",
        content=b"{not json",
        headers={**api.headers("lin"), "Content-Type": "application/json"},
    )
    assert_problem(not_json, 422, "invalid_input")
    assert count_cases(api.site) == 0


# ------------------------------------------------------------------ rate limit


def test_the_sixth_request_in_a_minute_is_429_until_the_window_passes(api: ApiClient) -> None:
    from starlette.testclient import TestClient

    site = api.site
    limited = create_app(site.svc, WebSettings(api_requests_per_minute=5))
    headers = api.headers("lin")
    with TestClient(limited, base_url="http://testserver") as client:
        for _ in range(5):
            assert client.get("/api/v1/cases", headers=headers).status_code == 200
        over = client.get("/api/v1/cases", headers=headers)
        doc = assert_problem(over, 429, "rate_limited")
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        assert doc["facts"]["limit"] == 5
        # a change is refused too, and not made
        opened = client.post("/api/v1/cases", json={"workflow": WORKFLOW, "data": case_data()}, headers=headers)
        assert_problem(opened, 429, "rate_limited")
        assert count_cases(site) == 0
        # another token has its own count
        assert client.get("/api/v1/cases", headers=api.headers("wu")).status_code == 200
        site.clock.advance(seconds=61)
        assert client.get("/api/v1/cases", headers=headers).status_code == 200
    assert len(site.svc.access_log(action="api_limited")) == 2


# ------------------------------------------------------------------ cookies versus tokens


def test_a_web_session_is_no_key_to_the_api(api: ApiClient, web: WebClient) -> None:
    assert web.login("lin").status_code == 303
    assert web.get("/").status_code == 200  # the session works on the pages
    read = web.http.get("/api/v1/cases")
    doc = assert_problem(read, 401, "token_invalid")
    assert doc["facts"]["why"] == "missing"
    assert read.headers["WWW-Authenticate"].startswith("Bearer")
    opened = web.http.post("/api/v1/cases", json={"workflow": WORKFLOW, "data": case_data()})
    assert_problem(opened, 401, "token_invalid")
    assert count_cases(api.site) == 0


def test_a_token_is_no_key_to_the_pages_forms(api: ApiClient) -> None:
    site = api.site
    ref = site.open_case("lin")
    before = trail(site, ref)
    form = api.http.post(f"/cases/{ref}/steps/submit", data={"version": "1", "comment": ""}, headers=api.headers("lin"))
    assert form.status_code in (303, 403), form.text
    if form.status_code == 303:
        assert form.headers["location"].startswith("/login")
    page = api.http.get(f"/cases/{ref}", headers=api.headers("lin"))
    assert page.status_code in (303, 401, 403)
    assert site.svc.get_case(ref).state == "apply"
    assert trail(site, ref) == before


# ------------------------------------------------------------------ no county leaks


def _without(text: str, ref: str) -> str:
    return text.replace(ref, "<REF>")


@pytest.mark.parametrize(
    ("method", "path", "body", "if_match"),
    [
        ("GET", "/cases/{ref}", None, None),
        ("GET", "/cases/{ref}/history", None, None),
        ("GET", "/cases/{ref}/timers", None, None),
        ("GET", "/cases/{ref}/objections", None, None),
        ("POST", "/cases/{ref}/steps/submit", {}, '"1"'),
        ("PATCH", "/cases/{ref}", {"data": {"household_size": 4}}, '"1"'),
        ("PATCH", "/cases/{ref}", {"data": {"household_size": 4}}, "*"),
    ],
)
def test_another_countys_case_answers_exactly_as_a_missing_one(
    api: ApiClient, method: str, path: str, body: Any, if_match: str | None
) -> None:
    site = api.site
    hidden = site.open_case("lin")  # 芗城区: chen is a clerk of 龙文区
    missing = hidden[:-6] + "999999"
    assert len(missing) == len(hidden)
    extra = {"If_Match": if_match} if if_match else {}
    before = trail(site, hidden)
    seen = api.call(method, path.format(ref=hidden), "chen", json=body, **extra)
    absent = api.call(method, path.format(ref=missing), "chen", json=body, **extra)
    assert seen.status_code == absent.status_code == 404, (seen.text, absent.text)
    assert _without(seen.text, hidden) == _without(absent.text, missing)
    # the same headers too (bar how long the server took: Server-Timing differs from call to call)
    assert {k: v for k, v in seen.headers.items() if k != "server-timing"} == {
        k: v for k, v in absent.headers.items() if k != "server-timing"
    }
    assert seen.json()["code"] == "case_not_found"
    assert trail(site, hidden) == before
