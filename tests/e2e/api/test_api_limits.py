"""The API's body limit: a body over it is refused as a problem before it is read, whole or chunked."""

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
