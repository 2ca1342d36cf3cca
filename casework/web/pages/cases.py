"""The case page (/cases/{ref}): data, diagram, timeline, steps, edits, objections, the deadline clock.

Everything shown and done here is the engine's: the case as :meth:`Casework.get_case`
gives it to the viewer (with the steps they may take now), its trail as
:meth:`Casework.history` masks it, its objections and timers. The full data is
shown to whoever may see the case, as ``casework case show`` shows it, and
the access log records that before the page is sent. A case the viewer may
not see is a 404 that says nothing of it. A refusal comes back as the case
page again with the engine's reason in Chinese and a 4xx status; nothing was
changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from casework.web.auth import Form, Viewer, service
from casework.web.forms import field_problems, form_values, parse_form, widget, widgets
from casework.web.render import page
from casework.web.wording import word
from engine import CaseNotFound, CaseView, Casework, CaseworkError, Code, InputError, NotFound
from engine.deadlines import describe_left_zh
from engine.definition import WorkflowDef
from engine.errors import (
    CommentRequired,
    ConflictError,
    DuplicateCase,
    InvalidCaseData,
    MissingFields,
    PermissionDenied,
    SameActorForbidden,
)
from engine.fields import is_empty
from engine.limits import OBJECTION_CHANNELS
from engine.logins import SessionView
from engine.models import AuditRecord, ObjectionView, TimerView

__all__ = ["router", "status_of"]


class _RefConvertor(Convertor[str]):
    """A case reference (``ZZ-2026-000123``): so ``/cases/new`` and ``/cases/import`` are never taken for one."""

    regex = r"[A-Z]{1,6}-[0-9]{4}-[0-9]{1,12}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("caseref", _RefConvertor())

router = APIRouter(include_in_schema=False)

#: what an audit action that is not a step is called on the timeline
ACTIONS = {
    "created": "新建案件",
    "updated": "修改资料",
    "objection_added": "登记异议",
    "objection_dismissed": "异议不成立",
    "paused": "暂停计时（补正）",
    "resumed": "恢复计时",
    "publicised": "发布公示",
    "notice_published": "发布公示",
    "migrated": "迁移到新版本流程",
    "deadline_recomputed": "重新计算期限",
}
#: the audit actions that put the case on a published notice (engine.store.publicity.PUBLISHED_ACTIONS)
PUBLISHED = ("publicised", "notice_published")
#: the names of what a trail's change records that is not a field of the case
CHANGE_LABELS = {"deadline": "办理期限", "notice": "公示编号", "notice_sha256": "公示内容摘要", "period": "公示期"}
TIMER_KINDS = {"remind": "到期提醒", "escalate": "超期督办", "timeout": "自动办理"}
OBJECTION_STATUS = {"open": "待处理", "upheld": "异议成立", "dismissed": "异议不成立"}
OUTCOMES = (("upheld", "异议成立"), ("dismissed", "异议不成立"))


def status_of(exc: CaseworkError) -> int:
    """The HTTP status a refusal on this page answers with.

    403: not this viewer's to do (role, four-eyes, a field they may not
    change); 404: no such thing; 409: the case is not as the viewer saw it
    or not in a state for it (a newer version, a guard, the wrong state);
    422: what was sent is incomplete or wrong (comment, fields, values).
    """
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (PermissionDenied, SameActorForbidden)):
        return 403
    if isinstance(exc, (CommentRequired, MissingFields, InvalidCaseData, InputError)):
        return 422
    if exc.code in (Code.OBJECTION_TEXT_REQUIRED,):
        return 422
    if isinstance(exc, (ConflictError, DuplicateCase)):
        return 409
    return 409


# ---------------------------------------------------------------------- reading


@dataclass
class Shown:
    """What one request's refusal leaves on the page: the message, where, and what the viewer had typed."""

    refusal: str | None = None
    where: str | None = None
    typed: dict[str, Any] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


@router.get("/cases/{ref:caseref}")
def case_page(request: Request, viewer: Viewer, ref: str) -> Response:
    """The case as this viewer may see it, with the steps they may take now."""
    return _case_page(request, viewer, ref)


