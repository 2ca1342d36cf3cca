"""The read models: what the engine returns, typed, with one way to become JSON.

Each is a pydantic model; :meth:`ReadModel.to_json` is the only JSON form —
the CLI's ``--json`` prints it, and the HTTP API will serve it (its OpenAPI
schema comes from the same models). Times are shown in the model's
``timezone`` (the workflow's, Asia/Shanghai by default) as ISO 8601 with the
offset; the ``timezone`` itself is not part of the JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, computed_field, field_serializer

__all__ = [
    "AccessEntry",
    "Action",
    "AuditRecord",
    "CaseView",
    "ChainBreak",
    "FireManyReport",
    "ImportReport",
    "InboxPage",
    "InvariantReport",
    "MigrationBlock",
    "MigrationGroup",
    "MigrationReport",
    "NoticeView",
    "ObjectionView",
    "ReadModel",
    "Refused",
    "Report",
    "RowProblem",
    "SweepReport",
    "TimerView",
    "UserInfo",
    "VerifyReport",
    "Violation",
    "WorkflowInfo",
    "WorkflowVersion",
    "iso",
]

DEFAULT_TZ = "Asia/Shanghai"


def iso(at: dt.datetime | None, tz: str = DEFAULT_TZ) -> str | None:
    """ISO 8601 with offset, in ``tz``, to the second."""
    if at is None:
        return None
    return at.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


class ReadModel(BaseModel):
    """Base of the read models: immutable, times shown in :attr:`timezone`."""

    # defer_build: a model's validator and serializer are built when it is first used, not at import
    # (a command shows two or three of these models, and start-up time is the CLI's main cost)
    model_config = ConfigDict(frozen=True, populate_by_name=True, defer_build=True)

    timezone: str = Field(default=DEFAULT_TZ, exclude=True)

    # no return annotation on purpose: pydantic would take it (Any) as every field's serialized type, and the
    # JSON schema of every read model (the HTTP API's OpenAPI document) would lose its types
    @field_serializer("*", mode="wrap", when_used="json")
    def _local_time(self, value: Any, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        if isinstance(value, dt.datetime):
            return iso(value, self.timezone)
        return handler(value)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the shapes ``docs/json.md`` documents)."""
        return self.model_dump(mode="json", by_alias=True)


class UserInfo(ReadModel):
    """A user: roles, and the scopes (counties; ``*`` = all) they cover."""

    username: str
    name: str
    email: str | None = None
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: dt.datetime
    #: set while the user is disabled: they cannot act and are told nothing
    disabled_at: dt.datetime | None = None


class AccessEntry(ReadModel):
    """One entry of the access log: who read full personal data (or changed a user) through the console, and what."""

    id: int
    at: dt.datetime
    os_user: str
    host: str
    actor: str | None
    action: str
    detail: dict[str, Any]


class WorkflowInfo(ReadModel):
    """One loaded workflow version."""

    name: str = Field(serialization_alias="workflow")
    version: int
    title: str
    source_hash: str
    loaded_at: dt.datetime
    cases: int
    latest: bool


class WorkflowVersion(ReadModel):
    """One stored version in a workflow's history: who loaded it, and which weakened controls they accepted."""

    name: str = Field(serialization_alias="workflow")
    version: int
    title: str
    source_hash: str
    loaded_at: dt.datetime
    loaded_by: str | None
    weakened: tuple[str, ...]
    cases: int


class Action(ReadModel):
    """A step the asking user may take now."""

    trigger: str
    label: str
    to: str
    comment_required: bool


class CaseView(ReadModel):
    """A case as a user sees it: state, data, deadline; with ``actions`` when asked for a user."""

    ref: str
    workflow: str
    workflow_version: int
    state: str
    state_label: str
    final: bool
    scope: str | None
    data: dict[str, Any]
    version: int
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deadline: dt.datetime | None = None
    overdue: bool = False
    deadline_provisional: bool = Field(default=False, serialization_alias="provisional")
    paused: bool = False
    time_left: str | None = None
    #: the same as data ({"unit": "working_days", "amount": 3}; a paused clock's remainder), for a shell to
    #: word in its own language (not in JSON: ``time_left`` says it there)
    left: dict[str, Any] | None = Field(default=None, exclude=True)
    actions: tuple[Action, ...] | None = Field(default=None, exclude_if=lambda v: v is None)
    #: with ``actions``: the fields the user may change now (an edit), and what they may do to the deadline
    #: clock now (``pause``, ``resume`` or None)
    editable: tuple[str, ...] | None = Field(default=None, exclude_if=lambda v: v is None)
    clock: Literal["pause", "resume"] | None = Field(default=None, exclude_if=lambda v: v is None)
    #: this is the answer to a retried request (the same Idempotency-Key): the case as it is now, not changed
    #: again (not in JSON)
    replayed: bool = Field(default=False, exclude=True)


class AuditRecord(ReadModel):
    """One audit event, personal data masked."""

    seq: int
    at: dt.datetime
    actor: str
    role: str | None
    action: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    changes: dict[str, list[Any]]
    hash: str
    #: where the event was written from: the operating-system user and host (None before it was recorded)
    origin: dict[str, str] | None = None


class ChainBreak(ReadModel):
    """The first place a case's audit chain does not hold, and why."""

    ref: str
    seq: int | None
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event seq {self.seq} (id {self.event_id})" if self.seq is not None else "its trail"
        return f"case {self.ref}: {where}: {self.reason}"


