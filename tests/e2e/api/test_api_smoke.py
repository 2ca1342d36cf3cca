"""The first thing an integrator does: open a case with a token and read it back."""

from __future__ import annotations

from tests.e2e.api.conftest import ApiClient


def test_a_token_opens_a_case_and_reads_it_back(api: ApiClient) -> None:
    opened = api.open_case("lin")
    assert opened.status_code == 201, opened.text
    ref = opened.json()["ref"]
    assert opened.headers["Location"] == f"/api/v1/cases/{ref}"
    read = api.call("GET", f"/cases/{ref}", "lin")
    assert read.status_code == 200
    assert read.headers["ETag"] == '"1"'
    assert [a["trigger"] for a in read.json()["actions"]] == ["submit", "withdraw"]
