"""The answers operations share: JSON bodies, and the problems each kind of operation may answer with."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from casework.api.problems import Problem

__all__ = ["CHANGE", "READ", "json_of"]


def _problems(*statuses: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": Problem, "description": about} for status, about in statuses}


_ALWAYS = ((401, "No valid token."), (422, "A parameter or the body is not as described (`errors`, per field)."),
           (429, "Too many requests: `Retry-After` says when to retry."),
           (500, "The server failed (a defect: nothing is meant to answer this)."),
           (503, "The database cannot be used now: retry later."))  # fmt: skip

#: what a read may answer besides success
READ = _problems(
    *_ALWAYS, (403, "The token's user may not do this."), (404, "No such thing (or not in your counties).")
)

#: what a change may answer besides success
CHANGE = _problems(
    *_ALWAYS,
    (403, "The token's user may not do this (role, county, four eyes)."),
    (404, "No such case (or not in your counties)."),
    (409, "The case's state or data does not allow it now (`code` says why)."),
    (412, "If-Match names a version the case is no longer at: read it again."),
    (428, "If-Match is missing: send the case's ETag."),
    (413, "The body is larger than the API reads (1 MB by default)."),
)


def json_of(content: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    """``content`` as a JSON response."""
    return JSONResponse(content, status_code=status, headers=headers)
