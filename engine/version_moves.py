"""Moving a workflow's cases to a newer version (``casework workflow migrate``): plan, check, apply.

A case is pinned to the workflow version it was opened on; a fix loaded as
a new version helps only the cases opened after it. Moving a case forward is
one ``migrated`` audit event: its version pin changes (the event's context
records the new one, as a case's first event records the one it opened on,
so the replay in :mod:`engine.replay` follows it), its state changes if the
operator mapped it to another, and its deadline and timers are counted again
under the new version's rules from when the case entered its state.

What stays, and why (each case is judged on its own; the others still move):

``final``
    finished under the version it ran on; its trail stays as it happened —
    unless the new version keeps its state and gives it a way on (the
    archive's 已建档, which version 3 manages further with an exit): then it
    moves, in the same state;
``unmapped_state``
    its state is not in the new version and no ``OLD=NEW`` mapping names it;
``required_field``
    the new version requires a field the case lacks;
``field_type_changed``
    the case holds a value for a field whose type the new version changed;
``value_refused``
    the new version's definition of a field refuses the stored value
    (:func:`engine.fields.coerce_value`; a choice no longer listed, a bound);
``field_dropped``
    the case holds a value for a field the new version no longer declares
    (it would be out of sight of every screen and rule);
``scope_changed``
    the new version takes the case's scope (county) from another field and
    that gives another scope;
``unique_taken``
    the new version makes a field unique and another case holds the value;
``publicity``
    in the publicity state (公示): it moves only if it stays in the state of
    the same name and that is the new version's publicity state, so its
    published period and its notice stay what the public read; likewise a
    case does not move *into* publicity without being published;
``paused``
    its deadline clock is paused (补正): the time left was counted under the
    old version's deadline; resume it, then move it.

Refused, nothing moved (:data:`~engine.errors.Code.MIGRATION_STRANDS`), when
a case would be stranded: its new state is not in the new version (a mapping
to a state it lacks), is final (closed without the step that closes it), or
is one no step leads out of — no transition any role takes and no automatic
step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.access import SYSTEM_ACTOR
from engine.audit import Event, Recorder
from engine.catalog import Catalog, Loaded
from engine.clock import Clock
from engine.deadlines import Deadlines, is_publicity, publicity_timer
from engine.definition import WorkflowDef
from engine.errors import Code, DuplicateCase, InputError, RefusedError, WorkflowNotFound
from engine.fields import coerce_value, is_empty
from engine.limits import DEFAULT_MOVE_BATCH, MAX_BATCH
from engine.models import MigrationBlock, MigrationGroup, MigrationReport, iso
from engine.opening import workflow_pin
from engine.replay import MIGRATED
from engine.store import keys as key_store, moves as store, versions as version_store
from engine.store.database import Database
from engine.store.tables import CaseRow
from engine.store.writes import ChangeRows, write_changes
from engine.suggest import close_match

__all__ = ["DEFAULT_MOVE_BATCH", "VersionMoves", "strands"]

#: refs listed per reason and state
LISTED_REFS = 5

#: every reason a case stays on its version, in the order they are reported
REASONS: dict[str, str] = {
    "final": "finished under its version; stays as it happened",
    "unmapped_state": "its state is not in the new version; map it with OLD=NEW",
    "required_field": "the new version requires a field it lacks",
    "field_type_changed": "it holds a value of a field whose type the new version changed",
    "value_refused": "the new version refuses a value it holds",
    "field_dropped": "it holds a value of a field the new version no longer declares",
    "scope_changed": "the new version would give it another scope",
    "unique_taken": "the new version makes a field unique and another case holds its value",
    "publicity": "in publicity (公示), or would enter it unpublished",
    "paused": "its deadline clock is paused (补正); resume it first",
}

#: (reason, what it is about: a field, a state)
Blocked = tuple[str, str]


def target_state(state: str, mapping: Mapping[str, str]) -> str:
    """Where a case in ``state`` goes: the mapping's state for it, else a state of the same name."""
    return mapping.get(state, state)


def reopened(old: WorkflowDef, new: WorkflowDef, state: str, mapping: Mapping[str, str]) -> bool:
    """Whether a case that ended in ``state`` (final in ``old``) moves on: the new version keeps the state of
    that name and gives it a way on (an archive 已建档 that the new version manages further, e.g. an exit).

    A final state is never mapped to another: that would rewrite where the case ended.
    """
    if not old.states[state].final:
        return False
    after = new.states.get(state)
    return state not in mapping and after is not None and not after.final


