"""Who is asking: the session cookie, the form token (CSRF), and the login, logout and password pages.

Every page depends on :func:`current_viewer` (no live session: to the login
form); every POST on :func:`checked_form`, which refuses a form without the
session's token before anything is read or done. The rules themselves
(Argon2id, lockout, idle timeout, rotation) are the engine's
(:mod:`engine.logins`); this module only carries them over HTTP.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from casework.web.errors import CsrfRejected, NotLoggedIn
from casework.web.render import page
from casework.web.settings import WebSettings
from casework.web.wording import word
from engine import Casework, CaseworkError, Code
from engine.logins import SessionView

__all__ = ["Viewer", "checked_form", "client_address", "current_viewer", "router", "safe_next", "service"]

router = APIRouter(include_in_schema=False)

LOGIN_COOKIE = "casework_login"


def service(request: Request) -> Casework:
    """The engine this application serves."""
    svc: Casework = request.app.state.service
    return svc


def settings(request: Request) -> WebSettings:
    """The application's settings."""
    value: WebSettings = request.app.state.settings
    return value


def client_address(request: Request) -> str:
    """The client's address (behind a proxy, as uvicorn's ``--forwarded-allow-ips`` makes it)."""
    return request.client.host if request.client else "unknown"


def current_viewer(request: Request) -> SessionView:
    """The live session of the request's cookie; :class:`NotLoggedIn` when there is none."""
    token = request.cookies.get(settings(request).cookie_name)
    viewer = service(request).logins.session(token)
    if viewer is None:
        raise NotLoggedIn()
    request.state.viewer = viewer
    return viewer


Viewer = Annotated[SessionView, Depends(current_viewer)]


async def checked_form(request: Request, viewer: Viewer) -> FormData:
    """The posted form, once its ``csrf_token`` field (or ``X-CSRF-Token`` header) is the session's."""
    form = await request.form(max_part_size=settings(request).max_upload_bytes)
    given = form.get("csrf_token") or request.headers.get("x-csrf-token") or ""
    if not isinstance(given, str) or not secrets.compare_digest(given.encode(), viewer.csrf.encode()):
        raise CsrfRejected()
    return form


Form = Annotated[FormData, Depends(checked_form)]


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, *, error: str | None = None, username: str = "", status: int = 200, target: str | None = None
) -> Response:
    token = secrets.token_urlsafe(32)
    target = safe_next(target if target is not None else request.query_params.get("next"))
    response = page(
        request, "login.html", {"csrf": token, "error": error, "username": username, "next": target}, status=status
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings(request).secure_cookies, path="/login"
    )
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    """The login form (with a fresh form token in a cookie and a hidden field: double submit)."""
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the password; on success a new session (the old cookie's session ends) and a redirect."""
    form = await request.form(max_part_size=10_000)
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    given = str(form.get("csrf_token") or "")
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected()
    cfg = settings(request)
    svc = service(request)
    from starlette.concurrency import run_in_threadpool

    try:
        token, _session = await run_in_threadpool(
            svc.logins.login, username, password, client_address(request), replaces=request.cookies.get(cfg.cookie_name)
        )
    except CaseworkError as exc:
        locked = exc.code == Code.LOGIN_LOCKED
        # a failed attempt keeps where the user was going
        response = _login_page(
            request,
            error=word(exc),
            username=username,
            status=429 if locked else 401,
            target=str(form.get("next") or "/"),
        )
        if locked:
            response.headers["Retry-After"] = str(exc.facts.get("retry_after", 60))
        return response
    target = safe_next(str(form.get("next") or "/"))
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cfg.cookie_name,
        token,
        httponly=True,
        samesite="lax",
        secure=cfg.secure_cookies,
        path="/",
        max_age=int(svc.logins.policy.session_lifetime.total_seconds()),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, viewer: Viewer, form: Form) -> Response:
    """End this session and go back to the login form."""
    del viewer, form
    cfg = settings(request)
    service(request).logins.logout(request.cookies.get(cfg.cookie_name))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(cfg.cookie_name, path="/")
    return response


@router.get("/account")
def account(request: Request, viewer: Viewer) -> Response:
    """My account: who I am, my roles and scopes, and the form to change my password."""
    return page(request, "account.html", {"done": request.query_params.get("done") == "1", "error": None})


@router.post("/account/password")
def change_password(request: Request, viewer: Viewer, form: Form) -> Response:
    """Change my own password (the old one first); my other sessions end."""
    old = str(form.get("old_password") or "")
    new = str(form.get("new_password") or "")
    again = str(form.get("new_password_again") or "")
    if new != again:
        return page(
            request, "account.html", {"done": False, "error": "两次输入的新密码不一致，密码未修改。"}, status=422
        )
    try:
        service(request).logins.change_password(viewer, old, new)
    except CaseworkError as exc:
        return page(request, "account.html", {"done": False, "error": word(exc)}, status=422)
    return RedirectResponse("/account?done=1", status_code=303)


def login_redirect(request: Request) -> Response:
    """Where a request without a session goes: the login form, then back (htmx: a full redirect)."""
    target = "/login"
    if request.method == "GET" and request.url.path not in ("/", "/login"):
        target += "?next=" + quote(request.url.path, safe="/")
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
