"""Public notices (公示名单): list, one, its exact HTML and its PDF; and publishing a county's list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from casework.api.deps import Caller
from casework.api.responses import CHANGE, READ, json_of
from casework.web.pages.notices import NOTICE_CSP
from engine import NoticeView

__all__ = ["router"]

router = APIRouter(tags=["notices"])

Number = Annotated[str, Path(min_length=1, max_length=63, description="The notice's number.")]


class Publish(BaseModel):
    """Which workflow's list, for which county."""

    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(min_length=1, max_length=63)
    county: str = Field(min_length=1, max_length=63)


@router.get(
    "/notices", summary="Published notices", responses={200: {"model": list[NoticeView]}, **READ}, response_model=None
)
def notices(call: Caller, workflow: Annotated[str | None, Query(max_length=63)] = None) -> Response:
    """Every published notice, newest first (what the public sees: personal data masked)."""
    return json_of([n.to_json() for n in call.run(lambda s: s.notices(workflow))])


@router.get(
    "/notices/{number}", summary="One notice", responses={200: {"model": NoticeView}, **READ}, response_model=None
)
def notice(number: Number, call: Caller) -> Response:
    """The notice's facts: its period, its cases, and the SHA-256 of its stored HTML."""
    return json_of(call.run(lambda s: s.notice(number)).to_json())


@router.get(
    "/notices/{number}/html",
    summary="A notice as published",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}, **READ},
    response_model=None,
)
def notice_html(number: Number, call: Caller) -> Response:
    """The stored HTML, byte for byte (``X-Notice-SHA256`` proves it)."""
    view = call.run(lambda s: s.notice(number))
    return Response(
        view.html,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": NOTICE_CSP, "X-Notice-SHA256": view.sha256},
    )


@router.get(
    "/notices/{number}/pdf",
    summary="A notice printed to PDF",
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}, **READ},
    response_model=None,
)
def notice_pdf(number: Number, call: Caller) -> Response:
    """The stored HTML printed to A4 PDF (503 ``pdf_unavailable`` when the server lacks a CJK font)."""
    from notifications.notices import notice_pdf as to_pdf

    view = call.run(lambda s: s.notice(number))
    data = call.run(lambda s: to_pdf(view))
    return Response(
        data, media_type="application/pdf", headers={"Content-Disposition": f'attachment; filename="{view.number}.pdf"'}
    )


@router.post(
    "/notices",
    status_code=201,
    summary="Publish a county's list",
    responses={201: {"model": NoticeView}, 204: {"description": "No case of that county awaits publicity."}, **CHANGE},
    response_model=None,
)
def publish(body: Publish, call: Caller) -> Response:
    """Publish the 公示名单 of ``county``: every case of it awaiting publicity enters its period (the caller needs
    a role that takes cases into publicity and a scope covering the county)."""
    from notifications.notices import publish_list

    view = call.run(lambda s: publish_list(s, body.workflow, body.county, by=call.user))
    if view is None:
        return Response(status_code=204)
    return json_of(view.to_json(), status=201, headers={"Location": f"/api/v1/notices/{view.number}"})
