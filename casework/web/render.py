"""Rendering pages: one autoescaping Jinja2 environment over the package's templates.

Every page gets ``viewer`` (the session), ``csrf`` (its form token), ``unread``
(the viewer's unread in-app messages, shown in the header of every page) and
``nav`` (the menu the viewer's roles open). Labels come from the workflows'
YAML; the fixed words of the interface are in the templates, in Chinese.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from engine.logins import SessionView

__all__ = ["SHANGHAI", "env", "local", "page", "partial"]

SHANGHAI = ZoneInfo("Asia/Shanghai")

env = Environment(
    loader=PackageLoader("casework.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def local(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as an office in China reads it (Asia/Shanghai); '' for None."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(SHANGHAI).strftime(fmt)


env.filters["local"] = local
env.filters["day"] = lambda value: local(value, "%Y-%m-%d") if isinstance(value, dt.datetime) else (value or "")


# menu entries: (path, label, roles that see it; empty = everyone)
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/", "我的待办", frozenset()),
    ("/cases/new", "新建案件", frozenset()),
    ("/notices", "公示", frozenset()),
    ("/reports", "统计报表", frozenset()),
    ("/admin/workflows", "流程管理", frozenset({"supervisor"})),
    ("/admin/users", "用户管理", frozenset({"supervisor"})),
    ("/admin/access-log", "访问日志", frozenset({"supervisor"})),
)


def _nav(viewer: SessionView | None) -> list[tuple[str, str]]:
    if viewer is None:
        return []
    roles = set(viewer.roles)
    return [(path, label) for path, label, needs in NAV if not needs or roles & needs]


def _context(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    viewer: SessionView | None = getattr(request.state, "viewer", None)
    unread = 0
    if viewer is not None:
        from notifications import unread_count

        unread = unread_count(request.app.state.service.engine, viewer.username)
    return {
        "request": request,
        "viewer": viewer,
        "csrf": viewer.csrf if viewer is not None else context.get("csrf", ""),
        "unread": unread,
        "nav": _nav(viewer),
        "path": request.url.path,
        **context,
    }


def page(request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200) -> HTMLResponse:
    """A whole page (extending ``base.html``)."""
    html = env.get_template(template).render(_context(request, dict(context or {})))
    return HTMLResponse(html, status_code=status)


def partial(
    request: Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HTMLResponse:
    """A fragment for an htmx swap (no header, no unread count)."""
    ctx = {"request": request, "viewer": getattr(request.state, "viewer", None), **(context or {})}
    ctx.setdefault("csrf", ctx["viewer"].csrf if ctx["viewer"] is not None else "")
    return HTMLResponse(env.get_template(template).render(ctx), status_code=status)