def blockers(
    case: CaseRow, old: WorkflowDef, new: WorkflowDef, mapping: Mapping[str, str], today: dt.date
) -> list[Blocked]:
    """Why ``case`` (on ``old``) cannot move to ``new`` under ``mapping``; empty when it can (pure).

    Names fields and states only, never a stored value (the report lists
    references, and personal data stays out of it).
    """
    if old.states[case.state].final and not reopened(old, new, case.state, mapping):
        return [("final", case.state)]
    to = target_state(case.state, mapping)
    if to not in new.states:
        return [("unmapped_state", case.state)]
    found: list[Blocked] = []
    if case.paused_at is not None:
        found.append(("paused", case.state))
    was_public, is_public = is_publicity(old, case.state), is_publicity(new, to)
    if (was_public or is_public) and not (was_public and is_public and to == case.state):
        found.append(("publicity", case.state))
    for name, f in new.fields.items():
        value = case.data.get(name)
        if is_empty(value):
            if f.required:
                found.append(("required_field", name))
            continue
        before = old.fields.get(name)
        if before is not None and before.type != f.type:
            found.append(("field_type_changed", name))
            continue
        try:
            coerce_value(f, value, today)
        except ValueError:
            found.append(("value_refused", name))
    for name, value in case.data.items():
        if name not in new.fields and not is_empty(value):
            found.append(("field_dropped", name))
    if new.scope_field is not None and new.scope_field != old.scope_field:
        if case.data.get(new.scope_field) != case.scope:
            found.append(("scope_changed", new.scope_field))
    return found


def strands(new: WorkflowDef, states: Iterable[str]) -> list[tuple[str, str]]:
    """(state, why) for each of ``states`` a moved case would be stranded in (pure).

    Stranded: the new version lacks the state, it is final (the case would
    be closed without the step that closes it), or no step leads out of it
    that a role or the scheduler could take.
    """
    out = []
    for s in sorted(set(states)):
        st = new.states.get(s)
        if st is None:
            why = f"version {new.version} has no state {s!r}" + _suggest(s, new.states)
        elif st.final:
            why = f"{s} ({st.label}) is final in version {new.version}: cases would be closed without a step"
        elif not any(t.by for t in new.transitions_from(s)) and st.timeout is None:
            why = f"no step of version {new.version} leads out of {s} ({st.label})"
        else:
            continue
        out.append((s, why))
    return out


def move_rows(
    case: CaseRow,
    old: WorkflowDef,
    new: Loaded,
    to_state: str,
    mapping: Mapping[str, str],
    now: dt.datetime,
    deadlines: Deadlines,
    recorder: Recorder,
    by: str | None,
) -> ChangeRows:
    """The rows moving ``case`` from ``old`` to ``new`` (version-checked against the case as read) (pure).

    The deadline and timers are those of ``to_state`` under the new version,
    counted from when the case entered its state (a mapped state is the same
    stay under another name). A reminder already due is written cancelled:
    it records the rule without telling anyone late. In the publicity state
    the period stays the published one and only its automatic end is
    written again, due when that period ends.
    """
    wf = new.definition
    entered = case.entered_at
    if is_publicity(wf, to_state):
        deadline_at, provisional = case.deadline_at, case.deadline_provisional
        planned = publicity_timer(wf, to_state, entered, case.deadline_at) if case.deadline_at is not None else []
    else:
        deadline, planned = deadlines.plan(wf, to_state, entered)
        deadline_at = deadline.at.astimezone(dt.UTC) if deadline else None
        provisional = bool(deadline and deadline.provisional)
    timers = [
        {
            **r,
            "case_id": case.id,
            "created_at": now,
            "status": "cancelled" if r["kind"] == "remind" and r["due_at"] <= now else r["status"],
        }
        for r in planned
    ]
    changes: dict[str, list[Any]] = {"workflow_version": [old.version, wf.version]}
    if to_state != case.state:
        changes["state"] = [case.state, to_state]
    before, after = iso(case.deadline_at, wf.timezone), iso(deadline_at, wf.timezone)
    if before != after:
        changes["deadline"] = [before, after]
    moved = f"; {case.state} → {to_state}" if to_state != case.state else ""
    migration = {"from_version": old.version, "to_version": wf.version, "map": dict(mapping), "by": by}
    event = Event(
        case.ref,
        case.audit_seq + 1,
        now,
        SYSTEM_ACTOR,
        None,
        MIGRATED,
        None,
        case.state,
        to_state,
        f"moved from {wf.name} version {old.version} to version {wf.version}{moved}",
        changes,
        case.audit_head,
        recorder.context(workflow=workflow_pin(wf), migration=migration),
    )
    values = {
        "workflow_version_id": new.id,
        "state": to_state,
        "deadline_at": deadline_at,
        "deadline_provisional": provisional,
        "audit_seq": event.seq,
        "audit_head": event.hash,
        "audit_seal": recorder.seal(case.ref, event.seq, event.hash),
        "updated_at": now,
    }
    return ChangeRows(case.ref, case.id, case.version, values, event.row(case.id), True, timers, [])


