"""The relay: claims due outbox rows, renders them and hands them to their channel.

The engine writes outbox rows inside the transaction of the change that
caused them (:mod:`engine.outbox`); this is the other half. Any number of
relays may run against one database; each row is worked on by one at a time.

A row's life::

    pending ──claim──▶ sending ──delivered──▶ sent
                          │
                          ├─ failed, retryable ──▶ failed (next_attempt_at = now + backoff) ──claim──▶ ...
                          ├─ permanent, or the last attempt ──▶ dead   (``retry()`` puts it back)
                          │   (a template that fails or goes over the evaluation budget is permanent)
                          └─ relay crashed ──lease expires──▶ claimed again

**Claiming** is one short transaction that sets ``status='sending',
lease_until=now+lease, attempts=attempts+1`` on up to ``batch`` due rows. On
PostgreSQL it first selects them ``FOR UPDATE SKIP LOCKED``, so concurrent
relays take different rows without waiting. On SQLite it is a single
``UPDATE ... WHERE id IN (due rows LIMIT n)``, the transaction's first
statement, so it takes the database's write lock before it reads: a second
relay waits for the first to commit and then sees the rows as taken. The
claimed ``attempts`` value is a *fence*: every later write about the row
requires ``status='sending' AND attempts=<fence>``, so a relay whose lease
ran out and whose row was claimed again cannot overwrite the newer claim.

**Delivering**: a *transactional* channel (the inbox) writes its effect in
the same transaction that marks the row sent — the mark comes first, so a
relay that lost the row finds out before writing anything: exactly once.
Any other channel (email, webhook) is called outside a transaction, then the
row is marked sent; a crash in between means the row is sent again after its
lease expires: at least once, with the outbox key as
the receiver's idempotency key. Before such a call the relay renews the lease
if less than half of it is left, so a slow batch does not let another relay
take over rows it is about to send.

**Failing**: a retryable failure schedules the next attempt after
``min(max_delay, base_delay * 2**(attempts-1))`` seconds, times a random
factor in [0.5, 1) ("equal jitter", so relays that failed together do not
retry together); a permanent one, or the last allowed attempt, makes the row
dead. One row's failure never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Engine, and_, or_, select, true, update

from db import schema
from engine import (
    OUTBOX_STATUS,
    Casework,
    Clock,
    Code,
    InputError,
    NotFound,
    ReadModel,
    RefusedError,
    Report,
    TemplateRenderError,
    WorkflowDef,
)
from engine.users import require_admin
from notifications.channels.base import Channel, Delivery, DeliveryError
from notifications.config import NotificationConfig

__all__ = [
    "MAX_ERROR",
    "NotRetryable",
    "OutboxRow",
    "OutboxView",
    "Relay",
    "RelayReport",
    "backoff_delay",
    "list_outbox",
    "retry",
]

logger = logging.getLogger(__name__)

_outbox = schema.outbox
_cases = schema.cases

MAX_ERROR = 1000  # characters of last_error kept
RETRYABLE = ("failed", "dead")


class OutboxRow(NamedTuple):
    """An ``outbox`` row (its columns in table order)."""

    id: int
    key: str
    kind: str
    case_id: int | None
    event_seq: int | None
    workflow_version_id: int
    channel: str
    recipient: str
    template: str
    context: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    lease_until: dt.datetime | None
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None


# A public notice is rendered and stored when it is published (engine.publicity), never by the
# relay afterwards: a ``kind='notice'`` row left by an older version is made dead, saying so.
_NOTICE_ROW = (
    "public notices are no longer generated from the outbox: a case is publicised when it is on a "
    "published list (公示名单), rendered and stored when the list is published; publish its county's list"
)


class NotRetryable(RefusedError):
    """Only a failed or dead outbox message can be put back in the queue."""

    default_code = Code.NOT_RETRYABLE


class RelayReport(Report):
    """What one :meth:`Relay.run_once` did with the rows it claimed.

    Attributes:
        sent: delivered and marked sent.
        failed: failed and scheduled for another attempt.
        dead: failed permanently or for the last time.
        skipped: claimed, but taken over by another relay (our lease had run
            out) before we could deliver or record the outcome.
    """

    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0

    @property
    def total(self) -> int:
        """Rows claimed."""
        return self.sent + self.failed + self.dead + self.skipped

    def count(self, outcome: str) -> None:
        """Count one row's outcome (``sent``, ``failed``, ``dead`` or ``skipped``)."""
        setattr(self, outcome, getattr(self, outcome) + 1)


