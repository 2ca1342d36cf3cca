"""HTTP at the API's edges: the body limit, weak and malformed ETags, unknown addresses, and a server failure.

Every answer under /api/v1 is a problem the document describes, and a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.api.conftest import ApiClient

LIMIT = 1_000_000  # CASEWORK_WEB_API_MAX_BODY_BYTES' default


def _chunks() -> Iterator[bytes]:
    yield b'{"workflow": "poverty_archive", "data": {"cause": "'
    for _ in range(LIMIT // 65_536 + 2):
        yield b"a" * 65_536
    yield b'"}}'


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_a_413_problem_and_opens_nothing(api: ApiClient, chunked: bool) -> None:
    body = _chunks() if chunked else b"".join(_chunks())
    answer = api.http.post(
        "/api/v1/cases",
        content=body,
        headers={**api.headers("lin"), "Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["facts"] == {"option": "body", "limit": LIMIT}
    assert api.site.svc.list_cases() == []


@pytest.mark.parametrize("sent", ['W/"1"', "1", '"1', "version 1"])
def test_an_if_match_that_is_not_the_etag_as_given_is_422_and_changes_nothing(api: ApiClient, sent: str) -> None:
    ref = api.open_case("lin").json()["ref"]
    answer = api.call("POST", f"/cases/{ref}/steps/submit", "lin", json={}, If_Match=sent)
    assert answer.status_code == 422, answer.text
    assert answer.json()["facts"]["option"] == "If-Match"
    assert api.site.svc.get_case(ref).version == 1


@pytest.mark.parametrize("path", ["/cases/", "/nothing-here", "/cases/ZZ-2026-000001/history/"])
def test_an_address_the_api_does_not_have_is_a_404_problem_not_a_redirect(api: ApiClient, path: str) -> None:
    answer = api.call("GET", path, "lin")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_server_failure_is_a_500_problem_logged_once(api: ApiClient, caplog: pytest.LogCaptureFixture) -> None:
    from starlette.testclient import TestClient

    svc = api.site.svc

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    svc.waiting_for = broken  # type: ignore[method-assign]
    with TestClient(api.site.app) as http:  # raises if the failure escapes the API to the server
        answer = http.get("/api/v1/inbox", headers=api.headers("lin"))
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "internal_error" and "fire" not in answer.text
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["API request failed: GET /api/v1/inbox"]


def test_a_version_conflict_is_412_only_when_if_match_named_the_version() -> None:
    # a case changed between the engine's read and write while If-Match was `*` (or absent) is a plain 409
    from casework.api.problems import status_of
    from engine import ConflictError

    moved = ConflictError("ZZ-2026-000001", "version 2, expected 1", expected_version=1, found_version=2)
    assert (status_of(moved), status_of(moved, precondition=True)) == (409, 412)
