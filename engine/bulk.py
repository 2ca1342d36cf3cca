"""Bulk paths: importing many archives, and one step on many cases.

Both keep every rule of the single-case paths — an import row is planned by
the same :func:`engine.opening.plan_opening` as a single create, and a bulk
step by the same :meth:`engine.steps.Steps.plan_fire` as a single step — but
batch the database work: a batch of cases is read in one query and written
with one ``executemany`` per table, ``batch`` cases per transaction (1,000 by
default), so other clerks are never blocked for long.

Import is validate-everything-first: every row is checked (field values,
scope, the opener's rights, unique fields against the database and within
the file) before anything is written, and a file with any bad row imports
nothing unless ``skip_invalid``. ``fire_many`` decides case by case: a case
the rules refuse is reported with its reason and the others go ahead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection

from engine import quotas
from engine.access import Actor, check_scope, covers, four_eyes_facts, opening_role
from engine.catalog import Catalog, Loaded
from engine.clock import Clock
from engine.deadlines import Deadlines
from engine.definition import WorkflowDef
from engine.errors import Code, ConflictError, DuplicateCase, InputError, InvalidCaseData, RefusedError
from engine.limits import DEFAULT_BATCH, MAX_BATCH
from engine.links import Linked, LinkReader, link_reader
from engine.models import FireManyReport, ImportReport, Refused, RowProblem
from engine.opening import KeyClash, Planned, plan_opening, unique_clashes, write_openings
from engine.rules import clean_comment
from engine.steps import Steps
from engine.store import audit as audit_store, keys as key_store
from engine.store.cases import read_batch
from engine.store.database import Database, VersionPin
from engine.store.keys import Holder
from engine.store.tables import CaseRow
from engine.store.users import directory
from engine.store.writes import ChangeRows, write_changes
from engine.users import find_actor

__all__ = ["Bulk", "ImportClash", "InvalidImport", "Progress"]


Progress = Callable[[int], None]


class InvalidImport(RefusedError):
    """Rows of an import file are invalid; nothing was imported."""

    default_code = Code.INVALID_IMPORT

    def __init__(self, problems: Sequence[RowProblem], total: int) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  … and {len(self.problems) - 50} more rows" if len(self.problems) > 50 else ""
        super().__init__(
            f"{len(self.problems)} of {total} rows are invalid, so nothing was imported:\n{shown}{more}\n"
            "fix those rows and import the file again, or import only the valid rows",
            rows=[p.to_json() for p in self.problems],
            invalid=len(self.problems),
            total=total,
        )


class ImportClash(RefusedError):
    """A unique value of the file was taken by a case opened while the import ran."""

    default_code = Code.IMPORT_CLASH

    def __init__(self, fields: str, first_line: int, last_line: int) -> None:
        self.first_line, self.last_line = first_line, last_line
        super().__init__(
            f"while importing lines {first_line}–{last_line}, someone opened a case with the same {fields} "
            "as one of them, so none of those lines was imported (the lines before were); import the file "
            "again skipping invalid rows: the rows already imported and the clashing row will be reported and skipped",
            fields=fields,
            first_line=first_line,
            last_line=last_line,
        )


def check_batch(batch: int) -> None:
    """Refuse a batch size outside 1..:data:`MAX_BATCH`."""
    if not 1 <= batch <= MAX_BATCH:
        raise InputError(
            f"batch size {batch} is out of range: use 1 to {MAX_BATCH} cases per transaction",
            option="batch",
            value=batch,
        )


class Bulk:
    """Import files of cases, and take one step on many cases.

    Args:
        db: runs each batch in its own transaction.
        catalog, steps, deadlines, clock: as the single-case paths use them.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, deadlines: Deadlines, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.deadlines = deadlines
        self.clock = clock

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

        Every row is planned first, exactly as a single create would be; any
        invalid row refuses the whole file (:class:`InvalidImport`, with each
        bad row's line number and problems) unless ``skip_invalid``. The valid
        rows are then written ``batch`` per transaction. ``progress(n)`` is
        called as rows are checked and as they are written.
        """
        check_batch(batch)
        now = self.clock.now()
        with self.db.read() as conn:
            user = find_actor(conn, actor)
            loaded = self.catalog.resolve(conn, workflow)
        wf = loaded.definition
        role = opening_role(wf, user)
        read: LinkReader | None = None
        if wf.linked_fields:
            # each row's linked case, read as it is planned (the step that requires the link checks it again)
            def read(ref: str) -> Linked | None:
                with self.db.read() as conn:
                    return link_reader(conn, self.catalog)(ref)

        valid: list[tuple[int, Planned]] = []
        problems: list[RowProblem] = []
        seen: dict[tuple[str, str], int] = {}  # unique field value → the line that has it
        total = 0
        for line, data in rows:
            total += 1
            found = _plan_row(wf, user, role, data, now, read)
            if isinstance(found, list):
                problems.append(RowProblem(line=line, problems=tuple(found)))
            else:
                clashes = []
                for name in wf.unique_fields:
                    value = found.values.get(name)
                    if value is None:
                        continue
                    first = seen.setdefault((name, str(value)), line)
                    if first != line:
                        clashes.append(f"{name}: the same value is already on line {first} of this file")
                if clashes:
                    problems.append(RowProblem(line=line, problems=tuple(clashes)))
                else:
                    valid.append((line, found))
            if progress:
                progress(1)
        with self.db.read() as conn:
            taken = unique_clashes(conn, wf, [p for _, p in valid])
        problems += [RowProblem(line=valid[i][0], problems=(_taken(name, h, user),)) for i, name, h in taken]
        bad = {p.line for p in problems}
        valid = [(line, p) for line, p in valid if line not in bad]
        problems.sort(key=lambda p: p.line)
        if problems and not skip_invalid:
            raise InvalidImport(problems, total)
        report = ImportReport(skipped=problems)
        for start in range(0, len(valid), batch):
            chunk = valid[start : start + batch]
            refs = self.db.transaction(partial(self._write_batch, loaded=loaded, chunk=chunk, now=now))
            report.imported += refs
            if progress:
                progress(len(chunk))
        return report

    def _write_batch(
        self, conn: Connection, loaded: Loaded, chunk: list[tuple[int, Planned]], now: dt.datetime
    ) -> list[str]:
        try:
            opened = write_openings(conn, loaded, [p for _, p in chunk], now, self.deadlines, self.steps.recorder)
        except KeyClash:
            # someone opened a case with one of these values since the file was checked: nothing of
            # this batch is written (earlier batches stay); importing again reports the row
            raise ImportClash(", ".join(loaded.definition.unique_fields), chunk[0][0], chunk[-1][0]) from None
        return [o.ref for o in opened]

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
        versions: Mapping[str, int] | None = None,
    ) -> FireManyReport:
        """Take the step ``trigger`` on every case in ``refs`` as ``actor``.

        Each case gets every check a single step makes; a refused case is
        reported with its reason and the rest go ahead. Cases are read and
        written ``batch`` per transaction. A ref given twice is fired once.
        ``versions``: a case whose version is not the one given for it is
        refused (``conflict``), as a single step with ``expected_version`` is.
        """
        check_batch(batch)
        comment = clean_comment(comment)
        report = FireManyReport(trigger=trigger)
        unique = list(dict.fromkeys(refs))
        with self.db.read() as conn:
            user = find_actor(conn, actor)
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            fired, refused = self.db.transaction(
                partial(
                    self._fire_batch, chunk=chunk, trigger=trigger, user=user, comment=comment, versions=versions or {}
                )
            )
            report.fired += fired
            report.refused += refused
            if progress:
                progress(len(chunk))
        return report

    def _fire_batch(
        self,
        conn: Connection,
        chunk: list[str],
        trigger: str,
        user: Actor,
        comment: str | None,
        versions: Mapping[str, int],
    ) -> tuple[list[str], list[Refused]]:
        now = self.clock.now()
        rows = read_batch(conn, chunk)
        fired: list[str] = []
        refused: list[Refused] = []
        changes: list[ChangeRows] = []
        void_ids = []
        people = None
        batch_facts: dict[int, dict[str, list[str]]] = {}
        linked: list[tuple[str, int]] = []

        def trail(case_id: int) -> dict[str, list[str]]:
            # the first four-eyes step of the batch reads the trails of the whole batch at once
            if not batch_facts:
                trails = audit_store.data_events(conn, [case.id for case, _ in rows.values()])
                batch_facts.update({cid: four_eyes_facts(events) for cid, events in trails.items()})
            return batch_facts[case_id]

        planned: list[tuple[str, ChangeRows, CaseRow, bool, list[quotas.Claim]]] = []
        for ref in chunk:
            found = rows.get(ref)
            if found is None:
                refused.append(Refused(ref=ref, reason=f"no case {ref}", code=Code.CASE_NOT_FOUND, facts={"case": ref}))
                continue
            case, open_objections = found
            try:
                check_scope(user, ref, case.scope)
                expected = versions.get(ref)
                if expected is not None and expected != case.version:
                    raise ConflictError(
                        ref,
                        f"version {case.version}, expected {expected}",
                        expected_version=expected,
                        found_version=case.version,
                    )
                loaded = self.catalog.get(conn, case.workflow_version_id)
                if _acts_on_another(loaded.definition, trigger):
                    # a step with a then: acts on a linked case: the single-case way, after the batch
                    linked.append((ref, case.version))
                    continue
                if people is None:
                    people = directory(conn)
                change, written, values = self.steps.plan_fire(
                    loaded, case, open_objections, people, user, trigger, comment, None, case.version, now, trail
                )
                wf = loaded.definition
                asked = quotas.claims(wf, case.id, ref, case.state, trigger, values, written.updated_at)
            except RefusedError as exc:
                refused.append(Refused(ref=ref, reason=exc.message, code=exc.code, facts=exc.facts))
                continue
            planned.append((ref, change, written, wf.states[written.state].void, asked))
        # limits across cases: the cases of this batch with one key count together, in the batch's order
        verdicts = quotas.settle(conn, [asked for *_, asked in planned])
        counted = []
        for (ref, change, written, void, asked), refusal in zip(planned, verdicts, strict=True):
            if refusal is not None:
                refused.append(Refused(ref=ref, reason=refusal.message, code=refusal.code, facts=refusal.facts))
                continue
            changes.append(change)
            fired.append(ref)
            if void:
                void_ids.append(written.id)
            if asked:
                counted.append((asked, written.audit_seq, written.updated_at))
        write_changes(conn, changes)
        quotas.record(conn, counted)
        if void_ids:
            key_store.release_keys(conn, void_ids)
        for ref, version in linked:
            # each in a savepoint of the batch's transaction: a refusal (of the case or of the case it acts
            # on) undoes that case's steps only, and is reported like any other
            savepoint = conn.begin_nested()
            try:
                self.steps.fire(conn, ref, trigger, user, comment, None, VersionPin(version))
            except RefusedError as exc:
                savepoint.rollback()
                refused.append(Refused(ref=ref, reason=exc.message, code=exc.code, facts=exc.facts))
                continue
            savepoint.commit()
            fired.append(ref)
        return fired, refused


def _acts_on_another(wf: WorkflowDef, trigger: str) -> bool:
    """Whether the step ``trigger`` takes a step on a linked case too (``then:``), or reads one (``link:``)."""
    t = wf.transitions.get(trigger)
    return t is not None and (t.then is not None or any(f in t.require for f in wf.linked_fields))


def _taken(field: str, holder: Holder, user: Actor) -> str:
    """A row's unique value already on a case: that case named only if ``user`` covers its county."""
    if covers(user.scopes, holder.scope):
        return f"{field}: already on case {holder.ref} ({holder.state})"
    return f"{field}: {DuplicateCase.held(field, holder.ref, holder.state, visible=False).message}"


def _plan_row(
    wf: WorkflowDef, user: Actor, role: str, data: Mapping[str, Any], now: dt.datetime, read: LinkReader | None
) -> Planned | list[str]:
    """The row's plan, or the list of what is wrong with it (the scope problem worded for a row)."""
    try:
        return plan_opening(wf, user, data, now, role, read)
    except InvalidCaseData as exc:
        return [str(p) for p in exc.problems]
    except RefusedError as exc:
        if exc.code in (Code.LINKED_CASE_NOT_FOUND, Code.LINKED_CASE_STATE):
            return [exc.message]
        if exc.code is Code.SCOPE_NOT_COVERED:
            return [f"{wf.scope_field}: {user.username} covers {', '.join(user.scopes)}, not {exc.facts['scope']}"]
        raise
