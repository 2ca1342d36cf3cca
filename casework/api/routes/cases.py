"""Cases: open, list, read, change, take a step, pause and resume, history, timers, objections.

A case's ``ETag`` is its version; every change needs ``If-Match`` with it
(412 if the case has moved on since, 428 without it). Opening a case and
taking a step take an ``Idempotency-Key``: a retry is answered with the case
the first request made or moved (``Idempotent-Replayed: true``), never done
twice.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from casework.api.bodies import CaseChange, CaseOpen, ObjectionNew, ObjectionResolution, PauseBody, ResumeBody, StepBody
from casework.api.deps import Caller, IdempotencyKey, IfMatch, etag, expected_version
from casework.api.responses import CHANGE, READ, json_of
from engine import CaseView, Casework, InputError
from engine.models import AuditRecord, ObjectionView, TimerView

__all__ = ["router"]

router = APIRouter()

Ref = Annotated[str, Path(min_length=1, max_length=40, description="The case's reference, e.g. ZZ-2026-000123.")]
Trigger = Annotated[str, Path(min_length=1, max_length=63, description="The step's trigger, as `actions` names it.")]


class CaseList(BaseModel):
    """One page of cases, by the order they were opened; ``next`` fetches the following page."""

    items: list[CaseView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def _case(view: CaseView, status: int = 200) -> Response:
    headers = {"ETag": etag(view.version)}
    if view.replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_of(view.to_json(), status=200 if view.replayed else status, headers=headers)


@router.post(
    "/cases",
    status_code=201,
    tags=["cases"],
    summary="Open a case",
    responses={
        201: {"model": CaseView, "description": "Opened; `Location` names it."},
        200: {
            "model": CaseView,
            "description": "A retry with the same `Idempotency-Key` and request: the case the first one opened, as "
            "it is now, opened only once (`Idempotent-Replayed: true`).",
        },
        **CHANGE,
    },
    response_model=None,
)
def open_case(body: CaseOpen, call: Caller, key: IdempotencyKey = None) -> Response:
    """Open a case on the latest version of ``workflow`` as the token's user (who needs a role that may act in
    its first state and a county covering the case's)."""
    view = call.run(lambda s: s.create_case(body.workflow, call.user, body.data, idempotency_key=key))
    answer = _case(view, status=201)
    answer.headers["Location"] = f"/api/v1/cases/{view.ref}"
    return answer


