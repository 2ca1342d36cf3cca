"""The tables of casework, as typed SQLAlchemy models.

The engine writes through SQLAlchemy Core on these tables' ``__table__``
objects in its hot path (one round trip per statement, no unit-of-work
overhead); the models are the single declaration of the schema that the
Alembic migrations reproduce.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import JSONType, UTCDateTime

__all__ = [
    "AuditEvent",
    "Base",
    "Case",
    "CaseKey",
    "InboxMessage",
    "JobRun",
    "Notice",
    "NoticeCase",
    "Objection",
    "OutboxMessage",
    "RefCounter",
    "Timer",
    "User",
    "WorkflowVersion",
    "table_of",
]


class Base(DeclarativeBase):
    pass


def table_of(model: type[Base]) -> Table:
    """The model's table, typed as the ``Table`` it is (SQLAlchemy declares ``__table__`` a ``FromClause``)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class WorkflowVersion(Base):
    """An immutable, loaded version of a workflow: its exact source and hash."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_workflow_versions_name_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    source_hash: Mapped[str] = mapped_column(String(64))
    templates: Mapped[dict[str, str]] = mapped_column(JSONType)
    loaded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class User(Base):
    """Someone who acts on cases, with roles and the scopes (counties) they cover."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    roles: Mapped[list[str]] = mapped_column(JSONType)
    scopes: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Case(Base):
    """One case (an archive), pinned to the workflow version it started on.

    ``version`` is the optimistic-lock counter: every change is an
    ``UPDATE ... WHERE version = :seen``. ``audit_seq``/``audit_head`` mirror
    the last audit event so that deleting the newest event is detectable.
    ``fired_by`` maps each trigger to everyone who fired it (four-eyes).
    """

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_workflow_state", "workflow", "state"),
        Index("ix_cases_scope_state", "scope", "state"),
        Index("ix_cases_deadline", "deadline_at"),
        # the inbox (engine.queries.waiting_for): one range per (version, state[, scope]), in deadline order
        Index("ix_cases_inbox", "workflow_version_id", "state", "paused_at", "deadline_at", "id"),
        Index("ix_cases_inbox_scope", "workflow_version_id", "state", "scope", "paused_at", "deadline_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    workflow: Mapped[str] = mapped_column(String(63))
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"))
    state: Mapped[str] = mapped_column(String(63))
    scope: Mapped[str | None] = mapped_column(String(200), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fired_by: Mapped[dict[str, list[str]]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    audit_seq: Mapped[int] = mapped_column(Integer)
    audit_head: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, nullable=True)
    deadline_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deadline_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    paused_left: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_by: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CaseKey(Base):
    """Claims a unique field value (e.g. an ID number) for one case.

    The unique constraint, not a prior SELECT, is what makes "a household is
    filed once" hold under concurrent creation (DOMAIN.md: real-name management).
    """

    __tablename__ = "case_keys"
    __table_args__ = (UniqueConstraint("workflow", "field", "value", name="uq_case_keys_value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow: Mapped[str] = mapped_column(String(63))
    field: Mapped[str] = mapped_column(String(63))
    value: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)


class AuditEvent(Base):
    """One append-only, hash-chained event in a case's history."""

    __tablename__ = "audit_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_audit_events_case_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(63))
    role: Mapped[str | None] = mapped_column(String(63), nullable=True)
    action: Mapped[str] = mapped_column(String(40))
    trigger: Mapped[str | None] = mapped_column(String(63), nullable=True)
    from_state: Mapped[str | None] = mapped_column(String(63), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(63), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class RefCounter(Base):
    """The last number handed out per reference prefix and year."""

    __tablename__ = "ref_counters"

    prefix: Mapped[str] = mapped_column(String(10), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class OutboxMessage(Base):
    """Something to deliver, written in the same transaction as the change that caused it.

    ``key`` is the idempotency key (one row per event, rule, channel and
    recipient). ``status``: pending → sending (claimed, ``lease_until``) →
    sent; or failed (retried at ``next_attempt_at``) → dead after the last attempt.
    ``kind`` is ``message`` (rendered from a template for a person or endpoint)
    or ``notice`` (a public notice to generate).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    event_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"))
    channel: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(String(63))
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class InboxMessage(Base):
    """An in-app message; ``outbox_id`` is unique, so a delivery lands exactly once."""

    __tablename__ = "inbox_messages"
    __table_args__ = (Index("ix_inbox_user", "username", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), unique=True)
    username: Mapped[str] = mapped_column(String(63))
    case_ref: Mapped[str | None] = mapped_column(String(40), nullable=True)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Notice(Base):
    """A generated public notice (公示): its exact HTML and SHA-256.

    ``kind`` is ``case`` (one case entering publicity) or ``list`` (a batch
    公示名单 for one scope). ``key`` makes generation idempotent.
    """

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    workflow: Mapped[str] = mapped_column(String(63))
    scope: Mapped[str | None] = mapped_column(String(200), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    html: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    period_start: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    period_end: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NoticeCase(Base):
    """Which cases a notice lists, in order."""

    __tablename__ = "notice_cases"
    __table_args__ = (UniqueConstraint("notice_id", "case_id", name="uq_notice_cases_notice_case"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(10))
    position: Mapped[int] = mapped_column(Integer)


class Objection(Base):
    """An objection (异议) raised during publicity; open ones hold the end of publicity."""

    __tablename__ = "objections"
    __table_args__ = (Index("ix_objections_case_status", "case_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    channel: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    received_by: Mapped[str] = mapped_column(String(63))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10))
    resolved_by: Mapped[str | None] = mapped_column(String(63), nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)


class Timer(Base):
    """A durable timer: a reminder, an escalation or an automatic step, due at ``due_at``.

    Written in the same transaction as the state change that starts it;
    cancelled (``status='cancelled'``) when the case leaves ``state``. The
    sweeper fires a due ``pending`` timer and marks it ``fired`` in one
    transaction with its effect, so each fires once. ``held_at`` records that
    a guard held an automatic step (reported once, retried on later sweeps).
    """

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_due", "status", "due_at"),
        Index("ix_timers_case", "case_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(63))
    entered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    provisional: Mapped[bool] = mapped_column(Boolean)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12))
    held_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of a scheduled job (a ``schedules:`` entry) for one due time.

    The unique (job, fire_time) row is what makes a cron job run once per due
    time however many scheduler processes see it due.
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "fire_time", name="uq_job_runs_job_fire_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(130))
    fire_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ran_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(200))
