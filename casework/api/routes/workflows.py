"""Workflows: which are loaded, one version described, and its diagram."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from casework.api.deps import Caller
from casework.api.responses import READ, json_of
from casework.web import diagram
from engine import WorkflowInfo

__all__ = ["router"]

router = APIRouter(tags=["workflows"])

Name = Annotated[str, Path(min_length=1, max_length=63, description="The workflow's name, e.g. hardship_archive.")]
Version = Annotated[int | None, Query(ge=1, le=100_000, description="A stored version (default: the latest).")]


@router.get(
    "/workflows",
    summary="Loaded workflows",
    responses={200: {"model": list[WorkflowInfo]}, **READ},
    response_model=None,
)
def workflows(call: Caller) -> Response:
    """Every loaded version of every workflow, with how many cases are on it."""
    return json_of([w.to_json() for w in call.run(lambda s: s.workflows())])


@router.get(
    "/workflows/{name}",
    summary="One workflow described",
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **READ},
    response_model=None,
)
def workflow(name: Name, call: Caller, version: Version = None) -> Response:
    """The version's states, steps (who may take them, what they need), fields and deadlines, as
    ``casework workflow show --json`` prints them."""
    described: dict[str, Any] = call.run(lambda s: s.workflow(name, version).describe())
    return json_of(described)


@router.get(
    "/workflows/{name}/diagram",
    summary="A workflow's diagram",
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}, "text/plain": {"schema": {"type": "string"}}},
            "description": "SVG (drawn by Graphviz) or, with `format=mermaid`, Mermaid text.",
        },
        **READ,
        503: {
            "description": "Graphviz is not installed: the message, then the Mermaid text.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
    response_model=None,
)
def workflow_diagram(
    request: Request,
    name: Name,
    call: Caller,
    version: Version = None,
    format: Annotated[Literal["svg", "mermaid"], Query()] = "svg",
) -> Response:
    """The version's states and steps as a drawing."""
    wf = call.run(lambda s: s.workflow(name, version))
    if format == "mermaid":
        return Response(diagram.mermaid_text(wf), media_type="text/plain; charset=utf-8")
    try:
        body = diagram.svg(wf, None, request.app.state.settings.dot)
    except diagram.DiagramUnavailable as exc:
        text = f"{exc}\n\n{diagram.mermaid_text(wf)}\n"
        return Response(text, status_code=503, media_type="text/plain; charset=utf-8", headers={"Retry-After": "3600"})
    return Response(body, media_type="image/svg+xml")
