"""Fixtures for the HTTP API's tests: the web tests' seeded site, a token per user, and a JSON client.

``api`` is an in-process client (Starlette's TestClient) of the whole server
(pages and API); ``api.as_("lin")`` sends lin's token. The users, their roles
and counties are the web tests' (:data:`tests.e2e.web.conftest.WEB_USERS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.casedata import GOOD_ID, case_data, id_number  # noqa: F401 - the API tests import them from here
from tests.e2e.web import conftest as web_fixtures
from tests.e2e.web.conftest import START, WEB_USERS, Site  # noqa: F401 - for the API tests

# the web tests' fixtures, used here by name
live = web_fixtures.live
site = web_fixtures.site
web = web_fixtures.web
web_template = web_fixtures.web_template

WORKFLOW = "poverty_archive"


class ApiClient:
    """A JSON client of the API with each user's token (``tokens[username]``)."""

    def __init__(self, site: Site, tokens: dict[str, str]) -> None:
        from starlette.testclient import TestClient

        self.site = site
        self.tokens = tokens
        self.http = TestClient(site.app, base_url="http://testserver", follow_redirects=False)

    def headers(self, user: str | None, **extra: str) -> dict[str, str]:
        """``Authorization`` for ``user`` (none for None), plus ``extra`` (``If_Match`` → ``If-Match``)."""
        found = {k.replace("_", "-"): v for k, v in extra.items()}
        if user is not None:
            found["Authorization"] = f"Bearer {self.tokens[user]}"
        return found

    def call(self, method: str, path: str, user: str | None, *, json: Any = None, **headers: str) -> Any:
        """``method path`` under /api/v1 as ``user``."""
        return self.http.request(method, "/api/v1" + path, json=json, headers=self.headers(user, **headers))

    def open_case(self, user: str = "lin", **overrides: Any) -> Any:
        """Open a case through the API (201 expected by the caller)."""
        return self.call("POST", "/cases", user, json={"workflow": WORKFLOW, "data": case_data(**overrides)})

    def step(self, ref: str, trigger: str, user: str, *, comment: str | None = None, **data: Any) -> Any:
        """Read the case, then take ``trigger`` with its ETag."""
        seen = self.call("GET", f"/cases/{ref}", user)
        body: dict[str, Any] = {"comment": comment}
        if data:
            body["data"] = data
        return self.call("POST", f"/cases/{ref}/steps/{trigger}", user, json=body, If_Match=seen.headers["ETag"])


@pytest.fixture
def api(site: Site) -> Iterator[ApiClient]:
    """A client with a token for every user of the site."""
    tokens = {username: site.svc.tokens.create(username, "tests")[0] for username, *_ in WEB_USERS}
    client = ApiClient(site, tokens)
    with client.http:
        yield client
