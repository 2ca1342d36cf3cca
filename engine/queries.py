"""Reading cases: one case with what a user may do now, lists, to-do lists, inboxes, history, verification.

Reads change nothing; each runs on one connection and applies the same
visibility rule as changes (a user sees the cases in their scopes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from sqlalchemy import Connection

from engine.access import ALL_SCOPES, Actor, covers, editable_fields, waits_for
from engine.audit import make_checkpoint, read_checkpoint
from engine.caseview import case_view
from engine.catalog import Catalog, Loaded
from engine.clock import Clock
from engine.deadlines import Deadlines
from engine.definition import WorkflowDef
from engine.errors import CaseNotFound, Code, InputError, PermissionDenied, WorkflowNotFound
from engine.evidence import examine
from engine.limits import MAX_PER_PAGE
from engine.masking import mask_id_numbers, mask_value
from engine.models import AuditRecord, CaseView, InboxPage, InvariantReport, TimerView, VerifyReport
from engine.pauses import clock_action
from engine.steps import Steps
from engine.store import (
    audit as audit_store,
    cases as case_store,
    evidence as evidence_store,
    timers as timer_store,
    versions as version_store,
)
from engine.store.database import Database
from engine.store.inbox import Range, first_waiting
from engine.store.invariants import check_invariants
from engine.store.tables import CaseRow
from engine.suggest import close_match, did_you_mean
from engine.users import declared_by, find_actor

__all__ = ["HOUSEHOLD_TYPE", "MAX_SEARCH", "STREAM_BATCH", "CaseFilters", "Queries", "applicant_field", "overdue_for"]


#: the longest text ``case list --search`` takes (a reference is at most 40 characters, a name 40)
MAX_SEARCH = 100
#: rows read at a time when a list is streamed
STREAM_BATCH = 1000
#: the field the household-type filter reads (困难类型 in the archive and the workflows built on it)
HOUSEHOLD_TYPE = "household_type"


class CaseFilters(TypedDict, total=False):
    """What narrows a list of cases (:meth:`Queries.iter_cases` says what each does)."""

    workflow: str | None
    state: str | None
    actor: str | None
    limit: int | None
    overdue: bool
    counties: Sequence[str]
    household_type: str | None
    search: str | None
    after: str | None


class Queries:
    """Every read of cases.

    Args:
        db: reads run on a connection of it.
        catalog, steps, deadlines, clock: to show cases as a step would see them.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, deadlines: Deadlines, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.deadlines = deadlines
        self.clock = clock

    def get_case(self, ref: str, actor: str | None = None) -> CaseView:
        """The case; with ``actor``, only if they may see it, and with the steps they may take now."""
        with self.db.read() as conn:
            user = find_actor(conn, actor) if actor else None
            case = self.steps.case(conn, ref, user)
            wf = self.catalog.get(conn, case.workflow_version_id).definition
            if user is None:
                return self.steps.view(wf, case)
            actions = self.steps.actions(wf, case, case_store.open_objections(conn, case.id), user)
            view = self.steps.view(wf, case, actions)
            clock = clock_action(wf, case, user)
            return view.model_copy(update={"editable": editable_fields(wf, case.state, user), "clock": clock})

    def list_cases(self, **filters: Unpack[CaseFilters]) -> list[CaseView]:
        """Cases by reference order; with ``actor``, only those in their scopes.

        ``overdue``: only cases past their deadline (not paused), most overdue
        first; with ``actor`` too, only those in a state where one of their
        roles can take a step — their to-do list. ``counties``, ``household_type``
        and ``search`` narrow the list as :meth:`iter_cases` says.
        """
        return list(self.iter_cases(**filters))

    def iter_cases(
        self,
        *,
        workflow: str | None = None,
        state: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
        overdue: bool = False,
        counties: Sequence[str] = (),
        household_type: str | None = None,
        search: str | None = None,
        after: str | None = None,
        batch: int = STREAM_BATCH,
    ) -> Iterator[CaseView]:
        """The cases :meth:`list_cases` lists, read ``batch`` rows at a time: a long list is never held whole.

        Every name given is checked now, before anything is read: an unknown
        ``workflow`` is :class:`WorkflowNotFound`; an unknown ``state``,
        county or household type an :class:`InputError` with a "did you
        mean"; a county outside ``actor``'s scopes a :class:`PermissionDenied`.

        ``counties``: only cases in one of these scopes (a county a loaded
        workflow's scope field allows). ``household_type``: only cases whose
        ``household_type`` field holds it. ``search``: the text, ignoring
        case, anywhere in the reference (``000041``, ``zz-2026-0000``) or in
        the applicant's name (the workflow's first ``pii: name`` field). Every
        filter applies within what ``actor`` may see (their scopes) — the
        cases whose full data, names included, they may read — so a search by
        a name they may not see finds nothing, and its count says nothing.

        ``after``: only the cases opened after the case of that reference (by
        id): the next page of a list whose last case it was (not with ``overdue``).

        The cases are read on a connection held until the iterator is done;
        finish (or close) it before writing anything.
        """
        with self.db.read() as conn:
            wanted = self._wanted(conn, workflow, state, actor, overdue, counties, household_type, search)
            if after is not None:
                wanted = dataclasses.replace(wanted, after=self._after(conn, after, wanted.user))
        return self._stream(wanted, limit, batch)

    @staticmethod
    def _after(conn: Connection, ref: str, user: Actor | None) -> int:
        """The id of case ``ref`` to list after; only a case ``user`` may see (else nothing tells that it exists)."""
        row = case_store.read_case(conn, ref) if len(ref) <= 40 and "\x00" not in ref else None
        if row is None or (user is not None and not covers(user.scopes, row.scope)):
            raise InputError(
                "the cursor names no case of this list: pass the cursor the previous page gave, unchanged",
                option="cursor",
                value=ref[:40],
            )
        return row.id

    def _wanted(
        self,
        conn: Connection,
        workflow: str | None,
        state: str | None,
        actor: str | None,
        overdue: bool,
        counties: Sequence[str],
        household_type: str | None,
        search: str | None,
    ) -> _Wanted:
        """The list's filters, every name in them checked (see :meth:`iter_cases`)."""
        if workflow:
            self.catalog.resolve(conn, workflow)  # WorkflowNotFound, with a did-you-mean
        if state:
            self._check_state_name(conn, state, workflow)
        user = find_actor(conn, actor) if actor else None
        loaded_versions = self.catalog.all(conn, workflow)
        versions = [loaded.definition for loaded in loaded_versions]
        for county in counties:
            _check_county(county, versions, workflow, user)
        if household_type is not None:
            _check_household_type(household_type, versions, workflow)
        found = None
        if search is not None:
            text = search.strip()
            if not text or len(text) > MAX_SEARCH:
                raise InputError(
                    f"search for a reference or a name of 1 to {MAX_SEARCH} characters, not {search!r}",
                    option="search",
                    value=search,
                )
            names: dict[str, list[int]] = {}
            for loaded in loaded_versions:
                field = applicant_field(loaded.definition)
                if field is not None:
                    names.setdefault(field, []).append(loaded.id)
            found = case_store.NameSearch(text, names)
        return _Wanted(
            workflow=workflow or None,
            state=state or None,
            user=user,
            overdue=overdue,
            counties=tuple(dict.fromkeys(counties)),
            household_type=household_type,
            search=found,
        )

    def _stream(self, wanted: _Wanted, limit: int | None, batch: int) -> Iterator[CaseView]:
        user = wanted.user
        # an overdue list for a user is their to-do list: only cases waiting for one of their roles
        roles = set(user.roles) if wanted.overdue and user is not None else None
        scopes = None if user is None or ALL_SCOPES in user.scopes else user.scopes
        shown = 0
        with self.db.read() as conn:
            definitions = {loaded.id: loaded.definition for loaded in self.catalog.all(conn, wanted.workflow)}
            listed = case_store.list_cases(
                conn,
                workflow=wanted.workflow,
                state=wanted.state,
                scopes=scopes,
                counties=wanted.counties,
                household_type=wanted.household_type,
                search=wanted.search,
                after=wanted.after,
                overdue_at=self.clock.now() if wanted.overdue else None,
                limit=None if roles is not None else limit,
                batch=batch,
            )
            with contextlib.closing(listed) as rows:
                for row in rows:
                    wf = definitions.get(row.workflow_version_id)
                    if wf is None:  # a version loaded since the list began
                        wf = self.catalog.get(conn, row.workflow_version_id).definition
                        definitions[row.workflow_version_id] = wf
                    if roles is not None and not waits_for(wf, row.state) & roles:
                        continue
                    yield self.steps.view(wf, row)
                    shown += 1
                    if limit and shown >= limit:
                        return

    def waiting_for(
        self,
        actor: str,
        *,
        page: int = 1,
        per_page: int = 50,
        workflow: str | None = None,
        state: str | None = None,
        scope: str | None = None,
        ref: str | None = None,
    ) -> InboxPage:
        """The user's inbox: open cases waiting for them, soonest deadline first.

        A case waits for ``actor`` when one of their roles may fire a step
        from its state (per the workflow version the case is on) and their
        scopes cover it. Order: soonest deadline first (then by id); then the
        cases without a deadline, oldest first; then paused cases, longest
        paused first (they still wait, but their clock is stopped and they
        show no deadline). Pages are offset/limit (``page`` 1 is the first
        ``per_page`` cases); ``has_more`` says whether another page follows.

        The filters narrow the inbox, never widen it: ``workflow``, only its
        cases; ``state``, only cases in that state; ``scope``, only cases of
        that county (cases of a workflow without a county drop out); ``ref``,
        only cases whose reference holds that text, ignoring case (a whole
        reference or a part, ``000041``). State and county narrow the index
        ranges read; the reference is one more condition on each of them.

        Raises:
            InputError: ``page`` below 1 or ``per_page`` outside 1..500; a
                ``state`` or ``scope`` no loaded version (of ``workflow``)
                declares (with a did-you-mean ``suggestion``); ``ref`` empty
                or longer than 100 characters.
            PermissionDenied: ``scope`` is outside the user's scopes
                (``scope_not_covered``).
            UserNotFound: no such user.
            WorkflowNotFound: ``workflow`` is given and not loaded.
        """
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            raise InputError(f"page must be a whole number from 1 up, not {page!r}", option="page", value=page)
        if isinstance(per_page, bool) or not isinstance(per_page, int) or not 1 <= per_page <= MAX_PER_PAGE:
            raise InputError(
                f"per page must be a whole number from 1 to {MAX_PER_PAGE}, not {per_page!r}",
                option="per_page",
                value=per_page,
            )
        if ref is not None:
            ref = ref.strip()
            if not ref or len(ref) > MAX_SEARCH:
                raise InputError(
                    f"search for a reference or a part of one of 1 to {MAX_SEARCH} characters, not {ref!r}",
                    option="ref",
                    value=ref,
                )
        offset = (page - 1) * per_page
        with self.db.read() as conn:
            user = find_actor(conn, actor)
            loaded = self.catalog.all(conn, workflow)
            if workflow and not loaded:
                names = version_store.workflow_names(conn)
                raise WorkflowNotFound(workflow, suggestion=close_match(workflow, names), known=names)
            if state:
                self._check_state_name(conn, state, workflow)
            if scope:
                _check_county(scope, [v.definition for v in loaded], workflow, user)
            roles = set(user.roles)
            ranges: list[Range] = []
            for version in loaded:
                wf = version.definition
                # final states have no steps out, so they never appear here; nor does a state where the user
                # may only send the case back (a correction is something one may do, not what the case waits for)
                states = sorted(s for s in wf.states if roles & waits_for(wf, s) and (not state or s == state))
                # A scoped version's cases always have a scope (it is required and cannot be cleared), an
                # unscoped version's never do, and covers() lets everyone see the latter: filter only the former.
                scopes: list[str | None] = (
                    list(sorted(user.scopes)) if wf.scope_field and ALL_SCOPES not in user.scopes else [None]
                )
                if scope:
                    # _check_county has made sure the user covers it; a version without a county has none of its cases
                    scopes = [scope] if wf.scope_field else []
                ranges += [Range(version.id, st, sc) for st in states for sc in scopes]
            ids = first_waiting(conn, ranges, offset + per_page + 1, ref)[offset:]
            rows = case_store.read_views(conn, ids)
            items = [
                case_view(
                    self.catalog.get(conn, rows[i].workflow_version_id).definition,
                    rows[i],
                    self.clock.now(),
                    self.deadlines,
                )
                for i in ids
            ]
        return InboxPage(items=items[:per_page], page=page, per_page=per_page, has_more=len(items) > per_page)

    def _check_state_name(self, conn: Connection, state: str, workflow: str | None) -> None:
        known = {s for loaded in self.catalog.all(conn, workflow) for s in loaded.definition.states}
        if known and state not in known:
            raise InputError(
                f"no state {state!r} in {workflow or 'any loaded workflow'}{did_you_mean(state, known)}",
                option="state",
                value=state,
                suggestion=close_match(state, known),
            )

    def count_by(self, workflow: str | None = None) -> list[tuple[str, str | None, str, int]]:
        """(workflow, scope, state, count) rows, for summaries."""
        with self.db.read() as conn:
            return case_store.count_by(conn, workflow)

    def history(self, ref: str, actor: str | None = None) -> list[AuditRecord]:
        """The case's audit events in order, personal data masked."""
        with self.db.read() as conn:
            user = find_actor(conn, actor) if actor else None
            case = self.steps.case(conn, ref, user)
            wf = self.catalog.get(conn, case.workflow_version_id).definition
            events = audit_store.events_of(conn, case.id)
        pii = wf.pii_fields
        return [
            AuditRecord(
                seq=e.seq,
                at=e.at,
                actor=e.actor,
                role=e.role,
                action=e.action,
                trigger=e.trigger,
                from_state=e.from_state,
                to_state=e.to_state,
                comment=mask_id_numbers(e.comment) if e.comment else e.comment,
                changes={k: [mask_value(pii.get(k), v) for v in pair] for k, pair in e.changes.items()},
                hash=e.hash,
                origin=(e.context or {}).get("origin"),
                timezone=wf.timezone,
            )
            for e in events
        ]

    def timers_of(self, ref: str, actor: str | None = None, status: str | None = "pending") -> list[TimerView]:
        """The case's timers (pending by default), soonest first; with ``actor``, only if they may see the case.

        Reads the case's own rows, not every timer: a case page asks for it on every view.
        """
        from engine.sweeps import timer_view

        with self.db.read() as conn:
            user = find_actor(conn, actor) if actor else None
            case = self.steps.case(conn, ref, user)
            tz = self.catalog.get(conn, case.workflow_version_id).definition.timezone
            rows = timer_store.case_timers(conn, case.id, status=status)
        return [timer_view(t, case.ref).model_copy(update={"timezone": tz}) for t in rows]

    def checkpoint(self) -> dict[str, Any]:
        """A checkpoint of every trail head and notice now (see :func:`engine.audit.make_checkpoint`)."""
        with self.db.read() as conn:
            heads = {h.ref: (h.audit_seq, h.audit_head) for h in audit_store.heads(conn).values()}
            notices = {n.number: n.sha256 for n in evidence_store.notices(conn)}
        return make_checkpoint(self.clock.now(), heads, notices, self.steps.recorder.key)

    def verify_audit(self, ref: str | None = None, checkpoint: str | None = None) -> VerifyReport:
        """Prove every case (or one) against its trail: the hash chain, the head's seal, the replay.

        Without ``ref`` also re-hashes workflow versions and notices, looks for
        deleted cases and (SQLite) checks the file (see :mod:`engine.evidence`).
        ``checkpoint`` is the text of a checkpoint file to compare against.
        """
        report = VerifyReport(authenticated=self.steps.recorder.key is not None)
        then = read_checkpoint(checkpoint, self.steps.recorder.key) if checkpoint is not None else None
        with self.db.read() as conn:
            if ref is not None and not audit_store.heads(conn, ref):
                raise CaseNotFound(ref)
            definition = lambda vid: self.catalog.get(conn, vid).definition  # noqa: E731
            found = examine(
                conn, definition, self.steps.recorder, report, ref=ref, checkpoint=then[:2] if then else None
            )
        report.cases, report.events, report.breaks = found.cases, found.events, found.breaks or []
        return report

    def check(self) -> InvariantReport:
        """Check the invariants every stored case must satisfy, and prove each case against its trail.

        The invariants are :mod:`engine.store.invariants`; the proof is
        :mod:`engine.evidence` (a broken chain is reported under ``chain``).
        """
        with self.db.read() as conn:
            definition = lambda vid: self.catalog.get(conn, vid).definition  # noqa: E731
            report = check_invariants(conn, definition)
            report.authenticated = self.steps.recorder.key is not None
            found = examine(conn, definition, self.steps.recorder, report)
        for broken in found.breaks or []:
            report.add("chain", broken.ref, str(broken).removeprefix(f"case {broken.ref}: "))
        return report


