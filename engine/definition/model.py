"""Stage 3: the frozen, checked form of a workflow that the runtime uses.

Nothing here knows the database. A :class:`WorkflowDef` is built once per
workflow version and shared by every case on that version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from engine.expressions import Guard
from engine.templates import TemplateSet

__all__ = [
    "EDITED",
    "MOMENTS",
    "OPENED",
    "SYSTEM_ROLE",
    "CampaignDef",
    "ComputeDef",
    "Duration",
    "EditDef",
    "EscalateDef",
    "FieldDef",
    "LimitDef",
    "LinkDef",
    "NotifyDef",
    "ProgrammeDef",
    "PublicityDef",
    "RemindDef",
    "ScheduleDef",
    "StateDef",
    "TableDef",
    "ThenDef",
    "TimeoutDef",
    "TransitionDef",
    "WorkflowDef",
]

SYSTEM_ROLE = "system"

#: a computed field's ``at:`` may name these moments beside steps: when the case is opened, when its data is edited
OPENED = "opened"
EDITED = "edited"
MOMENTS = (OPENED, EDITED)

_DURATION = re.compile(r"^\s*(\d{1,4})\s+(working days?|days?|hours?)\s*$")


@dataclass(frozen=True)
class Duration:
    """``N days``, ``N working days`` or ``N hours``."""

    amount: int
    unit: str  # "working_days" | "days" | "hours"

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse a duration, raising ``ValueError`` with the accepted forms."""
        m = _DURATION.match(text) if isinstance(text, str) else None
        if not m:
            raise ValueError(f"{text!r} is not a duration; write e.g. '5 working days', '7 days' or '48 hours'")
        unit = m.group(2)
        kind = "working_days" if unit.startswith("working") else "days" if unit.startswith("day") else "hours"
        return cls(int(m.group(1)), kind)

    def __str__(self) -> str:
        words = {"working_days": "working day", "days": "day", "hours": "hour"}[self.unit]
        return f"{self.amount} {words}{'s' if self.amount != 1 else ''}"


@dataclass(frozen=True)
class ComputeDef:
    """How a computed field gets its value: ``expr`` or ``table``'s ``output``, rounded, at the steps ``at``."""

    at: tuple[str, ...]
    expr: Guard | None = None
    table: str | None = None
    output: str | None = None
    round: str = "half_up"
    places: int = 2
    reads: tuple[str, ...] = ()  # the fields the value is worked out from (an empty one leaves it empty)

    def describe(self) -> dict[str, Any]:
        """JSON-ready (``workflow show --json``)."""
        how: dict[str, Any] = {"expr": self.expr.text} if self.expr else {"table": self.table, "output": self.output}
        return {**how, "at": list(self.at), "round": self.round, "places": self.places, "reads": list(self.reads)}