def _case_page(
    request: Request, viewer: SessionView, ref: str, shown: Shown | None = None, status: int = 200
) -> Response:
    svc = service(request)
    actor = viewer.username
    try:
        view = svc.get_case(ref, actor)
        history = svc.history(ref, actor)
        objections = svc.objections(ref, actor)
        timers = svc.case_timers(ref, actor)
    except (NotFound, PermissionDenied) as exc:
        if isinstance(exc, PermissionDenied) and exc.code != Code.SCOPE_NOT_COVERED:
            raise
        return _not_found(request, ref)
    wf = svc.workflow(view.workflow, view.workflow_version)
    context = _context(svc, wf, view, history, objections, timers, viewer, shown or Shown())
    # the full personal data is about to be shown: the access log holds that first (as `case show` does)
    svc.log_access("read_case", {"refs": [view.ref]}, actor=actor)
    return page(request, "case.html", context, status=status)


def _not_found(request: Request, ref: str) -> Response:
    # the same words whether the case does not exist or is another county's: nothing is said of it
    return page(request, "error.html", {"heading": "未找到", "message": word(CaseNotFound(ref))}, status=404)


def _context(
    svc: Casework,
    wf: WorkflowDef,
    view: CaseView,
    history: list[AuditRecord],
    objections: list[ObjectionView],
    timers: list[TimerView],
    viewer: SessionView,
    shown: Shown,
) -> dict[str, Any]:
    people = {r.actor for r in history} | {o.received_by for o in objections} | {view.created_by}
    names = _names(svc, people | {o.resolved_by for o in objections if o.resolved_by})
    editable = list(view.editable or ())  # the engine's answer: what this viewer may change now
    editing = shown.where == "edit"
    problems = shown.problems
    steps = []
    for action in view.actions or ():
        t = wf.transitions.get(action.trigger)
        needs = [n for n in (t.require if t else ()) if is_empty(view.data.get(n)) and n in wf.fields]
        mine = shown.where == "step" and shown.typed.get("trigger") == action.trigger
        controls = [
            widget(
                wf,
                n,
                value=shown.typed.get(n) if mine else None,
                problem=problems.get(n) if mine else None,
                scopes=viewer.scopes,
                required=True,
            )
            for n in needs
        ]
        steps.append({"action": action, "needs": controls, "comment": shown.typed.get("comment", "") if mine else ""})
    edit_values = {**view.data, **shown.typed} if editing else view.data
    return {
        "view": view,
        "wf": wf,
        "title": wf.title,
        "fields": [(f, _value(view.data.get(f.name))) for f in wf.fields.values()],
        "diagram": f"/workflows/{wf.name}/v{wf.version}/diagram.svg?current={view.state}",
        # the engine's own count on its calendar (a paused clock's remainder), in Chinese as the inbox shows it
        "left": (f"已暂停（{describe_left_zh(view.left)}）" if view.paused else describe_left_zh(view.left))
        if view.left is not None
        else "",
        "timers": [_timer(wf, t) for t in timers],
        "timeline": [_event(wf, r, names) for r in history],
        "notices": list(dict.fromkeys(_notices(history))),
        "objections": [_objection(o, names) for o in objections],
        "steps": steps,
        "editable": editable,
        "edit_controls": widgets(
            wf, fields=editable, values=edit_values, problems=problems if editing else None, scopes=viewer.scopes
        ),
        "in_publicity": wf.publicity is not None and view.state == wf.publicity.state,
        "channels": OBJECTION_CHANNELS,
        "outcomes": OUTCOMES,
        # the clock's button ("pause", "resume" or none): the engine's answer for this viewer
        "clock": view.clock,
        "shown": shown,
        "created_by": names.get(view.created_by, view.created_by),
    }


def _names(svc: Casework, usernames: set[str]) -> dict[str, str]:
    """Each username's name (``system`` is 系统); a user since removed keeps their username."""
    known = {u.username: u.name for u in svc.users()} if usernames - {"system"} else {}
    return {u: "系统" if u == "system" else known.get(u, u) for u in usernames}


def _value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def _label_of_state(wf: WorkflowDef, state: str | None) -> str:
    if state is None:
        return ""
    st = wf.states.get(state)
    return st.label if st is not None else state


