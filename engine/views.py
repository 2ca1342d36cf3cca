"""Read-only values the service returns: cases, users, audit records, reports.

Each has ``to_json()`` giving the stable shapes documented in the README.
Times are shown in the workflow's timezone, as ISO 8601 with the offset.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["Action", "AuditRecord", "CaseView", "InboxPage", "UserInfo", "VerifyReport", "WorkflowInfo"]


def iso(at: dt.datetime | None, tz: str = "Asia/Shanghai") -> str | None:
    """ISO 8601 with offset, in ``tz``."""
    if at is None:
        return None
    return at.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds")


@dataclass(frozen=True)
class UserInfo:
    username: str
    name: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: dt.datetime
    email: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            "email": self.email,
            "roles": list(self.roles),
            "scopes": list(self.scopes),
            "created_at": iso(self.created_at),
        }


@dataclass(frozen=True)
class WorkflowInfo:
    name: str
    version: int
    title: str
    source_hash: str
    loaded_at: dt.datetime
    cases: int
    latest: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.name,
            "version": self.version,
            "title": self.title,
            "source_hash": self.source_hash,
            "loaded_at": iso(self.loaded_at),
            "cases": self.cases,
            "latest": self.latest,
        }


@dataclass(frozen=True)
class Action:
    """A trigger the asking user may fire now."""

    trigger: str
    label: str
    to: str
    comment_required: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "label": self.label,
            "to": self.to,
            "comment_required": self.comment_required,
        }


@dataclass(frozen=True)
class CaseView:
    ref: str
    workflow: str
    workflow_version: int
    state: str
    state_label: str
    final: bool
    data: dict[str, Any]
    scope: str | None
    version: int
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    timezone: str = "Asia/Shanghai"
    actions: tuple[Action, ...] | None = None
    deadline: dt.datetime | None = None
    deadline_provisional: bool = False
    paused: bool = False
    overdue: bool = False
    time_left: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ref": self.ref,
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "state": self.state,
            "state_label": self.state_label,
            "final": self.final,
            "scope": self.scope,
            "data": dict(self.data),
            "version": self.version,
            "created_by": self.created_by,
            "created_at": iso(self.created_at, self.timezone),
            "updated_at": iso(self.updated_at, self.timezone),
            "deadline": iso(self.deadline, self.timezone),
            "overdue": self.overdue,
            "provisional": self.deadline_provisional,
            "paused": self.paused,
            "time_left": self.time_left,
        }
        if self.actions is not None:
            out["actions"] = [a.to_json() for a in self.actions]
        return out


@dataclass(frozen=True)
class AuditRecord:
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
    timezone: str = "Asia/Shanghai"

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": iso(self.at, self.timezone),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "trigger": self.trigger,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "comment": self.comment,
            "changes": {k: list(v) for k, v in self.changes.items()},
            "hash": self.hash,
        }


@dataclass
class VerifyReport:
    cases: int = 0
    events: int = 0
    breaks: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "cases": self.cases,
            "events": self.events,
            "breaks": [{"ref": b.ref, "seq": b.seq, "event_id": b.event_id, "reason": b.reason} for b in self.breaks],
        }


@dataclass(frozen=True)
class InboxPage:
    """One page of a user's inbox (:meth:`engine.Casework.waiting_for`): cases by deadline, soonest first.

    ``has_more`` says whether a next page exists (one row beyond this page was found).
    """

    items: list[CaseView]
    page: int
    per_page: int
    has_more: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "has_more": self.has_more,
            "items": [v.to_json() for v in self.items],
        }
