"""The relay against real databases: claiming, exactly-once inbox, crashes, leases, concurrency.

Outbox rows are made the real way: a case is submitted in a small workflow
whose notify rules tell every checker (see ``conftest.relay_workflow``).
"""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any, ClassVar

import pytest
from sqlalchemy import Connection, Engine, func, select, update

from db import InboxMessage, OutboxMessage, make_engine
from engine import Casework, FixedClock, InputError, NotFound, UserNotFound, mask_name
from notifications import (
    Channel,
    Delivery,
    InboxChannel,
    NotificationConfig,
    NotRetryable,
    Relay,
    RelayConfig,
    default_channels,
    inbox,
    list_outbox,
    mark_read,
    retry,
)
from tests.integration.conftest import add_checkers, relay_workflow, submit_case

_outbox = OutboxMessage.__table__
_inbox = InboxMessage.__table__

CONFIG = NotificationConfig(relay=RelayConfig(max_attempts=3, base_delay=30, max_delay=3600, lease=120, batch=100))


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs, nothing catches it."""


def make_relay(engine: Any, svc: Casework, clock: FixedClock, config: NotificationConfig = CONFIG, **kw: Any) -> Relay:
    channels = kw.pop("channels", None) or default_channels(config)
    return Relay(engine, svc, channels, config, clock=clock, rng=random.Random(7), **kw)


def outbox_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(_outbox).order_by(_outbox.c.id)).all()


def inbox_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(_inbox)).scalar_one()


# ------------------------------------------------------------------ the inbox


def test_inbox_gets_one_rendered_message_per_recipient(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc)
    add_checkers(svc, 2, with_email=False)
    ref = submit_case(svc)
    relay = make_relay(engine, svc, clock)

    report = relay.run_once()

    assert report.to_json() == {"sent": 2, "failed": 0, "dead": 0, "skipped": 0}
    for i, username in enumerate(["chk0", "chk1"]):
        (message,) = inbox(engine, username)
        assert message.subject == f"待审核：{ref}（{mask_name('陈志强')}）"
        assert message.case_ref == ref
        assert message.body.startswith(f"审核员{i}号，您好：\n通知测试 {ref} 已提交申请，请审核。")
        assert message.read_at is None
    assert [(r.status, r.attempts, r.sent_at, r.lease_until) for r in outbox_rows(engine)] == [
        ("sent", 1, clock.now(), None)
    ] * 2
    # again: nothing is due, nothing is duplicated
    assert relay.run_once().total == 0
    assert inbox_count(engine) == 2


def test_crash_after_the_inbox_write_leaves_exactly_one_message(
    engine: Engine, svc: Casework, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_workflow(svc)
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)
    original = InboxChannel.deliver
    crashes: list[int] = []

    def deliver_then_die(self: InboxChannel, delivery: Delivery, conn: Connection | None) -> None:
        original(self, delivery, conn)  # the message is written ...
        if not crashes:
            crashes.append(delivery.outbox_id)
            raise Crash  # ... and the process dies before the commit

    monkeypatch.setattr(InboxChannel, "deliver", deliver_then_die)
    with pytest.raises(Crash):
        make_relay(engine, svc, clock).run_once()

    assert inbox_count(engine) == 0
    (row,) = outbox_rows(engine)
    assert (row.status, row.attempts) == ("sending", 1)
    # a restarted relay leaves it alone while the dead one's lease runs ...
    restarted = make_relay(engine, svc, clock)
    assert restarted.run_once().total == 0
    # ... and delivers it once the lease has expired
    clock.advance(seconds=121)
    assert restarted.run_once().sent == 1
    assert inbox_count(engine) == 1
    (row,) = outbox_rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)


def test_failure_after_the_inbox_write_rolls_it_back_and_retries(
    engine: Engine, svc: Casework, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_workflow(svc)
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)
    original = InboxChannel.deliver
    calls: list[int] = []

    def deliver_then_fail(self: InboxChannel, delivery: Delivery, conn: Connection | None) -> None:
        original(self, delivery, conn)
        calls.append(delivery.outbox_id)
        if len(calls) == 1:
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(InboxChannel, "deliver", deliver_then_fail)
    relay = make_relay(engine, svc, clock)
    assert relay.run_once().failed == 1
    (row,) = outbox_rows(engine)
    assert row.status == "failed"
    assert row.last_error == "RuntimeError: disk on fire"
    assert 15 <= (row.next_attempt_at - clock.now()).total_seconds() <= 30  # first backoff: 30 s, jittered
    assert inbox_count(engine) == 0

    assert relay.run_once().total == 0  # not due yet
    clock.advance(seconds=30)
    assert relay.run_once().sent == 1
    assert inbox_count(engine) == 1
    assert len(calls) == 2


def test_read_and_mark_the_inbox(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc)
    add_checkers(svc, 2, with_email=False)
    first = submit_case(svc, "陈志强")
    clock.advance(minutes=1)
    second = submit_case(svc, "林晓", county="龙文区")
    make_relay(engine, svc, clock).run_once()

    messages = inbox(engine, "chk0")
    assert [m.case_ref for m in messages] == [second, first]  # newest first
    read_at = clock.advance(minutes=5)
    marked = mark_read(engine, "chk0", messages[1].id, clock)
    assert marked.read_at == read_at
    assert marked.to_json()["read_at"] == read_at.astimezone(clock.now().tzinfo).isoformat(timespec="seconds")
    assert [m.case_ref for m in inbox(engine, "chk0", unread_only=True)] == [second]
    # marking again keeps the first time
    clock.advance(minutes=5)
    assert mark_read(engine, "chk0", messages[1].id, clock).read_at == read_at
    # another user's message, or none at all: the same answer
    with pytest.raises(NotFound, match=f"no message {messages[0].id} in chk1's inbox"):
        mark_read(engine, "chk1", messages[0].id, clock)
    with pytest.raises(NotFound, match="no message 9999 in chk0's inbox"):
        mark_read(engine, "chk0", 9999, clock)
    with pytest.raises(UserNotFound):
        inbox(engine, "nobody")
    assert len(inbox(engine, "chk1", unread_only=True)) == 2


# ------------------------------------------------------------- what goes dead


def test_rows_that_can_never_be_delivered_go_dead_at_once(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    # a channel nobody registered, and a template that fails when rendered
    relay_workflow(svc, channels=("inbox", "sms"), templates={"review_waiting.txt": "{{ recipient.phone }}"})
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)

    report = make_relay(engine, svc, clock).run_once()

    assert report.to_json() == {"sent": 0, "failed": 0, "dead": 2, "skipped": 0}
    errors = {r.channel: (r.status, r.attempts, r.last_error) for r in outbox_rows(engine)}
    assert errors["sms"] == ("dead", 1, "no channel 'sms' in this relay (it has console, email, inbox, webhook)")
    status, attempts, error = errors["inbox"]
    assert (status, attempts) == ("dead", 1)
    assert error.startswith("review_waiting.txt failed to render: UndefinedError")


def test_a_notice_row_left_by_an_older_version_is_made_dead_saying_why(
    engine: Engine, svc: Casework, clock: FixedClock
) -> None:
    """Notices are rendered when published, never by the relay afterwards (issue 11): no row is queued."""
    relay_workflow(svc)
    add_checkers(svc, 1, with_email=False)
    ref = submit_case(svc)
    assert [r.kind for r in list_outbox(engine)] == ["message"]
    (message,) = list_outbox(engine)
    outbox = OutboxMessage.__table__
    with engine.begin() as conn:
        row = conn.execute(select(outbox).where(outbox.c.id == message.id)).one()._asdict()
        row.pop("id")
        conn.execute(
            outbox.insert().values({**row, "key": f"{row['key']}:notice", "kind": "notice", "channel": "notice"})
        )
    assert make_relay(engine, svc, clock).run_once().to_json() == {"sent": 1, "failed": 0, "dead": 1, "skipped": 0}
    (dead,) = list_outbox(engine, "dead")
    assert (dead.kind, dead.case_ref, dead.attempts) == ("notice", ref, 1)
    assert dead.last_error is not None and "no longer generated from the outbox" in dead.last_error
    assert svc.notices() == []


# ------------------------------------------------------------------ leases


def test_expired_lease_is_claimed_again_and_a_live_one_is_not(
    engine: Engine, svc: Casework, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_workflow(svc)
    add_checkers(svc, 1, with_email=False)
    first, second = submit_case(svc, "陈志强"), submit_case(svc, "林晓")

    def die(self: InboxChannel, delivery: Delivery, conn: Connection | None) -> None:
        raise Crash

    monkeypatch.setattr(InboxChannel, "deliver", die)
    with pytest.raises(Crash):
        make_relay(engine, svc, clock).run_once(limit=1)  # holds the first until +120 s
    clock.advance(seconds=60)
    with pytest.raises(Crash):
        make_relay(engine, svc, clock).run_once(limit=1)  # holds the second until +180 s
    monkeypatch.undo()
    assert [r.status for r in outbox_rows(engine)] == ["sending", "sending"]

    clock.advance(seconds=61)  # +121 s: the first lease has expired, the second has not
    relay = make_relay(engine, svc, clock)
    assert relay.run_once().to_json() == {"sent": 1, "failed": 0, "dead": 0, "skipped": 0}
    assert [m.case_ref for m in inbox(engine, "chk0")] == [first]
    assert [r.status for r in outbox_rows(engine)] == ["sent", "sending"]

    clock.advance(seconds=60)
    assert relay.run_once().sent == 1
    assert sorted(m.case_ref for m in inbox(engine, "chk0")) == sorted([first, second])


class Recording(Channel):
    """A non-transactional channel that remembers what it delivered."""

    name: ClassVar[str] = "console"

    def __init__(self) -> None:
        self.delivered: list[int] = []
        self.during: Any = None

    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        assert conn is None
        self.delivered.append(delivery.outbox_id)
        if self.during is not None:
            during, self.during = self.during, None
            during()


def test_a_relay_overtaken_while_sending_cannot_overwrite_the_newer_claim(
    engine: Engine, svc: Casework, clock: FixedClock
) -> None:
    relay_workflow(svc, channels=("console",))
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)
    slow_channel, fast_channel = Recording(), Recording()
    slow = make_relay(engine, svc, clock, channels={"console": slow_channel})
    fast = make_relay(engine, svc, clock, channels={"console": fast_channel})

    def lease_runs_out() -> None:
        clock.advance(seconds=121)
        assert fast.run_once().sent == 1

    slow_channel.during = lease_runs_out
    assert slow.run_once().to_json() == {"sent": 0, "failed": 0, "dead": 0, "skipped": 1}
    (row,) = outbox_rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)
    # an external channel is at-least-once: both sent it (receivers deduplicate on the key)
    assert slow_channel.delivered == fast_channel.delivered == [row.id]


def test_an_overtaken_relay_writes_nothing_to_the_inbox(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc)
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)
    slow = make_relay(engine, svc, clock)
    fast = make_relay(engine, svc, clock)
    render = slow._render

    def render_while_overtaken(claim: Any) -> Delivery:
        clock.advance(seconds=121)
        assert fast.run_once().sent == 1
        return render(claim)

    slow._render = render_while_overtaken  # type: ignore[method-assign]
    assert slow.run_once().skipped == 1
    assert inbox_count(engine) == 1
    (row,) = outbox_rows(engine)
    assert (row.status, row.attempts) == ("sent", 2)


# ------------------------------------------------------------- two relays


class CountingInbox(InboxChannel):
    def __init__(self, log: list[int]) -> None:
        self.log = log

    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        super().deliver(delivery, conn)
        self.log.append(delivery.outbox_id)


def test_two_relays_deliver_each_row_exactly_once(
    db_url: str, engine: Engine, svc: Casework, clock: FixedClock
) -> None:
    relay_workflow(svc, rules=10)
    add_checkers(svc, 20, with_email=False)
    submit_case(svc)  # 10 rules × 20 checkers
    assert len(list_outbox(engine, "pending", limit=1000)) == 200
    config = NotificationConfig(relay=RelayConfig(batch=7))
    delivered: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    handled: collections.Counter[str] = collections.Counter()

    def run(name: str) -> None:
        # its own engine and service: as separate processes would have
        own = make_engine(db_url)
        try:
            relay = Relay(own, Casework(own, clock), {"inbox": CountingInbox(delivered)}, config, clock=clock)
            start.wait()
            while claimed := relay.run_once().total:
                handled[name] += claimed
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=run, args=(f"relay-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert errors == []
    assert sorted(handled) == ["relay-0", "relay-1"]  # both took part
    assert sum(handled.values()) == len(delivered) == 200
    assert [n for n in collections.Counter(delivered).values() if n != 1] == []
    rows = outbox_rows(engine)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}  # each claimed once
    with engine.connect() as conn:
        assert conn.execute(select(func.count(func.distinct(_inbox.c.outbox_id)))).scalar_one() == 200
    assert inbox_count(engine) == 200


# ---------------------------------------------------------------- operators


def test_list_outbox_and_retry(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc, channels=("inbox", "sms"))
    add_checkers(svc, 1, with_email=False)
    ref = submit_case(svc)
    make_relay(engine, svc, clock).run_once()

    views = list_outbox(engine)
    assert [(v.channel, v.status, v.recipient, v.template, v.case_ref) for v in views] == [
        ("sms", "dead", "chk0", "review_waiting", ref),
        ("inbox", "sent", "chk0", "review_waiting", ref),
    ]
    dead = views[0]
    assert dead.to_json()["status"] == "dead"
    assert set(dead.to_json()) == {
        "id", "key", "kind", "channel", "recipient", "template", "status", "attempts", "next_attempt_at",
        "last_error", "created_at", "sent_at", "case_ref",
    }  # fmt: skip
    assert [v.channel for v in list_outbox(engine, "sent")] == ["inbox"]

    clock.advance(hours=1)
    again = retry(engine, dead.id, clock)
    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 0, clock.now())
    assert again.last_error == dead.last_error  # kept until the next attempt
    with pytest.raises(NotRetryable, match=f"outbox message {dead.id} is pending; only failed or dead"):
        retry(engine, dead.id, clock)
    with pytest.raises(NotRetryable, match="is sent"):
        retry(engine, views[1].id, clock)
    with pytest.raises(NotFound, match="no outbox message 4242"):
        retry(engine, 4242, clock)
    with pytest.raises(InputError, match="status must be one of pending, sending, sent, failed, dead"):
        list_outbox(engine, "lost")


def test_a_failing_row_counts_up_to_dead(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc, channels=("console",))
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)

    class Down(Channel):
        name: ClassVar[str] = "console"

        def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
            raise OSError("network unreachable")

    relay = make_relay(engine, svc, clock, channels={"console": Down()})
    outcomes = []
    for _ in range(CONFIG.relay.max_attempts):
        outcomes.append(relay.run_once().to_json())
        clock.advance(hours=2)
    assert [o["failed"] for o in outcomes] == [1, 1, 0]
    assert outcomes[-1]["dead"] == 1
    (row,) = outbox_rows(engine)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "OSError: network unreachable")
    assert relay.run_once().total == 0


def test_status_changes_are_fenced(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    """A row re-claimed under a relay's feet is not failed by it either."""
    relay_workflow(svc, channels=("console",))
    add_checkers(svc, 1, with_email=False)
    submit_case(svc)
    channel = Recording()
    relay = make_relay(engine, svc, clock, channels={"console": channel})

    def reclaimed() -> None:
        with engine.begin() as conn:
            conn.execute(update(_outbox).values(attempts=_outbox.c.attempts + 1))
        raise OSError("too late anyway")

    channel.during = reclaimed
    assert relay.run_once().skipped == 1
    (row,) = outbox_rows(engine)
    assert (row.status, row.last_error) == ("sending", None)


def test_run_forever_delivers_until_stopped(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc)
    add_checkers(svc, 1, with_email=False)
    relay = make_relay(engine, svc, clock)
    stop = threading.Event()
    worker = threading.Thread(target=relay.run_forever, args=(stop,), kwargs={"poll_seconds": 0.02})
    worker.start()
    try:
        ref = submit_case(svc)
        for _ in range(250):
            if inbox(engine, "chk0"):
                break
            time.sleep(0.02)
        assert [m.case_ref for m in inbox(engine, "chk0")] == [ref]
    finally:
        stop.set()
        worker.join(5)
    assert not worker.is_alive()
