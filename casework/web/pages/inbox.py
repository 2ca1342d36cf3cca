"""我的待办 (``/``), in-app messages (``/messages``) and the bulk step on selected inbox rows (``/bulk``).

The inbox is the engine's :meth:`engine.Casework.waiting_for` — by role and
scope, soonest deadline first, every filter applied in its SQL — shown with
the workflows' Chinese labels. The bulk step is
:meth:`engine.Casework.fire_many`; each refusal it reports (a code and facts)
is worded here for the page. Nothing here decides who may do what: the
trigger list only offers what the shown rows' workflows name, and the
engine refuses the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from casework.web.auth import Form, Viewer, service, settings
from casework.web.render import page as render_page
from casework.web.wording import word
from engine import CaseNotFound, CaseView, Casework, CaseworkError, Code, NotFound, masked_applicant
from engine.deadlines import describe_left_zh
from engine.definition import WorkflowDef
from engine.models import Refused

__all__ = ["refusal_text", "router"]

router = APIRouter(include_in_schema=False)

#: the scope a user who covers every county holds
_ALL = "*"
#: the deepest page asked for: offset paging reads every row before the page, so a deeper one is for the
#: filters (at 50 a page, 50,000 cases)
MAX_PAGE = 1000


@dataclass(frozen=True)
class Row:
    """One inbox row as the table shows it."""

    ref: str
    workflow: str
    state: str
    applicant: str
    county: str
    deadline: Any
    provisional: bool
    overdue: bool
    paused: bool
    left: str


@dataclass(frozen=True)
class Filters:
    """The inbox filters of the query string ('' for none)."""

    workflow: str
    state: str
    county: str
    q: str

    def given(self) -> dict[str, str]:
        """The filters that are set, by query-string name."""
        return {k: v for k, v in vars(self).items() if v}


def _clean(value: str | None) -> str:
    return (value or "").strip()


class _Definitions:
    """Each (workflow, version) definition read once per request."""

    def __init__(self, svc: Casework) -> None:
        self._svc = svc
        self._seen: dict[tuple[str, int], WorkflowDef] = {}

    def __call__(self, name: str, version: int) -> WorkflowDef:
        key = (name, version)
        if key not in self._seen:
            self._seen[key] = self._svc.workflow(name, version)
        return self._seen[key]


def _row(svc: Casework, wf: WorkflowDef, view: CaseView) -> Row:
    left = ""
    if view.paused:
        left = "已暂停计时"
    elif view.left is not None:
        # the engine's own count of working days on its calendar (already in the view), in Chinese
        left = describe_left_zh(view.left)
    return Row(
        ref=view.ref,
        workflow=wf.title or wf.name,
        state=view.state_label,
        applicant=masked_applicant(wf.pii_fields, view.data),
        county=view.scope or "",
        deadline=view.deadline,
        provisional=view.deadline_provisional,
        overdue=view.overdue,
        paused=view.paused,
        left=left,
    )


def _latest(svc: Casework) -> list[WorkflowDef]:
    """The latest version of every workflow, by name.

    (Not ``svc.workflows()``: that counts each version's cases, which at a
    million cases would cost the inbox more than its own query.)
    """
    return svc.latest_workflows()


def _options(svc: Casework, viewer_scopes: Sequence[str], workflow: str) -> dict[str, list[tuple[str, str]]]:
    """The choices of the filter form: workflows, states (of the chosen workflow, or all) and counties."""
    definitions = _latest(svc)
    workflows = [(wf.name, wf.title or wf.name) for wf in definitions]
    shown = [wf for wf in definitions if not workflow or wf.name == workflow]
    states: dict[str, str] = {}
    counties: dict[str, None] = {}
    for wf in shown:
        for name, st in wf.states.items():
            if not st.final:
                states.setdefault(name, st.label)
        if wf.scope_field is not None:
            counties.update(dict.fromkeys(wf.fields[wf.scope_field].choices))
    if _ALL not in viewer_scopes:
        counties = dict.fromkeys(viewer_scopes)
    return {
        "workflows": workflows,
        "states": list(states.items()),
        "counties": [(c, c) for c in counties],
    }


def _triggers(rows: Sequence[tuple[WorkflowDef, CaseView]], roles: Sequence[str]) -> list[tuple[str, str]]:
    """The steps out of the shown rows' states that one of ``roles`` is named for, by trigger: (trigger, label).

    Only what to offer: whether each case may take it is the engine's to say.
    """
    found: dict[str, str] = {}
    held = set(roles)
    for wf, view in rows:
        for t in wf.transitions_from(view.state):
            if held & set(t.by):
                found.setdefault(t.name, t.label)
    return list(found.items())


def _filter_problem(exc: CaseworkError, svc: Casework, filters: Filters) -> tuple[str, int]:
    """A refused filter in Chinese (with a did-you-mean when the engine has one), and the page's status."""
    facts = exc.facts
    suggestion = facts.get("suggestion")
    if exc.code == Code.WORKFLOW_NOT_FOUND:
        text = f"没有“{filters.workflow}”这项业务，未列出任何案件。"
        if suggestion:
            try:
                title = svc.workflow(str(suggestion)).title
            except CaseworkError:
                title = str(suggestion)
            text += f"您要找的是不是“{title}”（{suggestion}）？"
        return text, 422
    if exc.code == Code.SCOPE_NOT_COVERED:
        held = "、".join(map(str, facts.get("scopes") or ())) or "（无）"
        return f"您负责的县区是 {held}，不包括“{filters.county}”，不能按该县区筛选待办。", 403
    option = facts.get("option")
    if option == "state":
        text = f"没有“{filters.state}”这个环节，未列出任何案件。"
        if suggestion:
            label = _state_label(svc, filters.workflow, str(suggestion))
            text += f"您要找的是不是“{label}”（{suggestion}）？"
        return text, 422
    if option in ("county", "scope"):
        text = f"没有“{filters.county}”这个县区，未列出任何案件。"
        if suggestion:
            text += f"您要找的是不是“{suggestion}”？"
        return text, 422
    if option == "ref":
        return "按编号查找时，请输入完整编号或编号的一部分（1 到 100 个字符）。", 422
    return word(exc), 422