@router.get(
    "/cases", tags=["cases"], summary="List cases", responses={200: {"model": CaseList}, **READ}, response_model=None
)
def list_cases(
    call: Caller,
    workflow: Annotated[str | None, Query(max_length=63)] = None,
    state: Annotated[str | None, Query(max_length=63)] = None,
    county: Annotated[list[str] | None, Query(max_length=20, description="Repeat for several.")] = None,
    household_type: Annotated[str | None, Query(max_length=63)] = None,
    search: Annotated[str | None, Query(max_length=100, description="Part of a reference or a name.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The cases in the caller's counties, oldest first, ``limit`` at a time (cursor paging)."""
    after = _decode(cursor) if cursor else None
    views = call.run(
        lambda s: s.list_cases(
            actor=call.user,
            workflow=workflow,
            state=state,
            counties=county or (),
            household_type=household_type,
            search=search,
            after=after,
            limit=limit + 1,
        )
    )
    more = len(views) > limit
    views = views[:limit]
    next_cursor = _encode(views[-1].ref) if more and views else None
    return json_of({"items": [v.to_json() for v in views], "next_cursor": next_cursor})


@router.get(
    "/cases/{ref}",
    tags=["cases"],
    summary="Read a case",
    responses={200: {"model": CaseView}, **READ},
    response_model=None,
)
def show_case(ref: Ref, call: Caller) -> Response:
    """The case with its full data and the steps the caller may take now (``actions``); ``ETag`` is its version."""
    return _case(call.run(lambda s: s.get_case(ref, call.user), ref=ref))


@router.patch(
    "/cases/{ref}",
    tags=["cases"],
    summary="Change case data",
    responses={200: {"model": CaseView}, **CHANGE},
    response_model=None,
)
def change_case(ref: Ref, body: CaseChange, call: Caller, if_match: IfMatch = None) -> Response:
    """Change fields of the case (whoever may take a step from its state; audited old → new)."""
    version = expected_version(if_match, ref)
    view = call.run(lambda s: s.update_case(ref, call.user, body.data, expected_version=version), ref=ref)
    return _case(view)


@router.post(
    "/cases/{ref}/steps/{trigger}",
    tags=["cases"],
    summary="Take a step",
    responses={200: {"model": CaseView}, **CHANGE},
    response_model=None,
)
def take_step(
    ref: Ref,
    trigger: Trigger,
    body: StepBody,
    call: Caller,
    if_match: IfMatch = None,
    key: IdempotencyKey = None,
) -> Response:
    """Take the step ``trigger`` (one of the case's ``actions``) with its comment and data."""
    version = expected_version(if_match, ref)
    view = call.run(
        lambda s: s.fire(
            ref,
            trigger,
            call.user,
            comment=body.comment,
            data=body.data,
            expected_version=version,
            idempotency_key=key,
        ),
        ref=ref,
    )
    return _case(view)


@router.post(
    "/cases/{ref}/pause",
    tags=["cases"],
    summary="Stop the deadline clock (补正)",
    responses={200: {"model": CaseView}, **CHANGE},
    response_model=None,
)
def pause(ref: Ref, body: PauseBody, call: Caller, if_match: IfMatch = None) -> Response:
    """Stop the clock of the case's current state, saying what is missing; the time left is kept."""
    version = expected_version(if_match, ref)

    def work(s: Casework) -> CaseView:
        s.pause(ref, call.user, body.reason, expected_version=version)
        return s.get_case(ref, call.user)

    return _case(call.run(work, ref=ref))


@router.post(
    "/cases/{ref}/resume",
    tags=["cases"],
    summary="Restart the deadline clock",
    responses={200: {"model": CaseView}, **CHANGE},
    response_model=None,
)
def resume(ref: Ref, body: ResumeBody, call: Caller, if_match: IfMatch = None) -> Response:
    """Restart the clock with the time that was left."""
    version = expected_version(if_match, ref)

    def work(s: Casework) -> CaseView:
        s.resume(ref, call.user, body.comment, expected_version=version)
        return s.get_case(ref, call.user)

    return _case(call.run(work, ref=ref))


@router.get(
    "/cases/{ref}/history",
    tags=["cases"],
    summary="The case's audit trail",
    responses={200: {"model": list[AuditRecord]}, **READ},
    response_model=None,
)
def history(ref: Ref, call: Caller) -> Response:
    """Every event of the case in order (personal data masked), with who, when, from where and through which
    token."""
    return json_of([r.to_json() for r in call.run(lambda s: s.history(ref, call.user), ref=ref)])


@router.get(
    "/cases/{ref}/timers",
    tags=["cases"],
    summary="The case's timers",
    responses={200: {"model": list[TimerView]}, **READ},
    response_model=None,
)
def timers(ref: Ref, call: Caller) -> Response:
    """The case's pending reminders, escalations and automatic steps, soonest first."""
    return json_of([t.to_json() for t in call.run(lambda s: s.case_timers(ref, call.user), ref=ref)])


@router.get(
    "/cases/{ref}/objections",
    summary="The case's objections",
    tags=["objections"],
    responses={200: {"model": list[ObjectionView]}, **READ},
    response_model=None,
)
def objections(ref: Ref, call: Caller) -> Response:
    """The objections raised during the case's publicity, oldest first."""
    return json_of([o.to_json() for o in call.run(lambda s: s.objections(ref, call.user), ref=ref)])


@router.post(
    "/cases/{ref}/objections",
    status_code=201,
    summary="Record an objection",
    tags=["objections"],
    responses={201: {"model": ObjectionView}, **CHANGE},
    response_model=None,
)
def add_objection(ref: Ref, body: ObjectionNew, call: Caller, if_match: IfMatch = None) -> Response:
    """Record an objection received during publicity (staff of the case's county); it holds the case."""
    version = expected_version(if_match, ref)
    view = call.run(
        lambda s: s.add_objection(ref, call.user, body.text, body.channel, expected_version=version), ref=ref
    )
    return json_of(view.to_json(), status=201)


@router.post(
    "/cases/{ref}/objections/{objection}/resolution",
    summary="Resolve an objection",
    tags=["objections"],
    responses={200: {"model": ObjectionView}, **CHANGE},
    response_model=None,
)
def resolve_objection(
    ref: Ref,
    objection: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ObjectionResolution,
    call: Caller,
    if_match: IfMatch = None,
) -> Response:
    """Close an open objection: ``upheld`` sends the case back to review, ``dismissed`` releases the hold."""
    version = expected_version(if_match, ref)
    view = call.run(
        lambda s: s.resolve_objection(ref, objection, call.user, body.outcome, body.comment, expected_version=version),
        ref=ref,
    )
    return json_of(view.to_json())


def _encode(ref: str) -> str:
    return base64.urlsafe_b64encode(ref.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InputError(
            "the cursor is not one this API gave: pass next_cursor from the previous page unchanged",
            option="cursor",
            value=cursor[:40],
        ) from None
