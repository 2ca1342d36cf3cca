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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from transitions import Machine

from db.connect import SQLITE_BUSY_TIMEOUT_MS
from db.models import AuditEvent, Case, CaseKey, Objection, User, WorkflowVersion
from engine.access import SYSTEM, SYSTEM_ACTOR, Actor, covers
from engine.audit import GENESIS, Event
from engine.bulk import BulkMixin
from engine.calendar import WorkingCalendar
from engine.clock import Clock, default_clock
from engine.definition import WorkflowDef, load_definition
from engine.definition.model import TransitionDef
from engine.errors import (
    AlreadyExists,
    CaseNotFound,
    CommentRequired,
    ConflictError,
    DuplicateCase,
    FieldProblem,
    InputError,
    InvalidCaseData,
    InvalidTransition,
    PermissionDenied,
    RefusedError,
    UserNotFound,
    WorkflowNotFound,
)
from engine.fields import EMAIL, is_empty
from engine.invariants import InvariantReport, check_invariants
from engine.machine import build_machine, move
from engine.outbox import Person, directory, directory_column, event_messages
from engine.publicity import PublicityMixin
from engine.queries import QueriesMixin
from engine.reads import OPEN_OBJECTIONS
from engine.refs import allocate_ref
from engine.rules import RulesMixin, clean_comment
from engine.suggest import did_you_mean
from engine.timers import TimersMixin, describe_left, has_timers, plan_state, schedule, time_left
from engine.views import CaseView, UserInfo, WorkflowInfo
from engine.writes import ChangeRows, write_change

__all__ = ["Casework"]

logger = logging.getLogger(__name__)

_cases = Case.__table__
_events = AuditEvent.__table__
_keys = CaseKey.__table__
_users = User.__table__
_versions = WorkflowVersion.__table__
_objections = Objection.__table__
_actor_users = _users.alias("actor")


def _case_reads(dialect: str) -> tuple[Any, Any]:
    """The case read for a step, without and with the actor: built once per dialect.

    One query brings the case, its open objections, the user directory (for
    notifications) and, by username, the acting user: a step reads once.
    Building a Core construct costs more than SQLite takes to run it.
    """
    case = select(
        _cases,
        OPEN_OBJECTIONS,
        directory_column(dialect),
    ).where(_cases.c.ref == bindparam("b_ref"))
    with_actor = case.add_columns(
        _actor_users.c.username.label("actor_username"),
        _actor_users.c.roles.label("actor_roles"),
        _actor_users.c.scopes.label("actor_scopes"),
    ).outerjoin_from(_cases, _actor_users, _actor_users.c.username == bindparam("b_actor"))
    return case, with_actor


_CASE_READS = {name: _case_reads(name) for name in ("sqlite", "postgresql")}

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_WRITE_ATTEMPTS = 8

T = TypeVar("T")


class Written:
    """A case row as a change will have written it: the row read, with the new values over it.

    (Cheaper than copying the row: a step builds one and reads a few attributes.)
    """

    __slots__ = ("_row", "_values")

    def __init__(self, row: Any, values: dict[str, Any]) -> None:
        self._row = row
        self._values = values

    def __getattr__(self, name: str) -> Any:
        values = self._values
        return values[name] if name in values else getattr(self._row, name)


@dataclass(frozen=True)
class _Loaded:
    id: int
    definition: WorkflowDef
    machine: Machine


