"""What waits for the caller: the cases (their inbox) and their in-app messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from casework.api.deps import Caller
from casework.api.responses import CHANGE, READ, json_of
from engine import InboxPage
from notifications.inbox import InboxView

__all__ = ["router"]

router = APIRouter(tags=["inbox"])


@router.get(
    "/inbox", summary="Cases waiting for me", responses={200: {"model": InboxPage}, **READ}, response_model=None
)
def inbox(
    call: Caller,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
    workflow: Annotated[str | None, Query(max_length=63)] = None,
    state: Annotated[str | None, Query(max_length=63)] = None,
    county: Annotated[str | None, Query(max_length=63)] = None,
    ref: Annotated[str | None, Query(max_length=40, description="A whole reference or part of one.")] = None,
) -> Response:
    """Open cases where one of the caller's roles may take a step, in their counties: soonest deadline first,
    overdue ones marked."""
    found = call.run(
        lambda s: s.waiting_for(
            call.user, page=page, per_page=per_page, workflow=workflow, state=state, scope=county, ref=ref
        )
    )
    return json_of(found.to_json())


@router.get(
    "/messages",
    summary="My messages",
    responses={200: {"model": list[InboxView]}, **READ},
    response_model=None,
)
def messages(call: Caller, unread: bool = False) -> Response:
    """The caller's in-app messages (reminders, escalations, notices), newest first."""
    from notifications import inbox as message_inbox

    found = call.run(lambda s: message_inbox(s.engine, call.user, unread_only=unread))
    return json_of([m.to_json() for m in found])


@router.post(
    "/messages/{message}/read",
    summary="Mark a message read",
    responses={200: {"model": InboxView}, **CHANGE},
    response_model=None,
)
def mark_read(message: Annotated[int, Path(ge=1, le=2**31 - 1)], call: Caller) -> Response:
    """Mark one of the caller's messages read."""
    from notifications import mark_read as mark

    return json_of(call.run(lambda s: mark(s.engine, call.user, message, s.clock)).to_json())
