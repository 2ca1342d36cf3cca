"""The supervisor's pages: workflows and their versions, diagrams, the YAML editor, users, the access log.

Every ``/admin`` route depends on :func:`supervisor` (the role ``supervisor``,
checked on the server for each request; anyone else gets 403). The rules stay
the engine's: loading a version (:meth:`engine.Casework.load_workflow`, with
its refusals: a version that exists with other content, weakened controls),
checking a definition (:func:`engine.load_definition`, every problem located),
users and passwords, the migration dry run. The diagram route
(``/workflows/{name}/v{version}/diagram.svg``) is open to every logged-in
user: the case page shows it too.

The editor cannot upload template files. A new version of a workflow that is
already stored keeps the templates of its latest stored version (they are
stored with each version); a workflow that is new to the database and names
templates gets the engine's "template missing" problems, and the page says to
load it with ``casework workflow load``, which reads the templates beside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response

from casework.web import diagram
from casework.web.auth import Form, Viewer, service, settings
from casework.web.render import page, partial
from casework.web.wording import word
from engine import CaseworkError, Code, DefinitionError, NotFound, load_definition
from engine.definition import WorkflowDef
from engine.definition.loader import Limits, ParseFailed, parse_yaml
from engine.logins import SessionView
from engine.users import ADMIN_ROLE

__all__ = ["ACTIONS", "router", "supervisor"]

router = APIRouter(include_in_schema=False)

#: the role that opens these pages
SUPERVISOR = ADMIN_ROLE  # the engine checks it again on every change these pages make
#: access-log entries per page
LOG_PAGE = 50
#: the furthest page of the access log (the log is read newest first, up to this many pages' worth)
MAX_LOG_PAGE = 200
#: the file name problems in the editor's text are located in
EDITOR_FILE = "编辑器"

#: access-log actions, in Chinese (an action not listed shows under its own name)
ACTIONS: dict[str, str] = {
    "login": "登录",
    "login_failed": "登录失败",
    "logout": "退出登录",
    "change_password": "修改本人密码",
    "set_password": "设置/重设密码",
    "add_user": "添加用户",
    "edit_user": "修改用户",
    "disable_user": "停用用户",
    "enable_user": "启用用户",
    "read_case": "查看案件",
    "inbox_cases": "查看待办",
    "list_cases": "列出案件",
    "search_cases": "搜索案件",
    "export_cases": "导出案件",
    "create_token": "创建接口令牌",
    "revoke_token": "吊销接口令牌",
    "api": "接口请求",
    "api_limited": "接口请求（超出频率限制）",
    "api_refused": "接口请求（令牌已吊销、过期或用户已停用）",
}

#: what a weakened control's kind means (the token is ``KIND:NAME``, engine.definition.weakening)
_WEAKENED_KINDS = {
    "not_by": "双人审核规定（不得由办理上一步骤的同一人办理）",
    "comment": "必须填写意见",
    "when": "办理条件（when）",
    "unless": "暂缓条件（unless）",
    "pii": "个人信息遮蔽",
    "privacy": "公示中不显示身份证号码",
}

_DONE = {
    "added": "已添加用户。用户设置密码（或由您重设密码）后即可登录。",
    "edited": "已保存该用户的角色和负责范围。",
    "disabled": "已停用该用户：其所有登录已立即结束，不能再登录或办理。",
    "enabled": "已重新启用该用户。",
    "password": "已重设该用户的密码：其原有登录已全部结束，请将新密码告知本人。",
    "unchanged": "没有需要更改的内容。",
}

_USER_FIELDS = {"username": "用户名", "name": "姓名", "role": "角色", "scope": "负责范围", "email": "电子邮箱"}
_SPLIT = re.compile(r"[\s,，、;；]+")


def supervisor(viewer: Viewer) -> SessionView:
    """The viewer, if they hold the supervisor role; 403 with a Chinese message otherwise."""
    if SUPERVISOR not in viewer.roles:
        raise HTTPException(403, "此页面仅限县级工会负责人（supervisor 角色）使用，您的账号没有该角色。")
    return viewer


Supervisor = Annotated[SessionView, Depends(supervisor)]


# ------------------------------------------------------------------ diagram (any logged-in user)


@router.get("/workflows/{name}/v{version}/diagram.svg")
def diagram_svg(request: Request, viewer: Viewer, name: str, version: int) -> Response:
    """The version's diagram as SVG (``?current=STATE`` highlights a state); 503 when ``dot`` is missing."""
    wf = service(request).workflow(name, version)  # WorkflowNotFound → 404
    current = request.query_params.get("current") or None
    if current is not None and current not in wf.states:
        raise HTTPException(404)
    try:
        body = diagram.svg(wf, current, settings(request).dot)
    except diagram.DiagramUnavailable as exc:
        return Response(
            str(exc) + "\n\n" + diagram.mermaid_text(wf) + "\n",
            status_code=503,
            media_type="text/plain; charset=utf-8",
            headers={"retry-after": "3600"},
        )
    return Response(
        body,
        media_type="image/svg+xml",
        headers={
            # a drawing of a stored version holds no personal data and never changes
            "cache-control": "private, max-age=86400",
            # opened on its own, the SVG may run nothing and fetch nothing
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
        },
    )


