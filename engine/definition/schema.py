"""Stage 2: the shape of a workflow file, as pydantic models (format v1).

This stage checks keys, types and value formats; references between parts
(a transition naming a state, a guard reading a field) are stage 4's job
(:mod:`engine.definition.checks`). Every model forbids unknown keys, so a
misspelt key is an error with its line, not silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from engine.definition.model import Duration
from engine.fields import FIELD_TYPES

__all__ = ["MAX_FIELDS", "MAX_STATES", "MAX_TRANSITIONS", "WorkflowSchema"]

MAX_STATES = 200
MAX_TRANSITIONS = 500
MAX_FIELDS = 200

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]
OneOrMany = Name | list[Name]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _duration(value: str) -> str:
    Duration.parse(value)
    return value


Rounding = Literal["half_up", "half_even", "down", "up"]


class ComputeSchema(_Strict):
    """A field's ``compute:``: the engine works the value out (an expression or a decision table), at named steps."""

    expr: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    table: Name | None = None
    output: Name | None = None  # the table's output column; default: the field's own name
    at: OneOrMany  # the transitions at which the value is (re)computed, before their guards run
    round: Rounding = "half_up"
    places: int | None = Field(default=None, ge=0, le=6)  # default: 2 for a decimal (0.01 yuan), 0 for an integer


class LinkSchema(_Strict):
    """A text field's ``link:``: its value is the reference of a case of ``workflow`` in one of ``states``."""

    workflow: Name
    states: OneOrMany
    fill: Annotated[list[Name], Field(max_length=MAX_FIELDS)] = Field(default_factory=list)  # copied from it


class FieldSchema(_Strict):
    type: Literal["text", "integer", "decimal", "date", "choice", "checklist", "cn_id", "email"]
    label: Label | None = None
    required: bool = False
    pii: Literal["name", "id_number", "phone", "address", "other"] | None = None
    unique: Literal["open"] | None = None
    scope: bool = False
    choices: list[Label] | None = Field(default=None, min_length=1, max_length=500)
    items: list[Label] | None = Field(default=None, min_length=1, max_length=100)
    min: int | float | None = None
    max: int | float | None = None
    help: Label | None = None
    compute: ComputeSchema | None = None
    link: LinkSchema | None = None


assert set(FIELD_TYPES) == set(FieldSchema.model_fields["type"].annotation.__args__)  # type: ignore[union-attr]


class TimeoutSchema(_Strict):
    after: str
    fire: Name
    held_to: Name | None = None
    held_template: Name = "timeout_held"

    _after = field_validator("after")(_duration)


class RemindSchema(_Strict):
    before: str
    to: Name
    template: Name = "deadline_reminder"

    _before = field_validator("before")(_duration)


class EscalateSchema(_Strict):
    after: str
    to: Name
    template: Name = "deadline_escalation"

    _after = field_validator("after")(_duration)


#: a state's ``edit:``: role → the fields that role may change there, or ``all``
EditSchema = dict[Name, Literal["all"] | Annotated[list[Name], Field(min_length=1, max_length=MAX_FIELDS)]]


class StateSchema(_Strict):
    label: Label | None = None
    initial: bool = False
    final: bool = False
    void: bool = False
    deadline: str | None = None
    timeout: TimeoutSchema | None = None
    remind: list[RemindSchema] | None = Field(default=None, max_length=5)
    escalate: EscalateSchema | None = None
    notice: Name | None = None
    edit: Annotated[EditSchema, Field(max_length=50)] | None = None

    _deadline = field_validator("deadline")(lambda v: v if v is None else _duration(v))


class ThenSchema(_Strict):
    """A transition's ``then:``: fire ``fire`` on the case whose reference is in field ``case``, same transaction."""

    case: Name
    fire: Name
    comment: Label | None = None


class TransitionSchema(_Strict):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    label: Label | None = None
    from_: OneOrMany = Field(alias="from")
    to: Name
    by: OneOrMany
    when: str | None = None
    unless: str | None = None
    not_by: OneOrMany | None = None
    require: list[Name] | None = None
    comment: Literal["required", "optional"] = "optional"
    explain: Label | None = None
    then: ThenSchema | None = None
    inbox: bool | None = None  # whether a case this step may take waits in its actors' inboxes (default: see docs)


class NotifySchema(_Strict):
    on: Annotated[str, StringConstraints(pattern=r"^(enter|fire) [a-z][a-z0-9_]*$")]
    to: Annotated[str, StringConstraints(pattern=r"^((user|field):)?[a-z][a-z0-9_.-]{0,62}$")]
    template: Name
    channels: list[Name] = Field(default_factory=lambda: ["inbox", "email"], min_length=1, max_length=10)


