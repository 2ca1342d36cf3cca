"""The tables the engine reads and writes, and a typed row for each it reads whole.

A row type is a ``NamedTuple`` whose fields are the table's columns in
table order, so a SQLAlchemy ``Row`` of ``select(table)`` becomes one with
``RowType._make(row)`` — no copying per column — and every read is typed.
:func:`check_row_types` (run by the unit tests) proves each row type still
matches its table.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import Table

from db.schema import (
    access_log,
    audit_events as events,
    case_keys as keys,
    cases,
    inbox_messages,
    job_runs,
    notice_cases,
    notices,
    objections,
    outbox,
    ref_counters as counters,
    timers,
    users,
    workflow_versions as versions,
)

__all__ = [
    "CaseRow",
    "EventRow",
    "NoticeRow",
    "ObjectionRow",
    "TimerRow",
    "UserRow",
    "VersionRow",
    "access_log",
    "cases",
    "check_row_types",
    "counters",
    "events",
    "inbox_messages",
    "job_runs",
    "keys",
    "notice_cases",
    "notices",
    "objections",
    "outbox",
    "timers",
    "users",
    "versions",
]


class CaseRow(NamedTuple):
    """A ``cases`` row."""

    id: int
    ref: str
    workflow: str
    workflow_version_id: int
    state: str
    scope: str | None
    data: dict[str, Any]
    fired_by: dict[str, list[str]]
    version: int
    audit_seq: int
    audit_head: str
    entered_at: dt.datetime
    deadline_at: dt.datetime | None
    deadline_provisional: bool
    paused_at: dt.datetime | None
    paused_left: dict[str, Any] | None
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    audit_seal: str | None


class UserRow(NamedTuple):
    """A ``users`` row."""

    id: int
    username: str
    name: str
    email: str | None
    roles: list[str]
    scopes: list[str]
    created_at: dt.datetime
    disabled_at: dt.datetime | None
    #: read only by engine.logins (an Argon2id hash; None: no web login)
    password_hash: str | None = None
    password_set_at: dt.datetime | None = None


class VersionRow(NamedTuple):
    """A ``workflow_versions`` row: one immutable loaded version."""

    id: int
    name: str
    version: int
    title: str
    source: str
    source_hash: str
    templates: dict[str, str]
    loaded_at: dt.datetime
    loaded_by: str | None
    weakened: list[str] | None


class EventRow(NamedTuple):
    """An ``audit_events`` row."""

    id: int
    case_id: int
    seq: int
    at: dt.datetime
    actor: str
    role: str | None
    action: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    changes: dict[str, Any]
    prev_hash: str
    hash: str
    context: dict[str, Any] | None


class TimerRow(NamedTuple):
    """A ``timers`` row."""

    id: int
    case_id: int
    kind: str
    state: str
    entered_at: dt.datetime
    due_at: dt.datetime
    provisional: bool
    payload: dict[str, Any]
    status: str
    held_at: dt.datetime | None
    fired_at: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime


class ObjectionRow(NamedTuple):
    """An ``objections`` row."""

    id: int
    case_id: int
    channel: str
    text: str
    received_by: str
    received_at: dt.datetime
    status: str
    resolved_by: str | None
    resolved_at: dt.datetime | None
    comment: str | None


class NoticeRow(NamedTuple):
    """A ``notices`` row."""

    id: int
    key: str
    number: str
    kind: str
    workflow: str
    scope: str | None
    title: str
    html: str
    sha256: str
    context: dict[str, Any]
    period_start: dt.date | None
    period_end: dt.date | None
    created_at: dt.datetime


_ROW_TYPES: dict[type[Any], Table] = {
    CaseRow: cases,
    UserRow: users,
    VersionRow: versions,
    EventRow: events,
    TimerRow: timers,
    ObjectionRow: objections,
    NoticeRow: notices,
}


def check_row_types() -> list[str]:
    """Row types whose fields are not their table's columns in order (empty when all match)."""
    return [
        f"{row_type.__name__}: {row_type._fields} != {tuple(c.name for c in table.columns)}"
        for row_type, table in _ROW_TYPES.items()
        if row_type._fields != tuple(c.name for c in table.columns)
    ]
