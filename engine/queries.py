"""Reading cases: one case with what a user may do now, lists, to-do lists, inboxes, history, audit verification.

Part of the :class:`engine.Casework` service (mixed in). Reads change
nothing; each runs on one connection and applies the same visibility rule as
changes (a user sees the cases in their scopes).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from db.models import AuditEvent, Case, WorkflowVersion
from engine.access import ALL_SCOPES
from engine.audit import verify_chain
from engine.errors import CaseNotFound, InputError, TransitionRefused, WorkflowNotFound
from engine.masking import mask_value
from engine.suggest import did_you_mean
from engine.views import Action, AuditRecord, CaseView, InboxPage, VerifyReport

__all__ = ["MAX_PER_PAGE", "QueriesMixin"]

#: The largest inbox page :meth:`QueriesMixin.waiting_for` serves.
MAX_PER_PAGE = 500

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

    def waiting_for(self, actor: str, *, page: int = 1, per_page: int = 50, workflow: str | None = None) -> InboxPage:
        """The user's inbox: open cases waiting for them, soonest deadline first.

        A case waits for ``actor`` when one of their roles may fire a step
        from its state (per the workflow version the case is on) and their
        scopes cover it. Order: soonest deadline first (then by id); then the
        cases without a deadline, oldest first; then paused cases, longest
        paused first (they still wait, but their clock is stopped and they
        show no deadline).
        Pages are offset/limit (``page`` 1 is the first ``per_page`` cases);
        ``has_more`` says whether another page follows.

        Raises:
            InputError: ``page`` below 1 or ``per_page`` outside 1..500.
            UserNotFound: no such user.
            WorkflowNotFound: ``workflow`` is given and not loaded.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise InputError(f"page must be a whole number from 1 up, not {page!r}")
        if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise InputError(f"per page must be a whole number from 1 to {MAX_PER_PAGE}, not {per_page!r}")
        offset = (page - 1) * per_page
        with self.engine.connect() as conn:
            user = self._actor(conn, actor)
            versions = select(_versions.c.id).order_by(_versions.c.id)
            if workflow:
                versions = versions.where(_versions.c.name == workflow)
            vids = conn.execute(versions).scalars().all()
            if workflow and not vids:
                names = conn.execute(select(_versions.c.name).distinct()).scalars().all()
                raise WorkflowNotFound(workflow, hint=did_you_mean(workflow, names))
            roles = set(user.roles)
            ranges: list[tuple[int, str, str | None]] = []
            for vid in vids:
                wf = self._load_version(conn, vid).definition
                # final states have no steps out, so they never appear here
                states = sorted({s for t in wf.transitions.values() if roles & set(t.by) for s in t.sources})
                # A scoped version's cases always have a scope (it is required and cannot be cleared), an
                # unscoped version's never do, and covers() lets everyone see the latter: filter only the former.
                scopes: list[str | None] = (
                    sorted(user.scopes) if wf.scope_field and ALL_SCOPES not in user.scopes else [None]
                )
                ranges += [(vid, st, sc) for st in states for sc in scopes]
            found = _inbox_candidates(conn, ranges, offset + per_page + 1)
            ids = [r.id for r in found[offset : offset + per_page + 1]]
            shown = select(*_VIEW_COLUMNS).where(_cases.c.id.in_(ids))
            rows = {r.id: r for r in conn.execute(shown)} if ids else {}
            items = [
                self._row_view(self._load_version(conn, rows[i].workflow_version_id).definition, rows[i]) for i in ids
            ]
        return InboxPage(items[:per_page], page, per_page, len(items) > per_page)

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


# what a CaseView is made of (not fired_by, the audit head, ...): less to read and decode per row
_VIEW_COLUMNS = tuple(
    _cases.c[name]
    for name in (
        "id", "ref", "workflow_version_id", "state", "scope", "data", "version", "created_by", "created_at",
        "updated_at", "deadline_at", "deadline_provisional", "paused_at", "paused_left",
    )
)  # fmt: skip

# SQLite allows 500 terms in a compound SELECT; each range is 3. More ranges (a user listing many
# counties, cases on many workflow versions) are asked in several statements and merged here.
_RANGES_PER_QUERY = 100


def _inbox_candidates(conn: Connection, ranges: list[tuple[int, str, str | None]], each: int) -> list[Any]:
    """(id, grp, k1, k2) of the first ``each`` cases of every (version, state, scope or None) range, merged.

    One index range per range and group, read in order and cut at ``each``
    (see :func:`_inbox_groups`), so the cost depends on the page, not on how
    many cases there are. PostgreSQL gets the ranges as arrays joined LATERAL
    to the reads: one statement whatever their number (planning a UNION of
    dozens of branches takes it longer than running them). SQLite, whose
    planner is quick but which has no LATERAL, gets a UNION ALL of the reads,
    one cached statement per number of ranges, values bound.
    """
    if not ranges:
        return []
    found: list[Any] = []
    if conn.dialect.name == "postgresql":
        scoped = [r for r in ranges if r[2] is not None]
        unscoped = [r for r in ranges if r[2] is None]
        values = {
            "vids_s": [v for v, _, _ in scoped],
            "states_s": [st for _, st, _ in scoped],
            "scopes_s": [sc for _, _, sc in scoped],
            "vids_u": [v for v, _, _ in unscoped],
            "states_u": [st for _, st, _ in unscoped],
            "each": each,
        }
        found += conn.execute(_inbox_lateral(), values).all()
    else:
        for start in range(0, len(ranges), _RANGES_PER_QUERY):
            chunk = ranges[start : start + _RANGES_PER_QUERY]
            params: dict[str, Any] = {"each": each}
            for i, (vid, st, sc) in enumerate(chunk):
                params.update({f"v{i}": vid, f"s{i}": st, **({f"c{i}": sc} if sc is not None else {})})
            found += conn.execute(_inbox_union(tuple(sc is not None for _, _, sc in chunk)), params).all()
    found.sort(key=_inbox_key)
    return found


