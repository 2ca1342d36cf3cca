"""Who may do what over HTTP: every operation of the OpenAPI document × every role × the case's county.

:data:`MATRIX` is the table a reviewer reads: one row per (operation, scene), and for each of the two
counties the outcome for lin (clerk 芗城区), chen (clerk 龙文区), wu (reviewer of both), su (approver,
every county) and luo (supervisor, every county). Without a token, or with a revoked one, every operation
is 401 (only the document and its page are open). Outcomes:

* ``ok`` — 2xx, and a change is made;
* ``403`` — refused for the role (``code`` says which rule), and nothing changed;
* ``404`` — the case is in a county the caller does not cover: the very answer a missing reference gets;
* ``fired`` / ``refused`` / ``hidden`` — the bulk step's report: done, refused for the role, or listed as
  not found (again word for word as a missing reference).

Each change cell runs on a case of its own, made through the engine in the state the row names and sent
with the case's current ETag: the refusal (or the change) is the authorization's, not a stale version's
(the engine checks the version *before* the role: a stale If-Match is 412 even for someone without the
right — see :func:`test_a_stale_version_is_412_before_the_role_is_checked`).
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from casework.web import create_app
from casework.web.settings import WebSettings
from db import make_engine
from engine import Casework, FixedClock
from engine.idnumber import check_digit
from notifications import NotificationConfig, Relay, default_channels, inbox
from notifications.notices import publish_list
from tests.e2e.api.conftest import WORKFLOW, ApiClient
from tests.e2e.web.conftest import START, Site, case_data, light_logins

ROLES = ("lin", "chen", "wu", "su", "luo")
#: the callers every operation refuses with 401
NO_KEY = ("no token", "revoked token")
XC, LW = "芗城区", "龙文区"
COUNTIES = (XC, LW)
#: the clerk who opens a county's cases
CLERK = {XC: "lin", LW: "chen"}
#: a reference no case has
MISSING = "ZZ-2026-999999"


@dataclass(frozen=True)
class Row:
    """One row of the matrix: an operation of the document, on a scene, with the outcome per county and role."""

    operation: str  # "METHOD /path" as the document names it
    scene: str  # what the request is about (see Scene.request)
    outcomes: dict[str, str]  # county -> "lin chen wu su luo"

    def expected(self, county: str, role: str) -> str:
        return self.outcomes[county].split()[ROLES.index(role)]


def row(operation: str, scene: str, xc: str, lw: str | None = None) -> Row:
    return Row(operation, scene, {XC: xc, LW: lw if lw is not None else xc})


#                                                                 case in 芗城区            case in 龙文区
#                                                                 lin chen wu  su  luo      lin chen wu  su  luo
MATRIX = [
    # opening is for a role that may act in the first state: apply's steps are the clerk's and (withdraw) the
    # reviewer's
    row("POST /cases", "open a case in the county",               "ok  403 ok  403 403",   "403 ok  ok  403 403"),
    row("GET /cases", "list the county's cases",                  "ok  403 ok  ok  ok",    "403 ok  ok  ok  ok"),
    row("GET /cases/{ref}", "read a case",                        "ok  404 ok  ok  ok",    "404 ok  ok  ok  ok"),
    # a role that may not edit the fields is refused 403 (code not_editable)
    row("PATCH /cases/{ref}", "change a case in apply",           "ok  404 403 403 403",   "404 ok  403 403 403"),
    row("POST /cases/{ref}/steps/{trigger}", "submit (apply)",    "ok  404 403 403 403",   "404 ok  403 403 403"),
    row("POST /cases/{ref}/steps/{trigger}", "pass_review (review)", "403 404 ok 403 403",  "404 403 ok  403 403"),
    # pausing is for whoever may take a step from the state: from review, withdraw (clerk) and reject (approver)
    row("POST /cases/{ref}/pause", "pause a case in review",      "ok  404 ok  ok  403",   "404 ok  ok  ok  403"),
    row("POST /cases/{ref}/resume", "resume a paused case",       "ok  404 ok  ok  403",   "404 ok  ok  ok  403"),
    row("GET /cases/{ref}/history", "read a case",                "ok  404 ok  ok  ok",    "404 ok  ok  ok  ok"),
    row("GET /cases/{ref}/timers", "read a case",                 "ok  404 ok  ok  ok",    "404 ok  ok  ok  ok"),
    row("GET /cases/{ref}/objections", "read a case",             "ok  404 ok  ok  ok",    "404 ok  ok  ok  ok"),
    # an objection is recorded by any of the workflow's staff covering the case
    row("POST /cases/{ref}/objections", "object during publicity", "ok 404 ok  ok  ok",    "404 ok  ok  ok  ok"),
    # resolving takes the authority of uphold_objection: the reviewer
    row("POST /cases/{ref}/objections/{objection}/resolution", "resolve an objection",
                                                                  "403 404 ok  403 403",   "404 403 ok  403 403"),
    row("POST /steps/{trigger}", "bulk submit (apply)",           "fired hidden refused refused refused",
                                                                  "hidden fired refused refused refused"),
    row("GET /workflows", "list workflows",                       "ok  ok  ok  ok  ok"),
    row("GET /workflows/{name}", "describe the workflow",         "ok  ok  ok  ok  ok"),
    row("GET /workflows/{name}/diagram", "draw the workflow",     "ok  ok  ok  ok  ok"),
    row("GET /inbox", "my inbox",                                 "ok  ok  ok  ok  ok"),
    row("GET /messages", "my messages",                           "ok  ok  ok  ok  ok"),
    # wu's message about a case of the county: only wu's to mark (anyone else: no such message)
    row("POST /messages/{message}/read", "mark wu's message read", "404 404 ok 404 404"),
    # notices are public: anyone with a token reads any county's
    row("GET /notices", "list notices",                           "ok  ok  ok  ok  ok"),
    row("GET /notices/{number}", "the county's notice",           "ok  ok  ok  ok  ok"),
    row("GET /notices/{number}/html", "the county's notice",      "ok  ok  ok  ok  ok"),
    row("GET /notices/{number}/pdf", "the county's notice",       "ok  ok  ok  ok  ok"),
    # publishing is for the roles that take cases into publicity (pass_review: the reviewer)
    row("POST /notices", "publish the county's list",             "403 403 ok  403 403"),
    row("GET /reports", "list reports",                           "ok  ok  ok  ok  ok"),
    row("GET /reports/{name}", "the archives report",             "ok  ok  ok  ok  ok"),
    row("GET /outbox", "the outbox",                              "403 403 403 403 ok"),
]  # fmt: skip

#: the operations whose request names no county (one column is enough)
NO_COUNTY = {
    "GET /workflows",
    "GET /workflows/{name}",
    "GET /workflows/{name}/diagram",
    "GET /inbox",
    "GET /messages",
    "GET /notices",
    "GET /reports",
    "GET /reports/{name}",
    "GET /outbox",
}
#: the counties as test ids spell them (ASCII: pytest escapes anything else)
NAMES = {XC: "Xiangcheng", LW: "Longwen"}

#: the rows whose 2xx answers may name another county's case (public notices)
PUBLIC = {"GET /notices", "GET /notices/{number}", "GET /notices/{number}/html", "GET /notices/{number}/pdf"}


@dataclass
class Request:
    """What one cell sends: where, with what, and which case's version it must leave alone (if any)."""

    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    case: str | None = None  # the case the request is about (its version is compared before/after)
    missing: Callable[[], Request] | None = None  # the same request about a reference that does not exist