def _event(wf: WorkflowDef, r: AuditRecord, names: Mapping[str, str]) -> dict[str, Any]:
    if r.trigger:
        t = wf.transitions.get(r.trigger)
        label = t.label if t is not None else r.trigger
    else:
        label = ACTIONS.get(r.action, r.action)
    changes = []
    for key, pair in r.changes.items():
        f = wf.fields.get(key)
        old, new = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        changes.append((f.label if f is not None else CHANGE_LABELS.get(key, key), _value(old), _value(new)))
    moved = r.from_state != r.to_state and r.to_state is not None
    return {
        "record": r,
        "label": label,
        "from": _label_of_state(wf, r.from_state) if moved else "",
        "to": _label_of_state(wf, r.to_state) if moved else "",
        "actor": names.get(r.actor, r.actor),
        "changes": changes,
    }


def _notices(history: Sequence[AuditRecord]) -> list[str]:
    """The numbers of the notices that list the case: its trail links each one in (checked by `casework check`)."""
    out = []
    for r in history:
        if r.action in PUBLISHED:
            pair = r.changes.get("notice") or [None, None]
            if pair and pair[-1]:
                out.append(str(pair[-1]))
    return out


def _timer(wf: WorkflowDef, t: TimerView) -> dict[str, Any]:
    what = TIMER_KINDS.get(t.kind, t.kind)
    fire = t.payload.get("fire") if t.kind == "timeout" else None
    if isinstance(fire, str) and fire in wf.transitions:
        what = f"{what}：{wf.transitions[fire].label}"
    return {"what": what, "due_at": t.due_at, "provisional": t.provisional, "held": t.held_at is not None}


def _objection(o: ObjectionView, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "o": o,
        "status": OBJECTION_STATUS.get(o.status, o.status),
        "received_by": names.get(o.received_by, o.received_by),
        "resolved_by": names.get(o.resolved_by, o.resolved_by) if o.resolved_by else "",
    }


# ---------------------------------------------------------------------- doing


def _form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _version(form: FormData) -> int | None:
    text = _form_text(form, "version").strip()
    return int(text) if text.isdigit() else None


def _no_version(request: Request, viewer: SessionView, ref: str) -> Response:
    """A step or edit posted without the case version its page showed: refused, nothing changed.

    Without it the engine could not tell a stale page from a fresh one, and would overwrite.
    """
    shown = Shown(
        refusal="提交的表单缺少案件版本号，无法确认您看到的是最新内容，未作任何更改。请刷新页面后重试。",
        where="version",
        typed={},
        problems={},
    )
    return _case_page(request, viewer, ref, shown, status=422)


def _workflow_of(request: Request, viewer: SessionView, ref: str) -> WorkflowDef | None:
    """The workflow version of case ``ref`` as ``viewer`` may see it; None when they may not."""
    svc = service(request)
    try:
        view = svc.get_case(ref, viewer.username)
        return svc.workflow(view.workflow, view.workflow_version)
    except CaseworkError:
        return None


def _acting(
    request: Request,
    viewer: SessionView,
    ref: str,
    where: str,
    typed: dict[str, Any],
    call: Callable[[], object],
    wf: WorkflowDef | None = None,
) -> Response:
    """Do ``call``; then back to the case page (303), or the page again with the refusal and its status."""
    try:
        call()
    except CaseworkError as exc:
        problems: dict[str, str] = {}
        if isinstance(exc, InvalidCaseData) and wf is not None:
            problems = field_problems(wf, exc.problems)[0]
        if exc.code == Code.CONFLICT and where == "edit":
            # the case changed since the form was shown: the form shows the case as it is now, not what was
            # typed over the old one (saving that again would overwrite the other change unseen)
            typed = {}
        # the refusal names steps, states and fields by the labels of the case's own workflow version
        shown = Shown(
            refusal=word(exc, wf or _workflow_of(request, viewer, ref)), where=where, typed=typed, problems=problems
        )
        return _case_page(request, viewer, ref, shown, status=status_of(exc))
    return RedirectResponse(f"/cases/{ref}", status_code=303)


