"""Persistence: the schema, connections and migrations. Knows nothing of workflows."""

from __future__ import annotations

from db.connect import DEFAULT_URL, make_engine, resolve_url
from db.migrate import SCHEMA_HEAD, current_revision, head_revision, upgrade
from db.models import (
    AuditEvent,
    Base,
    Case,
    CaseKey,
    InboxMessage,
    JobRun,
    Notice,
    NoticeCase,
    Objection,
    OutboxMessage,
    RefCounter,
    Timer,
    User,
    WorkflowVersion,
    table_of,
)

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_HEAD",
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
    "current_revision",
    "head_revision",
    "make_engine",
    "resolve_url",
    "table_of",
    "upgrade",
]
