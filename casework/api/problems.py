"""Refusals as RFC 9457 problem details: the engine's code and facts, under the HTTP status that fits.

Every answer that is not a success is ``application/problem+json``::

    {"type": "urn:casework:problem:four_eyes", "title": "four eyes", "status": 403,
     "detail": "<the engine's message>", "code": "four_eyes", "facts": {...}, "errors": [...]}

``code`` and ``facts`` are exactly what the command line's ``--json`` prints
for the same refusal (``docs/refusals.md`` lists them); ``errors`` (for 422)
has one entry per field. A refusal changes nothing, whatever its status.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

from engine import CaseworkError, Code, InputError, NotFound, PermissionDenied, StorageError, TokenRefused
from engine.errors import InvalidCaseData

__all__ = ["FieldError", "Problem", "problem", "problem_response", "status_of"]

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """What is wrong with one field of a request (a body field, a header, a query parameter)."""

    field: str = Field(description="Where: `data.amount`, `body.comment`, `query.limit`, `header.If-Match` …")
    message: str
    kind: str | None = Field(default=None, description="A stable name of the problem, e.g. `above_max`.")
    params: dict[str, Any] | None = None


class Problem(BaseModel):
    """An RFC 9457 problem: what went wrong, and the engine's refusal code and facts. Nothing was changed."""

    type: str = Field(description="`urn:casework:problem:<code>`")
    title: str
    status: int
    detail: str = Field(description="The engine's message, written for the person who reads it.")
    code: str = Field(description="The stable refusal code (docs/refusals.md).")
    facts: dict[str, Any] = Field(default_factory=dict, description="What the refusal is about, by name.")
    errors: list[FieldError] | None = Field(default=None, description="For 422: one entry per field.")


# a code's status where its class does not decide it
_STATUS: dict[Code, int] = {
    Code.TOKEN_INVALID: 401,
    Code.RATE_LIMITED: 429,
    Code.ROLE_NEEDED: 403,
    Code.SCOPE_NOT_COVERED: 403,
    Code.SYSTEM_RESERVED: 403,
    Code.USER_DISABLED: 403,
    Code.FOUR_EYES: 403,
    Code.NOT_STAFF: 403,
    Code.NOT_EDITABLE: 403,
    Code.FINAL_STATE: 409,
    Code.INVALID_DATA: 422,
    Code.MISSING_FIELDS: 422,
    Code.COMMENT_REQUIRED: 422,
    Code.OBJECTION_TEXT_REQUIRED: 422,
    Code.INVALID_INPUT: 422,
    Code.UNKNOWN_STEP: 422,
    Code.IDEMPOTENCY_KEY_REUSED: 422,
    Code.PRECONDITION_REQUIRED: 428,
    Code.PDF_UNAVAILABLE: 503,
    Code.DATABASE_UNUSABLE: 503,
}


def status_of(exc: CaseworkError, *, precondition: bool = False) -> int:
    """The HTTP status of a refusal: 401/403/404/409/412/422/428/429/503.

    ``precondition``: the request's If-Match named a version, so a conflict over the version is its 412
    (without one, a case changed meanwhile is a 409 like any other conflict).
    """
    if exc.code is Code.CONFLICT and "expected_version" in exc.facts and precondition:
        return 412  # If-Match named a version the case is no longer at
    if exc.code in _STATUS:
        return _STATUS[exc.code]
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, TokenRefused):
        return 401
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, (InputError, InvalidCaseData)):
        return 422
    if isinstance(exc, StorageError):
        return 503
    return 409  # the case's state or data does not allow it now


def problem(exc: CaseworkError, *, precondition: bool = False) -> Problem:
    """The problem document of a refusal (``precondition``: see :func:`status_of`)."""
    errors = None
    if isinstance(exc, InvalidCaseData):
        errors = [
            FieldError(field=f"data.{p.field}", message=p.message, kind=p.kind, params=dict(p.params) or None)
            for p in exc.problems
        ]
    elif exc.code is Code.MISSING_FIELDS:
        errors = [
            FieldError(field=f"data.{name}", message="is required for this step", kind="required")
            for name in exc.facts.get("fields", [])
        ]
    return Problem(
        type=f"urn:casework:problem:{exc.code}",
        title=str(exc.code).replace("_", " "),
        status=status_of(exc, precondition=precondition),
        detail=exc.message,
        code=str(exc.code),
        facts=_jsonable(exc.facts),
        errors=errors,
    )


def problem_response(doc: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """``doc`` as an ``application/problem+json`` response."""
    return JSONResponse(
        doc.model_dump(mode="json", exclude_none=True), status_code=doc.status, headers=headers, media_type=PROBLEM_JSON
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
