"""The HTTP API at ``/api/v1``: its own FastAPI application, mounted in the web application's server.

JSON in and out, described by the OpenAPI document at ``/api/v1/openapi.json``
and shown at ``/api/v1/docs``; bearer tokens only (:mod:`casework.api.deps`);
every refusal an RFC 9457 problem (:mod:`casework.api.problems`). Like the
pages, it holds no rule: each operation is one engine call.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casework.api.deps import named_version
from casework.api.problems import FieldError, Problem, problem, problem_response
from casework.api.routes import bulk, cases, inbox, notices, reports, workflows
from casework.web.limits import TOO_LARGE, BodyLimit
from casework.web.settings import WebSettings
from engine import Casework, CaseworkError, Code
from engine.tokens import TokenPolicy

__all__ = ["PREFIX", "create_api"]

logger = logging.getLogger("casework.api")

#: where the API is mounted (its OpenAPI document's server)
PREFIX = "/api/v1"

_DESCRIPTION = """\
The casework engine over HTTP, for other systems: open cases, read them, take steps, follow
deadlines and publicity — under the same rules as the command line and the web pages.

* **Authentication:** `Authorization: Bearer <token>`; an operator makes a token with
  `casework token create USER --name NAME` (it acts as that user, with at most their roles and
  counties). Cookies are not read here.
* **Concurrency:** a case's `ETag` is its version; every change sends it in `If-Match`
  (412 if the case has moved on, 428 without it).
* **Retries:** opening a case and taking a step take an `Idempotency-Key`: the same key and request
  again is answered with the same case and changes nothing.
* **Refusals:** `application/problem+json` (RFC 9457) with the engine's `code` and `facts`; 422 lists
  `errors` per field. Nothing is changed by a refused request.
* **Rate limit:** per token; a 429 says in `Retry-After` when to retry.
"""


def create_api(service: Casework, settings: WebSettings | None = None) -> FastAPI:
    """The API application on ``service`` (mount it at :data:`PREFIX`)."""
    settings = settings or WebSettings()
    api = FastAPI(
        title="casework API",
        version="1",
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        servers=[{"url": PREFIX}],
        # /cases/ is not /cases: a 404 problem, not a bare redirect
        redirect_slashes=False,
    )
    api.state.service = service
    api.state.settings = settings
    api.state.tokens = service.tokens_with(TokenPolicy(requests_per_window=settings.api_requests_per_minute))
    for module in (cases, bulk, workflows, inbox, notices, reports):
        api.include_router(module.router)
    # JSON bodies are small: a larger one is refused before it is read, as a problem
    api.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes, respond=_too_large)
    api.add_middleware(_Failures)
    # Swagger UI 5 (OpenAPI 3.1), as the fastapi-offline package ships it: nothing is fetched from a CDN
    api.mount("/docs/assets", StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    _handlers(api)

    @api.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE, headers={"Content-Security-Policy": _DOCS_CSP})

    @api.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        script = (
            'window.ui = SwaggerUIBundle({url: "' + PREFIX + '/openapi.json", dom_id: "#swagger-ui", '
            'deepLinking: true, presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout"});\n'
        )
        return Response(script, media_type="text/javascript")

    api.openapi = lambda: _openapi(api)  # type: ignore[method-assign]
    return api


_DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

_DOCS_PAGE = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>casework API 接口文档</title>
<link rel="icon" href="{PREFIX}/docs/assets/favicon.png">
<link rel="stylesheet" href="{PREFIX}/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{PREFIX}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{PREFIX}/docs/init.js"></script></body></html>
"""


def _bad_request(
    status: int, title: str, detail: str, facts: dict[str, Any], errors: list[FieldError] | None = None
) -> Response:
    """An ``invalid_input`` problem about the request itself (its size, a parameter, a header, the body)."""
    doc = Problem(
        type=f"urn:casework:problem:{Code.INVALID_INPUT}",
        title=title,
        status=status,
        detail=f"{detail}; nothing was done",
        code=str(Code.INVALID_INPUT),
        facts=facts,
        errors=errors,
    )
    return problem_response(doc)


def _too_large(limit: int) -> Response:
    detail = f"the request body is larger than {limit} bytes"
    return _bad_request(413, "request too large", detail, {"option": "body", "limit": limit})


def _not_as_described(errors: list[FieldError], detail: str) -> Response:
    """A 422: the request is not as the document describes it, one error per field."""
    return _bad_request(422, "invalid input", detail, {"fields": [e.field for e in errors]}, errors)