def _figure(request: Request, wf: WorkflowDef, current: str | None = None) -> dict[str, Any]:
    """What a page shows for the diagram: the ``<img>`` URL, or (no ``dot``) the Mermaid text."""
    src = f"/workflows/{wf.name}/v{wf.version}/diagram.svg" + (f"?current={current}" if current else "")
    if diagram.dot_available(settings(request).dot):
        return {"src": src, "mermaid": None}
    return {"src": None, "mermaid": diagram.mermaid_text(wf)}


# ------------------------------------------------------------------ workflows


@router.get("/admin/workflows")
def workflows(request: Request, viewer: Supervisor) -> Response:
    """Every workflow and every stored version of it."""
    svc = service(request)
    names = [wf.name for wf in svc.latest_workflows()]
    histories = [(name, list(reversed(svc.workflow_history(name)))) for name in names]
    return page(request, "admin_workflows.html", {"histories": histories})


@router.get("/admin/workflows/{name}")
def workflow_page(request: Request, viewer: Supervisor, name: str) -> Response:
    """One workflow: its versions (newest first) and the latest version's diagram."""
    svc = service(request)
    history = list(reversed(svc.workflow_history(name)))  # WorkflowNotFound → 404
    shown = request.query_params.get("version")
    version = int(shown) if shown and shown.isdigit() else history[0].version
    wf = svc.workflow(name, version)
    context = {
        "name": name,
        "history": history,
        "wf": wf,
        "figure": _figure(request, wf),
        "loaded": request.query_params.get("loaded") == "1",
    }
    return page(request, "admin_workflow.html", context)


@router.get("/admin/workflows/{name}/migrate")
def migrate_preview(request: Request, viewer: Supervisor, name: str) -> Response:
    """The migration dry run: which cases on older versions would move to version ``to``, and which stay and why.

    Nothing is moved here (there is no apply button): a move is an operator's
    ``casework workflow migrate``.
    """
    svc = service(request)
    history = list(reversed(svc.workflow_history(name)))
    given = request.query_params.get("to") or ""
    to = int(given) if given.isdigit() else history[0].version
    context: dict[str, Any] = {"name": name, "history": history, "to": to, "report": None, "error": None}
    try:
        context["report"] = svc.migrate(name, to, dry_run=True)
    except NotFound:
        raise
    except CaseworkError as exc:
        context["error"] = _migration_refusal(exc)
        return page(request, "admin_migrate.html", context, status=422)
    return page(request, "admin_migrate.html", context)


def _migration_refusal(exc: CaseworkError) -> str:
    if exc.code == Code.VERSION_NOT_NEWER:
        return f"没有比第 {exc.facts.get('version', '')} 版更早的版本，没有案件可以迁移到该版本。请选择更新的版本。"
    return word(exc)


# ------------------------------------------------------------------ the YAML editor