def _suggest(name: str, known: Iterable[str]) -> str:
    close = close_match(name, known)
    return f" (did you mean {close!r}?)" if close else ""


@dataclass
class _Plan:
    """What the first, reading pass found: the versions, the report, and the cases that may move."""

    new: Loaded
    olds: dict[int, Loaded]
    report: MigrationReport
    movable: list[int] = field(default_factory=list)
    groups: dict[tuple[int, str], MigrationGroup] = field(default_factory=dict)
    stranded: list[tuple[str, str]] = field(default_factory=list)


class VersionMoves:
    """Move a workflow's cases from older versions to a newer one.

    Args:
        db: the read pass is one transaction, each batch of moves another.
        catalog, deadlines, clock, recorder: as a step uses them.
    """

    def __init__(self, db: Database, catalog: Catalog, deadlines: Deadlines, clock: Clock, recorder: Recorder) -> None:
        self.db = db
        self.catalog = catalog
        self.deadlines = deadlines
        self.clock = clock
        self.recorder = recorder

    def migrate(
        self,
        workflow: str,
        to_version: int,
        mapping: Mapping[str, str] | None = None,
        *,
        dry_run: bool = True,
        batch: int = DEFAULT_MOVE_BATCH,
        by: str | None = None,
    ) -> MigrationReport:
        """Report (``dry_run``) or move the cases of ``workflow`` on versions older than ``to_version``.

        ``mapping`` maps an old state to a state of the new version; a state
        not mapped goes to the state of the same name. The report counts,
        per old version and state, the cases that move and the ones that
        stay and why. A dry run changes nothing. A real run is refused
        (:data:`Code.MIGRATION_STRANDS`, nothing moved) if a case would be
        stranded; otherwise it moves the movable cases ``batch`` per
        transaction and leaves the rest on their version. ``by`` is who
        moves them (``os_user@host``), recorded in each event.
        """
        if not 1 <= batch <= MAX_BATCH:
            raise InputError(
                f"batch size {batch} is out of range: use 1 to {MAX_BATCH} cases per transaction",
                option="batch",
                value=batch,
            )
        mapping = dict(mapping or {})
        with self.db.read() as conn:
            plan = self._plan(conn, workflow, to_version, mapping, dry_run)
        report = plan.report
        if dry_run or report.strands:
            if report.strands and not dry_run:
                self._refuse(plan)
            return report
        for start in range(0, len(plan.movable), batch):
            chunk = plan.movable[start : start + batch]
            moved = self.db.transaction(partial(self._move_batch, plan=plan, ids=chunk, mapping=mapping, by=by))
            for key in moved:
                group = plan.groups.get(key)
                if group is not None:
                    group.moved += 1
        return report

    # ------------------------------------------------------------------ the reading pass

    def _plan(self, conn: Connection, workflow: str, to_version: int, mapping: dict[str, str], dry_run: bool) -> _Plan:
        versions = version_store.history(conn, workflow)
        if not versions:
            names = version_store.workflow_names(conn)
            raise WorkflowNotFound(workflow, suggestion=close_match(workflow, names), known=names)
        numbers = [v.version for v in versions]
        if to_version not in numbers:
            raise WorkflowNotFound(
                workflow,
                to_version,
                known=[f"{workflow} version {n}" for n in numbers],
            )
        new = self.catalog.resolve(conn, workflow, to_version)
        olds = {v.id: self.catalog.get(conn, v.id) for v in versions if v.version < to_version}
        if not olds:
            listed = ", ".join(str(n) for n in numbers)
            raise RefusedError(
                f"{workflow} version {to_version} is the oldest loaded version; cases move only forward, to a newer "
                f"version than the one they are on (loaded: {listed})",
                code=Code.VERSION_NOT_NEWER,
                workflow=workflow,
                version=to_version,
                versions=numbers,
            )
        self._check_map_names(workflow, olds, new.definition, mapping)
        wf = new.definition
        report = MigrationReport(
            workflow=workflow, to_version=to_version, mapping=mapping, dry_run=dry_run, timezone=wf.timezone
        )
        plan = _Plan(new, olds, report)
        today = self.clock.now().astimezone(ZoneInfo(wf.timezone)).date()
        verdicts: list[tuple[CaseRow, Loaded, list[Blocked]]] = []
        for case in store.stream_cases(conn, list(olds)):
            old = olds[case.workflow_version_id]
            judged = blockers(case, old.definition, wf, mapping, today)
            verdicts.append((_light(case, set(wf.unique_fields) - set(old.definition.unique_fields)), old, judged))
        taken = self._unique_taken(conn, wf, [(c, o.definition) for c, o, b in verdicts if not b])
        seen_states: set[str] = set()
        for case, old, blocked in verdicts:
            seen_states.add(case.state)
            blocked = blocked or [("unique_taken", f) for f in taken.get(case.id, ())]
            key = (old.definition.version, case.state)
            group = plan.groups.get(key)
            if group is None:
                to = target_state(case.state, mapping)
                group = plan.groups[key] = MigrationGroup(
                    from_version=key[0],
                    state=case.state,
                    to_state=to
                    if to in wf.states
                    and (
                        not old.definition.states[case.state].final or reopened(old.definition, wf, case.state, mapping)
                    )
                    else None,
                )
            group.cases += 1
            if not blocked:
                group.movable += 1
                plan.movable.append(case.id)
                continue
            for reason, detail in blocked:
                _add_block(group, reason, detail, case.ref)
        unused = sorted(set(mapping) - seen_states)
        if unused:
            raise InputError(
                f"no case of {workflow} on a version older than {to_version} is in {', '.join(unused)}; map only "
                f"states cases are in ({', '.join(sorted(seen_states)) or 'none'})",
                code=Code.MIGRATION_MAP,
                workflow=workflow,
                state=unused[0],
                known=sorted(seen_states),
            )
        report.groups = [plan.groups[k] for k in sorted(plan.groups)]
        for g in report.groups:
            g.blocked.sort(key=lambda b: (list(REASONS).index(b.reason), b.detail))
        # a mapping is checked whether or not a case in its state may move: it is wrong either way
        targets = set(mapping.values()) | {g.to_state for g in report.groups if g.movable and g.to_state}
        plan.stranded = strands(wf, targets)
        report.strands = [why for _, why in plan.stranded]
        return plan

    @staticmethod
    def _check_map_names(
        workflow: str, olds: Mapping[int, Loaded], new: WorkflowDef, mapping: Mapping[str, str]
    ) -> None:
        known = {s for o in olds.values() for s in o.definition.states}
        for old_state in mapping:
            if old_state not in known:
                close = close_match(old_state, known)
                hint = f"; did you mean {close!r}?" if close else f"; they have: {', '.join(sorted(known))}"
                raise InputError(
                    f"no version of {workflow} older than {new.version} has a state {old_state!r} to map{hint}",
                    code=Code.MIGRATION_MAP,
                    workflow=workflow,
                    state=old_state,
                    known=sorted(known),
                    suggestion=close,
                )

    def _unique_taken(
        self, conn: Connection, new: WorkflowDef, cases: Sequence[tuple[CaseRow, WorkflowDef]]
    ) -> dict[int, list[str]]:
        """Case id → the fields the new version makes unique whose value another case holds (or an earlier one)."""
        out: dict[int, list[str]] = {}
        for name in new.unique_fields:
            owners: dict[str, list[CaseRow]] = {}
            for case, old in cases:
                value = case.data.get(name)
                if name not in old.unique_fields and not is_empty(value):
                    owners.setdefault(str(value), []).append(case)
            if not owners:
                continue
            held = {h.value: h.ref for h in key_store.holders(conn, new.name, name, list(owners))}
            for value, claimants in owners.items():
                for i, case in enumerate(claimants):
                    if i > 0 or held.get(value, case.ref) != case.ref:
                        out.setdefault(case.id, []).append(name)
        return out

    def _refuse(self, plan: _Plan) -> None:
        wf = plan.new.definition
        states = [s for s, _ in plan.stranded]
        raise RefusedError(
            f"moving {wf.name}'s cases to version {wf.version} would strand them: {'; '.join(plan.report.strands)}. "
            "Nothing was moved; map those states to ones a step leads out of",
            code=Code.MIGRATION_STRANDS,
            workflow=wf.name,
            version=wf.version,
            states=states,
            why=list(plan.report.strands),
            suggestion=next((close_match(s, wf.states) for s in states if s not in wf.states), None),
        )

    # ------------------------------------------------------------------ the moves

    def _move_batch(
        self, conn: Connection, plan: _Plan, ids: list[int], mapping: Mapping[str, str], by: str | None
    ) -> list[tuple[int, str]]:
        """Move the cases ``ids`` that still may, in the caller's transaction; their (old version, state)."""
        now = self.clock.now()
        wf = plan.new.definition
        today = now.astimezone(ZoneInfo(wf.timezone)).date()
        rows: list[tuple[CaseRow, Loaded]] = []
        for case in store.hold_cases(conn, ids):
            old = plan.olds.get(case.workflow_version_id)
            # changed since the reading pass (stepped, paused, moved by someone else): judged again
            if old is None or blockers(case, old.definition, wf, mapping, today):
                continue
            if strands(wf, [target_state(case.state, mapping)]):
                continue
            rows.append((case, old))
        taken = self._unique_taken(conn, wf, [(c, o.definition) for c, o in rows])
        rows = [(c, o) for c, o in rows if c.id not in taken]
        changes = [
            move_rows(
                c,
                o.definition,
                plan.new,
                target_state(c.state, mapping),
                mapping,
                now,
                self.deadlines,
                self.recorder,
                by,
            )
            for c, o in rows
        ]
        write_changes(conn, changes)
        self._move_keys(conn, wf, rows)
        return [(o.definition.version, c.state) for c, o in rows]

    @staticmethod
    def _move_keys(conn: Connection, new: WorkflowDef, rows: Sequence[tuple[CaseRow, Loaded]]) -> None:
        """Claim the values of fields the new version makes unique; give back those it no longer does."""
        claims: list[dict[str, Any]] = []
        released: dict[str, list[int]] = {}
        for case, old in rows:
            for name in old.definition.unique_fields:
                if name not in new.unique_fields:
                    released.setdefault(name, []).append(case.id)
            for name in new.unique_fields:
                value = case.data.get(name)
                if name not in old.definition.unique_fields and not is_empty(value):
                    claims.append({"workflow": new.name, "field": name, "value": str(value), "case_id": case.id})
        for name, ids in released.items():
            key_store.release_keys(conn, ids, name)
        if not key_store.claim_keys(conn, claims):
            # a case claimed one of these values since this batch was read: the batch is not moved
            raise DuplicateCase(", ".join(sorted({str(c["field"]) for c in claims})), None, None)


def _light(case: CaseRow, keep: set[str]) -> CaseRow:
    """The case as the reading pass keeps it until the end: of its data only the fields a uniqueness check reads."""
    return case._replace(data={k: v for k, v in case.data.items() if k in keep}, fired_by={}, paused_left=None)


def _add_block(group: MigrationGroup, reason: str, detail: str, ref: str) -> None:
    for b in group.blocked:
        if b.reason == reason and b.detail == detail:
            block = b
            break
    else:
        block = MigrationBlock(reason=reason, detail=detail)
        group.blocked.append(block)
    # a frozen read model: counted and listed by replacing it
    i = group.blocked.index(block)
    refs = block.refs if len(block.refs) >= LISTED_REFS else [*block.refs, ref]
    group.blocked[i] = block.model_copy(update={"cases": block.cases + 1, "refs": refs})
