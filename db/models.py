"""ORM classes mapped onto the Core tables of :mod:`db.schema`, for tests and ad-hoc scripts.

The engine does not use them (it works on the ``Table`` objects), and
importing this module imports SQLAlchemy's ORM: keep it out of start-up paths.
``Case.ref``, ``Timer.case_id`` … are handy in a test's ``select()``.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase

from db import schema

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
    """Maps onto :data:`db.schema.metadata`: the tables are declared there, once."""

    metadata = schema.metadata


def table_of(model: type[Base]) -> Table:
    """The model's table, typed as the ``Table`` it is (SQLAlchemy declares ``__table__`` a ``FromClause``)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class WorkflowVersion(Base):
    __table__ = schema.workflow_versions


class User(Base):
    __table__ = schema.users


class Case(Base):
    __table__ = schema.cases


class CaseKey(Base):
    __table__ = schema.case_keys


class AuditEvent(Base):
    __table__ = schema.audit_events


class RefCounter(Base):
    __table__ = schema.ref_counters


class OutboxMessage(Base):
    __table__ = schema.outbox


class InboxMessage(Base):
    __table__ = schema.inbox_messages


class Notice(Base):
    __table__ = schema.notices


class NoticeCase(Base):
    __table__ = schema.notice_cases


class Objection(Base):
    __table__ = schema.objections


class Timer(Base):
    __table__ = schema.timers


class JobRun(Base):
    __table__ = schema.job_runs
