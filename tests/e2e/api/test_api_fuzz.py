"""Schemathesis, a tool nobody here wrote, fuzzes the API from its own OpenAPI document.

Every operation gets the document's examples and generated requests (valid
and invalid), sent with a real token so they reach past authentication;
then the stateful phase follows the document's links (open a case → read
it → take a step …). Each answer must be no 5xx, a status code the
document lists for the operation, the content type it declares and a body
matching its schema. Afterwards the server must still answer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy import delete

from casework.api import create_api
from casework.web import create_app
from casework.web.settings import WebSettings
from db import make_engine, schema as schema_tables
from engine import Casework
from tests.e2e.web.conftest import Site, case_data

# the same seed every run: a failure found once is found again, and the suite is reproducible
settings.register_profile(
    "api-fuzz",
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    stateful_step_count=6,
)
FUZZ = settings.get_profile("api-fuzz")

#: schemathesis' own checks that every answer must pass
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")


def _config(headers: dict[str, str] | None = None) -> Any:
    return schemathesis.Config.from_dict(
        {
            "headers": headers or {},
            "generation": {"deterministic": True},
            # not the literals of whatever Python modules happen to be loaded: they change with import order and
            # hash seeds, and the runs would differ from one another
            "analysis": {"constants": {"enabled": False}},
            "phases": {"coverage": {"enabled": False}},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        }
    )


def _document() -> dict[str, Any]:
    """The API's OpenAPI document, as the server builds it (no database is read to build it)."""
    engine = make_engine("sqlite://")
    try:
        return dict(create_api(Casework(engine)).openapi())
    finally:
        engine.dispose()


#: the document, read when the tests are collected so each operation is a test of its own
DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config())


@dataclass
class Fuzzed:
    """The site served with a rate limit the fuzzer does not reach, and tokens for it."""

    site: Site
    app: Any
    tokens: dict[str, str]

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


@pytest.fixture
def fuzzed(site: Site) -> Iterator[Fuzzed]:
    # the clock is fixed, so a rate window never ends: the fuzzer would be cut off at 600 requests
    app = create_app(site.svc, WebSettings(api_requests_per_minute=1_000_000))
    tokens = {user: site.svc.tokens.create(user, "fuzzer")[0] for user in ("luo", "lin")}
    # a case in each of two counties, so lists, the inbox and the reports have rows to describe
    site.open_case("lin")
    site.open_case("chen", county="龙文区", id_number="350603199001010028")
    fuzzed = Fuzzed(site, app, tokens)
    yield fuzzed
    # whatever was sent, the server still answers and the audit trail is intact
    _still_answers(fuzzed)


def _still_answers(fuzzed: Fuzzed) -> None:
    from starlette.testclient import TestClient

    with TestClient(fuzzed.app) as http:
        answer = http.get("/api/v1/cases?limit=1", headers=fuzzed.headers("luo"))
    assert answer.status_code == 200, answer.text
    assert fuzzed.site.svc.verify_audit().ok


def _validate(case: Any, response: Any) -> None:
    case.validate_response(response)


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_documented(case: Any, fuzzed: Fuzzed) -> None:
    # the supervisor: every county, so a generated reference is not hidden for being elsewhere
    _validate(case, case.call(app=fuzzed.app, headers=fuzzed.headers("luo")))


def _linked(document: dict[str, Any]) -> set[str]:
    """The operations the document's links start from or lead to."""
    found = set()
    for path in document["paths"].values():
        for operation in path.values():
            for answer in operation["responses"].values():
                if answer.get("links"):
                    found.add(operation["operationId"])
                    found.update(link["operationId"] for link in answer["links"].values())
    return found