def _stored_templates(request: Request, source: str) -> tuple[str | None, int | None, dict[str, str] | None]:
    """(the workflow the text names, its latest stored version, that version's templates) — Nones when new."""
    try:
        tree = parse_yaml(source, EDITOR_FILE)
    except ParseFailed:
        return None, None, None  # load_definition reports it, located
    name = tree.get("workflow") if isinstance(tree, Mapping) else None
    if not isinstance(name, str) or not name:
        return None, None, None
    try:
        latest = service(request).workflow(name)
    except NotFound:
        return name, None, None
    return name, latest.version, dict(latest.templates.sources)


def _check(request: Request, source: str) -> tuple[WorkflowDef | None, list[dict[str, Any]], dict[str, Any]]:
    """(the definition or None, its located problems, what the page says about templates)."""
    name, latest, templates = _stored_templates(request, source)
    about = {"workflow": name, "latest": latest, "templates": sorted(templates or ())}
    try:
        wf = load_definition(
            source,
            EDITOR_FILE,
            templates,
            f"{name} 第 {latest} 版已存储的模板" if latest is not None else "templates",
        )
    except DefinitionError as exc:
        problems = [
            {"file": p.file, "line": p.line, "column": p.column, "message": p.message, "here": p.file == EDITOR_FILE}
            for p in exc.problems
        ]
        return None, problems, about
    return wf, [], about


def _editor(
    request: Request,
    source: str,
    *,
    status: int = 200,
    problems: list[dict[str, Any]] | None = None,
    about: Mapping[str, Any] | None = None,
    wf: WorkflowDef | None = None,
    refusal: str | None = None,
    weakened: list[tuple[str, str]] | None = None,
    done: str | None = None,
) -> Response:
    context = {
        "source": source,
        "problems": problems or [],
        "about": about or {"workflow": None, "latest": None, "templates": []},
        "wf": wf,
        "refusal": refusal,
        "weakened": weakened or [],
        "done": done,
        "max_bytes": Limits.max_bytes,
        "workflows": [wf.name for wf in service(request).latest_workflows()],
    }
    return page(request, "admin_editor.html", context, status=status)


@router.get("/admin/editor")
def editor(request: Request, viewer: Supervisor) -> Response:
    """The YAML editor; ``?workflow=NAME`` starts from that workflow's latest stored source."""
    name = request.query_params.get("workflow")
    source = ""
    if name:
        source = service(request).workflow(name).source  # WorkflowNotFound → 404
    return _editor(request, source)


def _source(form: Any) -> str:
    value = form.get("source")
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


@router.post("/admin/editor/validate")
def validate(request: Request, viewer: Supervisor, form: Form) -> Response:
    """The editor's check as one types (htmx): the located problems, or that the text is a valid workflow."""
    wf, problems, about = _check(request, _source(form))
    return partial(request, "admin_problems.html", {"problems": problems, "wf": wf, "about": about})


def _weakened_words(tokens: list[str], wf: WorkflowDef) -> list[tuple[str, str]]:
    """Each weakened control (``not_by:grant``) with what it is, in Chinese, for the acceptance checkboxes."""
    out = []
    for token in tokens:
        kind, _, name = token.partition(":")
        what = _WEAKENED_KINDS.get(kind, kind)
        step = wf.transitions.get(name)
        field = wf.fields.get(name)
        label = step.label if step is not None else field.label if field is not None else name
        out.append((token, f"{label}：{what}"))
    return out