class ScheduleSchema(_Strict):
    name: Name
    cron: Annotated[str, StringConstraints(min_length=9, max_length=100)]
    action: Literal["overdue_digest", "open_cases"]
    to: Name | None = None
    template: Name | None = None
    working_days_only: bool = False
    workflow: Name | None = None
    from_state: Name | None = None
    link_field: Name | None = None


class PrivacySchema(_Strict):
    id_number: Literal["partial", "omit"] = "partial"


class PublicitySchema(_Strict):
    state: Name
    uphold: Name | None = None
    list_template: Name | None = None
    issuer: Label
    contact: Label


#: one cell of a decision table: a DMN-style unary test on an input ("< 6000", "[6000..10000]", "-", a list of
#: values), or an output (a number, ~, or an expression); see engine.decisions
Cell = str | int | float | list[str | int | float] | None


class TableSchema(_Strict):
    """A decision table (``tables:``): rows of conditions on ``inputs`` → ``outputs``, chosen by a hit policy."""

    hit: Literal["first", "unique"] = "unique"
    inputs: Annotated[list[Name], Field(min_length=1, max_length=20)]
    outputs: Annotated[list[Name], Field(min_length=1, max_length=20)]
    rows: Annotated[list[dict[Name, Cell]], Field(min_length=1, max_length=1000)]
    label: Label | None = None


class TestSchema(_Strict):
    """One case of a workflow's ``tests:``: given these field values, expect these (table or computed) values."""

    given: dict[Name, Cell]
    expect: dict[Name, Cell]
    table: Name | None = None  # test one table's outputs; without it, the computed fields
    name: Label | None = None


class LimitSchema(_Strict):
    """A limit across cases (``limits:``): a sum or count over a key and a period, checked at a step."""

    name: Name
    label: Label | None = None
    sum: Name | None = None  # the field summed; without it, the cases are counted
    key: OneOrMany  # the field (or fields, together) the limit is per (e.g. id_number; [id_number, level])
    period: Literal["year", "all"] = "year"
    states: OneOrMany  # the cases that count: those in these states (and the case at hand)
    at: OneOrMany  # checked when one of these transitions is fired
    max: int | float | str


class ProgrammeSchema(_Strict):
    """What the programme report counts of a workflow's cases (``programme:``): a grant per case."""

    label: Label | None = None  # the programme's name in reports; the workflow's title if absent
    amount: Name  # the (decimal or integer) field holding the amount granted
    people: Name | None = None  # an integer field: how many people the case covers; 1 per case if absent
    granted: OneOrMany  # the states in which the amount counts as granted (paid ones included)
    paid: OneOrMany  # the states in which it counts as paid
    year: Name | None = None  # an integer field naming the programme year; the year the case was opened if absent


class CampaignSchema(_Strict):
    """A yearly campaign on a date a supervisor sets (``campaign:``): one case of this workflow per case of
    workflow ``from`` in ``state``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    label: Label
    from_: Name = Field(alias="from")  # the workflow whose cases it reaches
    state: Name  # one new case per case of that workflow in this state
    link_field: Name  # this workflow's text field set to the reached case's reference
    year_field: Name | None = None  # this workflow's integer field set to the campaign's year
    set_by: Name  # the role of this workflow allowed to set (and cancel) the date


class WorkflowSchema(_Strict):
    workflow: Name
    version: int = Field(ge=1, le=1_000_000)
    title: Label
    timezone: str = "Asia/Shanghai"
    calendar: Name = "cn"
    ref_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,6}$")] | None = None
    roles: dict[Name, Label] = Field(min_length=1, max_length=50)
    fields: dict[Name, FieldSchema] = Field(default_factory=dict, max_length=MAX_FIELDS)
    states: dict[Name, StateSchema] = Field(min_length=1, max_length=MAX_STATES)
    transitions: dict[Name, TransitionSchema] = Field(min_length=1, max_length=MAX_TRANSITIONS)
    notify: list[NotifySchema] = Field(default_factory=list, max_length=200)
    privacy: PrivacySchema = Field(default_factory=PrivacySchema)
    publicity: PublicitySchema | None = None
    schedules: list[ScheduleSchema] = Field(default_factory=list, max_length=20)
    tables: dict[Name, TableSchema] = Field(default_factory=dict, max_length=50)
    tests: list[TestSchema] = Field(default_factory=list, max_length=500)
    limits: list[LimitSchema] = Field(default_factory=list, max_length=20)
    programme: ProgrammeSchema | None = None
    campaign: CampaignSchema | None = None