def _handlers(api: FastAPI) -> None:
    @api.exception_handler(CaseworkError)
    async def refused(request: Request, exc: CaseworkError) -> Response:
        doc = problem(exc, precondition=named_version(request.headers.get("if-match")) is not None)
        headers = {}
        if doc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="casework"'
        if exc.code is Code.RATE_LIMITED:
            headers["Retry-After"] = str(exc.facts.get("retry_after", 60))
        return problem_response(doc, headers)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            FieldError(
                field=".".join(str(p) for p in e.get("loc", ())), message=str(e.get("msg", "")), kind=e.get("type")
            )
            for e in exc.errors()
        ]
        fields = ", ".join(e.field for e in errors)
        return _not_as_described(errors, f"the request is not as the API describes it ({fields})")

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 400 and request.scope.get(TOO_LARGE):
            # a chunked body cut off at the limit: FastAPI caught the cut and answered 400
            return _too_large(request.scope[TOO_LARGE])
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8): as any other body not as described
            body = FieldError(field="body", message="not JSON in UTF-8", kind="json_invalid")
            return _not_as_described([body], "the request body is not JSON in UTF-8")
        what = {404: "there is no such address in the API", 405: "this address does not take that method"}
        doc = Problem(
            type="about:blank",
            title=str(exc.detail) if exc.detail else "error",
            status=exc.status_code,
            detail=what.get(exc.status_code, str(exc.detail)) + f" ({request.method} {request.url.path})",
            code="not_found" if exc.status_code == 404 else "http_error",
        )
        return problem_response(doc, dict(exc.headers or {}))


class _Failures:
    """An unexpected exception: logged once, answered as a 500 problem (not re-raised to the server's log too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if started:
                raise
            logger.exception("API request failed: %s %s", scope.get("method"), scope.get("path"))
            doc = Problem(
                type="about:blank",
                title="internal error",
                status=500,
                detail="the server failed while answering; if it was a change, read the case again before retrying",
                code="internal_error",
            )
            await problem_response(doc)(scope, receive, send)


def _link(operation: str, *, step: bool = False, version: bool = False) -> dict[str, Any]:
    """A link from an answer holding a case to ``operation`` on that case (``step``: its first action's trigger;
    ``version``: its ETag as If-Match)."""
    parameters = {"ref": "$response.body#/ref"}
    if step:
        parameters["trigger"] = "$response.body#/actions/0/trigger"
    if version:
        parameters["header.If-Match"] = "$response.header.ETag"
    return {"operationId": operation, "parameters": parameters}


_STEP = "take_step_cases__ref__steps__trigger__post"
_HISTORY = "history_cases__ref__history_get"

# (operation, status) -> links the fuzzer and clients follow from its answer
_LINKS: dict[tuple[str, str], dict[str, Any]] = {
    ("open_case_cases_post", "201"): {
        "ReadCase": _link("show_case_cases__ref__get"),
        "TakeStep": _link(_STEP, step=True, version=True),
        "History": _link(_HISTORY),
        "ChangeCase": _link("change_case_cases__ref__patch", version=True),
    },
    (_STEP, "200"): {"NextStep": _link(_STEP, step=True, version=True), "History": _link(_HISTORY)},
    ("show_case_cases__ref__get", "200"): {
        "TakeStep": _link(_STEP, step=True, version=True),
        "Pause": _link("pause_cases__ref__pause_post", version=True),
    },
}


def _openapi(api: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with problems as ``application/problem+json``, the token required everywhere,
    ``ETag`` on case answers, and the links from a case to what can be done with it next."""
    if api.openapi_schema:
        return api.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(
        title=api.title, version=api.version, description=api.description, routes=api.routes, servers=api.servers
    )
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            answers = operation.get("responses", {})
            for status, answer in answers.items():
                content = answer.get("content", {})
                if status >= "400" and "application/json" in content:
                    answer["content"] = {"application/problem+json": content.pop("application/json")}
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref", "").endswith("/CaseView"):
                    answer.setdefault("headers", {})["ETag"] = {
                        "description": "The case's version, for If-Match.",
                        "schema": {"type": "string"},
                    }
                links = _LINKS.get((operation.get("operationId", ""), status))
                if links:
                    answer["links"] = links
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "If-Match":
                    # the server answers 428 without it: required (declared optional only so that the answer
                    # is that 428, not FastAPI's 422)
                    parameter["required"] = True
            # FastAPI's own 422 answer points at its HTTPValidationError: ours is a Problem
            if "422" in answers:
                answers["422"] = {
                    "description": "A parameter or the body is not as described (`errors`, per field).",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    api.openapi_schema = doc
    return doc