@router.post("/cases/{ref:caseref}/steps/{trigger}")
def take_step(request: Request, viewer: Viewer, form: Form, ref: str, trigger: str) -> Response:
    """Take the step ``trigger`` with the form's comment and fields, at the version the viewer saw."""
    svc = service(request)
    comment = _form_text(form, "comment")
    data: dict[str, Any] = {}
    typed: dict[str, Any] = {"trigger": trigger, "comment": comment}
    wf = None
    if any(k not in ("csrf_token", "version", "comment") for k in form):
        # the step's form asked for fields still empty: given with the step (an edit in the state it leaves)
        try:
            view = svc.get_case(ref, viewer.username)
        except (NotFound, PermissionDenied):
            return _not_found(request, ref)
        wf = svc.workflow(view.workflow, view.workflow_version)
        data = parse_form(wf, form)
        typed.update(form_values(wf, form, list(data)))
    version = _version(form)
    if version is None:
        return _no_version(request, viewer, ref)
    return _acting(
        request,
        viewer,
        ref,
        "step",
        typed,
        lambda: svc.fire(
            ref, trigger, viewer.username, comment=comment or None, data=data or None, expected_version=version
        ),
        wf,
    )


@router.post("/cases/{ref:caseref}/edit")
def edit_case(request: Request, viewer: Viewer, form: Form, ref: str) -> Response:
    """Change the case's data as typed in ``#edit``; refused if the case changed since the form was shown."""
    svc = service(request)
    try:
        view = svc.get_case(ref, viewer.username)
    except (NotFound, PermissionDenied):
        return _not_found(request, ref)
    wf = svc.workflow(view.workflow, view.workflow_version)
    # the form lists the fields it shows: an unticked checklist among them is "none ticked", not "not given"
    names = [n for n in _form_text(form, "fields").split(",") if n in wf.fields]
    data = parse_form(wf, form, names) if names else parse_form(wf, form)
    version = _version(form)
    if version is None:
        return _no_version(request, viewer, ref)
    return _acting(
        request,
        viewer,
        ref,
        "edit",
        form_values(wf, form, list(data)),
        lambda: svc.update_case(ref, viewer.username, data, expected_version=version),
        wf,
    )


@router.post("/cases/{ref:caseref}/objections")
def add_objection(request: Request, viewer: Viewer, form: Form, ref: str) -> Response:
    """Record an objection received during publicity (异议登记)."""
    svc = service(request)
    text, channel = _form_text(form, "text"), _form_text(form, "channel")
    return _acting(
        request,
        viewer,
        ref,
        "objection",
        {"text": text, "channel": channel},
        lambda: svc.add_objection(ref, viewer.username, text, channel),
    )


@router.post("/cases/{ref:caseref}/objections/{objection_id:int}/resolve")
def resolve_objection(request: Request, viewer: Viewer, form: Form, ref: str, objection_id: int) -> Response:
    """Close an open objection as upheld (back to review) or dismissed, with a comment."""
    svc = service(request)
    outcome, comment = _form_text(form, "outcome"), _form_text(form, "comment")
    return _acting(
        request,
        viewer,
        ref,
        f"resolve-{objection_id}",
        {"outcome": outcome, "comment": comment},
        lambda: svc.resolve_objection(ref, objection_id, viewer.username, outcome, comment),
    )


@router.post("/cases/{ref:caseref}/pause")
def pause(request: Request, viewer: Viewer, form: Form, ref: str) -> Response:
    """Stop the deadline clock while materials are missing (补正), saying what is missing."""
    svc = service(request)
    reason = _form_text(form, "reason")
    return _acting(request, viewer, ref, "pause", {"reason": reason}, lambda: svc.pause(ref, viewer.username, reason))


@router.post("/cases/{ref:caseref}/resume")
def resume(request: Request, viewer: Viewer, form: Form, ref: str) -> Response:
    """Restart the deadline clock with the time that was left."""
    svc = service(request)
    comment = _form_text(form, "comment")
    return _acting(
        request,
        viewer,
        ref,
        "resume",
        {"comment": comment},
        lambda: svc.resume(ref, viewer.username, comment or None),
    )