def test_the_links_lead_through_real_cases_and_every_answer_is_documented(fuzzed: Fuzzed) -> None:
    svc = fuzzed.site.svc
    # the clerk: the one who opens cases, where every link starts
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", fuzzed.app, config=_config(fuzzed.headers("lin")))
    assert loaded.raw_schema == DOCUMENT
    linked = _linked(loaded.raw_schema)
    assert "open_case_cases_post" in linked and "pause_cases__ref__pause_post" in linked, linked
    seen: Counter[tuple[str, int]] = Counter()
    opened: list[str] = []

    class Machine(loaded.include(operation_id=sorted(linked)).as_state_machine()):  # type: ignore[misc]
        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            seen[(f"{case.method} {case.path}", response.status_code)] += 1
            if case.path == "/cases" and response.status_code == 201:
                opened.append(response.json()["ref"])

        def teardown(self) -> None:
            # the document's example opens a case for one ID number, which an open case keeps to itself:
            # withdrawn, it is free for the next scenario to open a real case again
            for ref in opened:
                if svc.get_case(ref).state in ("apply", "review", "publicise", "approve"):
                    svc.fire(ref, "withdraw", "lin", comment="fuzzing scenario over")
            opened.clear()
            # and the keys it sent are forgotten: a generated Idempotency-Key ("0", say) sent again in a later
            # scenario would be answered as a replay, and hypothesis requires the same choices to meet the same
            # answers (else FlakyStrategyDefinition)
            with svc.engine.begin() as conn:
                conn.execute(delete(schema_tables.idempotency_keys))
            super().teardown()

    Machine.run(settings=settings(FUZZ, max_examples=25, stateful_step_count=10))
    # the links were followed from real cases, not only tried on made-up references
    assert seen[("POST /cases", 201)] >= 3, seen
    assert seen[("GET /cases/{ref}", 200)] >= 1, seen
    assert seen[("POST /cases/{ref}/steps/{trigger}", 200)] >= 1, seen


# --- the defects the fuzzer found (each fixed), one request each, judged by schemathesis' own checks -------


def _sent(fuzzed: Fuzzed, method: str, path: str, **kwargs: Any) -> tuple[Any, Any]:
    """A request built from the document's ``method path`` (as lin), and its answer."""
    case = schema[path][method].Case(**kwargs)
    return case, case.call(app=fuzzed.app, headers=fuzzed.headers("lin"))


def _header(response: Any, name: str) -> str:
    found = response.headers.get(name, "")
    return str(found[0] if isinstance(found, list) else found)


def test_a_replayed_opening_is_answered_as_documented(fuzzed: Fuzzed) -> None:
    # found by the stateful phase: the replay's 200 was not in the document (only 201 was)
    body = {"workflow": "poverty_archive", "data": case_data(id_number="350602197803150027")}
    _, answer = _sent(fuzzed, "POST", "/cases", body=body, headers={"Idempotency-Key": "fuzz-replay-1"})
    assert answer.status_code == 201
    again, answer = _sent(fuzzed, "POST", "/cases", body=body, headers={"Idempotency-Key": "fuzz-replay-1"})
    assert answer.status_code == 200 and _header(answer, "idempotent-replayed") == "true"
    again.validate_response(answer)


def test_a_body_that_is_not_utf8_is_answered_as_documented(fuzzed: Fuzzed) -> None:
    # found by fuzzing: FastAPI answered 400 "There was an error parsing the body", which nothing documents
    case, answer = _sent(fuzzed, "POST", "/cases", body=b"\xff\xfe", media_type="application/json")
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].startswith("body")
    case.validate_response(answer)


def test_a_line_feed_inside_a_reference_is_answered_by_the_api(fuzzed: Fuzzed) -> None:
    # found by fuzzing: Starlette's mount pattern stopped at the line feed, and the pages answered in HTML
    from starlette.testclient import TestClient

    case = schema["/cases/{ref}/history"]["GET"].Case(path_parameters={"ref": "a\nb"})
    # sent as the fuzzer sent it, percent-encoded (an explicit case's URL would lose the line feed)
    with TestClient(fuzzed.app) as http:
        answer = http.get("/api/v1/cases/a%0Ab/history", headers=fuzzed.headers("lin"))
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    case.validate_response(schemathesis.Response.from_any(answer))


def test_the_document_gives_every_field_of_an_answer_its_type() -> None:
    # the read models' time serializer once hid every type (its `-> Any` became each field's schema), so the
    # response-schema check above could not fail on a body of the engine's models
    schemas = DOCUMENT["components"]["schemas"]
    untyped = [
        f"{name}.{field}"
        for name, model in schemas.items()
        for field, spec in model.get("properties", {}).items()
        if not ({"type", "$ref", "anyOf", "allOf", "oneOf", "enum", "const"} & set(spec))
    ]
    assert untyped == []
    assert schemas["CaseView"]["properties"]["version"]["type"] == "integer"