@dataclass(frozen=True)
class TableDef:
    """A checked decision table; :func:`engine.decisions.decide` picks its row (``rows``: decisions.Row)."""

    name: str
    hit: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    rows: tuple[Any, ...]  # compiled rows (engine.decisions.Row)
    label: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-ready (``workflow show --json``): the rows as written."""
        return {
            k: v
            for k, v in {
                "label": self.label,
                "hit": self.hit,
                "inputs": list(self.inputs),
                "outputs": list(self.outputs),
                "rows": [dict(r.cells) for r in self.rows],
            }.items()
            if v is not None
        }


@dataclass(frozen=True)
class LimitDef:
    """At most ``max`` of ``sum`` (or cases, if None) per ``key`` and ``period``, over cases in ``states``,
    checked when one of ``at`` is fired."""

    name: str
    label: str
    sum: str | None
    key: tuple[str, ...]  # the fields it is per, together (one, usually)
    period: str  # "year" | "all"
    states: tuple[str, ...]
    at: tuple[str, ...]
    max: Decimal


@dataclass(frozen=True)
class ThenDef:
    """After the step, fire ``fire`` on the case whose reference is in field ``case`` (same transaction)."""

    case: str
    fire: str
    comment: str | None = None


@dataclass(frozen=True)
class LinkDef:
    """A field's ``link:``: it holds the reference of a case of ``workflow`` that must be in one of ``states``
    whenever the value is set and at every step that requires the field; ``fill`` is copied from that case."""

    workflow: str
    states: tuple[str, ...]
    fill: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str
    required: bool = False
    pii: str | None = None
    unique: str | None = None
    scope: bool = False
    choices: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    help: str | None = None
    compute: ComputeDef | None = None
    link: LinkDef | None = None


@dataclass(frozen=True)
class TimeoutDef:
    after: Duration
    fire: str
    held_to: str | None = None
    held_template: str = "timeout_held"


@dataclass(frozen=True)
class RemindDef:
    """Tell ``to`` a while before the deadline."""

    before: Duration
    to: str
    template: str = "deadline_reminder"


@dataclass(frozen=True)
class EscalateDef:
    """Tell ``to`` a while after the deadline passed."""

    after: Duration
    to: str
    template: str = "deadline_escalation"


@dataclass(frozen=True)
class EditDef:
    """Who may change which fields while a case is in a state (a state's ``edit:``, one entry per role)."""

    role: str
    fields: tuple[str, ...]
    every: bool = False  # declared as ``all`` (``fields`` then lists every field)


@dataclass(frozen=True)
class StateDef:
    """A state. ``edit`` is what may be changed in it, resolved at load: declared, or the default rule
    (the initial state: every field, by the roles that act there; any other state: nothing)."""

    name: str
    label: str
    initial: bool = False
    final: bool = False
    void: bool = False
    deadline: Duration | None = None
    timeout: TimeoutDef | None = None
    notice: str | None = None
    remind: tuple[RemindDef, ...] = ()
    escalate: EscalateDef | None = None
    edit: tuple[EditDef, ...] = ()

    def editable(self, roles: Iterable[str]) -> set[str]:
        """The fields a holder of ``roles`` may change in this state."""
        held = set(roles)
        return {f for e in self.edit if e.role in held for f in e.fields}

    def editors(self, fields: Iterable[str]) -> list[str]:
        """The roles that may change every one of ``fields`` in this state (together, not one each)."""
        wanted = set(fields)
        return [e.role for e in self.edit if wanted <= set(e.fields)]


@dataclass(frozen=True)
class TransitionDef:
    name: str
    label: str
    sources: tuple[str, ...]
    dest: str
    by: tuple[str, ...]
    when: Guard | None = None
    unless: Guard | None = None
    not_by: tuple[str, ...] = ()
    require: tuple[str, ...] = ()
    comment_required: bool = False
    explain: str | None = None
    then: ThenDef | None = None
    inbox: bool | None = None  # declared; None: the default rule (engine.access.waits_for)


@dataclass(frozen=True)
class NotifyDef:
    """Tell someone when a case enters a state or a step is fired."""

    on: str  # "enter STATE" | "fire TRIGGER"
    to: str  # "ROLE" | "user:NAME" | "field:FIELD"
    template: str
    channels: tuple[str, ...] = ("inbox", "email")

    @cached_property
    def event(self) -> tuple[str, str]:
        kind, target = self.on.split(" ", 1)
        return kind, target

    @cached_property
    def recipient(self) -> tuple[str, str]:
        """("role" | "user" | "field", name)."""
        if ":" in self.to:
            kind, name = self.to.split(":", 1)
            return kind, name
        return "role", self.to


@dataclass(frozen=True)
class ScheduleDef:
    """A job run at cron times by the scheduler, once per due time (e.g. a daily overdue digest)."""

    name: str
    cron: str
    action: str  # "overdue_digest" | "open_cases"
    to: str | None = None
    template: str | None = None
    working_days_only: bool = False
    workflow: str | None = None  # open_cases: the workflow to open a case of
    from_state: str | None = None  # open_cases: one new case for every case in this state
    link_field: str | None = None  # open_cases: the new case's field that records our case's ref


@dataclass(frozen=True)
class PublicityDef:
    """How this workflow publicises cases (公示): the state, who issues, whom to contact."""

    state: str
    issuer: str
    contact: str
    uphold: str | None = None
    list_template: str | None = None


@dataclass(frozen=True)
class ProgrammeDef:
    """What the programme report counts of this workflow's cases (``programme:``)."""

    label: str
    amount: str
    granted: tuple[str, ...]
    paid: tuple[str, ...]
    people: str | None = None
    year: str | None = None


@dataclass(frozen=True)
class CampaignDef:
    """A yearly campaign on a date set by a holder of ``set_by`` (``campaign:``): when it runs, one case of
    this workflow for every case of ``source`` in ``state``, ``link_field`` holding that case's reference."""

    label: str
    source: str
    state: str
    link_field: str
    set_by: str
    year_field: str | None = None


@dataclass(frozen=True)
class WorkflowDef:
    """A checked workflow version. ``source_hash`` identifies it exactly."""

    name: str
    version: int
    title: str
    timezone: str
    calendar: str
    ref_prefix: str
    roles: Mapping[str, str]
    fields: Mapping[str, FieldDef]
    states: Mapping[str, StateDef]
    transitions: Mapping[str, TransitionDef]
    notify: tuple[NotifyDef, ...]
    source: str = field(repr=False)
    source_hash: str
    file: str
    templates: TemplateSet = field(default_factory=lambda: TemplateSet({}), repr=False)
    id_policy: str = "partial"
    publicity: PublicityDef | None = None
    schedules: tuple[ScheduleDef, ...] = ()
    tables: Mapping[str, TableDef] = field(default_factory=dict)
    limits: tuple[LimitDef, ...] = ()
    programme: ProgrammeDef | None = None
    campaign: CampaignDef | None = None

    @cached_property
    def initial_state(self) -> str:
        return next(s.name for s in self.states.values() if s.initial)

    @cached_property
    def scope_field(self) -> str | None:
        return next((f.name for f in self.fields.values() if f.scope), None)

    @cached_property
    def computed_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields.values() if f.compute is not None)

    @cached_property
    def linked_fields(self) -> tuple[str, ...]:
        """The fields holding a linked case's reference (``link:``); empty for most workflows (no cost)."""
        return tuple(f.name for f in self.fields.values() if f.link is not None)

    @cached_property
    def filled_by(self) -> Mapping[str, str]:
        """Each field a link fills → the link field it is filled from."""
        return {filled: f.name for f in self.fields.values() if f.link is not None for filled in f.link.fill}

    @cached_property
    def unique_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields.values() if f.unique)

    @property
    def pii_fields(self) -> dict[str, str]:
        return {f.name: f.pii for f in self.fields.values() if f.pii}

    def transitions_from(self, state: str) -> list[TransitionDef]:
        return [t for t in self.transitions.values() if state in t.sources]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (``workflow show --json``)."""
        return {
            "workflow": self.name,
            "version": self.version,
            "title": self.title,
            "timezone": self.timezone,
            "calendar": self.calendar,
            "ref_prefix": self.ref_prefix,
            "source_hash": self.source_hash,
            "roles": dict(self.roles),
            "fields": {
                f.name: {
                    k: v
                    for k, v in {
                        "type": f.type,
                        "label": f.label,
                        "required": f.required,
                        "pii": f.pii,
                        "unique": f.unique,
                        "scope": f.scope,
                        "choices": list(f.choices) or None,
                        "items": list(f.items) or None,
                        "min": f.min,
                        "max": f.max,
                        "compute": f.compute.describe() if f.compute else None,
                        "link": {"workflow": f.link.workflow, "states": list(f.link.states), "fill": list(f.link.fill)}
                        if f.link
                        else None,
                    }.items()
                    if v not in (None, False)
                }
                for f in self.fields.values()
            },
            "states": {
                s.name: {
                    k: v
                    for k, v in {
                        "label": s.label,
                        "initial": s.initial,
                        "final": s.final,
                        "void": s.void,
                        "deadline": str(s.deadline) if s.deadline else None,
                        "timeout": {"after": str(s.timeout.after), "fire": s.timeout.fire} if s.timeout else None,
                        "notice": s.notice,
                        "edit": {e.role: "all" if e.every else list(e.fields) for e in s.edit} or None,
                    }.items()
                    if v not in (None, False)
                }
                for s in self.states.values()
            },
            "transitions": {
                t.name: {
                    k: v
                    for k, v in {
                        "label": t.label,
                        "from": list(t.sources),
                        "to": t.dest,
                        "by": list(t.by),
                        "when": t.when.text if t.when else None,
                        "unless": t.unless.text if t.unless else None,
                        "not_by": list(t.not_by) or None,
                        "require": list(t.require) or None,
                        "comment": "required" if t.comment_required else None,
                    }.items()
                    if v is not None
                }
                for t in self.transitions.values()
            },
            **({"tables": {name: t.describe() for name, t in self.tables.items()}} if self.tables else {}),
            **(
                {
                    "campaign": {
                        "label": self.campaign.label,
                        "from": self.campaign.source,
                        "state": self.campaign.state,
                        "link_field": self.campaign.link_field,
                        "year_field": self.campaign.year_field,
                        "set_by": self.campaign.set_by,
                    }
                }
                if self.campaign
                else {}
            ),
        }
