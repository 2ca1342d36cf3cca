"""One step on many cases: what the inbox's bulk step does, for a system that works through a list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.responses import Response

from casework.api.bodies import BulkStep
from casework.api.deps import Caller, hidden
from casework.api.responses import CHANGE, json_of
from engine import CaseNotFound, Code
from engine.models import FireManyReport

__all__ = ["router"]

router = APIRouter(tags=["cases"])


@router.post(
    "/steps/{trigger}",
    summary="Take one step on many cases",
    responses={200: {"model": FireManyReport}, **CHANGE},
    response_model=None,
)
def take_steps(trigger: Annotated[str, Path(min_length=1, max_length=63)], body: BulkStep, call: Caller) -> Response:
    """Take ``trigger`` on each case (at most 200) at the version given for it, with one comment.

    Each case gets every check a single step makes; a refused one is listed with its code and facts and
    the others go ahead. A case of another county is listed as not found, exactly as a missing one.
    """
    versions = {c.ref: c.version for c in body.cases}
    report = call.run(
        lambda s: s.fire_many(list(versions), trigger, call.user, comment=body.comment, versions=versions)
    )
    found = report.to_json()
    found["refused"] = [_hidden(r) for r in found["refused"]]
    return json_of(found)


def _hidden(refused: dict[str, Any]) -> dict[str, Any]:
    """A refusal for a case outside the caller's counties, worded as for a case that does not exist (and a case
    that does not exist worded as a single step words it)."""
    if refused["code"] != Code.CASE_NOT_FOUND and not hidden(refused["ref"], refused["code"], refused["facts"]):
        return refused
    missing = CaseNotFound(refused["ref"])
    return {"ref": refused["ref"], "reason": missing.message, "code": str(missing.code), "facts": missing.facts}