class Scene:
    """The module's site: shared cases for reads, and a fresh case for each change cell."""

    def __init__(self, site: Site, api: ApiClient) -> None:
        self.site = site
        self.svc = site.svc
        self.api = api
        self.ids = itertools.count(100)
        # read-only scene: a case in review per county (wu gets a message for each), a published notice each
        self.read = {county: self.case(county, "review") for county in COUNTIES}
        self.published = {county: self.case(county, "publicise") for county in COUNTIES}
        self.notices = {n.scope: n.number for n in self.svc.notices(WORKFLOW)}
        config = NotificationConfig()
        Relay(self.svc.engine, self.svc, default_channels(config), config, clock=site.clock).run_once()
        self.messages = {
            county: next(m.id for m in inbox(self.svc.engine, "wu") if m.case_ref == self.read[county])
            for county in COUNTIES
        }

    def id_number(self, county: str) -> str:
        first = ("350602" if county == XC else "350603") + f"19800101{next(self.ids):03d}"
        return first + check_digit(first)

    def case(self, county: str, state: str) -> str:
        """A new case of ``county`` taken to ``state`` (apply, review, paused, publicise, objected) by the engine."""
        clerk = CLERK[county]
        data = case_data(county=county, id_number=self.id_number(county))
        ref = self.svc.create_case(WORKFLOW, clerk, data).ref
        if state == "apply":
            return ref
        self.svc.fire(ref, "submit", clerk)
        if state == "review":
            return ref
        if state == "paused":
            self.svc.pause(ref, "wu", "缺少收入证明原件")
            return ref
        self.svc.fire(ref, "pass_review", "wu")
        publish_list(self.svc, WORKFLOW, county, by="wu")
        if state == "objected":
            self.svc.add_objection(ref, "wu", "群众反映收入不实", "来访")
        return ref

    def etag(self, ref: str) -> str:
        return f'"{self.svc.get_case(ref).version}"'

    def request(self, row: Row, county: str) -> Request:
        """The request of ``row`` about ``county`` (change cells: on a case made for this cell)."""
        scene = row.scene
        if row.operation == "POST /cases":
            data = case_data(county=county, id_number=self.id_number(county))
            return Request("POST", "/cases", {"workflow": WORKFLOW, "data": data})
        if row.operation == "GET /cases":
            return Request("GET", f"/cases?county={county}")
        if scene == "read a case":
            ref = self.read[county]
            suffix = row.operation.removeprefix("GET /cases/{ref}")
            return self._about(ref, lambda r: Request("GET", f"/cases/{r}{suffix}"))
        if row.operation == "PATCH /cases/{ref}":
            ref = self.case(county, "apply")
            return self._about(ref, lambda r: Request("PATCH", f"/cases/{r}", {"data": {"phone": "13900002222"}}))
        if row.operation == "POST /cases/{ref}/steps/{trigger}":
            trigger = scene.split()[0]
            ref = self.case(county, "apply" if trigger == "submit" else "review")
            return self._about(ref, lambda r: Request("POST", f"/cases/{r}/steps/{trigger}", {"comment": None}))
        if row.operation == "POST /cases/{ref}/pause":
            ref = self.case(county, "review")
            return self._about(ref, lambda r: Request("POST", f"/cases/{r}/pause", {"reason": "缺少户口簿"}))
        if row.operation == "POST /cases/{ref}/resume":
            ref = self.case(county, "paused")
            return self._about(ref, lambda r: Request("POST", f"/cases/{r}/resume", {"comment": "材料已补齐"}))
        if row.operation == "POST /cases/{ref}/objections":
            ref = self.case(county, "publicise")
            body = {"text": "反映其家庭有经营收入", "channel": "电话"}
            return self._about(ref, lambda r: Request("POST", f"/cases/{r}/objections", body))
        if row.operation == "POST /cases/{ref}/objections/{objection}/resolution":
            ref = self.case(county, "objected")
            number = self.svc.objections(ref)[0].id
            body = {"outcome": "dismissed", "comment": "经核实收入属实"}
            return self._about(ref, lambda r: Request("POST", f"/cases/{r}/objections/{number}/resolution", body))
        if row.operation == "POST /steps/{trigger}":
            ref = self.case(county, "apply")
            version = self.svc.get_case(ref).version
            return self._about(
                ref, lambda r: Request("POST", "/steps/submit", {"cases": [{"ref": r, "version": version}]}), etag=False
            )
        if row.operation == "POST /messages/{message}/read":
            return Request("POST", f"/messages/{self.messages[county]}/read")
        if row.operation.startswith("GET /notices/{number}"):
            suffix = row.operation.removeprefix("GET /notices/{number}")
            return Request("GET", f"/notices/{self.notices[county]}{suffix}")
        if row.operation == "POST /notices":
            return Request("POST", "/notices", {"workflow": WORKFLOW, "county": county})
        if row.operation == "GET /workflows/{name}":
            return Request("GET", f"/workflows/{WORKFLOW}")
        if row.operation == "GET /workflows/{name}/diagram":
            return Request("GET", f"/workflows/{WORKFLOW}/diagram?format=mermaid")
        if row.operation == "GET /reports/{name}":
            return Request("GET", "/reports/archives")
        method, path = row.operation.split(" ", 1)
        assert "{" not in path, f"no request written for {row.operation} ({scene})"
        return Request(method, path)

    def _about(self, ref: str, make: Callable[[str], Request], *, etag: bool = True) -> Request:
        """A request about case ``ref``, with its current ETag for a change, and its twin about a missing case."""
        found = make(ref)
        found.case = ref
        if etag and found.method != "GET":
            found.headers["If-Match"] = self.etag(ref)

        def missing() -> Request:
            twin = make(MISSING)
            twin.headers = dict(found.headers)
            return twin

        found.missing = missing
        return found


