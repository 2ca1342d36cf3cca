"""Bulk paths: importing many archives, and one step on many cases.

Both keep every rule of the single-case paths — the same validation, the
same role, scope, four-eyes, guard and required-field checks, the same
hash-chained audit event per case — but batch the database work: a batch of
cases is read in one query and written with one ``executemany`` per table,
``batch`` cases per transaction (1,000 by default), so other clerks are
never blocked for long.

Import is validate-everything-first: every row is checked (field values,
scope, the opener's rights, unique fields against the database and within
the file) before anything is written, and a file with any bad row imports
nothing unless ``skip_invalid``. ``fire_many`` decides case by case: a case
the rules refuse is reported with its reason and the others go ahead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.models import AuditEvent, Case, CaseKey, Objection, RefCounter, Timer
from engine.access import Actor, covers
from engine.audit import GENESIS, Event
from engine.errors import (
    CaseworkError,
    FieldProblem,
    InputError,
    InvalidCaseData,
    PermissionDenied,
    RefusedError,
)
from engine.fields import is_empty
from engine.outbox import directory, directory_column
from engine.reads import OPEN_OBJECTIONS
from engine.refs import format_ref
from engine.timers import plan_state
from engine.writes import insert_rows, write_changes

__all__ = ["BulkMixin", "FireManyReport", "ImportClash", "ImportReport", "InvalidImport", "RowProblem"]

_cases = Case.__table__
_events = AuditEvent.__table__
_keys = CaseKey.__table__
_objections = Objection.__table__
_counters = RefCounter.__table__
_timers = Timer.__table__

DEFAULT_BATCH = 1000
MAX_BATCH = 10_000

Progress = Callable[[int], None]


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one row of an import file (``line`` as the file counts it)."""

    line: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(self.problems)


class InvalidImport(RefusedError):
    """Rows of an import file are invalid; nothing was imported."""

    def __init__(self, problems: Sequence[RowProblem], total: int) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  … and {len(self.problems) - 50} more rows" if len(self.problems) > 50 else ""
        super().__init__(
            f"{len(self.problems)} of {total} rows are invalid, so nothing was imported:\n{shown}{more}\n"
            "fix those rows and import the file again, or add --skip-invalid to import only the valid rows"
        )


class ImportClash(RefusedError):
    """A unique value of the file was taken by a case opened while the import ran."""

    def __init__(self, fields: str, first_line: int, last_line: int) -> None:
        self.first_line, self.last_line = first_line, last_line
        super().__init__(
            f"while importing lines {first_line}–{last_line}, someone opened a case with the same {fields} "
            "as one of them, so none of those lines was imported (the lines before were); import the file "
            "again with --skip-invalid: the rows already imported and the clashing row will be reported and skipped"
        )


@dataclass
class ImportReport:
    """What an import did: the refs created, in file order, and the rows skipped."""

    imported: list[str] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": len(self.imported),
            "first_ref": self.imported[0] if self.imported else None,
            "last_ref": self.imported[-1] if self.imported else None,
            "skipped": [{"line": p.line, "problems": list(p.problems)} for p in self.skipped],
        }


@dataclass
class FireManyReport:
    """What a bulk step did: refs fired, and refs refused with the reason."""

    trigger: str
    fired: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "fired": self.fired,
            "refused": [{"ref": r, "reason": why} for r, why in self.refused],
        }


def _check_batch(batch: int) -> None:
    if not 1 <= batch <= MAX_BATCH:
        raise InputError(f"batch size {batch} is out of range: use 1 to {MAX_BATCH} cases per transaction")


