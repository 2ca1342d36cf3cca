"""The JSON bodies the API accepts (anything else in them is refused with 422, field by field)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.limits import OBJECTION_CHANNELS

__all__ = [
    "BulkStep",
    "CaseAt",
    "CaseChange",
    "CaseOpen",
    "ObjectionNew",
    "ObjectionResolution",
    "PauseBody",
    "ResumeBody",
    "StepBody",
]

Channel = Literal[OBJECTION_CHANNELS]  # type: ignore[valid-type]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: an opening of the bundled workflow that its submit step accepts (clients and fuzzers start from it)
_OPENING: dict[str, Any] = {
    "workflow": "poverty_archive",
    "data": {
        "applicant_name": "王秀英",
        "id_number": "350602199002020045",
        "household_type": "低保户",
        "county": "芗城区",
        "household_size": 3,
        "income_per_capita": "650.00",
        "cause": "因病致困",
        "materials": ["申请表", "身份证", "户口簿", "收入证明"],
    },
}


class CaseOpen(_Body):
    """A new case: its workflow (the latest version) and its data, as the workflow's fields name it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_OPENING]})

    workflow: str = Field(min_length=1, max_length=63, examples=["poverty_archive"])
    data: dict[str, Any] = Field(description="Field name → value; the workflow decides which fields exist.")


class CaseChange(_Body):
    """Fields to change on a case (audited with old → new)."""

    data: dict[str, Any] = Field(min_length=1)


class StepBody(_Body):
    """A step's comment and the data it brings (both optional unless the step needs them)."""

    comment: str | None = Field(default=None, max_length=2000)
    data: dict[str, Any] | None = None


class PauseBody(_Body):
    """Why the deadline clock stops (补正: what is missing)."""

    reason: str = Field(min_length=1, max_length=2000)


class ResumeBody(_Body):
    """A note on restarting the clock."""

    comment: str | None = Field(default=None, max_length=2000)


class ObjectionNew(_Body):
    """An objection received during publicity, and how it came in."""

    text: str = Field(min_length=1, max_length=2000)
    channel: Channel = "电话"


class ObjectionResolution(_Body):
    """How an open objection is closed, and why."""

    outcome: Literal["upheld", "dismissed"]
    comment: str = Field(min_length=1, max_length=2000)


class CaseAt(_Body):
    """A case and the version (its ETag) the step was decided on."""

    ref: str = Field(min_length=1, max_length=40)
    version: int = Field(ge=1, le=2**31 - 1)


class BulkStep(_Body):
    """One step on many cases, each at the version it was seen at."""

    cases: list[CaseAt] = Field(min_length=1, max_length=200)
    comment: str | None = Field(default=None, max_length=2000)