def _inbox_groups(vid: Any, state: Any, scope: Any | None) -> list[Select[Any]]:
    """Three SELECTs of (id, grp, k1, k2): the first ``each`` cases of one range, each group in inbox order.

    The inbox order is ``grp, k1, k2, id``: running cases with a deadline
    (grp 0, by deadline), running cases without one (grp 1, oldest first),
    then paused cases (grp 2, longest paused first): a paused case's clock is
    stopped, and the deadline it keeps is stale and would list it as overdue.
    Each group is one range of ``ix_cases_inbox_scope`` (``scope`` given) or
    ``ix_cases_inbox``, already in that order, so each reads at most ``each``
    index entries and sorts nothing. (One range for all three would need
    ``ORDER BY ... NULLS LAST``, which SQLite's indexes, NULLs first, cannot
    give without sorting the whole range.)
    """
    c = _cases.c
    where = [c.workflow_version_id == vid, c.state == state]
    if scope is not None:
        where.append(c.scope == scope)
    none = cast(null(), c.deadline_at.type)
    groups = (
        ([c.paused_at.is_(None), c.deadline_at.is_not(None)], c.deadline_at, none),
        ([c.paused_at.is_(None), c.deadline_at.is_(None)], none, none),
        ([c.paused_at.is_not(None)], c.paused_at, c.deadline_at),
    )
    return [
        select(c.id, literal(grp).label("grp"), k1.label("k1"), k2.label("k2"))
        .where(*where, *conditions)
        # The index's own order, including the columns tested for NULL: they are constant within the
        # group, but PostgreSQL's planner only sees that for '=', and would otherwise sort the range.
        .order_by(c.paused_at, c.deadline_at, c.id)
        .limit(bindparam("each", type_=Integer))
        for grp, (conditions, k1, k2) in enumerate(groups)
    ]


def _first(candidates: Any) -> Select[Any]:
    merged = candidates.subquery("candidates")
    return (
        select(merged)
        .order_by(merged.c.grp, merged.c.k1, merged.c.k2, merged.c.id)
        .limit(bindparam("each", type_=Integer))
    )


@functools.lru_cache(maxsize=256)
def _inbox_union(scoped: tuple[bool, ...]) -> Select[Any]:
    """The UNION ALL form: ``len(scoped)`` ranges bound as ``v{i}``/``s{i}``/``c{i}`` (scope if ``scoped[i]``).

    Built once per shape and kept: building it costs more than running it,
    and users alike share it.
    """
    branches = []
    for i, has_scope in enumerate(scoped):
        scope = bindparam(f"c{i}", type_=String) if has_scope else None
        for part in _inbox_groups(bindparam(f"v{i}", type_=Integer), bindparam(f"s{i}", type_=String), scope):
            sub = part.subquery()  # SQLite takes no LIMIT on a bare member of a compound SELECT
            branches.append(select(sub.c.id, sub.c.grp, sub.c.k1, sub.c.k2))
    return _first(union_all(*branches))


@functools.lru_cache(maxsize=1)
def _inbox_lateral() -> Select[Any]:
    """The LATERAL form (PostgreSQL): the ranges bound as arrays (``vids_s``, ``states_s``, ``scopes_s``; ``*_u``).

    One statement for any number of ranges: planned in well under a
    millisecond, where a UNION of 60 branches takes PostgreSQL ~8 ms to plan.
    """
    sides = []
    for scoped, suffix in ((True, "s"), (False, "u")):
        arrays = [bindparam(f"vids_{suffix}", type_=ARRAY(Integer)), bindparam(f"states_{suffix}", type_=ARRAY(String))]
        names = ["vid", "state"]
        if scoped:
            arrays.append(bindparam(f"scopes_{suffix}", type_=ARRAY(String)))
            names.append("scope")
        r = func.unnest(*arrays).table_valued(*names).render_derived(name=f"ranges_{suffix}")
        reads = union_all(*_inbox_groups(r.c.vid, r.c.state, r.c.scope if scoped else None))
        x = reads.subquery(f"read_{suffix}").lateral()
        sides.append(select(x.c.id, x.c.grp, x.c.k1, x.c.k2).select_from(r).join(x, true()))
    return _first(union_all(*sides))


def _inbox_key(row: Any) -> tuple[Any, ...]:
    """The inbox order (see :func:`_inbox_groups`), for merging the answers of several statements."""

    def last_if_none(value: Any) -> tuple[int, Any]:
        return (1, 0) if value is None else (0, value)

    return (row.grp, last_if_none(row.k1), last_if_none(row.k2), row.id)


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