class Report(ReadModel):
    """Base of the reports an operation fills in as it goes (mutable, unlike the views)."""

    model_config = ConfigDict(frozen=False)


class Violation(ReadModel):
    """One broken invariant on one case."""

    check: str
    ref: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.ref}: {self.detail}"


#: per check: enough to act on, bounded for a badly broken database
MAX_LISTED = 1000


class Findings(Report):
    """Findings by check name (up to 1,000 listed per check), and whether trail heads were authenticated."""

    violations: list[Violation] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    #: trail heads were checked against their HMAC seals (an audit key was configured)
    authenticated: bool = False

    def add(self, check: str, ref: str, detail: str) -> None:
        """Record a finding (listed while under :data:`MAX_LISTED` of its check)."""
        self.counts[check] = self.counts.get(check, 0) + 1
        if self.counts[check] <= MAX_LISTED:
            self.violations.append(Violation(check=check, ref=ref, detail=detail))


class VerifyReport(Findings):
    """How many chains and events were checked, where each broken one breaks, and what else disagrees.

    ``violations`` are what the trail contradicts in the stored data (a
    replay that differs, a missing or wrong seal, a deleted case, a changed
    workflow source or notice, a damaged file).
    """

    cases: int = 0
    events: int = 0
    breaks: list[ChainBreak] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Every chain holds and nothing contradicts it."""
        return not self.breaks and not self.counts


class InboxPage(ReadModel):
    """One page of what waits for a user, soonest deadline first; ``has_more``: a next page exists."""

    page: int
    per_page: int
    has_more: bool
    items: list[CaseView]


class ObjectionView(ReadModel):
    """An objection (异议) raised during publicity."""

    id: int
    ref: str
    channel: str
    text: str
    received_by: str
    received_at: dt.datetime
    status: str
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None
    comment: str | None = None


class NoticeView(ReadModel):
    """A published notice; ``html`` and ``context`` are its exact stored content (not in the JSON listing)."""

    id: int
    number: str
    kind: str
    workflow: str
    scope: str | None
    title: str
    sha256: str
    period_start: dt.date | None
    period_end: dt.date | None
    created_at: dt.datetime
    cases: tuple[str, ...]
    html: str = Field(exclude=True)
    context: dict[str, Any] = Field(exclude=True)


class TimerView(ReadModel):
    """A timer: a reminder, an escalation or an automatic step."""

    id: int
    case_ref: str
    kind: str
    state: str
    due_at: dt.datetime
    provisional: bool
    status: str
    payload: dict[str, Any]
    held_at: dt.datetime | None
    fired_at: dt.datetime | None
    last_error: str | None


class SweepReport(Report):
    """What one sweep of due timers did."""

    fired: int = 0
    held: int = 0
    discarded: int = 0
    failed: int = 0
    errors: list[str] = Field(default_factory=list)


class RowProblem(ReadModel):
    """What is wrong with one row of an import file (``line`` as the file counts it)."""

    line: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.problems)


class ImportReport(Report):
    """What an import did: the refs created, in file order (their number in JSON), and the rows skipped."""

    imported: list[str] = Field(default_factory=list)
    skipped: list[RowProblem] = Field(default_factory=list)

    @field_serializer("imported")
    def _count(self, refs: list[str]) -> int:
        return len(refs)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def first_ref(self) -> str | None:
        """The first case opened."""
        return self.imported[0] if self.imported else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def last_ref(self) -> str | None:
        """The last case opened."""
        return self.imported[-1] if self.imported else None


class Refused(ReadModel):
    """A case a bulk step refused, and why (the refusal's code, facts and default message)."""

    ref: str
    reason: str
    code: str
    facts: dict[str, Any]


class FireManyReport(Report):
    """What a bulk step did: refs fired, and refs refused with the reason."""

    trigger: str
    fired: list[str] = Field(default_factory=list)
    refused: list[Refused] = Field(default_factory=list)


class MigrationBlock(ReadModel):
    """Why some cases of one state stay on their version: a reason, what it is about, how many, the first refs."""

    reason: str
    detail: str
    cases: int = 0
    refs: list[str] = Field(default_factory=list)


class MigrationGroup(ReadModel):
    """The cases in one state of one old version: where they would go, how many move, why the others stay."""

    model_config = ConfigDict(frozen=False)

    from_version: int
    state: str
    to_state: str | None
    cases: int = 0
    movable: int = 0
    moved: int = 0
    blocked: list[MigrationBlock] = Field(default_factory=list)


class MigrationReport(Report):
    """What moving a workflow's cases to a newer version would do (``dry_run``) or did.

    ``groups`` has one entry per (old version, state) holding cases;
    ``strands`` is why the move is refused (empty when it may go ahead).
    """

    workflow: str
    to_version: int
    mapping: dict[str, str] = Field(default_factory=dict)
    dry_run: bool = True
    groups: list[MigrationGroup] = Field(default_factory=list)
    strands: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cases(self) -> int:
        """Cases on older versions of the workflow."""
        return sum(g.cases for g in self.groups)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def movable(self) -> int:
        """Of them, the ones that can move."""
        return sum(g.movable for g in self.groups)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def moved(self) -> int:
        """Of them, the ones moved (0 in a dry run)."""
        return sum(g.moved for g in self.groups)


class InvariantReport(Findings):
    """How many cases and events were checked, and every violation found (up to 1,000 per check)."""

    cases: int = 0
    events: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No invariant is violated."""
        return not self.counts