@router.post("/admin/editor/load")
def load(request: Request, viewer: Supervisor, form: Form) -> Response:
    """Load the editor's text as a new version (``loaded_by`` the supervisor); refusals shown with their facts."""
    source = _source(form)
    wf, problems, about = _check(request, source)
    if wf is None:
        return _editor(request, source, status=422, problems=problems, about=about)
    accepted = [str(v) for v in form.getlist("accept_weaker") if str(v).strip()]
    try:
        info, new = service(request).load_workflow(wf, by=viewer.username, accept_weaker=accepted)
    except CaseworkError as exc:
        facts = exc.facts
        weakened: list[tuple[str, str]] = []
        if exc.code == Code.WEAKENED_CONTROLS:
            weakened = _weakened_words(list(facts.get("weakened", [])), wf)
            refusal = (
                f"{wf.name} 第 {facts.get('version')} 版放宽了第 {facts.get('previous_version')} 版的 "
                f"{len(weakened)} 项控制，未加载。如确需放宽，请逐项勾选确认后再点“加载新版本”；确认记录随版本保存。"
            )
        elif exc.code == Code.VERSION_EXISTS:
            refusal = (
                f"{wf.name} 第 {facts.get('version')} 版已经加载过，且内容不同，未加载。在办案件仍按原版本办理；"
                f"请把 version 改为 {facts.get('next_version')} 后再加载。"
            )
        elif exc.code == Code.INVALID_INPUT and facts.get("option") == "accept_weaker":
            refusal = f"勾选的 {facts.get('value')} 并未被本版本放宽，未加载。请只勾选本版本实际放宽的控制。"
        else:
            refusal = word(exc)
        status = 409 if exc.code in (Code.WEAKENED_CONTROLS, Code.VERSION_EXISTS) else 422
        return _editor(request, source, status=status, about=about, wf=wf, refusal=refusal, weakened=weakened)
    if not new:
        done = f"{info.name} 第 {info.version} 版已存在，内容相同，未作更改。"
        return _editor(request, source, about=about, wf=wf, done=done)
    return RedirectResponse(f"/admin/workflows/{info.name}?loaded=1", status_code=303)


# ------------------------------------------------------------------ users


def _has_password(request: Request, usernames: list[str]) -> dict[str, bool]:
    """Which users have a password set (the hash itself is never read out of engine.logins' store)."""
    having = service(request).logins.with_password()
    return {u: u in having for u in usernames}


def _users_page(request: Request, *, status: int = 200, error: str | None = None, **kept: Any) -> Response:
    svc = service(request)
    people = svc.users()
    done = _DONE.get(request.query_params.get("done") or "") if status == 200 else None
    context = {
        "people": people,
        "passwords": _has_password(request, [u.username for u in people]),
        "roles": sorted(svc.known_roles()),
        "role_labels": _role_labels(request),
        "done": done,
        "error": error,
        "kept": kept,
    }
    return page(request, "admin_users.html", context, status=status)


def _role_labels(request: Request) -> dict[str, str]:
    """Role → its Chinese name, as the latest version of each loaded workflow declares it."""
    svc = service(request)
    labels: dict[str, str] = {}
    for name in [wf.name for wf in svc.latest_workflows()]:
        for role, label in svc.workflow(name).roles.items():
            labels.setdefault(role, label)
    return labels


def _user_refusal(exc: CaseworkError) -> str:
    if exc.code == Code.INVALID_USER:
        parts = [
            f"{_USER_FIELDS.get(str(p.get('field')), p.get('field'))}：{p.get('message')}"
            for p in exc.facts.get("problems", [])
            if isinstance(p, Mapping)
        ]
        return "用户信息有误，未保存：" + "；".join(parts)
    if exc.code == Code.USER_EXISTS:
        return f"用户名 {exc.facts.get('user', '')} 已被使用，未添加。请换一个用户名。"
    if exc.code == Code.USER_NOT_FOUND:
        return f"没有用户名为 {exc.facts.get('user', '')} 的用户，未作更改。"
    return word(exc)


def _words(value: Any) -> list[str]:
    return [w for w in _SPLIT.split(str(value or "")) if w]


def _roles(form: Any) -> list[str]:
    """The roles ticked (checkboxes) and typed (a role no workflow declares yet is the engine's to refuse)."""
    return list(
        dict.fromkeys([str(r) for r in form.getlist("roles") if str(r).strip()] + _words(form.get("more_roles")))
    )


@router.get("/admin/users")
def users(request: Request, viewer: Supervisor) -> Response:
    """Every user: name, roles, scopes, disabled or not, password set or not; the forms that change them."""
    return _users_page(request)