def overdue_for(
    catalog: Catalog, conn: Connection, user: Actor, now: dt.datetime, workflow: str | None = None
) -> list[tuple[CaseRow, Loaded]]:
    """The user's to-do list: cases past their deadline at ``now`` in their scopes, waiting for one of their roles."""
    scopes = None if ALL_SCOPES in user.scopes else user.scopes
    out = []
    for row in case_store.list_cases(conn, workflow=workflow, scopes=scopes, overdue_at=now):
        loaded = catalog.get(conn, row.workflow_version_id)
        if waits_for(loaded.definition, row.state) & set(user.roles):
            out.append((row, loaded))
    return out


@dataclass(frozen=True)
class _Wanted:
    """A case list's filters, every name checked."""

    workflow: str | None
    state: str | None
    user: Actor | None
    overdue: bool
    counties: tuple[str, ...]
    household_type: str | None
    search: case_store.NameSearch | None
    #: list the cases after the one of this id (a cursor)
    after: int | None = None


def applicant_field(wf: WorkflowDef) -> str | None:
    """The field holding the case's applicant's name: the first ``pii: name`` field (as lists show it masked)."""
    return next((name for name, kind in wf.pii_fields.items() if kind == "name"), None)


def _check_county(county: str, versions: Sequence[WorkflowDef], workflow: str | None, user: Actor | None) -> None:
    """Refuse a county no workflow of ``versions`` allows, or one outside ``user``'s scopes."""
    where = workflow or "any loaded workflow"
    declared = declared_by(versions).scopes
    if not any(wf.scope_field for wf in versions):
        what = f"{workflow} has no county" if workflow else "no loaded workflow has a county"
        raise InputError(f"{what} (a scope field): list without a county", option="county", value=county)
    if declared is not None and county not in declared:
        raise InputError(
            f"no county {county!r} in {where}{did_you_mean(county, declared)}",
            option="county",
            value=county,
            suggestion=close_match(county, declared),
        )
    if user is not None and not covers(user.scopes, county):
        held = ", ".join(user.scopes)
        raise PermissionDenied(
            f"{user.username} covers {held}, not {county}, so no case of {county} is listed for them; "
            f"list {held} or ask a colleague who covers {county}",
            code=Code.SCOPE_NOT_COVERED,
            user=user.username,
            scopes=list(user.scopes),
            scope=county,
        )


def _check_household_type(value: str, versions: Sequence[WorkflowDef], workflow: str | None) -> None:
    """Refuse a household type no ``household_type`` field of ``versions`` allows."""
    fields = [wf.fields[HOUSEHOLD_TYPE] for wf in versions if HOUSEHOLD_TYPE in wf.fields]
    if not fields:
        raise InputError(
            f"{workflow or 'no loaded workflow'} has no household type ({HOUSEHOLD_TYPE} field), "
            "so no case of it has one: list without a household type",
            option="household_type",
            value=value,
        )
    if any(not f.choices for f in fields):
        return  # a free-text field: any value may be stored
    known = {c for f in fields for c in f.choices}
    if value not in known:
        raise InputError(
            f"no household type {value!r} in {workflow or 'any loaded workflow'}{did_you_mean(value, known)}",
            option="household_type",
            value=value,
            suggestion=close_match(value, known),
        )