def backoff_delay(attempt: int, base: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1 is the first).

    ``min(maximum, base * 2**(attempt-1))``, times a factor drawn uniformly
    from [0.5, 1) with ``rng``.
    """
    exponent = min(max(attempt - 1, 0), 60)  # beyond that the cap applies anyway; avoids float overflow
    return min(maximum, base * 2.0**exponent) * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class _Claim:
    """A row this relay holds: the outbox row as claimed, and its case's reference."""

    row: OutboxRow
    case_ref: str | None

    @property
    def fence(self) -> ColumnElement[bool]:
        """The condition under which the row is still ours."""
        return and_(_outbox.c.id == self.row.id, _outbox.c.status == "sending", _outbox.c.attempts == self.row.attempts)


class _Overtaken(Exception):
    """Another relay claimed the row after our lease ran out."""


class Relay:
    """Delivers the outbox: see the module documentation for the guarantees.

    Args:
        engine: the casework database.
        service: the engine service, for the workflow versions (templates).
        channels: channel name → channel, usually :func:`notifications.channels.default_channels`.
        config: the settings; the relay reads ``config.relay``.
        clock: where "now" comes from (default: the service's clock).
        rng: randomness for the backoff jitter (seed it in tests).
    """

    def __init__(
        self,
        engine: Engine,
        service: Casework,
        channels: Mapping[str, Channel],
        config: NotificationConfig,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.service = service
        self.channels = dict(channels)
        self.config = config
        self.clock: Clock = clock or service.clock
        self.rng = rng or random.Random()
        self._definitions: dict[int, WorkflowDef] = {}
        self._skip_locked = engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ running

    def run_once(self, limit: int | None = None) -> RelayReport:
        """Claim the rows that are due and deliver them; return what happened.

        Args:
            limit: at most this many rows (default: one batch, ``[relay] batch``).
        """
        report = RelayReport()
        remaining = self.config.relay.batch if limit is None else limit
        while remaining > 0:
            size = min(remaining, self.config.relay.batch)
            claims = self._claim(size)
            for claim in claims:
                report.count(self._process(claim))
            remaining -= len(claims)
            if len(claims) < size:
                break
        if report.total:
            logger.info(
                "relay: %s sent, %s to retry, %s dead, %s skipped",
                report.sent,
                report.failed,
                report.dead,
                report.skipped,
            )
        return report

    def run_forever(self, stop: threading.Event, poll_seconds: float = 5) -> None:
        """Run passes until ``stop`` is set; wait ``poll_seconds`` when there was nothing (more) to do."""
        logger.info("relay started")
        while not stop.is_set():
            try:
                report = self.run_once()
            except Exception as exc:  # the database may be back on the next pass
                logger.warning("relay pass failed: %s; trying again in %s s", type(exc).__name__, poll_seconds)
                report = RelayReport()
            if report.total < self.config.relay.batch:
                stop.wait(poll_seconds)
        logger.info("relay stopped")

    # ----------------------------------------------------------------- claiming

    def _claim(self, size: int) -> list[_Claim]:
        now = self.clock.now()
        due = or_(
            and_(_outbox.c.status.in_(("pending", "failed")), _outbox.c.next_attempt_at <= now),
            and_(_outbox.c.status == "sending", _outbox.c.lease_until < now),
        )
        pick = select(_outbox.c.id).where(due).order_by(_outbox.c.next_attempt_at, _outbox.c.id).limit(size)
        take = update(_outbox).values(
            status="sending",
            lease_until=now + dt.timedelta(seconds=self.config.relay.lease),
            attempts=_outbox.c.attempts + 1,
        )
        with self.engine.begin() as conn:
            if self._skip_locked:
                # lock the rows first, skipping other relays' (PostgreSQL may run a LIMIT subquery
                # inside an UPDATE more than once, so it is a separate statement)
                ids = conn.execute(pick.with_for_update(skip_locked=True)).scalars().all()
                rows = conn.execute(take.where(_outbox.c.id.in_(ids)).returning(*_outbox.c)).all() if ids else []
            else:
                # one statement, the transaction's first: SQLite takes the write lock before reading
                rows = conn.execute(take.where(_outbox.c.id.in_(pick), due).returning(*_outbox.c)).all()
            refs = self._case_refs(conn, {r.case_id for r in rows if r.case_id is not None})
        ordered = sorted((OutboxRow._make(r) for r in rows), key=lambda r: (r.next_attempt_at, r.id))
        return [_Claim(r, refs.get(r.case_id) if r.case_id is not None else None) for r in ordered]

    @staticmethod
    def _case_refs(conn: Connection, case_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(case_ids)
        if not ids:
            return {}
        return {r.id: r.ref for r in conn.execute(select(_cases.c.id, _cases.c.ref).where(_cases.c.id.in_(ids)))}

    # --------------------------------------------------------------- delivering

    def _process(self, claim: _Claim) -> str:
        """Deliver one claimed row; return the RelayReport field it counts under."""
        row = claim.row
        try:
            if row.kind == "notice":
                raise DeliveryError(_NOTICE_ROW, permanent=True)
            channel = self.channels.get(row.channel)
            if channel is None:
                known = ", ".join(sorted(self.channels)) or "none"
                raise DeliveryError(f"no channel {row.channel!r} in this relay (it has {known})", permanent=True)
            delivery = self._render(claim)
            if channel.transactional:
                return self._deliver_in_transaction(claim, channel, delivery)
            return self._deliver_outside(claim, lambda: channel.deliver(delivery, None))
        except DeliveryError as exc:
            return self._fail(claim, str(exc), permanent=exc.permanent)
        except TemplateRenderError as exc:
            # a public notice's template, rendered by the handler: the stored version's template fails the
            # same way every time (too costly for the evaluation budget, or broken), so retrying cannot help
            return self._fail(claim, str(exc), permanent=True)
        except Exception as exc:  # a bug or an outage in one channel must not stop the others
            return self._fail(claim, f"{type(exc).__name__}: {exc}", permanent=False)

    def _render(self, claim: _Claim) -> Delivery:
        row = claim.row
        templates = self._definition(row.workflow_version_id).templates
        try:
            subject = templates.render(row.template, "subject", row.context)
            text = templates.render(row.template, "text", row.context)
            html = templates.render(row.template, "html", row.context) if templates.has(row.template, "html") else None
        except TemplateRenderError as exc:
            # the stored version's template will fail the same way every time
            raise DeliveryError(str(exc), permanent=True) from None
        return Delivery(
            outbox_id=row.id,
            key=row.key,
            kind=row.kind,
            channel=row.channel,
            recipient=row.recipient,
            case_ref=claim.case_ref,
            subject=subject,
            text=text,
            html=html,
            context=row.context,
            created_at=row.created_at,
        )

    def _definition(self, version_id: int) -> WorkflowDef:
        # stored versions are immutable, so caching them for the relay's life is safe
        wf = self._definitions.get(version_id)
        if wf is None:
            wf = self._definitions[version_id] = self.service.definition_for_version(version_id)
        return wf

    def _deliver_in_transaction(self, claim: _Claim, channel: Channel, delivery: Delivery) -> str:
        try:
            with self.engine.begin() as conn:
                # mark first: it takes the row (and on SQLite the write lock) before the effect is written
                if not self._mark_sent(conn, claim):
                    raise _Overtaken
                channel.deliver(delivery, conn)
        except _Overtaken:
            return self._overtaken(claim, "before delivering")
        return "sent"

    def _deliver_outside(self, claim: _Claim, send: Callable[[], None]) -> str:
        if not self._hold_lease(claim):
            return self._overtaken(claim, "before delivering")
        send()
        with self.engine.begin() as conn:
            if not self._mark_sent(conn, claim):
                return self._overtaken(claim, "after delivering; it may be delivered twice")
        return "sent"

    def _mark_sent(self, conn: Connection, claim: _Claim) -> bool:
        result = conn.execute(
            update(_outbox).where(claim.fence).values(status="sent", sent_at=self.clock.now(), lease_until=None)
        )
        return result.rowcount == 1

    def _hold_lease(self, claim: _Claim) -> bool:
        """Whether the row is still ours, renewing the lease if less than half of it is left."""
        lease = dt.timedelta(seconds=self.config.relay.lease)
        now = self.clock.now()
        held_until = claim.row.lease_until
        if held_until is not None and now < held_until - lease / 2:
            return True
        with self.engine.begin() as conn:
            result = conn.execute(update(_outbox).where(claim.fence).values(lease_until=now + lease))
        return result.rowcount == 1

    def _overtaken(self, claim: _Claim, when: str) -> str:
        logger.warning("outbox %s via %s: another relay took it over %s", claim.row.id, claim.row.channel, when)
        return "skipped"

    # ------------------------------------------------------------------ failing

    def _fail(self, claim: _Claim, error: str, *, permanent: bool) -> str:
        row = claim.row
        attempts = row.attempts
        dead = permanent or attempts >= self.config.relay.max_attempts
        values: dict[str, Any] = {"status": "dead" if dead else "failed", "lease_until": None}
        values["last_error"] = error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…"
        if not dead:
            r = self.config.relay
            delay = backoff_delay(attempts, r.base_delay, r.max_delay, self.rng)
            values["next_attempt_at"] = self.clock.now() + dt.timedelta(seconds=delay)
        try:
            with self.engine.begin() as conn:
                recorded = conn.execute(update(_outbox).where(claim.fence).values(values)).rowcount == 1
        except Exception as exc:
            # the row stays 'sending' and is claimed again when its lease expires
            logger.warning(
                "outbox %s via %s: attempt %s failed and the failure could not be recorded (%s)",
                row.id,
                row.channel,
                attempts,
                type(exc).__name__,
            )
            return "failed"
        if not recorded:
            return self._overtaken(claim, "while it was failing")
        # the error text is in last_error, not here: it may quote an address
        outcome = "permanently, now dead" if dead else "will retry"
        logger.warning("outbox %s via %s: attempt %s failed, %s", row.id, row.channel, attempts, outcome)
        return "dead" if dead else "failed"


# ------------------------------------------------------------------- operators


class OutboxView(ReadModel):
    """One outbox row as an operator sees it (``casework outbox list``)."""

    id: int
    key: str
    kind: str
    channel: str
    recipient: str
    template: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    case_ref: str | None


def _views(conn: Connection, where: Any, limit: int) -> list[OutboxView]:
    o = _outbox.c
    query = (
        select(
            o.id, o.key, o.kind, o.channel, o.recipient, o.template, o.status, o.attempts,
            o.next_attempt_at, o.last_error, o.created_at, o.sent_at, _cases.c.ref.label("case_ref"),
        )
        .select_from(_outbox.outerjoin(_cases, _cases.c.id == o.case_id))
        .where(where)
        .order_by(o.id.desc())
        .limit(limit)
    )  # fmt: skip
    return [OutboxView(**r._mapping) for r in conn.execute(query)]


def list_outbox(
    engine: Engine, status: str | None = None, limit: int = 200, *, by: str | None = None
) -> list[OutboxView]:
    """The outbox, newest first, optionally only rows in ``status``.

    ``by``: a person asking (through the API), who must hold :data:`engine.users.ADMIN_ROLE`: the
    outbox names every recipient. The operator's console passes none.

    Raises:
        InputError: ``status`` is not one of pending, sending, sent, failed, dead; or ``limit`` < 1.
        PermissionDenied: ``by`` is not a supervisor.
    """
    if status is not None and status not in OUTBOX_STATUS:
        raise InputError(
            f"status must be one of {', '.join(OUTBOX_STATUS)}, not {status!r}", option="status", value=status
        )
    if limit < 1:
        raise InputError(f"limit must be at least 1, not {limit}", option="limit", value=limit)
    with engine.connect() as conn:
        if by is not None:
            require_admin(conn, by)
        return _views(conn, _outbox.c.status == status if status else true(), limit)


def retry(engine: Engine, outbox_id: int, clock: Clock) -> OutboxView:
    """Put a failed or dead message back in the queue: due now, with a fresh set of attempts.

    ``last_error`` is kept until the next attempt replaces it or succeeds.

    Raises:
        NotFound: there is no such outbox row.
        NotRetryable: it is pending, sending or sent.
    """
    with engine.begin() as conn:
        # the UPDATE first, and conditional: no read-then-write race with a relay
        result = conn.execute(
            update(_outbox)
            .where(_outbox.c.id == outbox_id, _outbox.c.status.in_(RETRYABLE))
            .values(status="pending", attempts=0, next_attempt_at=clock.now(), lease_until=None)
        )
        if result.rowcount != 1:
            status = conn.execute(select(_outbox.c.status).where(_outbox.c.id == outbox_id)).scalar()
            if status is None:
                raise NotFound(f"no outbox message {outbox_id}", code=Code.OUTBOX_NOT_FOUND, outbox=outbox_id)
            raise NotRetryable(
                f"outbox message {outbox_id} is {status}; only failed or dead messages can be retried",
                outbox=outbox_id,
                status=status,
            )
        (view,) = _views(conn, _outbox.c.id == outbox_id, 1)
    logger.info("outbox %s put back in the queue", outbox_id)
    return view
