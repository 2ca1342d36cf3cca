"""The web application: :func:`create_app` builds it on an engine service; ``casework serve`` runs it.

Pages are server-rendered Jinja2 (``templates/``) with htmx for partial
updates; every asset is in ``static/`` (nothing is fetched from the
internet). Each request reads its session from the database
(:mod:`casework.web.auth`), so any number of workers and hosts can share one
PostgreSQL database. No rule lives here: every page asks the engine, and a
refusal comes back as a code and facts that :mod:`casework.web.wording` words
in Chinese.
"""

from __future__ import annotations

import logging
import os
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from casework.api import PREFIX as API_PREFIX, create_api
from casework.web import auth
from casework.web.errors import CsrfRejected, NotLoggedIn
from casework.web.limits import BodyLimit
from casework.web.pages import admin, cases, inbox, newcase, notices, reports
from casework.web.render import page
from casework.web.settings import WebSettings
from casework.web.timing import SecurityHeaders
from casework.web.wording import word
from engine import Casework, CaseworkError, NotFound, RefusedError

__all__ = ["app_from_env", "create_app"]

logger = logging.getLogger("casework.web")


_HTTP_WORDS = {
    405: "此地址只接受表单提交，不能直接打开。请回到上一页重新操作，未作任何更改。",
    413: "提交的内容太大，未作任何更改。",
}


def create_app(service: Casework, settings: WebSettings | None = None) -> FastAPI:
    """The web application on ``service`` (one per process; it holds no state of its own but the engine)."""
    app = FastAPI(title="casework", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.settings = settings or WebSettings()
    # the body limit runs inside the headers, so a 413 carries them too
    app.add_middleware(BodyLimit, max_bytes=app.state.settings.max_upload_bytes + 100_000, skip=(API_PREFIX + "/",))
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(packages=[("casework.web", "static")]), name="static")
    # the HTTP API: its own application (bearer tokens, JSON problems, its own OpenAPI document)
    api = Mount(API_PREFIX, app=create_api(service, app.state.settings), name="api")
    # Starlette matches a mount with `^/api/v1/(?P<path>.*)$`, whose `.` stops at a line feed: a path holding
    # an encoded %0A would fall through to the pages' HTML 404. Every /api/v1/ path belongs to the API.
    api.path_regex = re.compile(api.path_regex.pattern, re.DOTALL)
    app.router.routes.append(api)
    for module in (auth, inbox, cases, newcase, notices, reports, admin):
        app.include_router(module.router)

    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn) -> Response:
        return auth.login_redirect(request)

    @app.exception_handler(CsrfRejected)
    async def csrf_rejected(request: Request, exc: CsrfRejected) -> Response:
        message = "表单已失效或来源不明（缺少有效的表单令牌），未作任何更改。请刷新页面后重新提交。"
        return page(request, "error.html", {"heading": "请求被拒绝", "message": message}, status=403)

    @app.exception_handler(CaseworkError)
    async def refused(request: Request, exc: CaseworkError) -> Response:
        # the pages catch the refusals they expect and show them in place; this is the fallback
        status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, RefusedError) else 400
        heading = "未找到" if status == 404 else "操作未完成"
        return page(request, "error.html", {"heading": heading, "message": word(exc)}, status=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return page(
                request, "error.html", {"heading": "未找到", "message": "没有这个页面，或您无权查看。"}, status=404
            )
        # the pages' own HTTPExceptions carry Chinese text; Starlette's (405, 400 …) carry English: worded here
        message = _HTTP_WORDS.get(exc.status_code) or (
            str(exc.detail) if exc.detail and not str(exc.detail).isascii() else "请求无法处理，未作任何更改。"
        )
        return page(request, "error.html", {"heading": "请求无法处理", "message": message}, status=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        message = "请求的参数不正确（例如页码应为正整数），未作任何更改。"
        return page(request, "error.html", {"heading": "请求无法处理", "message": message}, status=422)

    return app


def app_from_env() -> FastAPI:
    """The application for a uvicorn worker process: the database of ``CASEWORK_DB``, settings of ``CASEWORK_WEB_*``."""
    from db import make_engine
    from db.connect import resolve_url

    url = resolve_url(os.environ.get("CASEWORK_DB"))
    return create_app(Casework(make_engine(url)))
