"""Persistence: the schema, connections and migrations. Knows nothing of workflows.

:mod:`db.schema` declares the tables (SQLAlchemy Core: what the engine uses);
:mod:`db.connect` opens a database with casework's settings;
:mod:`db.migrate` runs the Alembic migrations. The ORM classes of
:mod:`db.models` (for tests and scripts) are imported only when one of them is
asked for (PEP 562): the ORM costs start-up time nothing in the engine needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from db.connect import DEFAULT_URL, make_engine, resolve_url
from db.migrate import SCHEMA_HEAD, current_revision, head_revision, upgrade

_MODELS = (
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
)

__all__ = [
    "DEFAULT_URL",
    "SCHEMA_HEAD",
    "current_revision",
    "head_revision",
    "make_engine",
    "resolve_url",
    "upgrade",
    *_MODELS,
]


def __getattr__(name: str) -> Any:
    if name not in _MODELS:
        raise AttributeError(f"module 'db' has no attribute {name!r}")
    value = getattr(importlib.import_module("db.models"), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from db.models import (
        AuditEvent as AuditEvent,
        Base as Base,
        Case as Case,
        CaseKey as CaseKey,
        InboxMessage as InboxMessage,
        JobRun as JobRun,
        Notice as Notice,
        NoticeCase as NoticeCase,
        Objection as Objection,
        OutboxMessage as OutboxMessage,
        RefCounter as RefCounter,
        Timer as Timer,
        User as User,
        WorkflowVersion as WorkflowVersion,
        table_of as table_of,
    )