def _state_label(svc: Casework, workflow: str, state: str) -> str:
    for wf in _latest(svc):
        if (not workflow or wf.name == workflow) and state in wf.states:
            return wf.states[state].label
    return state


def _query(filters: Filters, page: int) -> str:
    return "?" + urlencode({**filters.given(), **({"page": page} if page > 1 else {})})


@router.get("/")
def inbox(
    request: Request,
    viewer: Viewer,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    workflow: str | None = None,
    state: str | None = None,
    county: str | None = None,
    q: str | None = None,
) -> Response:
    """我的待办: the cases waiting for me, a page at a time, with the filter form and the bulk form."""
    svc = service(request)
    filters = Filters(_clean(workflow), _clean(state), _clean(county), _clean(q))
    context: dict[str, Any] = {
        "filters": filters,
        "options": _options(svc, viewer.scopes, filters.workflow),
        "rows": [],
        "triggers": [],
        "problem": None,
        "page": page,
        "prev_url": None,
        "next_url": None,
    }
    try:
        result = svc.waiting_for(
            viewer.username,
            page=page,
            per_page=settings(request).per_page,
            workflow=filters.workflow or None,
            state=filters.state or None,
            scope=filters.county or None,
            ref=filters.q or None,
        )
    except CaseworkError as exc:
        if exc.code in (Code.INVALID_INPUT, Code.WORKFLOW_NOT_FOUND, Code.SCOPE_NOT_COVERED):
            context["problem"], status = _filter_problem(exc, svc, filters)
            return render_page(request, "inbox.html", context, status=status)
        raise
    definitions = _Definitions(svc)
    shown = [(definitions(v.workflow, v.workflow_version), v) for v in result.items]
    context["rows"] = [_row(svc, wf, v) for wf, v in shown]
    context["triggers"] = _triggers(shown, viewer.roles)
    if page > 1:
        context["prev_url"] = "/" + _query(filters, page - 1)
    if result.has_more:
        context["next_url"] = "/" + _query(filters, page + 1)
    return render_page(request, "inbox.html", context)