@router.post("/admin/users/add")
def add_user(request: Request, viewer: Supervisor, form: Form) -> Response:
    """Add a user (the engine checks the roles and scopes against the loaded workflows)."""
    username = str(form.get("username") or "").strip()
    name = str(form.get("name") or "").strip()
    email = str(form.get("email") or "").strip() or None
    roles, scopes = _roles(form), _words(form.get("scopes"))
    try:
        service(request).add_user(username, name, roles, scopes, email, by=viewer.username)
    except CaseworkError as exc:
        kept = {"username": username, "name": name, "email": email or "", "roles": roles, "scopes": " ".join(scopes)}
        return _users_page(
            request, status=422 if exc.code != Code.USER_EXISTS else 409, error=_user_refusal(exc), **kept
        )
    return RedirectResponse("/admin/users?done=added", status_code=303)


@router.post("/admin/users/edit")
def edit_user(request: Request, viewer: Supervisor, form: Form) -> Response:
    """Replace a user's roles and scopes."""
    username = str(form.get("username") or "").strip()
    try:
        _, changes = service(request).edit_user(
            username, roles=_roles(form), scopes=_words(form.get("scopes")), by=viewer.username
        )
    except CaseworkError as exc:
        return _users_page(request, status=404 if isinstance(exc, NotFound) else 422, error=_user_refusal(exc))
    return RedirectResponse(f"/admin/users?done={'edited' if changes else 'unchanged'}", status_code=303)


@router.post("/admin/users/disable")
def disable_user(request: Request, viewer: Supervisor, form: Form) -> Response:
    """Disable a user: every session of theirs ends at once (the engine ends them in the same transaction)."""
    return _set_disabled(request, form, True, viewer.username)


@router.post("/admin/users/enable")
def enable_user(request: Request, viewer: Supervisor, form: Form) -> Response:
    """Enable a disabled user again."""
    return _set_disabled(request, form, False, viewer.username)


def _set_disabled(request: Request, form: Any, disabled: bool, by: str) -> Response:
    username = str(form.get("username") or "").strip()
    reason = str(form.get("reason") or "").strip() or None
    svc = service(request)
    try:
        _, changed = svc.disable_user(username, reason, by=by) if disabled else svc.enable_user(username, reason, by=by)
    except CaseworkError as exc:
        return _users_page(request, status=404 if isinstance(exc, NotFound) else 422, error=_user_refusal(exc))
    done = ("disabled" if disabled else "enabled") if changed else "unchanged"
    return RedirectResponse(f"/admin/users?done={done}", status_code=303)


@router.post("/admin/users/password")
def reset_password(request: Request, viewer: Supervisor, form: Form) -> Response:
    """Set a user's password anew (a reset): their sessions end; recorded as set by the supervisor."""
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    try:
        service(request).logins.set_password(username, password, by=viewer.username)
    except CaseworkError as exc:
        return _users_page(request, status=404 if isinstance(exc, NotFound) else 422, error=_user_refusal(exc))
    return RedirectResponse("/admin/users?done=password", status_code=303)


# ------------------------------------------------------------------ access log


def _detail(detail: Mapping[str, Any]) -> str:
    """An entry's detail as one line (refs, client addresses, changes — no personal data is logged)."""
    parts = []
    for key, value in detail.items():
        shown = "、".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key}: {shown}")
    text = "；".join(parts)
    return text if len(text) <= 300 else text[:300] + "…"


@router.get("/admin/access-log")
def access_log(request: Request, viewer: Supervisor) -> Response:
    """The access log, newest first, ``LOG_PAGE`` entries a page; ``?action=`` keeps one action."""
    action = request.query_params.get("action") or None
    given = request.query_params.get("page") or "1"
    number = min(int(given), MAX_LOG_PAGE) if given.isdigit() and int(given) > 0 else 1
    # the engine gives the newest ``limit`` entries, oldest first: one more than this page tells if there is another
    entries = service(request).access_log(action=action, limit=number * LOG_PAGE + 1)
    newest = list(reversed(entries))
    shown = newest[(number - 1) * LOG_PAGE : number * LOG_PAGE]
    rows = [(e, ACTIONS.get(e.action, e.action), _detail(e.detail)) for e in shown]
    context = {
        "rows": rows,
        "action": action or "",
        "actions": ACTIONS,
        "page_number": number,
        "more": len(newest) > number * LOG_PAGE and number < MAX_LOG_PAGE,
    }
    return page(request, "admin_access_log.html", context)
