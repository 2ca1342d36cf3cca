"""The API's documentation page in a real browser: Swagger UI, served from this server, under its own policy.

The page loads nothing from the internet and runs no inline script; the
browser must draw every operation of the OpenAPI document, and a call tried
from the page with a token must reach the API.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import Site
from tests.e2e.web.test_browser_flow import shot

pytestmark = pytest.mark.browser


def test_the_api_docs_page_draws_every_operation_with_nothing_blocked(
    site: Site, live: str, browser_page: Page
) -> None:
    page = browser_page
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(live) else None)
    response = page.goto("/api/v1/docs")
    assert response is not None and response.status == 200
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("casework API")
    document = json.loads(page.request.get("/api/v1/openapi.json").text())
    operations = sum(len(p) for p in document["paths"].values())
    expect(page.locator(".opblock")).to_have_count(operations)  # each once, under its one tag
    shot(page, "20-api-docs.png", full_page=False)
    assert problems == [], problems  # no CSP block, no missing asset
    assert [u for u in outside if not u.startswith("data:")] == []  # nothing fetched from elsewhere


def test_a_call_tried_from_the_docs_page_reaches_the_api_with_its_token(site: Site, browser_page: Page) -> None:
    page = browser_page
    secret, _ = site.svc.tokens.create("lin", "docs-page")
    page.goto("/api/v1/docs")
    page.get_by_role("button", name="Authorize").click()
    page.locator(".modal-ux input").fill(secret)
    page.locator(".modal-ux button.authorize").click()
    page.locator(".modal-ux button.btn-done").click()
    inbox = page.locator("#operations-inbox-inbox_inbox_get")
    inbox.locator(".opblock-summary").click()
    inbox.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: "/api/v1/inbox" in r.url) as answered:
        inbox.get_by_role("button", name="Execute").click()
    assert answered.value.status == 200
    assert json.loads(answered.value.text())["items"] == []
    assert [e.detail["token"] for e in site.svc.access_log(action="api")] == ["docs-page"]