# ---------------------------------------------------------------------------------------------- bulk


def refusal_text(refused: Refused, workflow: WorkflowDef | None = None) -> str:
    """A bulk step's refusal of one case (the engine's code and facts) as the page words it.

    ``workflow`` (the cases') lets the wording name steps and states by their labels.
    """
    try:
        code = Code(refused.code)
    except ValueError:  # a code this version of the pages does not know: the engine's own words
        return f"未办理：{refused.reason}"
    if code == Code.SCOPE_NOT_COVERED:
        # a case of a county the viewer does not cover is answered as one nobody has: a bulk form must not
        # tell which references exist elsewhere, nor their county (the case page answers 404 alike)
        return word(CaseNotFound(refused.ref))
    facts: Mapping[str, Any] = {"case": refused.ref, **refused.facts}
    return word(CaseworkError(refused.reason, code=code, **facts), workflow)


@router.post("/bulk")
def bulk(request: Request, viewer: Viewer, form: Form) -> Response:
    """Take one step on every ticked inbox row; the result page lists the cases done and those refused, and why."""
    refs = list(dict.fromkeys(str(r).strip() for r in form.getlist("refs") if str(r).strip()))
    trigger = str(form.get("trigger") or "").strip()
    comment = str(form.get("comment") or "").strip() or None
    svc = service(request)
    context: dict[str, Any] = {"trigger": trigger, "label": trigger, "done": [], "refused": [], "problem": None}
    if not refs or not trigger:
        context["problem"] = "请先勾选要办理的案件，并选择要办理的步骤。未作任何更改。"
        return render_page(request, "bulk.html", context, status=422)
    try:
        report = svc.fire_many(refs, trigger, viewer.username, comment=comment)
    except CaseworkError as exc:
        context["problem"] = word(exc)
        return render_page(request, "bulk.html", context, status=404 if isinstance(exc, NotFound) else 422)
    named = _naming(svc, trigger)
    context["label"] = named.transitions[trigger].label if named is not None else trigger
    context["done"] = report.fired
    context["refused"] = [(r.ref, refusal_text(r, named)) for r in report.refused]
    # a report of what was done; when nothing was, the page is a refusal
    return render_page(request, "bulk.html", context, status=200 if report.fired or not report.refused else 409)


def _naming(svc: Casework, trigger: str) -> WorkflowDef | None:
    """The latest workflow that has a step ``trigger`` (its labels word the result page), if one does."""
    return next((wf for wf in _latest(svc) if trigger in wf.transitions), None)


# ------------------------------------------------------------------------------------------ messages


@router.get("/messages")
def messages(request: Request, viewer: Viewer) -> Response:
    """My in-app messages: unread first, then newest first; each links to its case."""
    from notifications import inbox as message_inbox

    found = message_inbox(service(request).engine, viewer.username)
    # inbox() gives newest first; a stable sort keeps that order within read and unread
    ordered = sorted(found, key=lambda m: m.read_at is not None)
    return render_page(request, "messages.html", {"messages": ordered})


@router.post("/messages/{message_id}/read")
def message_read(request: Request, viewer: Viewer, form: Form, message_id: int) -> Response:
    """Mark one of my messages read (another user's, or none: 404)."""
    from notifications import mark_read

    svc = service(request)
    try:
        mark_read(svc.engine, viewer.username, message_id, svc.clock)
    except NotFound:
        return render_page(
            request, "error.html", {"heading": "未找到", "message": "没有这条消息，或它不是您的消息。"}, status=404
        )
    return RedirectResponse("/messages", status_code=303)
