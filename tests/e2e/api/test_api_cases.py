"""An integrator with nothing but tokens and the OpenAPI document takes an archive from apply to filed.

The client below knows no address of the API: it reads them from
``/api/v1/openapi.json`` (the server's URL and each operation's path
template) and fills the templates in. It learns which steps it may take from
each case's ``actions`` and sends back each case's ``ETag`` as ``If-Match``.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.api.conftest import WORKFLOW, ApiClient
from tests.e2e.web.conftest import case_data


class DocumentClient:
    """A client driven by the OpenAPI document: every request goes to a path the document declares."""

    def __init__(self, api: ApiClient) -> None:
        self.http = api.http
        self.tokens = api.tokens
        answer = self.http.get("/api/v1/openapi.json")  # no token: the document is public
        assert answer.status_code == 200, answer.text
        self.doc: dict[str, Any] = answer.json()
        self.base = self.doc["servers"][0]["url"]

    def operation(self, method: str, *parts: str) -> str:
        """The one path template of the document that ends with ``parts`` and takes ``method``."""
        found = [
            path
            for path, ops in self.doc["paths"].items()
            if method.lower() in ops
            and path.strip("/").split("/")[-len(parts) :] == list(parts)
            and len(path.strip("/").split("/")) == len(parts)
        ]
        assert len(found) == 1, f"the document has {found} for {method} {'/'.join(parts)}"
        return str(found[0])

    def call(self, user: str, method: str, template: str, body: Any = None, **params: str) -> Any:
        """``method`` on ``template`` (its ``{name}`` parameters filled from ``params``) as ``user``."""
        op = self.doc["paths"][template][method.lower()]
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(params), f"{template} declares {declared}, given {set(params)}"
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        if "If-Match" in {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}:
            headers["If-Match"] = self.etag
        path = template.format(**params)
        return self.http.request(method, self.base + path, json=body, headers=headers)

    etag = ""

    def read(self, user: str, ref: str) -> dict[str, Any]:
        """The case as ``user`` sees it (its ETag kept for the next change)."""
        answer = self.call(user, "GET", self.operation("get", "cases", "{ref}"), ref=ref)
        assert answer.status_code == 200, answer.text
        self.etag = answer.headers["ETag"]
        return dict(answer.json())

    def step(self, user: str, ref: str, trigger: str, comment: str | None = None) -> dict[str, Any]:
        """Take ``trigger`` as ``user``, after checking the case offers it to them."""
        seen = self.read(user, ref)
        assert trigger in [a["trigger"] for a in seen["actions"]], (user, trigger, seen["actions"])
        template = self.operation("post", "cases", "{ref}", "steps", "{trigger}")
        answer = self.call(user, "POST", template, {"comment": comment}, ref=ref, trigger=trigger)
        assert answer.status_code == 200, answer.text
        assert answer.headers["ETag"] == f'"{answer.json()["version"]}"'
        return dict(answer.json())


@pytest.mark.parametrize("publicity_ends", ["by_the_reviewer", "by_the_sweep"])
def test_a_token_and_the_document_take_a_case_from_apply_to_filed(api: ApiClient, publicity_ends: str) -> None:
    site = api.site
    # each user's own named token, so every event can be traced to the token that wrote it
    api.tokens.update({u: site.svc.tokens.create(u, f"{u}-platform")[0] for u in ("lin", "wu", "su")})
    client = DocumentClient(api)

    opened = client.call("lin", "POST", client.operation("post", "cases"), {"workflow": WORKFLOW, "data": case_data()})
    assert opened.status_code == 201, opened.text
    ref = opened.json()["ref"]
    assert opened.json()["state"] == "apply"

    assert client.step("lin", ref, "submit")["state"] == "review"
    assert client.step("wu", ref, "pass_review")["state"] == "publicise"
    # the reviewer publishes the county's list (pass_review, which takes cases into publicity, is theirs)
    published = client.call(
        "wu", "POST", client.operation("post", "notices"), {"workflow": WORKFLOW, "county": "芗城区"}
    )
    assert published.status_code == 201, published.text
    assert ref in published.text
    # the publicity period cannot be cut short
    early = client.read("wu", ref)
    assert "end_publicity" not in [a["trigger"] for a in early["actions"]]

    site.clock.advance(days=8)
    if publicity_ends == "by_the_reviewer":
        assert client.step("wu", ref, "end_publicity")["state"] == "approve"
    else:
        site.svc.sweep()  # as the scheduler does: the publicity timer fires end_publicity as system
        assert client.read("su", ref)["state"] == "approve"

    assert client.step("su", ref, "grant")["state"] == "enter"
    final = client.step("lin", ref, "record")
    assert final["state"] == "filed"
    assert client.read("lin", ref)["state"] == "filed"

    report = site.svc.verify_audit()
    assert report.ok, report
    events = site.svc.history(ref)
    triggers = [e.trigger for e in events if e.trigger]
    assert triggers == ["submit", "pass_review", "end_publicity", "grant", "record"]
    for event in events:
        if event.actor == "system":
            assert publicity_ends == "by_the_sweep" and event.trigger == "end_publicity"
            assert (event.origin or {}).get("via") is None  # the scheduler acts through no token
            continue
        assert event.origin is not None, event
        assert event.origin["via"] == "api", event
        assert event.origin["token"] == f"{event.actor}-platform", event
    # the history the API serves is the same trail
    history = client.call("lin", "GET", client.operation("get", "cases", "{ref}", "history"), ref=ref)
    assert [e["hash"] for e in history.json()] == [e.hash for e in events]