@pytest.fixture(scope="module")
def scene(web_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One site for the whole matrix (the cells do not disturb each other: see the module's docstring)."""
    path = tmp_path_factory.mktemp("matrix") / "web.db"
    shutil.copy(web_template, path)
    engine = make_engine(f"sqlite:///{path}")
    clock = FixedClock(START)
    svc = light_logins(Casework(engine, clock))
    # the clock stands still, so a rate window never ends: the matrix is not about the rate limit
    app = create_app(svc, WebSettings(api_requests_per_minute=1_000_000))
    site = Site(f"sqlite:///{path}", svc, clock, app)
    tokens = {user: svc.tokens.create(user, "matrix")[0] for user in ROLES}
    tokens["revoked token"] = svc.tokens.create("luo", "matrix-revoked")[0]
    svc.tokens.revoke("luo", "matrix-revoked", by="luo")
    client = ApiClient(site, tokens)
    with client.http:
        yield Scene(site, client)
    engine.dispose()


def _send(scene: Scene, caller: str, request: Request) -> Any:
    user = None if caller == "no token" else caller
    return scene.api.call(request.method, request.path, user, json=request.body, **request.headers)


def _without(ref: str | None, answer: Any) -> str:
    """The answer's body with the reference it names replaced, to compare answers about two references."""
    text = json.dumps(answer.json(), ensure_ascii=False, sort_keys=True)
    return text.replace(ref, "<ref>") if ref else text


CELLS = [
    pytest.param(row, county, role, id=f"{row.operation} [{row.scene}] {NAMES[county]} {role}")
    for row in MATRIX
    for county in ((XC,) if row.operation in NO_COUNTY else COUNTIES)
    for role in ROLES
]


@pytest.mark.parametrize(("row", "county", "role"), CELLS)
def test_cell(scene: Scene, row: Row, county: str, role: str) -> None:
    expected = row.expected(county, role)
    request = scene.request(row, county)
    before = scene.svc.get_case(request.case).version if request.case else None
    trail = len(scene.svc.history(request.case)) if request.case else None
    answer = _send(scene, role, request)
    status = answer.status_code
    if row.operation == "POST /steps/{trigger}":
        assert status == 200, answer.text
        report = answer.json()
        refused = {r["ref"]: r for r in report["refused"]}
        if request.case in report["fired"]:
            outcome = "fired"
        else:
            outcome = "hidden" if refused[request.case]["code"] == "case_not_found" else "refused"
        assert outcome == expected, answer.text
        if outcome == "hidden":
            assert request.missing is not None and request.case is not None
            twin = _send(scene, role, request.missing()).json()["refused"][0]
            assert json.dumps(refused[request.case]).replace(request.case, "<ref>") == json.dumps(twin).replace(
                MISSING, "<ref>"
            )
    elif expected == "ok":
        assert 200 <= status < 300, answer.text
    else:
        assert status == int(expected), answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    if expected == "404" and request.missing is not None:
        # another county's case answers word for word as a case that does not exist
        twin = _send(scene, role, request.missing())
        assert twin.status_code == 404
        assert _without(request.case, answer) == _without(MISSING, twin)
    if request.case is not None and expected not in ("ok", "fired"):
        # a refusal changes nothing
        assert scene.svc.get_case(request.case).version == before
        assert len(scene.svc.history(request.case)) == trail
    elif request.case is not None and request.method != "GET":
        assert scene.svc.get_case(request.case).version > before  # type: ignore[operator]
    if 200 <= status < 300 and row.operation not in PUBLIC and role in ("lin", "chen"):
        # nothing of the county the caller does not cover leaks into an answer
        other = LW if role == "lin" else XC
        assert scene.read[other] not in answer.text and scene.published[other] not in answer.text


@pytest.mark.parametrize("caller", NO_KEY)
@pytest.mark.parametrize("row", [pytest.param(r, id=f"{r.operation} [{r.scene}]") for r in MATRIX])
def test_without_a_valid_token_every_operation_is_401(scene: Scene, row: Row, caller: str) -> None:
    request = scene.request(row, XC)
    before = scene.svc.get_case(request.case).version if request.case else None
    answer = _send(scene, caller, request)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "token_invalid"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    if request.case is not None:
        assert scene.svc.get_case(request.case).version == before


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_the_document_and_its_page_need_no_token(scene: Scene, path: str) -> None:
    assert scene.api.call("GET", path, None).status_code == 200


def test_the_matrix_has_a_row_for_every_operation_of_the_document(scene: Scene) -> None:
    document = scene.api.call("GET", "/openapi.json", None).json()
    operations = {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}
    assert operations == {r.operation for r in MATRIX}, "add a row to MATRIX for each new operation"


def test_a_stale_version_is_412_before_the_role_is_checked(scene: Scene) -> None:
    # wu may not submit (a clerk's step); sent with a version the case is not at, the answer is 412, not 403:
    # the engine pins the version before it checks the role. It tells wu nothing new: the version is on
    # every read of the case, which wu (covering the county) may make; the fresh retry is then 403.
    ref = scene.case(XC, "apply")
    stale = scene.api.call("POST", f"/cases/{ref}/steps/submit", "wu", json={}, If_Match='"99"')
    assert stale.status_code == 412, stale.text
    assert stale.json()["facts"]["found_version"] == 1
    fresh = scene.api.call("POST", f"/cases/{ref}/steps/submit", "wu", json={}, If_Match=scene.etag(ref))
    assert fresh.status_code == 403, fresh.text
    # for someone outside the county the scope comes first: 404 whatever the version
    hidden = scene.api.call("POST", f"/cases/{ref}/steps/submit", "chen", json={}, If_Match='"99"')
    assert hidden.status_code == 404, hidden.text
    assert scene.svc.get_case(ref).version == 1