class Casework(RulesMixin, QueriesMixin, PublicityMixin, TimersMixin, BulkMixin):
    """The engine: load workflows, manage users, create and advance cases.

    Args:
        engine: a SQLAlchemy engine from :func:`db.make_engine` whose schema
            is at head (``casework init``).
        clock: where "now" comes from; tests pass a :class:`FixedClock`.
    """

    def __init__(self, engine: Engine, clock: Clock | None = None, calendar: WorkingCalendar | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or default_clock(engine)
        self._calendar = calendar
        self._loaded: dict[int, _Loaded] = {}
        self._plan_memo: tuple[Any, Any] | None = None

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
        if "\x00" in name:
            raise WorkflowNotFound(name)
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

    def check(self) -> InvariantReport:
        """Check the invariants every stored case must satisfy (see :mod:`engine.invariants`)."""
        with self.engine.connect() as conn:
            return check_invariants(conn, lambda vid: self._load_version(conn, vid).definition)

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

    def _actor(self, conn: Connection, username: str) -> Actor:
        if username == SYSTEM_ACTOR:
            raise PermissionDenied(
                "'system' is the scheduler's own identity and cannot be used from outside; "
                "act as yourself with --as USERNAME"
            )
        # PostgreSQL refuses NUL in text outright (DataError): no such name can exist, so say that
        row = None if "\x00" in username else conn.execute(select(_users).where(_users.c.username == username)).first()
        if row is None:
            raise UserNotFound(username)
        return Actor(row.username, tuple(row.roles), tuple(row.scopes))

    # ---------------------------------------------------------------------- cases

    def create_case(self, workflow: str, actor: str, data: Mapping[str, Any]) -> CaseView:
        """Open a case on the latest version of ``workflow``; returns it with its new ref.

        The actor needs a role that may act in the initial state and a scope
        covering the case's scope field, which must be given.
        """

        def work(conn: Connection) -> CaseView:
            user = self._actor(conn, actor)
            loaded = self._resolve_workflow(conn, workflow, None)
            return self._create_in(conn, loaded, user, data, self.clock.now())

        return self._logged(f"create {workflow}", actor, work)

    def _create_in(
        self, conn: Connection, loaded: _Loaded, user: Actor, data: Mapping[str, Any], now: dt.datetime
    ) -> CaseView:
        """Open a case inside the caller's transaction (see :meth:`create_case`)."""
        wf = loaded.definition
        actor = user.username
        values, _ = self._validate(wf, {}, data, now)
        initial = wf.initial_state
        openers = {r for t in wf.transitions_from(initial) for r in t.by}
        # the scheduler opens cases only for a workflow's own declared schedules (campaigns)
        role = SYSTEM_ACTOR if user.system else next((r for r in user.roles if r in openers), None)
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
            written = self._commit_change(
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
            return self._row_view(wf, written)

        return self._logged(f"update {ref}", actor, work)

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
        return self._fire(ref, trigger, SYSTEM, SYSTEM_ACTOR, comment, None, None)

    def _fire(
        self,
        ref: str,
        trigger: str,
        preset: Actor | None,
        actor: str,
        comment: str | None,
        data: Mapping[str, Any] | None,
        expected_version: int | None,
    ) -> CaseView:
        comment = clean_comment(comment)
        pinned = [expected_version]

        def work(conn: Connection) -> CaseView:
            return self._fire_in(conn, ref, trigger, preset or actor, comment, data, pinned)

        try:
            return self._write(work)
        except RefusedError as exc:
            logger.info("refused %s on %s by %s: %s: %s", trigger, ref, actor, type(exc).__name__, exc)
            raise

    def _fire_in(
        self,
        conn: Connection,
        ref: str,
        trigger: str,
        user: Actor | str,
        comment: str | None,
        data: Mapping[str, Any] | None,
        pinned: list[int | None],
        before: Callable[[Any], None] | None = None,
    ) -> CaseView:
        """The whole of one step inside the caller's transaction (see :meth:`fire`).

        ``user`` is a username to look up, or an :class:`Actor` already known
        (the scheduler). The case, the actor and the case's open objections
        come back from one query.
        """
        row, user = self._case_and_actor(conn, ref, user)
        self._pin(pinned, row)
        loaded = self._load_version(conn, row.workflow_version_id)
        wf = loaded.definition
        change, written, values = self._plan_fire(
            conn, loaded, row, user, trigger, comment, data, pinned[0], self.clock.now(), before
        )
        write_change(conn, change)
        dest = written.state
        if wf.states[dest].void:
            # the archive came to nothing: its ID number may be filed again
            conn.execute(delete(_keys).where(_keys.c.case_id == row.id))
        else:
            self._claim_keys(conn, wf, row.id, row.data, values)
        return self._row_view(wf, written)

    def _plan_fire(
        self,
        conn: Connection,
        loaded: _Loaded,
        row: Any,
        user: Actor,
        trigger: str,
        comment: str | None,
        data: Mapping[str, Any] | None,
        seen_version: int | None,
        now: dt.datetime,
        before: Callable[[Any], None] | None = None,
        users: list[Person] | None = None,
    ) -> tuple[ChangeRows, Written, dict[str, Any]]:
        """Every check of one step, then what it would write: (rows, the case as written, its data).

        ``row`` carries ``open_objections`` (and ``directory``, or the user
        directory is read when someone is to be told). Nothing is written
        here, so a bulk caller can batch the writes of many steps.
        """
        wf = loaded.definition
        ref = row.ref
        t = self._transition(wf, row, trigger)
        role = self._check_actor(wf, row, t, user)
        if t.comment_required and not comment:
            raise CommentRequired(
                f'{trigger} needs a comment saying why; add --comment "..."', ref=ref, state=row.state, trigger=trigger
            )
        values, changes = self._validate(wf, row.data, data or {}, now)
        if before is not None:
            before(row)
        self._check_ready(wf, row, t, values, row.open_objections)
        dest = move(loaded.machine, row.state, trigger)
        if dest is None:  # pragma: no cover - _transition already checked the source
            raise InvalidTransition(f"{trigger} cannot be fired from {row.state}", ref=ref, state=row.state)
        fired_by = {k: list(v) for k, v in row.fired_by.items()}
        if user.username not in fired_by.setdefault(trigger, []):
            fired_by[trigger].append(user.username)
        scope = self._new_scope(wf, values, user, row)
        change, written = self._change_rows(
            conn,
            wf,
            row,
            seen_version,
            now,
            actor=user.username,
            role=role,
            action="fired",
            trigger=trigger,
            to_state=dest,
            comment=comment,
            data=values,
            changes=changes,
            scope=scope,
            fired_by=fired_by,
            users=users,
        )
        return change, written, values

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

    # ------------------------------------------------------------------ internals

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction, retrying what is safe to run again.

        * SQLite busy: a transaction that read and then wants to write while
          another holds the write lock gets SQLITE_BUSY at once (SQLite's busy
          timeout does not cover that upgrade), so it is retried — with a
          growing pause, for as long as the busy timeout (10 s) would have
          waited — pinned to the version it first read.
        * PostgreSQL deadlock (40P01) or serialization failure (40001): a step
          and a sweep take a case and its timers in opposite orders, and the
          server aborts one of them.
        * A pooled connection found dead (the server restarted since it was
          last used).
        * Two first cases of a year racing to create the reference counter.

        A change whose commit was cut off is not applied twice: the retry
        reads the case again and its version check (pinned at the first read)
        reports the conflict.
        """
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.begin() as conn:
                    return work(conn)
            except IntegrityError as exc:
                if "ref_counters" not in str(exc.orig) or attempt >= _WRITE_ATTEMPTS:
                    raise
            except DBAPIError as exc:
                if _is_busy(exc):
                    if time.monotonic() >= deadline:
                        raise
                elif not (exc.connection_invalidated or _is_deadlock(exc)) or attempt >= _WRITE_ATTEMPTS:
                    raise
            time.sleep(random.uniform(0.002, 0.02) * min(attempt, 5))

    def _logged(self, what: str, actor: str, work: Callable[[Connection], T]) -> T:
        """:meth:`_write`, logging a refusal with who, what and why (an inspector's trail of refused attempts)."""
        try:
            return self._write(work)
        except RefusedError as exc:
            logger.info("refused %s by %s: %s: %s", what, actor, type(exc).__name__, exc)
            raise

    @staticmethod
    def _pin(pinned: list[int | None], row: Any) -> None:
        if pinned[0] is None:
            pinned[0] = row.version
        elif row.version != pinned[0]:
            raise ConflictError(row.ref, f"version {row.version}, expected {pinned[0]}")

    def _case_and_actor(self, conn: Connection, ref: str, user: Actor | str) -> tuple[Any, Actor]:
        """The case row (with ``open_objections``) and the acting user, in one round trip; scope checked."""
        if isinstance(user, str) and user == SYSTEM_ACTOR:
            self._actor(conn, user)  # refuses, saying why
        name = user if isinstance(user, str) else None
        case_read, with_actor = _CASE_READS[conn.dialect.name]
        if "\x00" in ref:
            if name is not None:
                self._actor(conn, name)
            raise CaseNotFound(ref)
        if name is not None and "\x00" in name:
            raise UserNotFound(name)
        if name is None:
            row = conn.execute(case_read, {"b_ref": ref}).first()
        else:
            row = conn.execute(with_actor, {"b_ref": ref, "b_actor": name}).first()
        if row is None:
            if name is not None:
                self._actor(conn, name)  # an unknown user is reported before an unknown case
            raise CaseNotFound(ref)
        if name is not None:
            if row.actor_username is None:
                raise UserNotFound(name)
            user = Actor(row.actor_username, tuple(row.actor_roles), tuple(row.actor_scopes))
        assert isinstance(user, Actor)
        self._check_scope(user, row)
        return row, user

    def _check_scope(self, user: Actor, row: Any) -> None:
        if not covers(user.scopes, row.scope):
            raise PermissionDenied(
                f"{user.username} covers {', '.join(user.scopes)}, not {row.scope}, where case {row.ref} belongs; "
                "ask a colleague who covers it",
                ref=row.ref,
            )

    def _case_row(self, conn: Connection, ref: str, user: Actor | None) -> Any:
        if "\x00" in ref:
            raise CaseNotFound(ref)
        row = conn.execute(select(_cases).where(_cases.c.ref == ref)).first()
        if row is None:
            raise CaseNotFound(ref)
        if user is not None:
            self._check_scope(user, row)
        return row

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

    def _note(
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
        comment: str | None,
        changes: dict[str, list[Any]],
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an event that changes no state or data (an objection, a pause, a notice) — version-checked."""
        self._commit_change(
            conn,
            wf,
            row,
            seen_version,
            now,
            actor=actor,
            role=role,
            action=action,
            trigger=None,
            to_state=row.state,
            comment=comment,
            data=row.data,
            changes=changes,
            scope=row.scope,
            fired_by=row.fired_by,
            extra=extra,
        )

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
    ) -> Written:
        """Apply one change to the case row (version-checked) and append its event; return the row as written.

        Everything the change writes — case row, audit event, the new state's
        timers, outbox rows — is computed first (:meth:`_change_rows`) and then
        sent by :func:`~engine.writes.write_change` (one statement on PostgreSQL).
        """
        change, written = self._change_rows(
            conn,
            wf,
            row,
            seen_version,
            now,
            actor=actor,
            role=role,
            action=action,
            trigger=trigger,
            to_state=to_state,
            comment=comment,
            data=data,
            changes=changes,
            scope=scope,
            fired_by=fired_by,
            extra=extra,
        )
        write_change(conn, change)
        return written

    def _change_rows(
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
        users: list[Person] | None = None,
    ) -> tuple[ChangeRows, Written]:
        """What one change writes, and the case row as it will be once written."""
        values: dict[str, Any] = dict(extra or {})
        timers: list[dict[str, Any]] = []
        cancel = False
        if to_state != row.state:
            # a new state: its deadline and timers replace the old state's, in this transaction
            deadline, planned = self._planned(wf, to_state, now)
            timers = [{**r, "case_id": row.id, "created_at": now} for r in planned]
            # timers only ever come from the state's own deadline/remind/escalate/timeout:
            # a state without any has nothing pending to cancel
            cancel = has_timers(wf.states[row.state])
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
        values.update(
            state=to_state,
            data=data,
            scope=scope,
            fired_by=fired_by,
            audit_seq=event.seq,
            audit_head=event.hash,
            entered_at=now if to_state != row.state else row.entered_at,
            updated_at=now,
        )
        outbox: list[dict[str, Any]] = []
        if trigger is not None:
            outbox = event_messages(
                conn,
                wf,
                version_id=row.workflow_version_id,
                case_id=row.id,
                ref=row.ref,
                scope=scope,
                data=data,
                seq=event.seq,
                trigger=trigger,
                from_state=row.state,
                to_state=to_state,
                actor=actor,
                now=now,
                users=users if users is not None else _directory_of(row),
            )
        change = ChangeRows(row.ref, row.id, seen_version, values, event.row(row.id), cancel, timers, outbox)
        # once written, the row matched version == seen_version, so it is one more: no need to read it back
        return change, Written(row, {**values, "version": row.version + 1})

    def _planned(self, wf: WorkflowDef, state: str, entered: dt.datetime) -> tuple[Any, list[dict[str, Any]]]:
        """:func:`plan_state`, remembered for the last (workflow, state, time): a bulk step plans once."""
        key = (wf.source_hash, wf.version, state, entered, id(self.calendar))
        memo = self._plan_memo
        if memo is None or memo[0] != key:
            memo = self._plan_memo = (key, plan_state(wf, state, entered, self.calendar))
        return memo[1]

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
        # built in one go: dataclasses.replace() costs as much as the rest of the view
        st = wf.states[row.state]
        deadline, provisional, paused, overdue, left = None, False, False, False, None
        if row.paused_at is not None:
            paused = True
            left = f"paused with {describe_left(row.paused_left or {'unit': 'working_days', 'amount': 0})}"
        elif row.deadline_at is not None:
            now = self.clock.now()
            deadline, provisional, overdue = row.deadline_at, row.deadline_provisional, now >= row.deadline_at
            left = describe_left(time_left(self.calendar, wf, row.state, now, row.deadline_at))
        return CaseView(
            row.ref,
            wf.name,
            wf.version,
            row.state,
            st.label,
            st.final,
            row.data,
            row.scope,
            row.version,
            row.created_by,
            row.created_at,
            row.updated_at,
            wf.timezone,
            None,
            deadline,
            provisional,
            paused,
            overdue,
            left,
        )


def _directory_of(row: Any) -> list[Person] | None:
    """The user directory a step's case read brought along, or None (then it is read if needed)."""
    value = getattr(row, "directory", None)
    return directory(value) if value is not None else None


def _is_deadlock(exc: DBAPIError) -> bool:
    """PostgreSQL aborted us to break a deadlock (40P01) or a serialization conflict (40001): run again."""
    return getattr(exc.orig, "sqlstate", None) in ("40P01", "40001")


def _is_busy(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "database is locked" in text or "database table is locked" in text or "busy" in text
