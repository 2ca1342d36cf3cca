"""Reports (the same tables as ``casework report``) and the outbox's state."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.responses import Response

from casework.api.deps import Caller
from casework.api.responses import READ, json_of
from engine.limits import OUTBOX_STATUS
from engine.reports import REPORTS
from notifications.relay import OutboxView

__all__ = ["router"]

router = APIRouter()

Status = Literal[OUTBOX_STATUS]  # type: ignore[valid-type]


@router.get(
    "/reports",
    summary="The reports there are",
    tags=["reports"],
    responses={
        200: {"content": {"application/json": {"schema": {"type": "array", "items": {"type": "string"}}}}},
        **READ,
    },
    response_model=None,
)
def reports(call: Caller) -> Response:
    """The names of the reports (``docs/reports.md`` defines each)."""
    return json_of(list(REPORTS))


@router.get(
    "/reports/{name}",
    summary="One report",
    tags=["reports"],
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
            "description": "The table: title, columns, rows, notes (and the year, county … it covers).",
        },
        **READ,
    },
    response_model=None,
)
def report(
    name: Annotated[str, Path(min_length=1, max_length=40)],
    call: Caller,
    year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    county: Annotated[str | None, Query(max_length=63)] = None,
    as_of: Annotated[dt.date | None, Query(description="archives: as they stood at the end of that day")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    """The report over the cases in the caller's counties."""
    from casework.export import write_sheet

    sheet = call.run(lambda s: s.report(name, year=year, county=county, as_of=as_of, actor=call.user))
    text = write_sheet(sheet, format, None) or ""
    media = "application/json" if format == "json" else "text/csv; charset=utf-8"
    return Response(text, media_type=media)


@router.get(
    "/outbox",
    summary="The outbox (supervisors)",
    tags=["outbox"],
    responses={200: {"model": list[OutboxView]}, **READ},
    response_model=None,
)
def outbox(
    call: Caller,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """E-mails and messages waiting, sent, failed or given up, newest first (their recipients: supervisors only)."""
    from notifications.relay import list_outbox

    return json_of([r.to_json() for r in call.run(lambda s: list_outbox(s.engine, status, limit, by=call.user))])