class BulkMixin:
    """``import_cases`` and ``fire_many`` for :class:`~engine.service.Casework`."""

    # provided by Casework
    engine: Any
    clock: Any
    calendar: Any
    _actor: Any
    _resolve_workflow: Any
    _load_version: Any
    _validate: Any
    _plan_fire: Any
    _write: Any
    _check_scope: Any

    # ------------------------------------------------------------------ import

    def import_cases(
        self,
        workflow: str,
        actor: str,
        rows: Iterable[tuple[int, Mapping[str, Any]]],
        *,
        skip_invalid: bool = False,
        batch: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Open one case per ``(line, data)`` row, as ``actor``, on the latest version of ``workflow``.

        Every row is validated first, exactly as :meth:`create_case` would;
        any invalid row refuses the whole file (:class:`InvalidImport`, with
        each bad row's line number and problems) unless ``skip_invalid``.
        The valid rows are then written ``batch`` per transaction.
        ``progress(n)`` is called as rows are validated and as they are written.
        """
        _check_batch(batch)
        now = self.clock.now()
        with self.engine.connect() as conn:
            user = self._actor(conn, actor)
            loaded = self._resolve_workflow(conn, workflow, None)
        wf = loaded.definition
        role = self._opening_role(wf, user)
        valid: list[tuple[int, dict[str, Any]]] = []
        problems: list[RowProblem] = []
        seen: dict[tuple[str, str], int] = {}  # unique field value → the line that has it
        total = 0
        for line, data in rows:
            total += 1
            found = self._row_problems(wf, user, data, now)
            if isinstance(found, list):
                problems.append(RowProblem(line, tuple(found)))
            else:
                clashes = []
                for name in wf.unique_fields:
                    value = found.get(name)
                    if value is None:
                        continue
                    first = seen.setdefault((name, str(value)), line)
                    if first != line:
                        clashes.append(f"{name}: the same value is already on line {first} of this file")
                if clashes:
                    problems.append(RowProblem(line, tuple(clashes)))
                else:
                    valid.append((line, found))
            if progress:
                progress(1)
        problems += self._existing_keys(wf, valid)
        bad = {p.line for p in problems}
        valid = [(line, values) for line, values in valid if line not in bad]
        problems.sort(key=lambda p: p.line)
        if problems and not skip_invalid:
            raise InvalidImport(problems, total)
        report = ImportReport(skipped=problems)
        for start in range(0, len(valid), batch):
            chunk = valid[start : start + batch]
            refs = self._write(lambda conn, c=chunk: self._import_batch(conn, loaded, user, role, c, now))
            report.imported += refs
            if progress:
                progress(len(chunk))
        return report

    def _opening_role(self, wf: Any, user: Actor) -> str:
        openers = {r for t in wf.transitions_from(wf.initial_state) for r in t.by}
        role = next((r for r in user.roles if r in openers), None)
        if role is None:
            raise PermissionDenied(
                f"{user.username} ({', '.join(user.roles)}) may not open a {wf.name} case: "
                f"that needs role {' or '.join(sorted(openers))}"
            )
        return role

    def _row_problems(self, wf: Any, user: Actor, data: Mapping[str, Any], now: dt.datetime) -> Any:
        """The row's stored values, or the list of what is wrong with it."""
        try:
            values, _ = self._validate(wf, {}, data, now)
        except InvalidCaseData as exc:
            return [str(p) for p in exc.problems]
        if wf.scope_field:
            scope = values.get(wf.scope_field)
            if scope is None:
                return [str(FieldProblem(wf.scope_field, "is needed to open a case: it decides who may see it"))]
            if not covers(user.scopes, scope):
                return [f"{wf.scope_field}: {user.username} covers {', '.join(user.scopes)}, not {scope}"]
        return values

    def _existing_keys(self, wf: Any, valid: list[tuple[int, dict[str, Any]]]) -> list[RowProblem]:
        """Rows whose unique value already belongs to a case in the database."""
        out = []
        with self.engine.connect() as conn:
            for name in wf.unique_fields:
                lines = {str(v[name]): line for line, v in valid if v.get(name) is not None}
                values = list(lines)
                for start in range(0, len(values), 500):
                    chunk = values[start : start + 500]
                    for value, ref, state in conn.execute(
                        select(_keys.c.value, _cases.c.ref, _cases.c.state)
                        .join(_cases, _cases.c.id == _keys.c.case_id)
                        .where(_keys.c.workflow == wf.name, _keys.c.field == name, _keys.c.value.in_(chunk))
                    ):
                        out.append(RowProblem(lines[value], (f"{name}: already on case {ref} ({state})",)))
        return out

    def _import_batch(
        self,
        conn: Connection,
        loaded: Any,
        user: Actor,
        role: str,
        chunk: list[tuple[int, dict[str, Any]]],
        now: dt.datetime,
    ) -> list[str]:
        wf = loaded.definition
        year = now.astimezone(ZoneInfo(wf.timezone)).year
        first = _allocate_refs(conn, wf.ref_prefix, year, len(chunk))
        initial = wf.initial_state
        deadline, planned = plan_state(wf, initial, now, self.calendar)
        refs, case_rows, events = [], [], []
        for i, (_line, values) in enumerate(chunk):
            ref = format_ref(wf.ref_prefix, year, first + i)
            changes = {k: [None, v] for k, v in values.items() if not is_empty(v)}
            event = Event(ref, 1, now, user.username, role, "created", None, None, initial, None, changes, GENESIS)
            refs.append(ref)
            events.append(event)
            case_rows.append(
                {
                    "ref": ref,
                    "workflow": wf.name,
                    "workflow_version_id": loaded.id,
                    "state": initial,
                    "scope": values.get(wf.scope_field) if wf.scope_field else None,
                    "data": values,
                    "fired_by": {},
                    "version": 1,
                    "audit_seq": 1,
                    "audit_head": event.hash,
                    "entered_at": now,
                    "deadline_at": deadline.at.astimezone(dt.UTC) if deadline else None,
                    "deadline_provisional": bool(deadline and deadline.provisional),
                    "created_by": user.username,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if conn.dialect.name == "sqlite":
            # the reference counter's update above took SQLite's write lock: no one else can insert a
            # case until we commit, so the next ids are ours to give (and the fast insert needs no RETURNING)
            top = conn.execute(select(func.coalesce(func.max(_cases.c.id), 0))).scalar_one()
            ids = list(range(top + 1, top + 1 + len(case_rows)))
            insert_rows(conn, _cases, [{"id": i, **r} for i, r in zip(ids, case_rows, strict=True)])
        else:
            returning = insert(_cases).returning(_cases.c.id, sort_by_parameter_order=True)
            ids = conn.execute(returning, case_rows).scalars().all()
        insert_rows(conn, _events, [e.row(case_id) for e, case_id in zip(events, ids, strict=True)])
        keys = [
            {"workflow": wf.name, "field": name, "value": str(values[name]), "case_id": case_id}
            for (_line, values), case_id in zip(chunk, ids, strict=True)
            for name in wf.unique_fields
            if values.get(name) is not None
        ]
        if keys:
            try:
                with conn.begin_nested():
                    insert_rows(conn, _keys, keys)
            except IntegrityError:
                # someone opened a case with one of these values since the file was checked: nothing of
                # this batch is written (earlier batches stay); importing again reports the row
                raise ImportClash(", ".join(wf.unique_fields), chunk[0][0], chunk[-1][0]) from None
        if planned:
            insert_rows(
                conn, _timers, [{**r, "case_id": case_id, "created_at": now} for case_id in ids for r in planned]
            )
        return refs

    # --------------------------------------------------------------- fire many

    def fire_many(
        self,
        refs: Sequence[str],
        trigger: str,
        actor: str,
        *,
        comment: str | None = None,
        batch: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> FireManyReport:
        """Take the step ``trigger`` on every case in ``refs`` as ``actor``.

        Each case gets every check :meth:`fire` makes; a refused case is
        reported with its reason and the rest go ahead. Cases are read and
        written ``batch`` per transaction. A ref given twice is fired once.
        """
        from engine.rules import clean_comment

        _check_batch(batch)
        comment = clean_comment(comment)
        report = FireManyReport(trigger)
        unique = list(dict.fromkeys(refs))
        with self.engine.connect() as conn:
            user = self._actor(conn, actor)
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            fired, refused = self._write(lambda conn, c=chunk: self._fire_batch(conn, c, trigger, user, comment))
            report.fired += fired
            report.refused += refused
            if progress:
                progress(len(chunk))
        return report

    def _fire_batch(
        self, conn: Connection, chunk: list[str], trigger: str, user: Actor, comment: str | None
    ) -> tuple[list[str], list[tuple[str, str]]]:
        now = self.clock.now()
        query = _batch_read(conn.dialect.name)
        rows = {r.ref: r for r in conn.execute(query, {"b_refs": chunk})}
        fired: list[str] = []
        refused: list[tuple[str, str]] = []
        changes = []
        void_ids = []
        people = None
        for ref in chunk:
            row = rows.get(ref)
            if row is None:
                refused.append((ref, f"no case {ref}"))
                continue
            try:
                self._check_scope(user, row)
                loaded = self._load_version(conn, row.workflow_version_id)
                if people is None:
                    people = directory(conn.execute(select(directory_column(conn.dialect.name))).scalar())
                change, written, _ = self._plan_fire(
                    conn, loaded, row, user, trigger, comment, None, row.version, now, users=people
                )
            except RefusedError as exc:
                refused.append((ref, str(exc)))
                continue
            except CaseworkError as exc:  # pragma: no cover - every rule refusal is a RefusedError
                refused.append((ref, str(exc)))
                continue
            changes.append(change)
            fired.append(ref)
            if loaded.definition.states[written.state].void:
                void_ids.append(row.id)
        write_changes(conn, changes)
        if void_ids:
            conn.execute(delete(_keys).where(_keys.c.case_id.in_(void_ids)))
        return fired, refused


_BATCH_READS: dict[str, Any] = {}


def _batch_read(dialect: str) -> Any:
    """Read a batch of cases with their open objections; ``FOR UPDATE`` holds them on PostgreSQL."""
    query = _BATCH_READS.get(dialect)
    if query is None:
        query = select(
            _cases,
            OPEN_OBJECTIONS,
        ).where(_cases.c.ref.in_(bindparam("b_refs", expanding=True)))
        if dialect == "postgresql":
            # lock the batch's rows in a fixed order: two bulk steps never deadlock, and a single
            # step on one of these cases waits for the batch instead of slipping in between
            query = query.order_by(_cases.c.id).with_for_update(of=_cases)
        _BATCH_READS[dialect] = query
    return query


def _allocate_refs(conn: Connection, prefix: str, year: int, count: int) -> int:
    """Take ``count`` consecutive reference numbers; return the first."""
    bumped = conn.execute(
        update(_counters)
        .where(_counters.c.prefix == prefix, _counters.c.year == year)
        .values(last=_counters.c.last + count)
        .returning(_counters.c.last)
    ).scalar_one_or_none()
    if bumped is None:
        conn.execute(insert(_counters).values(prefix=prefix, year=year, last=count))
        bumped = count
    return bumped - count + 1
