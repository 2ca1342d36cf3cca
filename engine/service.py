"""The engine's façade: the one object through which state changes, wired from explicit parts.

:class:`Casework` holds no rules and no SQL of its own. It builds the parts
— each given what it needs — and hands each call to the part that owns it:

* :class:`~engine.store.database.Database` — connections, transactions, retries by error code;
* :class:`~engine.catalog.Catalog` — workflow versions, stored and loaded once;
* :class:`~engine.deadlines.Deadlines` — the working-day calendar and what it decides;
* :class:`~engine.steps.Steps` — plan and apply a step, an edit or a note on one case;
* :mod:`engine.opening` — open cases (a single create is a batch of one);
* :class:`~engine.bulk.Bulk` — import files, one step on many cases;
* :class:`~engine.publicity.Publicity` — objections and public notices;
* :class:`~engine.sweeps.Sweeper`, :class:`~engine.pauses.Pauses`, :class:`~engine.schedules.Schedules` — time;
* :class:`~engine.queries.Queries` — every read.

Every change is one database transaction (a refused or conflicting call
changes nothing and raises a typed :class:`~engine.errors.RefusedError`);
the version of a case seen first is pinned across retries
(:class:`~engine.store.database.VersionPin`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from sqlalchemy import Connection, Engine

from engine import idempotency, users
from engine.access import SYSTEM, SYSTEM_ACTOR, Actor, covers
from engine.audit import Recorder, load_key, origin
from engine.bulk import Bulk, Progress
from engine.calendar import WorkingCalendar
from engine.campaigns import CampaignView
from engine.catalog import Catalog
from engine.clock import Clock, default_clock
from engine.deadlines import Deadlines, Left
from engine.definition import WorkflowDef
from engine.errors import DuplicateCase, RefusedError, UserNotFound
from engine.limits import DEFAULT_BATCH
from engine.links import link_reader
from engine.models import (
    AccessEntry,
    AuditRecord,
    CaseView,
    FireManyReport,
    ImportReport,
    InboxPage,
    InvariantReport,
    MigrationReport,
    NoticeView,
    ObjectionView,
    SweepReport,
    TimerView,
    UserInfo,
    VerifyReport,
    WorkflowInfo,
    WorkflowVersion,
)
from engine.opening import KeyClash, Planned, plan_opening, unique_clashes, write_openings
from engine.pauses import Pauses
from engine.publicity import Publicity, Render
from engine.queries import CaseFilters, Queries
from engine.rules import clean_comment
from engine.schedules import Schedules
from engine.sheets import Sheet
from engine.steps import Steps
from engine.store import access as access_store, users as user_store
from engine.store.database import Database, VersionPin
from engine.sweeps import Sweeper
from engine.users import Declared, Origin
from engine.version_moves import DEFAULT_MOVE_BATCH, VersionMoves

if TYPE_CHECKING:
    from engine.logins import LoginPolicy, Logins
    from engine.tokens import TokenPolicy, Tokens

__all__ = ["Casework"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Casework:
    """The engine: load workflows, manage users, open, advance and read cases.

    Args:
        engine: a SQLAlchemy engine from :func:`db.make_engine` whose schema
            is at head (``casework init``).
        clock: where "now" comes from (default: the database's clock on
            PostgreSQL, the host's on SQLite); tests pass a :class:`FixedClock`.
        calendar: the working-day calendar (default: loaded on first use).
        recorder: what every event written carries: the process's origin (OS user,
            host) and the audit key sealing trail heads (default: from
            ``CASEWORK_AUDIT_KEY``/``CASEWORK_AUDIT_KEY_FILE``).
    """

    def __init__(
        self,
        engine: Engine,
        clock: Clock | None = None,
        calendar: WorkingCalendar | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or default_clock(engine)
        self.db = Database(engine)
        self.catalog = Catalog()
        self.deadlines = Deadlines(calendar)
        self.recorder = recorder or Recorder(load_key(), origin())
        self.steps = Steps(self.catalog, self.deadlines, self.clock, self.recorder)
        parts = (self.db, self.catalog, self.steps, self.deadlines, self.clock)
        self.bulk = Bulk(*parts)
        self.queries = Queries(*parts)
        self.sweeper = Sweeper(*parts)
        self.pauses = Pauses(*parts)
        self.schedules = Schedules(*parts)
        self.publicity = Publicity(self.db, self.catalog, self.steps, self.clock)
        self.moves = VersionMoves(self.db, self.catalog, self.deadlines, self.clock, self.recorder)

    @functools.cached_property
    def logins(self) -> Logins:
        """Passwords and web sessions (:mod:`engine.logins`; Argon2 is imported on first use)."""
        return self.logins_with(None)

    @functools.cached_property
    def tokens(self) -> Tokens:
        """The HTTP API's tokens (:mod:`engine.tokens`)."""
        return self.tokens_with(None)

    def tokens_with(self, policy: TokenPolicy | None) -> Tokens:
        """API tokens under another :class:`~engine.tokens.TokenPolicy` (another rate limit)."""
        from engine.tokens import Tokens

        return Tokens(self.db, self.clock, self._origin, policy)

    def logins_with(self, policy: LoginPolicy | None) -> Logins:
        """Passwords and sessions under another :class:`~engine.logins.LoginPolicy` (the demo's cheap hashes).

        A hash records its own costs: one made under cheaper ones is rehashed at the user's next login
        through :attr:`logins`.
        """
        from engine.logins import Logins

        return Logins(self.db, self.clock, self._origin, policy)

    @property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar deadlines are counted on."""
        return self.deadlines.calendar

    @calendar.setter
    def calendar(self, value: WorkingCalendar) -> None:
        self.deadlines.calendar = value

    # ------------------------------------------------------------------ workflows

    def load_workflow(
        self,
        definition: WorkflowDef,
        *,
        loaded_by: str | None = None,
        accept_weaker: Iterable[str] = (),
        by: str | None = None,
    ) -> tuple[WorkflowInfo, bool]:
        """Store ``definition`` as an immutable version; (the version, whether it was new).

        Loading the same source again is a no-op; a *different* source under an
        existing version number is refused (cases in flight depend on the old one).
        A version that weakens a control of the latest one is refused unless
        ``accept_weaker`` names each weakened control (``not_by:grant``);
        who loads it (``loaded_by``; default: this process's OS user@host) and
        what was accepted are stored with it. ``by``: a person loading it (the web
        application's YAML editor), who must hold the administering role
        (:data:`engine.users.ADMIN_ROLE`) and is stored as ``loaded_by``.
        """
        accepted = tuple(accept_weaker)
        if by is not None:
            loaded_by = by
        if loaded_by is None and self.recorder.source:
            loaded_by = f"{self.recorder.source['os_user']}@{self.recorder.source['host']}"[:200]

        def work(conn: Connection) -> tuple[WorkflowInfo, bool]:
            if by is not None:
                users.require_admin(conn, by)
            row, new = self.catalog.store(
                conn, definition, self.clock.now(), loaded_by=loaded_by, accept_weaker=accepted
            )
            return self.catalog.info(conn, row), new

        return self.db.transaction(work)

    def migrate(
        self,
        workflow: str,
        to_version: int,
        mapping: Mapping[str, str] | None = None,
        *,
        dry_run: bool = True,
        batch: int = DEFAULT_MOVE_BATCH,
    ) -> MigrationReport:
        """Move the cases of ``workflow`` on older versions to version ``to_version`` (a dry run by default).

        An operator's action, like loading a version: each moved case gets
        one ``migrated`` event by ``system`` whose context records this
        process's OS user and host, the new version pin and ``mapping``
        (old state → new state). See :class:`engine.version_moves.VersionMoves`
        for which cases stay and when the whole move is refused.
        """
        by = f"{self.recorder.source['os_user']}@{self.recorder.source['host']}"[:200] if self.recorder.source else None
        return self.moves.migrate(workflow, to_version, mapping, dry_run=dry_run, batch=batch, by=by)

    def workflow_history(self, name: str) -> list[WorkflowVersion]:
        """Every stored version of workflow ``name``, oldest first, with who loaded it and what it weakened."""
        with self.db.read() as conn:
            return self.catalog.history(conn, name)

    def workflows(self) -> list[WorkflowInfo]:
        """Every loaded workflow version, by name then version."""
        with self.db.read() as conn:
            return self.catalog.infos(conn)

    def latest_workflows(self) -> list[WorkflowDef]:
        """The latest version of every loaded workflow, by name (no case counts: cheap at any size)."""
        with self.db.read() as conn:
            found = [loaded.definition for loaded in self.catalog.latest(conn)]
        return sorted(found, key=lambda wf: wf.name)

    def workflow(self, name: str, version: int | None = None) -> WorkflowDef:
        """The definition of ``name`` (its latest version unless ``version`` is given)."""
        with self.db.read() as conn:
            return self.catalog.resolve(conn, name, version).definition

    def definition_for_version(self, version_id: int) -> WorkflowDef:
        """The checked definition of a stored workflow version (by its row id)."""
        with self.db.read() as conn:
            return self.catalog.get(conn, version_id).definition

    def known_roles(self) -> set[str]:
        """Roles declared by any loaded workflow version."""
        with self.db.read() as conn:
            return {r for loaded in self.catalog.all(conn) for r in loaded.definition.roles}

    # ---------------------------------------------------------------------- users

    def add_user(
        self,
        username: str,
        name: str,
        roles: list[str],
        scopes: list[str],
        email: str | None = None,
        *,
        by: str | None = None,
    ) -> UserInfo:
        """Add a user with roles, the scopes (e.g. counties; ``*`` = all) they cover, and an email address.

        The roles and scopes must be ones a loaded workflow declares
        (:data:`~engine.errors.Code.INVALID_USER` otherwise); the addition is
        written to the access log with this process's OS user and host, and
        ``by`` (the supervisor who added them in the web application), if given.
        """

        def work(conn: Connection) -> UserInfo:
            if by is not None:
                users.require_admin(conn, by)
            return users.add_user(
                conn, username, name, roles, scopes, email, self.clock.now(), self._declared(conn), self._origin(by)
            )

        return self.db.transaction(work)

    def edit_user(
        self,
        username: str,
        *,
        name: str | None = None,
        email: str | None = None,
        roles: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        by: str | None = None,
    ) -> tuple[UserInfo, dict[str, list[Any]]]:
        """Correct a user: the values given replace the old ones (``email=""`` removes it); (the user, old → new).

        Checked as :meth:`add_user` checks; a change is written to the access log.
        """
        given = {"name": name, "email": email, "roles": None if roles is None else list(roles)}
        given["scopes"] = None if scopes is None else list(scopes)
        changes = {k: v for k, v in given.items() if v is not None}

        def work(conn: Connection) -> tuple[UserInfo, dict[str, list[Any]]]:
            if by is not None:
                users.require_admin(conn, by)
            return users.edit_user(conn, username, changes, self.clock.now(), self._declared(conn), self._origin(by))

        return self.db.transaction(work)

    def disable_user(self, username: str, reason: str | None = None, *, by: str | None = None) -> tuple[UserInfo, bool]:
        """Disable a user: they can no longer act, are sent nothing, and their web sessions end now.

        (the user, whether it changed anything); ``by``: the supervisor who did it (the access log names them).
        """
        return self.db.transaction(lambda conn: self._set_disabled(conn, username, True, reason, by))

    def enable_user(self, username: str, reason: str | None = None, *, by: str | None = None) -> tuple[UserInfo, bool]:
        """Enable a disabled user again; (the user, whether it changed anything)."""
        return self.db.transaction(lambda conn: self._set_disabled(conn, username, False, reason, by))

    def _set_disabled(
        self, conn: Connection, username: str, disabled: bool, reason: str | None, by: str | None
    ) -> tuple[UserInfo, bool]:
        if by is not None:
            users.require_admin(conn, by)
        return users.set_disabled(conn, username, disabled, reason, self.clock.now(), self._origin(by))

    def log_access(self, action: str, detail: Mapping[str, Any], actor: str | None = None) -> None:
        """Record in the access log that full personal data was shown (``actor``: the named user, if any).

        A shell calls this after reading and before showing what it read, so
        nothing is shown that the log does not hold.
        """
        self.db.transaction(lambda conn: users.log_access(conn, self.clock.now(), self._origin(actor), action, detail))

    def access_log(
        self, *, since: dt.datetime | None = None, action: str | None = None, limit: int | None = None
    ) -> list[AccessEntry]:
        """The access log, oldest first (from ``since``; with ``limit``, the newest that many)."""
        with self.db.read() as conn:
            rows = access_store.entries(conn, since=since, action=action, limit=limit)
        return [users.access_entry(r) for r in rows]

    def users(self) -> list[UserInfo]:
        """All users, by username."""
        with self.db.read() as conn:
            return [users.user_info(r) for r in user_store.all_users(conn)]

    def user(self, username: str) -> UserInfo:
        """One user; :class:`~engine.errors.UserNotFound` if there is none."""
        with self.db.read() as conn:
            row = user_store.find_user(conn, username)
        if row is None:
            raise UserNotFound(username)
        return users.user_info(row)

    # ---------------------------------------------------------------------- cases

    def create_case(
        self, workflow: str, actor: str, data: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> CaseView:
        """Open a case on the latest version of ``workflow``; returns it with its new ref.

        The actor needs a role that may act in the initial state and a scope
        covering the case's scope field, which must be given. ``idempotency_key``:
        a retry with the same key and data gets the case the first request opened
        (``replayed``), never a second one (:mod:`engine.idempotency`).
        """
        key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
        print_ = idempotency.fingerprint("create", workflow, dict(data)) if key is not None else ""

        def work(conn: Connection) -> CaseView | str:
            user = users.find_actor(conn, actor)
            if key is not None:
                earlier = idempotency.claim(conn, user.username, key, print_, self.clock.now())
                if earlier is not None:
                    return earlier
            loaded = self.catalog.resolve(conn, workflow)
            wf = loaded.definition
            now = self.clock.now()
            read = link_reader(conn, self.catalog) if wf.linked_fields else None
            planned = plan_opening(wf, user, data, now, links=read)
            self._refuse_duplicate(conn, wf, planned, user)
            try:
                (opened,) = write_openings(conn, loaded, [planned], now, self.deadlines, self.recorder)
            except KeyClash:
                # a case claimed the value between our check and our insert: name it if it is visible by now
                self._refuse_duplicate(conn, wf, planned, user)
                raise DuplicateCase(", ".join(wf.unique_fields), None, None) from None
            if key is not None:
                idempotency.settle(conn, user.username, key, opened.ref)
            return self.steps.view(wf, opened.row())

        return self._answer(self._logged(f"create {workflow}", actor, lambda: self.db.transaction(work)), actor)

    def _answer(self, done: CaseView | str, actor: str) -> CaseView:
        """The view a change returned, or (a retried request's ref) the case as it is now, marked ``replayed``."""
        if isinstance(done, CaseView):
            return done
        return self.get_case(done, actor).model_copy(update={"replayed": True})

    @staticmethod
    def _refuse_duplicate(conn: Connection, wf: WorkflowDef, planned: Planned, user: Actor) -> None:
        # the holder is named only to someone who covers its county (see DuplicateCase.held)
        for _, field, holder in unique_clashes(conn, wf, [planned]):
            raise DuplicateCase.held(field, holder.ref, holder.state, visible=covers(user.scopes, holder.scope))

    def update_case(
        self, ref: str, actor: str, data: Mapping[str, Any], *, expected_version: int | None = None
    ) -> CaseView:
        """Change case data; audited with old → new. No change, no event.

        Allowed to whoever may fire a step from the case's current state, with
        a scope covering the case (before and after).
        """
        pin = VersionPin(expected_version)
        return self._logged(
            f"update {ref}",
            actor,
            lambda: self.db.transaction(lambda conn: self.steps.update(conn, ref, actor, data, pin)),
        )

    def fire(
        self,
        ref: str,
        trigger: str,
        actor: str,
        *,
        comment: str | None = None,
        data: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> CaseView:
        """Take the step ``trigger`` on case ``ref`` as ``actor``.

        Checks, in order: the actor may see the case (scope); the trigger
        exists; the actor holds a role in its ``by``; it leaves the current
        state; four-eyes (``not_by``); the comment; the data given with it;
        required fields; the ``when``/``unless`` guard. Then moves the state
        and appends the audit event in one transaction. ``idempotency_key``: a
        retry with the same key and request is answered with the case as it is
        now (``replayed``) and not moved again.
        """
        comment = clean_comment(comment)
        pin = VersionPin(expected_version)
        key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
        print_ = idempotency.fingerprint("fire", ref, trigger, comment, dict(data or {})) if key is not None else ""

        def work(conn: Connection) -> CaseView | str:
            if key is not None:
                earlier = idempotency.claim(conn, actor, key, print_, self.clock.now())
                if earlier is not None:
                    return earlier
            view = self.steps.fire(conn, ref, trigger, actor, comment, data, pin)
            if key is not None:
                idempotency.settle(conn, actor, key, view.ref)
            return view

        return self._answer(self._logged(f"{trigger} on {ref}", actor, lambda: self.db.transaction(work)), actor)

    def fire_as_system(self, ref: str, trigger: str, *, comment: str | None = None) -> CaseView:
        """Fire as the scheduler (``system``): for timers only, never from user input."""
        pin = VersionPin()
        return self._logged(
            f"{trigger} on {ref}",
            SYSTEM_ACTOR,
            lambda: self.db.transaction(
                lambda conn: self.steps.fire(conn, ref, trigger, SYSTEM, clean_comment(comment), None, pin)
            ),
        )

    def get_case(self, ref: str, actor: str | None = None) -> CaseView:
        """The case; with ``actor``, only if they may see it, and with the steps they may take now."""
        return self.queries.get_case(ref, actor)

    def list_cases(self, **filters: Unpack[CaseFilters]) -> list[CaseView]:
        """Cases (see :meth:`engine.queries.Queries.list_cases`)."""
        return self.queries.list_cases(**filters)

    def iter_cases(self, **filters: Unpack[CaseFilters]) -> Iterator[CaseView]:
        """The cases :meth:`list_cases` lists, streamed, for exports (see :meth:`engine.queries.Queries.iter_cases`)."""
        return self.queries.iter_cases(**filters)

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
        """What waits for ``actor``, soonest deadline first (see :meth:`engine.queries.Queries.waiting_for`).

        ``workflow``, ``state``, ``scope`` (a county) and ``ref`` (a whole
        reference or a part of one) narrow it.
        """
        return self.queries.waiting_for(
            actor, page=page, per_page=per_page, workflow=workflow, state=state, scope=scope, ref=ref
        )

    def count_by(self, workflow: str | None = None) -> list[tuple[str, str | None, str, int]]:
        """(workflow, scope, state, count) rows, for summaries."""
        return self.queries.count_by(workflow)

    def report(
        self,
        name: str,
        *,
        year: int | None = None,
        county: str | None = None,
        as_of: dt.date | dt.datetime | None = None,
        actor: str | None = None,
    ) -> Sheet:
        """Report ``name`` (archives, exit-rate, programmes, petitions, overdue) as a table (:mod:`engine.reports`)."""
        from engine.reports import run_report

        with self.db.read() as conn:
            return run_report(
                conn, self.catalog, name, now=self.clock.now(), year=year, county=county, as_of=as_of, actor=actor
            )

    def history(self, ref: str, actor: str | None = None) -> list[AuditRecord]:
        """The case's audit events in order, personal data masked."""
        return self.queries.history(ref, actor)

    def verify_audit(self, ref: str | None = None, checkpoint: str | None = None) -> VerifyReport:
        """Prove every case (or one) against its trail: chain, seal, replay; and versions, notices, the file.

        ``checkpoint``: the text of a file :meth:`checkpoint` wrote, to prove
        nothing was rebuilt, cut back or removed since.
        """
        return self.queries.verify_audit(ref, checkpoint)

    def checkpoint(self) -> dict[str, Any]:
        """Every trail head and notice hash now, MAC'd with the audit key: keep it outside the database."""
        return self.queries.checkpoint()

    def check(self) -> InvariantReport:
        """Check the invariants every stored case must satisfy, and prove every case against its trail."""
        return self.queries.check()

    # ----------------------------------------------------------------------- bulk

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
        """Open one case per row (see :meth:`engine.bulk.Bulk.import_cases`)."""
        return self.bulk.import_cases(workflow, actor, rows, skip_invalid=skip_invalid, batch=batch, progress=progress)

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
        """Take one step on many cases (see :meth:`engine.bulk.Bulk.fire_many`)."""
        return self.bulk.fire_many(
            refs, trigger, actor, comment=comment, batch=batch, progress=progress, versions=versions
        )

    # ------------------------------------------------------------------ publicity

    def add_objection(
        self, ref: str, actor: str, text: str, channel: str = "电话", *, expected_version: int | None = None
    ) -> ObjectionView:
        """Record an objection received during publicity (see :class:`engine.publicity.Publicity`)."""
        return self._logged(
            f"objection on {ref}",
            actor,
            lambda: self.publicity.add_objection(ref, actor, text, channel, expected_version=expected_version),
        )

    def resolve_objection(
        self,
        ref: str,
        objection_id: int,
        actor: str,
        outcome: str,
        comment: str | None,
        *,
        expected_version: int | None = None,
    ) -> ObjectionView:
        """Close an open objection as ``upheld`` or ``dismissed``."""
        return self._logged(
            f"resolve objection {objection_id} on {ref}",
            actor,
            lambda: self.publicity.resolve_objection(
                ref, objection_id, actor, outcome, comment, expected_version=expected_version
            ),
        )

    def objections(self, ref: str, actor: str | None = None) -> list[ObjectionView]:
        """The case's objections, oldest first."""
        return self.publicity.objections(ref, actor)

    def publish_list_notice(
        self, workflow: str, scope: str, render: Render, on: dt.date | None = None, *, by: str | None = None
    ) -> NoticeView | None:
        """Publish the 公示名单 of ``scope``, starting each listed case's publicity (None when none awaits it).

        ``by``: the person publishing, checked (a role that takes cases into publicity, a scope covering
        ``scope``) and named on each case's trail; None for the operator's console (``system``).
        """
        return self._logged(
            f"publish {workflow} {scope}",
            by or SYSTEM_ACTOR,
            lambda: self.publicity.publish_list_notice(workflow, scope, render, on, by=by),
        )

    def notices(self, workflow: str | None = None) -> list[NoticeView]:
        """Every notice, newest first."""
        return self.publicity.notices(workflow)

    def notice(self, ident: str) -> NoticeView:
        """One notice by number (e.g. ZZGS-2026-000001) or id."""
        return self.publicity.notice(ident)

    # ----------------------------------------------------------------------- time

    def due_timers(self, limit: int = 500, before: dt.datetime | None = None) -> list[int]:
        """Ids of pending timers due at ``before`` (default now), oldest first."""
        return self.sweeper.due(limit, before)

    def sweep(self, limit: int = 500, should_stop: Callable[[], bool] | None = None) -> SweepReport:
        """Fire every due timer, each in its own transaction (see :class:`engine.sweeps.Sweeper`)."""
        return self.sweeper.sweep(limit, should_stop)

    def timers(self, due_before: dt.datetime | None = None, status: str | None = "pending") -> list[TimerView]:
        """Timers (pending by default), soonest first."""
        return self.sweeper.timers(due_before, status)

    def case_timers(self, ref: str, actor: str | None = None, status: str | None = "pending") -> list[TimerView]:
        """One case's timers (pending by default), soonest first; with ``actor``, only if they may see the case."""
        return self.queries.timers_of(ref, actor, status)

    def run_due_schedules(self) -> list[tuple[str, str, str]]:
        """Run the workflows' scheduled jobs that are due (see :class:`engine.schedules.Schedules`)."""
        return self.schedules.run_due()

    # ------------------------------------------------------------------ campaigns

    def set_campaign(
        self, workflow: str, on: dt.date, actor: str, year: int | None = None
    ) -> tuple[CampaignView, CampaignView | None]:
        """Set the date of ``workflow``'s campaign of programme ``year`` (default: ``on``'s year).

        See :class:`engine.campaigns.Campaigns`.
        """
        return self._logged(
            f"set campaign {workflow}", actor, lambda: self.schedules.campaigns.set(workflow, on, actor, year)
        )

    def cancel_campaign(self, workflow: str, year: int, actor: str) -> CampaignView:
        """Cancel ``workflow``'s campaign of ``year`` before it runs."""
        return self._logged(
            f"cancel campaign {workflow}", actor, lambda: self.schedules.campaigns.cancel(workflow, year, actor)
        )

    def run_campaign(self, workflow: str, actor: str) -> CampaignView:
        """Run ``workflow``'s campaign of this year now, if its date is today or past."""
        return self._logged(
            f"run campaign {workflow}", actor, lambda: self.schedules.campaigns.run_now(workflow, actor)
        )

    def campaigns(self) -> list[CampaignView]:
        """Every loaded workflow's campaign, with each year's date and outcome."""
        return self.schedules.campaigns.views()

    def pause(self, ref: str, actor: str, reason: str, *, expected_version: int | None = None) -> Left:
        """Stop the case's deadline clock (补正); returns the time left."""
        return self._logged(
            f"pause {ref}", actor, lambda: self.pauses.pause(ref, actor, reason, expected_version=expected_version)
        )

    def resume(
        self, ref: str, actor: str, comment: str | None = None, *, expected_version: int | None = None
    ) -> dt.datetime:
        """Restart the case's deadline clock; returns the new deadline."""
        return self._logged(
            f"resume {ref}", actor, lambda: self.pauses.resume(ref, actor, comment, expected_version=expected_version)
        )

    def provisional_refs(self) -> list[str]:
        """Refs of the cases whose current deadline is provisional."""
        return self.pauses.provisional_refs()

    def recompute_provisional(self) -> list[tuple[str, str | None, str | None]]:
        """After a calendar update: recompute every provisional deadline, audited on each changed case."""
        return self.pauses.recompute_provisional()

    # ------------------------------------------------------------------ internals

    def _declared(self, conn: Connection) -> Declared:
        """The roles and scopes the loaded workflows declare."""
        return users.declared_by(loaded.definition for loaded in self.catalog.all(conn))

    def _origin(self, actor: str | None = None) -> Origin:
        """This process's OS user and host (as its audit events carry them), and the named user if any."""
        source = self.recorder.source or origin()
        return Origin(source.get("os_user", "?"), source.get("host", "?"), actor)

    @staticmethod
    def _logged(what: str, actor: str, call: Callable[[], T]) -> T:
        """``call()``, logging a refusal with who, what and why (an inspector's trail of refused attempts)."""
        try:
            return call()
        except RefusedError as exc:
            logger.info("refused %s by %s: %s [%s]: %s", what, actor, type(exc).__name__, exc.code, exc.message)
            raise
