"""Reading cases: one case with what a user may do now, lists, to-do lists, history, audit verification.

Part of the :class:`engine.Casework` service (mixed in). Reads change
nothing; each runs on one connection and applies the same visibility rule as
changes (a user sees the cases in their scopes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, select

from db.models import AuditEvent, Case, WorkflowVersion
from engine.access import ALL_SCOPES
from engine.audit import verify_chain
from engine.errors import CaseNotFound, InputError, TransitionRefused
from engine.masking import mask_value
from engine.suggest import did_you_mean
from engine.views import Action, AuditRecord, CaseView, VerifyReport

__all__ = ["QueriesMixin"]

_cases = Case.__table__
_events = AuditEvent.__table__
_versions = WorkflowVersion.__table__


class QueriesMixin:
    """Reads; mixed into :class:`engine.Casework`."""

    engine: Any
    clock: Any
    _actor: Any
    _case_row: Any
    _load_version: Any
    _row_view: Any
    _check_actor: Any
    _check_ready: Any
    _open_objections: Any

    def get_case(self, ref: str, actor: str | None = None) -> CaseView:
        """The case; with ``actor``, only if they may see it, and with the actions they may take now."""
        with self.engine.connect() as conn:
            user = self._actor(conn, actor) if actor else None
            row = self._case_row(conn, ref, user)
            wf = self._load_version(conn, row.workflow_version_id).definition
            view = self._row_view(wf, row)
            if user is None:
                return view
            actions = []
            for t in wf.transitions_from(row.state):
                try:
                    self._check_actor(wf, row, t, user)
                    self._check_ready(wf, row, t, row.data, self._open_objections(conn, row.id, t))
                except TransitionRefused:
                    continue
                actions.append(Action(t.name, t.label, t.dest, t.comment_required))
            return _replace_actions(view, tuple(actions))

    def list_cases(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
        overdue: bool = False,
    ) -> list[CaseView]:
        """Cases by reference order; with ``actor``, only those in their scopes.

        ``overdue``: only cases past their deadline (not paused), most overdue
        first; with ``actor`` too, only those in a state where one of their
        roles can take a step — their to-do list.
        """
        with self.engine.connect() as conn:
            query = select(_cases).order_by(_cases.c.id)
            user = None
            if overdue:
                now = self.clock.now()
                query = (
                    select(_cases)
                    .where(_cases.c.deadline_at <= now, _cases.c.paused_at.is_(None))
                    .order_by(_cases.c.deadline_at, _cases.c.id)
                )
            if workflow:
                query = query.where(_cases.c.workflow == workflow)
            if state:
                self._check_state_name(conn, state, workflow)
                query = query.where(_cases.c.state == state)
            if actor:
                user = self._actor(conn, actor)
                if ALL_SCOPES not in user.scopes:
                    query = query.where(_cases.c.scope.in_(user.scopes) | _cases.c.scope.is_(None))
            if limit and not (overdue and user):
                query = query.limit(limit)
            out = []
            for row in conn.execute(query):
                wf = self._load_version(conn, row.workflow_version_id).definition
                if overdue and user is not None:
                    actors = {r for t in wf.transitions_from(row.state) for r in t.by}
                    if not actors & set(user.roles):
                        continue  # overdue, but not waiting for this user
                out.append(self._row_view(wf, row))
                if limit and len(out) >= limit:
                    break
            return out

    def _check_state_name(self, conn: Connection, state: str, workflow: str | None) -> None:
        query = select(_versions.c.id)
        if workflow:
            query = query.where(_versions.c.name == workflow)
        known = {s for vid in conn.execute(query).scalars() for s in self._load_version(conn, vid).definition.states}
        if known and state not in known:
            raise InputError(f"no state {state!r} in {workflow or 'any loaded workflow'}{did_you_mean(state, known)}")

    def count_by(self, workflow: str | None = None) -> list[tuple[str, str | None, str, int]]:
        """(workflow, scope, state, count) rows, for summaries."""
        with self.engine.connect() as conn:
            query = select(_cases.c.workflow, _cases.c.scope, _cases.c.state, func.count()).group_by(
                _cases.c.workflow, _cases.c.scope, _cases.c.state
            )
            if workflow:
                query = query.where(_cases.c.workflow == workflow)
            return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]

    def history(self, ref: str, actor: str | None = None) -> list[AuditRecord]:
        """The case's audit events in order, personal data masked."""
        with self.engine.connect() as conn:
            user = self._actor(conn, actor) if actor else None
            row = self._case_row(conn, ref, user)
            wf = self._load_version(conn, row.workflow_version_id).definition
            pii = wf.pii_fields
            events = conn.execute(select(_events).where(_events.c.case_id == row.id).order_by(_events.c.seq)).all()
        return [
            AuditRecord(
                e.seq,
                e.at,
                e.actor,
                e.role,
                e.action,
                e.trigger,
                e.from_state,
                e.to_state,
                e.comment,
                {k: [mask_value(pii.get(k), v) for v in pair] for k, pair in e.changes.items()},
                e.hash,
                wf.timezone,
            )
            for e in events
        ]

    def verify_audit(self, ref: str | None = None) -> VerifyReport:
        """Recompute every case's hash chain (or one case's); report the first break per case."""
        report = VerifyReport()
        with self.engine.connect() as conn:
            cases = select(_cases.c.id, _cases.c.ref, _cases.c.audit_seq, _cases.c.audit_head)
            if ref:
                one = conn.execute(cases.where(_cases.c.ref == ref)).first()
                if one is None:
                    raise CaseNotFound(ref)
                heads = {one.id: one}
            else:
                heads = {r.id: r for r in conn.execute(cases)}
            query = select(_events).order_by(_events.c.case_id, _events.c.id)
            if ref:
                query = query.where(_events.c.case_id == next(iter(heads)))
            grouped = _group_by_case(conn.execution_options(yield_per=2000).execute(query))
            seen: set[int] = set()
            for case_id, events in grouped:
                head = heads.get(case_id)
                if head is None:
                    continue
                seen.add(case_id)
                report.cases += 1
                report.events += len(events)
                broken = verify_chain(head.ref, [e._mapping for e in events], head.audit_seq, head.audit_head)
                if broken:
                    report.breaks.append(broken)
            for case_id, head in heads.items():
                if case_id not in seen:
                    report.cases += 1
                    broken = verify_chain(head.ref, [], head.audit_seq, head.audit_head)
                    if broken:
                        report.breaks.append(broken)
        return report


def _replace_actions(view: CaseView, actions: tuple[Action, ...]) -> CaseView:
    return replace(view, actions=actions)


def _group_by_case(rows: Any) -> Iterator[tuple[int, list[Any]]]:
    current: int | None = None
    batch: list[Any] = []
    for r in rows:
        if r.case_id != current:
            if current is not None:
                yield current, batch
            current, batch = r.case_id, []
        batch.append(r)
    if current is not None:
        yield current, batch
