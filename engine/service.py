"""The engine's service object: the only way state changes.

:class:`Casework` owns the rules of every change — who may act (role, scope,
four-eyes), what data is valid, which step is allowed, which guard holds —
and applies each change in **one database transaction** (DESIGN.md core idea
3): the case row is updated with an optimistic version check and the audit
event is appended in the same transaction. A refused call raises a typed
:class:`~engine.errors.RefusedError` and changes nothing.

Concurrency. Every change reads the case and writes it back with
``UPDATE ... WHERE version = :seen``. On PostgreSQL a concurrent writer
blocks on the row lock and then matches no row: :class:`ConflictError`. On
SQLite a writer whose snapshot went stale gets SQLITE_BUSY; the change is
retried from the start *pinned to the version first seen*, so it proceeds
if another case was written, and is a conflict if this one was.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from transitions import Machine

from db.models import AuditEvent, Case, CaseKey, Objection, User, WorkflowVersion
from engine.access import ALL_SCOPES, SYSTEM_ACTOR, acting_role, covers, four_eyes_conflict
from engine.audit import GENESIS, Event, verify_chain
from engine.calendar import WorkingCalendar
from engine.clock import Clock, SystemClock
from engine.definition import WorkflowDef, load_definition
from engine.definition.model import TransitionDef
from engine.errors import (
    AlreadyExists,
    CaseNotFound,
    CommentRequired,
    ConflictError,
    DuplicateCase,
    FieldProblem,
    GuardFailed,
    InputError,
    InvalidCaseData,
    InvalidTransition,
    MissingFields,
    PermissionDenied,
    RefusedError,
    SameActorForbidden,
    TransitionRefused,
    UserNotFound,
    WorkflowNotFound,
)
from engine.expressions import ExpressionError
from engine.fields import EMAIL, coerce_value, is_empty
from engine.machine import build_machine, move
from engine.masking import mask_value
from engine.outbox import queue_event
from engine.publicity import PublicityMixin
from engine.refs import allocate_ref
from engine.suggest import did_you_mean
from engine.timers import TimersMixin, describe_left, schedule, time_left
from engine.views import Action, AuditRecord, CaseView, UserInfo, VerifyReport, WorkflowInfo

__all__ = ["Casework"]

logger = logging.getLogger(__name__)

_cases = Case.__table__
_events = AuditEvent.__table__
_keys = CaseKey.__table__
_users = User.__table__
_versions = WorkflowVersion.__table__
_objections = Objection.__table__

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
MAX_COMMENT = 2000
_WRITE_ATTEMPTS = 8

T = TypeVar("T")


@dataclass(frozen=True)
class _Actor:
    username: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    system: bool = False


_SYSTEM = _Actor(SYSTEM_ACTOR, (), (ALL_SCOPES,), system=True)


@dataclass(frozen=True)
class _Loaded:
    id: int
    definition: WorkflowDef
    machine: Machine


class Casework(PublicityMixin, TimersMixin):
    """The engine: load workflows, manage users, create and advance cases.

    Args:
        engine: a SQLAlchemy engine from :func:`db.make_engine` whose schema
            is at head (``casework init``).
        clock: where "now" comes from; tests pass a :class:`FixedClock`.
    """

    def __init__(self, engine: Engine, clock: Clock | None = None, calendar: WorkingCalendar | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self._calendar = calendar
        self._loaded: dict[int, _Loaded] = {}

    @property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar deadlines are counted on (loaded on first use)."""
        if self._calendar is None:
            self._calendar = WorkingCalendar.load()
        return self._calendar

    @calendar.setter
    def calendar(self, value: WorkingCalendar) -> None:
        self._calendar = value

    # ------------------------------------------------------------------ workflows

    def load_workflow(self, definition: WorkflowDef) -> tuple[WorkflowInfo, bool]:
        """Store ``definition`` as an immutable version.

        Returns the stored version and whether it was new. Loading the same
        source again is a no-op; a *different* source under an existing
        version number is refused (cases in flight depend on the old one).
        """

        def work(conn: Connection) -> tuple[WorkflowInfo, bool]:
            row = conn.execute(
                select(_versions).where(_versions.c.name == definition.name, _versions.c.version == definition.version)
            ).first()
            if row is not None:
                if row.source_hash == definition.source_hash:
                    return self._workflow_info(conn, row), False
                raise AlreadyExists(
                    f"{definition.name} version {definition.version} is already loaded with different "
                    f"content; set 'version: {self._next_version(conn, definition.name)}' in the changed "
                    "file (cases in flight stay on the version they started on)"
                )
            now = self.clock.now()
            conn.execute(
                insert(_versions).values(
                    name=definition.name,
                    version=definition.version,
                    title=definition.title,
                    source=definition.source,
                    source_hash=definition.source_hash,
                    templates=dict(definition.templates.sources),
                    loaded_at=now,
                )
            )
            row = conn.execute(
                select(_versions).where(_versions.c.name == definition.name, _versions.c.version == definition.version)
            ).one()
            return self._workflow_info(conn, row), True

        return self._write(work)

    def workflows(self) -> list[WorkflowInfo]:
        """Every loaded workflow version, by name then version."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_versions).order_by(_versions.c.name, _versions.c.version)).all()
            return [self._workflow_info(conn, r) for r in rows]

    def workflow(self, name: str, version: int | None = None) -> WorkflowDef:
        """The definition of ``name`` (its latest version unless ``version`` is given)."""
        with self.engine.connect() as conn:
            return self._resolve_workflow(conn, name, version).definition

    def _resolve_workflow(self, conn: Connection, name: str, version: int | None) -> _Loaded:
        query = select(_versions.c.id).where(_versions.c.name == name)
        if version is not None:
            query = query.where(_versions.c.version == version)
        vid = conn.execute(query.order_by(_versions.c.version.desc()).limit(1)).scalar()
        if vid is None:
            if version is None:
                names = conn.execute(select(_versions.c.name).distinct()).scalars().all()
                raise WorkflowNotFound(name, hint=did_you_mean(name, names))
            raise WorkflowNotFound(name, version)
        return self._load_version(conn, vid)

    def _load_version(self, conn: Connection, version_id: int) -> _Loaded:
        loaded = self._loaded.get(version_id)
        if loaded is None:
            row = conn.execute(select(_versions).where(_versions.c.id == version_id)).one()
            definition = load_definition(row.source, f"{row.name} v{row.version}", row.templates)
            loaded = _Loaded(version_id, definition, build_machine(definition))
            self._loaded[version_id] = loaded
        return loaded

    @staticmethod
    def _next_version(conn: Connection, name: str) -> int:
        top = conn.execute(select(func.max(_versions.c.version)).where(_versions.c.name == name)).scalar()
        return (top or 0) + 1

    @staticmethod
    def _workflow_info(conn: Connection, row: Any) -> WorkflowInfo:
        count = conn.execute(
            select(func.count()).select_from(_cases).where(_cases.c.workflow_version_id == row.id)
        ).scalar_one()
        latest = conn.execute(select(func.max(_versions.c.version)).where(_versions.c.name == row.name)).scalar()
        return WorkflowInfo(
            row.name, row.version, row.title, row.source_hash, row.loaded_at, count, latest == row.version
        )

    # ---------------------------------------------------------------------- users

    def add_user(
        self, username: str, name: str, roles: list[str], scopes: list[str], email: str | None = None
    ) -> UserInfo:
        """Add a user with roles, the scopes (e.g. counties; ``*`` = all) they cover, and an email address."""
        problems = []
        if email is not None:
            email = email.strip() or None
            if email is not None and not EMAIL.match(email):
                problems.append(f"--email {email!r} is not an email address (e.g. lin@example.org)")
        if username == SYSTEM_ACTOR:
            problems.append("'system' is reserved for the scheduler; choose another username")
        elif not _USERNAME.match(username or ""):
            problems.append(
                f"username {username!r} is not valid: use lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter (e.g. lin)"
            )
        if not name or not name.strip():
            problems.append("--name is needed: the person's full name")
        if not roles:
            problems.append("at least one --role is needed (e.g. --role clerk)")
        for role in roles:
            if role == SYSTEM_ACTOR:
                problems.append("role 'system' is reserved for the scheduler")
            elif not _ROLE.match(role):
                problems.append(f"role {role!r} is not valid: lowercase letters, digits and '_'")
        if not scopes:
            problems.append("at least one --scope is needed: a county the user covers, or * for all")
        elif any(not s.strip() for s in scopes):
            problems.append("an empty --scope was given: name a county the user covers, or * for all")
        if problems:
            raise InputError("; ".join(problems))
        roles = list(dict.fromkeys(roles))
        scopes = list(dict.fromkeys(s.strip() for s in scopes))

        def work(conn: Connection) -> UserInfo:
            if conn.execute(select(_users.c.id).where(_users.c.username == username)).first():
                raise AlreadyExists(f"user {username!r} already exists; see 'casework user list'")
            now = self.clock.now()
            conn.execute(
                insert(_users).values(
                    username=username, name=name.strip(), email=email, roles=roles, scopes=scopes, created_at=now
                )
            )
            return UserInfo(username, name.strip(), tuple(roles), tuple(scopes), now, email)

        return self._write(work)

    def users(self) -> list[UserInfo]:
        """All users, by username."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(_users).order_by(_users.c.username)).all()
        return [UserInfo(r.username, r.name, tuple(r.roles), tuple(r.scopes), r.created_at, r.email) for r in rows]

    def user(self, username: str) -> UserInfo:
        """One user; :class:`UserNotFound` if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_users).where(_users.c.username == username)).first()
        if row is None:
            raise UserNotFound(username)
        return UserInfo(row.username, row.name, tuple(row.roles), tuple(row.scopes), row.created_at, row.email)

    def known_roles(self) -> set[str]:
        """Roles declared by any loaded workflow (latest versions)."""
        roles: set[str] = set()
        with self.engine.connect() as conn:
            for vid in conn.execute(select(_versions.c.id)).scalars():
                roles |= set(self._load_version(conn, vid).definition.roles)
        return roles

    def _actor(self, conn: Connection, username: str) -> _Actor:
        if username == SYSTEM_ACTOR:
            raise PermissionDenied(
                "'system' is the scheduler's own identity and cannot be used from outside; "
                "act as yourself with --as USERNAME"
            )
        row = conn.execute(select(_users).where(_users.c.username == username)).first()
        if row is None:
            raise UserNotFound(username)
        return _Actor(row.username, tuple(row.roles), tuple(row.scopes))

    # ---------------------------------------------------------------------- cases

    def create_case(self, workflow: str, actor: str, data: Mapping[str, Any]) -> CaseView:
        """Open a case on the latest version of ``workflow``; returns it with its new ref.

        The actor needs a role that may act in the initial state and a scope
        covering the case's scope field, which must be given.
        """

        def work(conn: Connection) -> CaseView:
            user = self._actor(conn, actor)
            loaded = self._resolve_workflow(conn, workflow, None)
            wf = loaded.definition
            now = self.clock.now()
            values, _ = self._validate(wf, {}, data, now)
            initial = wf.initial_state
            openers = {r for t in wf.transitions_from(initial) for r in t.by}
            role = next((r for r in user.roles if r in openers), None)
            if role is None:
                raise PermissionDenied(
                    f"{actor} ({', '.join(user.roles)}) may not open a {wf.name} case: "
                    f"that needs role {' or '.join(sorted(openers))}"
                )
            scope = None
            if wf.scope_field:
                scope = values.get(wf.scope_field)
                if scope is None:
                    raise InvalidCaseData(
                        [FieldProblem(wf.scope_field, "is needed to open a case: it decides who may see it")]
                    )
                if not covers(user.scopes, scope):
                    raise PermissionDenied(
                        f"{actor} covers {', '.join(user.scopes)}, not {scope}; "
                        f"a case in {scope} must be opened by someone who covers it"
                    )
            year = now.astimezone(ZoneInfo(wf.timezone)).year
            ref = allocate_ref(conn, wf.ref_prefix, year)
            changes = {k: [None, v] for k, v in values.items() if not is_empty(v)}
            event = Event(ref, 1, now, actor, role, "created", None, None, initial, None, changes, GENESIS)
            case_id = conn.execute(
                insert(_cases)
                .values(
                    ref=ref,
                    workflow=wf.name,
                    workflow_version_id=loaded.id,
                    state=initial,
                    scope=scope,
                    data=values,
                    fired_by={},
                    version=1,
                    audit_seq=1,
                    audit_head=event.hash,
                    entered_at=now,
                    created_by=actor,
                    created_at=now,
                    updated_at=now,
                )
                .returning(_cases.c.id)
            ).scalar_one()
            self._claim_keys(conn, wf, case_id, {}, values)
            conn.execute(insert(_events).values(event.row(case_id)))
            deadline = schedule(conn, wf, case_id, initial, now, self.calendar, now)
            if deadline is not None:
                conn.execute(
                    update(_cases)
                    .where(_cases.c.id == case_id)
                    .values(deadline_at=deadline.at.astimezone(dt.UTC), deadline_provisional=deadline.provisional)
                )
            return self._view(wf, ref, initial, values, scope, 1, actor, now, now)

        return self._write(work)

    def update_case(
        self, ref: str, actor: str, data: Mapping[str, Any], *, expected_version: int | None = None
    ) -> CaseView:
        """Change case data; audited with old → new. No change, no event.

        Allowed to whoever may fire a step from the case's current state
        (the step is theirs), with a scope covering the case (before and after).
        """
        pinned = [expected_version]

        def work(conn: Connection) -> CaseView:
            user = self._actor(conn, actor)
            row = self._case_row(conn, ref, user)
            self._pin(pinned, row)
            loaded = self._load_version(conn, row.workflow_version_id)
            wf = loaded.definition
            state = wf.states[row.state]
            if state.final:
                raise PermissionDenied(
                    f"case {ref} is {state.label} ({row.state}), a final state; its data can no longer be edited",
                    ref=ref,
                    state=row.state,
                )
            editors = {r for t in wf.transitions_from(row.state) for r in t.by}
            role = next((r for r in user.roles if r in editors), None)
            if role is None:
                raise PermissionDenied(
                    f"{actor} may not edit case {ref} in {row.state}: that needs role "
                    f"{' or '.join(sorted(editors - {SYSTEM_ACTOR}))}",
                    ref=ref,
                    state=row.state,
                )
            now = self.clock.now()
            values, changes = self._validate(wf, row.data, data, now)
            if not changes:
                return self._row_view(wf, row)
            scope = self._new_scope(wf, values, user, row)
            self._commit_change(
                conn,
                wf,
                row,
                pinned[0],
                now,
                actor=actor,
                role=role,
                action="updated",
                trigger=None,
                to_state=row.state,
                comment=None,
                data=values,
                changes=changes,
                scope=scope,
                fired_by=row.fired_by,
            )
            self._claim_keys(conn, wf, row.id, row.data, values)
            return self._row_view(wf, conn.execute(select(_cases).where(_cases.c.id == row.id)).one())

        return self._write(work)

    def fire(
        self,
        ref: str,
        trigger: str,
        actor: str,
        *,
        comment: str | None = None,
        data: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> CaseView:
        """Take the step ``trigger`` on case ``ref`` as ``actor``.

        Checks, in order: the actor may see the case (scope); the trigger
        exists; the actor holds a role in its ``by``; it leaves the current
        state; four-eyes (``not_by``); the comment; the data given with it;
        required fields; the ``when``/``unless`` guard. Then moves the state
        and appends the audit event in one transaction.
        """
        return self._fire(ref, trigger, None, actor, comment, data, expected_version)

    def fire_as_system(self, ref: str, trigger: str, *, comment: str | None = None) -> CaseView:
        """Fire as the scheduler (``system``): for timers only, never from user input."""
        return self._fire(ref, trigger, _SYSTEM, SYSTEM_ACTOR, comment, None, None)

    def _fire(
        self,
        ref: str,
        trigger: str,
        preset: _Actor | None,
        actor: str,
        comment: str | None,
        data: Mapping[str, Any] | None,
        expected_version: int | None,
    ) -> CaseView:
        comment = _clean_comment(comment)
        pinned = [expected_version]

        def work(conn: Connection) -> CaseView:
            user = preset or self._actor(conn, actor)
            return self._fire_in(conn, ref, trigger, user, comment, data, pinned)

        try:
            return self._write(work)
        except RefusedError as exc:
            logger.info("refused %s on %s by %s: %s", trigger, ref, actor, type(exc).__name__)
            raise

    def _fire_in(
        self,
        conn: Connection,
        ref: str,
        trigger: str,
        user: _Actor,
        comment: str | None,
        data: Mapping[str, Any] | None,
        pinned: list[int | None],
        before: Callable[[Any], None] | None = None,
    ) -> CaseView:
        """The whole of one step inside the caller's transaction (see :meth:`fire`)."""
        actor = user.username
        row = self._case_row(conn, ref, user)
        self._pin(pinned, row)
        loaded = self._load_version(conn, row.workflow_version_id)
        wf = loaded.definition
        now = self.clock.now()
        t = self._transition(wf, row, trigger)
        role = self._check_actor(wf, row, t, user)
        if t.comment_required and not comment:
            raise CommentRequired(
                f'{trigger} needs a comment saying why; add --comment "..."', ref=ref, state=row.state, trigger=trigger
            )
        values, changes = self._validate(wf, row.data, data or {}, now)
        if before is not None:
            before(row)
        self._check_ready(wf, row, t, values, self._open_objections(conn, row.id, t))
        dest = move(loaded.machine, row.state, trigger)
        if dest is None:  # pragma: no cover - _transition already checked the source
            raise InvalidTransition(f"{trigger} cannot be fired from {row.state}", ref=ref, state=row.state)
        fired_by = {k: list(v) for k, v in row.fired_by.items()}
        if actor not in fired_by.setdefault(trigger, []):
            fired_by[trigger].append(actor)
        scope = self._new_scope(wf, values, user, row)
        self._commit_change(
            conn, wf, row, pinned[0], now, actor=actor, role=role, action="fired", trigger=trigger, to_state=dest,
            comment=comment, data=values, changes=changes, scope=scope, fired_by=fired_by,
        )  # fmt: skip
        if wf.states[dest].void:
            # the archive came to nothing: its ID number may be filed again
            conn.execute(delete(_keys).where(_keys.c.case_id == row.id))
        else:
            self._claim_keys(conn, wf, row.id, row.data, values)
        return self._row_view(wf, conn.execute(select(_cases).where(_cases.c.id == row.id)).one())

    @staticmethod
    def _open_objections(conn: Connection, case_id: int, t: TransitionDef | None) -> int:
        """Open objections on the case, counted only when a guard of ``t`` (or any, if None) reads them."""
        if t is not None:
            reads = set()
            for guard in (t.when, t.unless):
                if guard is not None:
                    reads |= guard.case_attributes
            if "open_objections" not in reads:
                return 0
        return conn.execute(
            select(func.count())
            .select_from(_objections)
            .where(_objections.c.case_id == case_id, _objections.c.status == "open")
        ).scalar_one()

    # ---------------------------------------------------------------------- reads

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

    # ------------------------------------------------------------------ internals

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, retrying what SQLite reports as busy."""
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except OperationalError as exc:
                if not _is_busy(exc) or attempt == _WRITE_ATTEMPTS:
                    raise
            except IntegrityError as exc:
                # two first-cases-of-the-year racing for the counter row: try again
                if "ref_counters" not in str(exc.orig) or attempt == _WRITE_ATTEMPTS:
                    raise
            time.sleep(random.uniform(0.002, 0.02) * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _pin(pinned: list[int | None], row: Any) -> None:
        if pinned[0] is None:
            pinned[0] = row.version
        elif row.version != pinned[0]:
            raise ConflictError(row.ref, f"version {row.version}, expected {pinned[0]}")

    def _case_row(self, conn: Connection, ref: str, user: _Actor | None) -> Any:
        row = conn.execute(select(_cases).where(_cases.c.ref == ref)).first()
        if row is None:
            raise CaseNotFound(ref)
        if user is not None and not covers(user.scopes, row.scope):
            raise PermissionDenied(
                f"{user.username} covers {', '.join(user.scopes)}, not {row.scope}, where case {ref} belongs; "
                "ask a colleague who covers it",
                ref=ref,
            )
        return row

    @staticmethod
    def _transition(wf: WorkflowDef, row: Any, trigger: str) -> TransitionDef:
        t = wf.transitions.get(trigger)
        if t is None:
            raise InvalidTransition(
                f"{wf.name} has no step {trigger!r}{did_you_mean(trigger, wf.transitions)}",
                ref=row.ref,
                state=row.state,
                trigger=trigger,
            )
        return t

    @staticmethod
    def _check_actor(wf: WorkflowDef, row: Any, t: TransitionDef, user: _Actor) -> str:
        role = acting_role(user.roles, t, system=user.system)
        if role is None:
            needed = " or ".join(r for r in t.by) or "none"
            held = ", ".join(user.roles) or "no role"
            raise PermissionDenied(
                f"{user.username} ({held}) may not {t.name} case {row.ref}: that step needs role {needed}",
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        if row.state not in t.sources:
            possible = [x.name for x in wf.transitions_from(row.state)]
            raise InvalidTransition(
                f"case {row.ref} is in {row.state} ({wf.states[row.state].label}); {t.name} applies only "
                f"from {', '.join(t.sources)}. Possible from {row.state}: {', '.join(possible) or 'nothing (final)'}",
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        earlier = four_eyes_conflict(user.username, t, row.fired_by)
        if earlier:
            raise SameActorForbidden(
                f"{user.username} fired {earlier} on case {row.ref}, so someone else must {t.name} it (four-eyes rule)",
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        return role

    @staticmethod
    def _check_ready(
        wf: WorkflowDef, row: Any, t: TransitionDef, values: Mapping[str, Any], open_objections: int
    ) -> None:
        needed = [*t.require, *(f.name for f in wf.fields.values() if f.required and f.name not in t.require)]
        missing = [f for f in needed if is_empty(values.get(f))]
        if missing:
            labels = ", ".join(f"{f} ({wf.fields[f].label})" for f in missing)
            raise MissingFields(
                f"{t.name} needs {labels} filled in first; set them with --set FIELD=VALUE",
                missing,
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        snapshot = _snapshot(wf, row, values, open_objections)
        for kind, guard in (("when", t.when), ("unless", t.unless)):
            if guard is None:
                continue
            try:
                result = guard.evaluate(snapshot)
            except ExpressionError as exc:
                raise GuardFailed(
                    f"{t.name} refused: its condition '{guard.text}' could not be checked ({exc}); "
                    "fill in the fields it reads",
                    ref=row.ref,
                    state=row.state,
                    trigger=t.name,
                ) from None
            why = f": {t.explain}" if t.explain else ""
            if kind == "when" and not result:
                raise GuardFailed(
                    f"{t.name} refused{why}: the condition '{guard.text}' is not met",
                    ref=row.ref,
                    state=row.state,
                    trigger=t.name,
                )
            if kind == "unless" and result:
                raise GuardFailed(
                    f"{t.name} is held{why} ('{guard.text}' is true)",
                    ref=row.ref,
                    state=row.state,
                    trigger=t.name,
                )

    def _validate(
        self, wf: WorkflowDef, old: Mapping[str, Any], raw: Mapping[str, Any], now: dt.datetime
    ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """Merge ``raw`` into ``old``; returns (new values, changes old → new) or raises InvalidCaseData."""
        today = now.astimezone(ZoneInfo(wf.timezone)).date()
        values = dict(old)
        problems = []
        for name, value in raw.items():
            field = wf.fields.get(name)
            if field is None:
                problems.append(FieldProblem(name, f"no such field in {wf.name}{did_you_mean(name, wf.fields)}"))
                continue
            try:
                values[name] = coerce_value(field, value, today)
            except ValueError as exc:
                problems.append(FieldProblem(name, str(exc)))
        if problems:
            raise InvalidCaseData(problems)
        values = {k: v for k, v in values.items() if v is not None}
        changes = {
            k: [old.get(k), values.get(k)]
            for k in sorted(set(old) | set(values), key=list(wf.fields).index)
            if old.get(k) != values.get(k)
        }
        return values, changes

    @staticmethod
    def _new_scope(wf: WorkflowDef, values: Mapping[str, Any], user: _Actor, row: Any) -> str | None:
        if not wf.scope_field:
            return None
        scope = values.get(wf.scope_field)
        if scope is None:
            raise InvalidCaseData([FieldProblem(wf.scope_field, "cannot be cleared: it decides who may see the case")])
        if scope != row.scope and not covers(user.scopes, scope):
            raise PermissionDenied(
                f"{user.username} does not cover {scope}; moving case {row.ref} there needs someone who does",
                ref=row.ref,
                state=row.state,
            )
        return scope

    def _claim_keys(
        self, conn: Connection, wf: WorkflowDef, case_id: int, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        for name in wf.unique_fields:
            before, after = old.get(name), new.get(name)
            if before == after and old:
                continue
            if before is not None:
                conn.execute(delete(_keys).where(_keys.c.case_id == case_id, _keys.c.field == name))
            if after is None:
                continue
            clash = conn.execute(
                select(_cases.c.ref, _cases.c.state)
                .join(_keys, _keys.c.case_id == _cases.c.id)
                .where(_keys.c.workflow == wf.name, _keys.c.field == name, _keys.c.value == str(after))
            ).first()
            if clash is not None:
                raise DuplicateCase(name, clash.ref, clash.state)
            try:
                with conn.begin_nested():
                    conn.execute(insert(_keys).values(workflow=wf.name, field=name, value=str(after), case_id=case_id))
            except IntegrityError:
                # a concurrent case claimed it between our check and insert
                raise DuplicateCase(name, "(being created right now)", "apply") from None

    def _commit_change(
        self,
        conn: Connection,
        wf: WorkflowDef,
        row: Any,
        seen_version: int | None,
        now: dt.datetime,
        *,
        actor: str,
        role: str | None,
        action: str,
        trigger: str | None,
        to_state: str,
        comment: str | None,
        data: dict[str, Any],
        changes: dict[str, list[Any]],
        scope: str | None,
        fired_by: dict[str, list[str]],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = dict(extra or {})
        if to_state != row.state:
            # a new state: its deadline and timers replace the old state's, in this transaction
            deadline = schedule(conn, wf, row.id, to_state, now, self.calendar, now)
            values.update(
                deadline_at=deadline.at.astimezone(dt.UTC) if deadline else None,
                deadline_provisional=bool(deadline and deadline.provisional),
                paused_at=None,
                paused_left=None,
            )
        event = Event(
            row.ref,
            row.audit_seq + 1,
            now,
            actor,
            role,
            action,
            trigger,
            row.state,
            to_state,
            comment,
            changes,
            row.audit_head,
        )
        result = conn.execute(
            update(_cases)
            .where(_cases.c.id == row.id, _cases.c.version == seen_version)
            .values(
                state=to_state,
                data=data,
                scope=scope,
                fired_by=fired_by,
                version=_cases.c.version + 1,
                audit_seq=event.seq,
                audit_head=event.hash,
                entered_at=now if to_state != row.state else row.entered_at,
                updated_at=now,
                **values,
            )
        )
        if result.rowcount != 1:
            raise ConflictError(row.ref)
        conn.execute(insert(_events).values(event.row(row.id)))
        if trigger is not None:
            queue_event(
                conn, wf, version_id=row.workflow_version_id, case_id=row.id, ref=row.ref, scope=scope, data=data,
                seq=event.seq, trigger=trigger, from_state=row.state, to_state=to_state, actor=actor, now=now,
            )  # fmt: skip

    @staticmethod
    def _view(
        wf: WorkflowDef,
        ref: str,
        state: str,
        data: dict[str, Any],
        scope: str | None,
        version: int,
        created_by: str,
        created_at: dt.datetime,
        updated_at: dt.datetime,
    ) -> CaseView:
        st = wf.states[state]
        return CaseView(
            ref,
            wf.name,
            wf.version,
            state,
            st.label,
            st.final,
            data,
            scope,
            version,
            created_by,
            created_at,
            updated_at,
            wf.timezone,
        )

    def _row_view(self, wf: WorkflowDef, row: Any) -> CaseView:
        view = self._view(
            wf, row.ref, row.state, row.data, row.scope, row.version, row.created_by, row.created_at, row.updated_at
        )
        if row.deadline_at is None and row.paused_at is None:
            return view
        now = self.clock.now()
        if row.paused_at is not None:
            left = row.paused_left or {"unit": "working_days", "amount": 0}
            return replace(view, paused=True, time_left=f"paused with {describe_left(left)}")
        left = time_left(self.calendar, wf, row.state, now, row.deadline_at)
        return replace(
            view,
            deadline=row.deadline_at,
            deadline_provisional=row.deadline_provisional,
            overdue=now >= row.deadline_at,
            time_left=describe_left(left),
        )


def _replace_actions(view: CaseView, actions: tuple[Action, ...]) -> CaseView:
    return replace(view, actions=actions)


def _clean_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidCaseData([FieldProblem("comment", f"is {len(comment)} characters; at most {MAX_COMMENT}")])
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in comment):
        raise InvalidCaseData([FieldProblem("comment", "contains control characters; remove them")])
    return comment or None


def _snapshot(wf: WorkflowDef, row: Any, values: Mapping[str, Any], open_objections: int) -> dict[str, Any]:
    snap: dict[str, Any] = dict.fromkeys(wf.fields)
    for name, value in values.items():
        kind = wf.fields[name].type if name in wf.fields else None
        if kind == "decimal" and value is not None:
            value = Decimal(value)
        elif kind == "date" and value is not None:
            value = dt.date.fromisoformat(value)
        snap[name] = value
    snap.update(state=row.state, ref=row.ref, open_objections=open_objections)
    return snap


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database table is locked" in text or "busy" in text


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
