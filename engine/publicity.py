"""Publicity (公示): publishing the list that starts it, and the objections raised during it.

The same rules and the same one-transaction-per-change discipline as every
other change:

* a case's publicity starts when it is first on a published notice: one
  transaction renders the 公示名单 from the cases' data as it then is, stores
  it with its SHA-256 (stored notices are never rendered again), and gives
  every listed case a ``publicised`` event naming the notice and its period,
  the period's end (the case's ``deadline_at``) and its automatic end of
  publicity, due then (:mod:`engine.publication` counts the period);
* until that period is over a case leaves publicity only by an upheld
  objection, a withdrawal or a rejection (the check is in every step's plan);
* an objection can be recorded while the case is in the workflow's
  publicity state, until its period's last day ends; while any is open,
  guards reading ``case.open_objections`` hold the end of publicity;
* resolving one as *upheld* fires the workflow's ``uphold`` step (back to
  review) in the same transaction — the case needs a new notice and a new
  full period when it comes back; *dismissed* just closes it.

Rendering is not done here: the caller (the notifications layer) passes a
``render`` function that turns the masked context into HTML, so the engine
never imports the layer above it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from engine.access import SYSTEM_ACTOR, Actor, acting_role, covers
from engine.catalog import Catalog
from engine.clock import Clock
from engine.deadlines import publicity_timer
from engine.definition.model import SYSTEM_ROLE, WorkflowDef
from engine.errors import (
    Code,
    CommentRequired,
    ConflictError,
    FieldProblem,
    InputError,
    InvalidCaseData,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RefusedError,
)
from engine.limits import MAX_COMMENT, OBJECTION_CHANNELS, OUTCOMES
from engine.masking import mask_id_numbers
from engine.models import NoticeView, ObjectionView
from engine.outbox import case_context
from engine.publication import check_notice_date, check_objection_time, publicity_period, today
from engine.rules import clean_text
from engine.steps import Steps
from engine.store import publicity as store, timers as timer_store
from engine.store.database import Database, VersionPin
from engine.store.refs import allocate_refs, format_ref
from engine.store.tables import CaseRow, ObjectionRow
from engine.suggest import close_match, did_you_mean
from engine.users import find_actor

__all__ = ["Publicity", "Render", "publishers"]

# render(context) -> (title, html); context is masked and JSON-ready
Render = Callable[[dict[str, Any]], tuple[str, str]]


class Publicity:
    """Public notices and objections.

    Args:
        db: each operation is one transaction.
        catalog: the case's workflow version.
        steps: an upheld objection fires the uphold step; every objection
            and notice is noted in the case's trail.
        clock: what "now" is.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.clock = clock

    # ---------------------------------------------------------------- objections

    def add_objection(
        self, ref: str, actor: str, text: str, channel: str = "电话", *, expected_version: int | None = None
    ) -> ObjectionView:
        """Record an objection (异议) received during publicity; audited on the case."""
        if not (text or "").strip():
            raise RefusedError(
                "an objection needs its text: write down what was said",
                code=Code.OBJECTION_TEXT_REQUIRED,
                case=ref,
            )
        problems = []
        try:
            text = clean_text("text", text, MAX_COMMENT) or ""
        except InvalidCaseData as exc:
            problems += exc.problems
        if channel not in OBJECTION_CHANNELS:
            problems.append(
                FieldProblem(
                    "channel",
                    f"{channel!r} is not one of {', '.join(OBJECTION_CHANNELS)}",
                    "not_a_choice",
                    {"value": channel, "choices": list(OBJECTION_CHANNELS)},
                )
            )
        if problems:
            raise InvalidCaseData(problems, case=ref)
        pin = VersionPin(expected_version)

        def work(conn: Connection) -> ObjectionView:
            user = find_actor(conn, actor)
            case, wf = self._publicised_case(conn, ref, user)
            seen = pin.hold(case.ref, case.version)
            role = next((r for r in user.roles if r in wf.roles), None)
            if role is None:
                raise PermissionDenied(
                    f"{actor} has no role in {wf.name}; only its staff record objections",
                    code=Code.NOT_STAFF,
                    ref=ref,
                    user=actor,
                    workflow=wf.name,
                )
            now = self.clock.now()
            check_objection_time(wf, case, now)
            objection = store.add_objection(conn, case.id, channel, text, actor, now)
            self.steps.note(
                conn,
                wf,
                case,
                seen,
                now,
                actor=actor,
                role=role,
                action="objection_added",
                comment=f"异议 #{objection.id}（{channel}）：{text}",
                changes={},
            )
            return _objection_view(objection, ref, wf.timezone)

        return self.db.transaction(work)

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
        """Close an open objection: ``upheld`` fires the uphold step (back to review), ``dismissed`` releases the hold.

        Needs the authority to take the uphold step (role and scope) and a comment.
        """
        if outcome not in OUTCOMES:
            raise InputError(
                f"the outcome must be upheld or dismissed, not {outcome!r}", option="outcome", value=outcome
            )
        comment = (comment or "").strip()
        if not comment:
            raise CommentRequired(
                f"resolving objection #{objection_id} needs a comment saying why it is {outcome}",
                ref=ref,
                objection=objection_id,
                outcome=outcome,
            )
        pin = VersionPin(expected_version)

        def work(conn: Connection) -> ObjectionView:
            user = find_actor(conn, actor)
            case, wf = self._publicised_case(conn, ref, user)
            publicity = wf.publicity
            assert publicity is not None
            if publicity.uphold is None:
                raise InvalidTransition(
                    f"{wf.name} declares no 'uphold' step in its publicity section",
                    code=Code.NO_PUBLICITY,
                    ref=ref,
                    workflow=wf.name,
                    missing="uphold",
                )
            uphold = wf.transitions[publicity.uphold]
            role = acting_role(user.roles, uphold)
            if role is None:
                raise PermissionDenied(
                    f"{actor} may not resolve objections on {ref}: that needs role {' or '.join(uphold.by)}",
                    ref=ref,
                    user=actor,
                    roles=list(user.roles),
                    needed=list(uphold.by),
                )
            objection = store.read_objection(conn, case.id, objection_id)
            if objection is None:
                raise NotFound(
                    f"case {ref} has no objection #{objection_id}",
                    code=Code.OBJECTION_NOT_FOUND,
                    case=ref,
                    objection=objection_id,
                )
            if objection.status != "open":
                raise RefusedError(
                    f"objection #{objection_id} on case {ref} is already {objection.status} "
                    f"(by {objection.resolved_by}); nothing to resolve",
                    code=Code.OBJECTION_CLOSED,
                    case=ref,
                    objection=objection_id,
                    status=objection.status,
                    resolved_by=objection.resolved_by,
                )
            now = self.clock.now()

            def close(_case: CaseRow) -> None:
                if not store.close_objection(conn, objection_id, outcome, actor, now, comment):
                    raise ConflictError(ref, f"objection #{objection_id} was resolved by someone else")

            if outcome == "upheld":
                self.steps.fire(
                    conn, ref, uphold.name, user, f"异议 #{objection_id} 成立：{comment}", None, pin, before=close
                )
            else:
                seen = pin.hold(case.ref, case.version)
                close(case)
                self.steps.note(
                    conn,
                    wf,
                    case,
                    seen,
                    now,
                    actor=actor,
                    role=role,
                    action="objection_dismissed",
                    comment=f"异议 #{objection_id} 不成立：{comment}",
                    changes={},
                )
            closed = objection._replace(status=outcome, resolved_by=actor, resolved_at=now, comment=comment)
            return _objection_view(closed, ref, wf.timezone)

        return self.db.transaction(work)

    def objections(self, ref: str, actor: str | None = None) -> list[ObjectionView]:
        """The case's objections, oldest first."""
        with self.db.read() as conn:
            user = find_actor(conn, actor) if actor else None
            case = self.steps.case(conn, ref, user)
            tz = self.catalog.get(conn, case.workflow_version_id).definition.timezone
            return [_objection_view(o, ref, tz) for o in store.objections_of(conn, case.id)]

    def _publicised_case(self, conn: Connection, ref: str, user: Actor) -> tuple[CaseRow, WorkflowDef]:
        case = self.steps.case(conn, ref, user)
        wf = self.catalog.get(conn, case.workflow_version_id).definition
        if wf.publicity is None:
            raise InvalidTransition(
                f"{wf.name} has no publicity, so it takes no objections",
                code=Code.NO_PUBLICITY,
                ref=ref,
                workflow=wf.name,
            )
        if case.state != wf.publicity.state:
            raise InvalidTransition(
                f"case {ref} is in {case.state} ({wf.states[case.state].label}), not in publicity "
                f"({wf.publicity.state}); objections are taken only during publicity",
                code=Code.NOT_IN_PUBLICITY,
                ref=ref,
                state=case.state,
                publicity_state=wf.publicity.state,
            )
        return case, wf

    # ------------------------------------------------------------------- notices

    def publish_list_notice(
        self, workflow: str, scope: str, render: Render, on: dt.date | None = None, *, by: str | None = None
    ) -> NoticeView | None:
        """Publish one numbered list (公示名单) of every case of ``scope`` awaiting publication.

        This is what starts each listed case's publicity: in one transaction the
        notice is rendered from the cases' data as it is now, stored with its
        SHA-256 (never rendered again), and every listed case gets a
        ``publicised`` event (the notice's number, hash and period), its period
        end, and its automatic end of publicity due then. ``on`` (default
        today, in the workflow's timezone) is the notice's date and the
        period's start; it cannot be in the past.

        ``by``: the person publishing (the web application). They must hold
        one of :func:`publishers` and cover ``scope``; each listed case's
        ``publicised`` event names them. Without ``by`` (the operator's
        console) the events are by ``system``.

        Returns None when no case awaits publication, so running it again is a no-op.
        """

        def work(conn: Connection) -> NoticeView | None:
            wf = self.catalog.resolve(conn, workflow).definition
            publisher = self._publisher(conn, wf, by, scope) if by is not None else (SYSTEM_ACTOR, None)
            if wf.publicity is None:
                raise InputError(
                    f"{wf.name} has no 'publicity' section, so it publishes no lists",
                    code=Code.NO_PUBLICITY,
                    workflow=wf.name,
                )
            if wf.publicity.list_template is None:
                raise InputError(
                    f"{wf.name}'s publicity section names no list_template",
                    code=Code.NO_PUBLICITY,
                    workflow=wf.name,
                    missing="list_template",
                )
            scope_field = wf.fields.get(wf.scope_field or "")
            if scope_field is not None and scope_field.choices and scope not in scope_field.choices:
                raise InputError(
                    f"{scope!r} is not a {scope_field.label} of {wf.name}{did_you_mean(scope, scope_field.choices)}",
                    option="scope",
                    value=scope,
                    suggestion=close_match(scope, scope_field.choices),
                )
            now = self.clock.now()
            start = on or today(wf, now)
            check_notice_date(wf, start, now)
            cases = store.awaiting_publication(conn, wf.name, scope, wf.publicity.state)
            if not cases:
                return None
            listed = []
            for i, c in enumerate(cases, 1):
                # each case is shown by the rules of the version it is on
                version = self.catalog.get(conn, c.workflow_version_id).definition
                listed.append({"no": i, **case_context(version, c.ref, c.state, c.data)})
            key = f"list:{wf.name}:{scope}:{start.isoformat()}:{cases[0].id}"
            context = {"cases": listed, "scope": scope}
            return self._publish(conn, wf, key, "list", scope, start, cases, context, render, publisher)

        # a concurrent publisher listing the same cases loses on their version check: ConflictError
        return self.db.transaction(work)

    @staticmethod
    def _publisher(conn: Connection, wf: WorkflowDef, username: str, scope: str) -> tuple[str, str | None]:
        """(who publishes, with which role); refused unless they hold a publishing role and cover ``scope``."""
        user = find_actor(conn, username)
        needed = publishers(wf)
        held = sorted(set(user.roles) & needed)
        if wf.publicity is not None and not held:
            raise PermissionDenied(
                f"{username} ({', '.join(user.roles)}) may not publish {wf.name}'s list: "
                f"that needs role {' or '.join(sorted(needed))}",
                code=Code.ROLE_NEEDED,
                user=username,
                roles=list(user.roles),
                needed=sorted(needed),
                workflow=wf.name,
            )
        if not covers(user.scopes, scope):
            raise PermissionDenied(
                f"{username} covers {', '.join(user.scopes)}, not {scope}; "
                "its list is published by someone who covers it",
                code=Code.SCOPE_NOT_COVERED,
                user=username,
                scopes=list(user.scopes),
                scope=scope,
            )
        return username, held[0] if held else None

    def notices(self, workflow: str | None = None) -> list[NoticeView]:
        """Every notice, newest first (of ``workflow`` only: :class:`WorkflowNotFound` if it is not loaded)."""
        with self.db.read() as conn:
            if workflow:
                self.catalog.resolve(conn, workflow)
            return [self._notice_view(conn, nid) for nid in store.notice_ids(conn, workflow)]

    def notice(self, ident: str) -> NoticeView:
        """One notice by number (e.g. ZZGS-2026-000001) or id."""
        with self.db.read() as conn:
            nid = int(ident) if ident.isdigit() else store.find_notice(conn, number=ident)
            if nid is None or store.read_notice(conn, nid) is None:
                raise NotFound(f"no notice {ident!r}", code=Code.NOTICE_NOT_FOUND, notice=ident)
            return self._notice_view(conn, nid)

    def _publish(
        self,
        conn: Connection,
        wf: WorkflowDef,
        key: str,
        kind: str,
        scope: str | None,
        start: dt.date,
        cases: list[CaseRow],
        extra: dict[str, Any],
        render: Render,
        publisher: tuple[str, str | None] = (SYSTEM_ACTOR, None),
    ) -> NoticeView:
        assert wf.publicity is not None
        now = self.clock.now()
        prefix = f"{wf.ref_prefix}GS"
        number = format_ref(prefix, start.year, allocate_refs(conn, prefix, start.year))
        period = publicity_period(wf, start, self.steps.deadlines.calendar)
        context = {
            "workflow": {"name": wf.name, "title": wf.title},
            "notice": {
                "number": number,
                "date": start.isoformat(),
                "period_start": period.start.isoformat(),
                "period_end": period.end.isoformat(),
                "period_days": period.days,
                "period_length": period.length,
            },
            "publicity": {"issuer": wf.publicity.issuer, "contact": wf.publicity.contact},
            **extra,
        }
        title, html = render(context)
        sha = hashlib.sha256(html.encode("utf-8")).hexdigest()
        values = {
            "key": key,
            "number": number,
            "workflow": wf.name,
            "scope": scope,
            "title": title[:300],
            "html": html,
            "sha256": sha,
            "context": context,
            "period_start": period.start,
            "period_end": period.end,
            "created_at": now,
        }
        nid = store.add_notice(conn, values, kind, [c.id for c in cases])
        timers = []
        for c in cases:
            # the notice in the case's trail (number, exact hash, period), and its clock set to the period
            version = self.catalog.get(conn, c.workflow_version_id).definition
            self.steps.note(
                conn,
                version,
                c,
                c.version,
                now,
                actor=publisher[0],
                role=publisher[1],
                action="publicised",
                comment=f"公示 {number}：{title}；公示期 {period.start.isoformat()} 至 {period.end.isoformat()}",
                changes={
                    "notice": [None, number],
                    "notice_sha256": [None, sha],
                    "period": [None, [period.start.isoformat(), period.end.isoformat()]],
                },
                extra={"deadline_at": period.ends_at, "deadline_provisional": False},
            )
            timers += [
                {**t, "case_id": c.id, "created_at": now}
                for t in publicity_timer(version, c.state, c.entered_at, period.ends_at)
            ]
        timer_store.add_timers(conn, timers)
        return self._notice_view(conn, nid)

    @staticmethod
    def _notice_view(conn: Connection, nid: int) -> NoticeView:
        n = store.read_notice(conn, nid)
        assert n is not None
        return NoticeView(
            id=n.id,
            number=n.number,
            kind=n.kind,
            workflow=n.workflow,
            scope=n.scope,
            title=n.title,
            sha256=n.sha256,
            period_start=n.period_start,
            period_end=n.period_end,
            created_at=n.created_at,
            cases=tuple(store.notice_refs(conn, nid)),
            html=n.html,
            context=n.context,
        )


def _objection_view(o: ObjectionRow, ref: str, tz: str) -> ObjectionView:
    # as shown, ID-number-shaped digits are masked (as in a trail's comments); the stored text is kept
    return ObjectionView(
        id=o.id,
        ref=ref,
        channel=o.channel,
        text=mask_id_numbers(o.text),
        received_by=o.received_by,
        received_at=o.received_at,
        status=o.status,
        resolved_by=o.resolved_by,
        resolved_at=o.resolved_at,
        comment=mask_id_numbers(o.comment) if o.comment else o.comment,
        timezone=tz,
    )


def publishers(wf: WorkflowDef) -> set[str]:
    """The roles that may publish ``wf``'s 公示名单: those that take a case into its publicity state.

    Publishing starts the publicity those people's step asked for (e.g. the
    reviewer's 审核通过), so it is theirs to do; empty for a workflow without
    a ``publicity`` section.
    """
    if wf.publicity is None:
        return set()
    state = wf.publicity.state
    return {r for t in wf.transitions.values() if t.dest == state for r in t.by} - {SYSTEM_ROLE}
