"""Publicity (公示): objections raised during it, and the public notices it produces.

Part of the :class:`engine.Casework` service (mixed in), so the same rules
and the same one-transaction-per-change discipline apply:

* an objection can be recorded only while the case is in the workflow's
  publicity state; while any is open, guards reading
  ``case.open_objections`` hold the end of publicity;
* resolving one as *upheld* fires the workflow's ``uphold`` step (back to
  review) in the same transaction; *dismissed* just closes it;
* a notice is stored with its SHA-256 and linked into each listed case's
  audit trail in the same transaction; generating it twice is a no-op.

Rendering is not done here: the caller (the notifications layer) passes a
``render`` function that turns the masked context into HTML, so the engine
never imports the layer above it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from db.models import Case, Notice, NoticeCase, Objection
from engine.access import SYSTEM_ACTOR, acting_role
from engine.definition.model import WorkflowDef
from engine.errors import (
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
from engine.outbox import case_context
from engine.refs import allocate_ref
from engine.suggest import did_you_mean
from engine.views import iso

if TYPE_CHECKING:
    from engine.access import Actor

__all__ = ["OBJECTION_CHANNELS", "NoticeView", "ObjectionView", "PublicityMixin", "Render"]

OBJECTION_CHANNELS = ("电话", "来信", "来访")
OUTCOMES = ("upheld", "dismissed")
MAX_OBJECTION = 2000
DEFAULT_PERIOD_DAYS = 7

_cases = Case.__table__
_objections = Objection.__table__
_notices = Notice.__table__
_notice_cases = NoticeCase.__table__

# render(context) -> (title, html); context is masked and JSON-ready
Render = Callable[[dict[str, Any]], tuple[str, str]]


@dataclass(frozen=True)
class ObjectionView:
    id: int
    ref: str
    channel: str
    text: str
    received_by: str
    received_at: dt.datetime
    status: str
    resolved_by: str | None
    resolved_at: dt.datetime | None
    comment: str | None

    def to_json(self, tz: str = "Asia/Shanghai") -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "channel": self.channel,
            "text": self.text,
            "received_by": self.received_by,
            "received_at": iso(self.received_at, tz),
            "status": self.status,
            "resolved_by": self.resolved_by,
            "resolved_at": iso(self.resolved_at, tz),
            "comment": self.comment,
        }


@dataclass(frozen=True)
class NoticeView:
    id: int
    number: str
    kind: str
    workflow: str
    scope: str | None
    title: str
    sha256: str
    period_start: dt.date | None
    period_end: dt.date | None
    created_at: dt.datetime
    cases: tuple[str, ...]
    html: str
    context: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "kind": self.kind,
            "workflow": self.workflow,
            "scope": self.scope,
            "title": self.title,
            "sha256": self.sha256,
            "period_start": self.period_start.isoformat() if self.period_start else None,
            "period_end": self.period_end.isoformat() if self.period_end else None,
            "created_at": iso(self.created_at),
            "cases": list(self.cases),
        }


class PublicityMixin:
    """Objections and notices; mixed into :class:`engine.Casework`."""

    # provided by Casework
    clock: Any
    engine: Any
    _write: Any
    _actor: Any
    _case_row: Any
    _load_version: Any
    _resolve_workflow: Any
    _note: Any
    _fire_in: Any
    _pin: Any

    # ---------------------------------------------------------------- objections

    def add_objection(self, ref: str, actor: str, text: str, channel: str = "电话") -> ObjectionView:
        """Record an objection (异议) received during publicity; audited on the case."""
        text = (text or "").strip()
        if not text:
            raise RefusedError('an objection needs its text: write down what was said, with --text "..."')
        problems = []
        if len(text) > MAX_OBJECTION:
            problems.append(FieldProblem("text", f"is {len(text)} characters; at most {MAX_OBJECTION}"))
        elif any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
            problems.append(FieldProblem("text", "contains control characters; remove them"))
        if channel not in OBJECTION_CHANNELS:
            problems.append(FieldProblem("channel", f"{channel!r} is not one of {', '.join(OBJECTION_CHANNELS)}"))
        if problems:
            raise InvalidCaseData(problems)
        pinned: list[int | None] = [None]

        def work(conn: Connection) -> ObjectionView:
            user = self._actor(conn, actor)
            row, wf = self._publicised_case(conn, ref, user)
            self._pin(pinned, row)
            if not set(user.roles) & set(wf.roles):
                raise PermissionDenied(f"{actor} has no role in {wf.name}; only its staff record objections", ref=ref)
            now = self.clock.now()
            oid = conn.execute(
                insert(_objections)
                .values(case_id=row.id, channel=channel, text=text, received_by=actor, received_at=now, status="open")
                .returning(_objections.c.id)
            ).scalar_one()
            role = next(r for r in user.roles if r in wf.roles)
            self._note(
                conn,
                wf,
                row,
                pinned[0],
                now,
                actor=actor,
                role=role,
                action="objection_added",
                comment=f"异议 #{oid}（{channel}）：{text}",
                changes={},
            )
            return ObjectionView(oid, ref, channel, text, actor, now, "open", None, None, None)

        return self._write(work)

    def resolve_objection(
        self, ref: str, objection_id: int, actor: str, outcome: str, comment: str | None
    ) -> ObjectionView:
        """Close an open objection: ``upheld`` fires the uphold step (back to review), ``dismissed`` releases the hold.

        Needs the authority to take the uphold step (role and scope) and a comment.
        """
        if outcome not in OUTCOMES:
            raise InputError(f"--outcome must be upheld or dismissed, not {outcome!r}")
        comment = (comment or "").strip()
        if not comment:
            raise CommentRequired(
                f'resolving objection #{objection_id} needs a comment saying why it is {outcome}; add --comment "..."',
                ref=ref,
            )
        pinned: list[int | None] = [None]

        def work(conn: Connection) -> ObjectionView:
            user = self._actor(conn, actor)
            row, wf = self._publicised_case(conn, ref, user)
            publicity = wf.publicity
            assert publicity is not None
            if publicity.uphold is None:
                raise InvalidTransition(f"{wf.name} declares no 'uphold' step in its publicity section", ref=ref)
            uphold = wf.transitions[publicity.uphold]
            role = acting_role(user.roles, uphold)
            if role is None:
                raise PermissionDenied(
                    f"{actor} may not resolve objections on {ref}: that needs role {' or '.join(uphold.by)}", ref=ref
                )
            obj = conn.execute(
                select(_objections).where(_objections.c.id == objection_id, _objections.c.case_id == row.id)
            ).first()
            if obj is None:
                raise NotFound(f"case {ref} has no objection #{objection_id}; see 'casework case show {ref}'")
            if obj.status != "open":
                raise RefusedError(
                    f"objection #{objection_id} on case {ref} is already {obj.status} (by {obj.resolved_by}); "
                    "nothing to resolve"
                )
            now = self.clock.now()

            def close(_row: Any) -> None:
                done = conn.execute(
                    update(_objections)
                    .where(_objections.c.id == objection_id, _objections.c.status == "open")
                    .values(status=outcome, resolved_by=actor, resolved_at=now, comment=comment)
                )
                if done.rowcount != 1:
                    raise ConflictError(ref, f"objection #{objection_id} was resolved by someone else")

            if outcome == "upheld":
                self._fire_in(
                    conn, ref, uphold.name, user, f"异议 #{objection_id} 成立：{comment}", None, pinned, before=close
                )
            else:
                self._pin(pinned, row)
                close(row)
                self._note(
                    conn,
                    wf,
                    row,
                    pinned[0],
                    now,
                    actor=actor,
                    role=role,
                    action="objection_dismissed",
                    comment=f"异议 #{objection_id} 不成立：{comment}",
                    changes={},
                )
            return ObjectionView(
                obj.id, ref, obj.channel, obj.text, obj.received_by, obj.received_at, outcome, actor, now, comment
            )

        return self._write(work)

    def objections(self, ref: str, actor: str | None = None) -> list[ObjectionView]:
        """The case's objections, oldest first."""
        with self.engine.connect() as conn:
            user = self._actor(conn, actor) if actor else None
            row = self._case_row(conn, ref, user)
            rows = conn.execute(
                select(_objections).where(_objections.c.case_id == row.id).order_by(_objections.c.id)
            ).all()
        return [
            ObjectionView(
                o.id,
                ref,
                o.channel,
                o.text,
                o.received_by,
                o.received_at,
                o.status,
                o.resolved_by,
                o.resolved_at,
                o.comment,
            )
            for o in rows
        ]

    def _publicised_case(self, conn: Connection, ref: str, user: Actor) -> tuple[Any, WorkflowDef]:
        row = self._case_row(conn, ref, user)
        wf = self._load_version(conn, row.workflow_version_id).definition
        if wf.publicity is None:
            raise InvalidTransition(f"{wf.name} has no publicity, so it takes no objections", ref=ref)
        if row.state != wf.publicity.state:
            raise InvalidTransition(
                f"case {ref} is in {row.state} ({wf.states[row.state].label}), not in publicity "
                f"({wf.publicity.state}); objections are taken only during publicity",
                ref=ref,
                state=row.state,
            )
        return row, wf

    # ------------------------------------------------------------------- notices

    def publish_case_notice(self, key: str, ref: str, entered_at: dt.datetime, render: Render) -> NoticeView:
        """Generate the notice for one case entering a ``notice:`` state; idempotent on ``key``."""

        def work(conn: Connection) -> NoticeView:
            existing = conn.execute(select(_notices.c.id).where(_notices.c.key == key)).scalar()
            if existing is not None:
                return self._notice_view(conn, existing)
            row = self._case_row(conn, ref, None)
            wf = self._load_version(conn, row.workflow_version_id).definition
            start = entered_at.astimezone(ZoneInfo(wf.timezone)).date()
            case = case_context(wf, row.ref, row.state, row.data)
            return self._store_notice(conn, wf, key, "case", row.scope, start, [row], {"case": case}, render)

        return self._write(work)

    def publish_list_notice(
        self, workflow: str, scope: str, render: Render, on: dt.date | None = None
    ) -> NoticeView | None:
        """Publish one numbered list (公示名单) of every case of ``scope`` in publicity not yet on a list.

        Returns None when there is nothing new to list, so running it again is a no-op.
        """

        def work(conn: Connection) -> NoticeView | None:
            loaded = self._resolve_workflow(conn, workflow, None)
            wf = loaded.definition
            if wf.publicity is None:
                raise InputError(f"{wf.name} has no 'publicity' section, so it publishes no lists")
            if wf.publicity.list_template is None:
                raise InputError(f"{wf.name}'s publicity section names no list_template")
            scope_field = wf.fields.get(wf.scope_field or "")
            if scope_field is not None and scope_field.choices and scope not in scope_field.choices:
                raise InputError(
                    f"{scope!r} is not a {scope_field.label} of {wf.name}{did_you_mean(scope, scope_field.choices)}"
                )
            # listed since it last entered publicity (a case back from review is listed again)
            listed = (
                select(_notice_cases.c.case_id)
                .join(_notices, _notices.c.id == _notice_cases.c.notice_id)
                .where(
                    _notice_cases.c.kind == "list",
                    _notice_cases.c.case_id == _cases.c.id,
                    _notices.c.created_at >= _cases.c.entered_at,
                )
            )
            rows = conn.execute(
                select(_cases)
                .where(
                    _cases.c.workflow == wf.name,
                    _cases.c.scope == scope,
                    _cases.c.state == wf.publicity.state,
                    ~listed.exists(),
                )
                .order_by(_cases.c.id)
            ).all()
            if not rows:
                return None
            start = on or self.clock.now().astimezone(ZoneInfo(wf.timezone)).date()
            cases = []
            for i, r in enumerate(rows, 1):
                # each case is shown by the rules of the version it is on
                version = self._load_version(conn, r.workflow_version_id).definition
                cases.append({"no": i, **case_context(version, r.ref, r.state, r.data)})
            key = f"list:{wf.name}:{scope}:{start.isoformat()}:{rows[0].id}"
            return self._store_notice(
                conn, wf, key, "list", scope, start, rows, {"cases": cases, "scope": scope}, render
            )

        # a concurrent publisher listing the same cases loses on their version check: ConflictError
        return self._write(work)

    def notices(self, workflow: str | None = None) -> list[NoticeView]:
        """Every notice, newest first."""
        with self.engine.connect() as conn:
            query = select(_notices.c.id).order_by(_notices.c.id.desc())
            if workflow:
                query = query.where(_notices.c.workflow == workflow)
            return [self._notice_view(conn, nid) for nid in conn.execute(query).scalars()]

    def notice(self, ident: str) -> NoticeView:
        """One notice by number (e.g. ZZGS-2026-000001) or id."""
        with self.engine.connect() as conn:
            query = select(_notices.c.id).where(_notices.c.number == ident)
            if ident.isdigit():
                query = select(_notices.c.id).where(_notices.c.id == int(ident))
            nid = conn.execute(query).scalar()
            if nid is None:
                raise NotFound(f"no notice {ident!r}; see 'casework notice list'")
            return self._notice_view(conn, nid)

    def _store_notice(
        self,
        conn: Connection,
        wf: WorkflowDef,
        key: str,
        kind: str,
        scope: str | None,
        start: dt.date,
        rows: list[Any],
        extra: dict[str, Any],
        render: Render,
    ) -> NoticeView:
        assert wf.publicity is not None or kind == "case"
        now = self.clock.now()
        number = allocate_ref(conn, f"{wf.ref_prefix}GS", start.year)
        end = start + dt.timedelta(days=_period_days(wf))
        context = {
            "workflow": {"name": wf.name, "title": wf.title},
            "notice": {
                "number": number,
                "date": start.isoformat(),
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "period_days": (end - start).days,
            },
            "publicity": {
                "issuer": wf.publicity.issuer if wf.publicity else "",
                "contact": wf.publicity.contact if wf.publicity else "",
            },
            **extra,
        }
        title, html = render(context)
        sha = hashlib.sha256(html.encode("utf-8")).hexdigest()
        nid = conn.execute(
            insert(_notices)
            .values(
                key=key,
                number=number,
                kind=kind,
                workflow=wf.name,
                scope=scope,
                title=title[:300],
                html=html,
                sha256=sha,
                context=context,
                period_start=start,
                period_end=end,
                created_at=now,
            )
            .returning(_notices.c.id)
        ).scalar_one()
        conn.execute(
            insert(_notice_cases),
            [{"notice_id": nid, "case_id": r.id, "kind": kind, "position": i} for i, r in enumerate(rows, 1)],
        )
        for r in rows:
            # link the notice into the case's trail: its number and exact hash
            version = self._load_version(conn, r.workflow_version_id).definition
            self._note(
                conn,
                version,
                r,
                r.version,
                now,
                actor=SYSTEM_ACTOR,
                role=None,
                action="notice_published",
                comment=f"公示 {number}：{title}",
                changes={"notice": [None, number], "notice_sha256": [None, sha]},
            )
        return self._notice_view(conn, nid)

    @staticmethod
    def _notice_view(conn: Connection, nid: int) -> NoticeView:
        n = conn.execute(select(_notices).where(_notices.c.id == nid)).one()
        refs = conn.execute(
            select(_cases.c.ref)
            .join(_notice_cases, _notice_cases.c.case_id == _cases.c.id)
            .where(_notice_cases.c.notice_id == nid)
            .order_by(_notice_cases.c.position)
        ).scalars()
        return NoticeView(
            n.id,
            n.number,
            n.kind,
            n.workflow,
            n.scope,
            n.title,
            n.sha256,
            n.period_start,
            n.period_end,
            n.created_at,
            tuple(refs),
            n.html,
            n.context,
        )

    def definition_for_version(self, version_id: int) -> WorkflowDef:
        """The checked definition of a stored workflow version (by its row id)."""
        with self.engine.connect() as conn:
            return self._load_version(conn, version_id).definition


def _period_days(wf: WorkflowDef) -> int:
    """Length of the publicity period in natural days (working days come with the calendar)."""
    if wf.publicity is None:
        return DEFAULT_PERIOD_DAYS
    timeout = wf.states[wf.publicity.state].timeout
    if timeout is None:
        return DEFAULT_PERIOD_DAYS
    after = timeout.after
    if after.unit == "hours":
        return max(1, -(-after.amount // 24))
    return after.amount
