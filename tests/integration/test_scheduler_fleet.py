"""A fleet of real ``casework scheduler`` processes *with the outbox relay*, on one database.

tests/integration/test_scheduler_processes.py already proves, with ``--no-relay``, that 2 and 4
schedulers fire 1,000 due timeouts exactly once, that one scheduler catches up on 500 timeouts
missed during downtime, and that a SIGKILL mid-sweep loses and doubles nothing. This module adds
what those leave out:

1. timers *and* the outbox at once: 2, then 4 schedulers (timers swept, outbox relayed) on 1,000
   due timeouts and 1,000 pending in-app messages — every timer fires once (1,000 events by
   ``system``), every message lands in an inbox once (1,000 ``inbox_messages``, one per outbox
   row, each row claimed once);
2. email at least once, at most one duplicate per crash: two schedulers relay 300 emails to a
   real SMTP server (aiosmtpd, slowed a little so a batch takes a while) and one of them is
   killed with SIGKILL in the middle of its batch, three times; every message arrives, and the
   number of duplicates (same Message-ID) is at most the number of kills;
3. downtime catch-up of *recurring* work: 500 cases waited in review through three weeks with no
   scheduler — each has a reminder and an escalation long due, and the daily overdue digest was
   missed on every day. One scheduler started: every reminder and escalation fires once, with
   one message per recipient (not one per missed day or per sweep), and the digest runs once,
   for its latest due time only.

Cases are made with the engine API on a :class:`FixedClock` in the past; the schedulers run on
the real clock. Waiting is polling the database against a deadline; every child is stopped in
``finally``. Run with ``pytest -s`` to see the measured figures.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from db import AuditEvent, Case, InboxMessage, JobRun, OutboxMessage, Timer
from engine import Casework, FixedClock, load_definition
from engine.schedules import latest_fire_time
from notifications.channels.email import message_id
from tests.conftest import ROOT, USERS
from tests.e2e.runner import casework
from tests.integration.conftest import SmtpServer
from tests.integration.race_support import Households, postgres_only

T = TypeVar("T")

pytestmark = pytest.mark.scenario  # fleets of real scheduler processes, SIGKILLed mid-batch

_cases = Case.__table__
_events = AuditEvent.__table__
_timers = Timer.__table__
_outbox = OutboxMessage.__table__
_inbox = InboxMessage.__table__
_runs = JobRun.__table__

INTERVAL = "0.5"
DEADLINE = 180.0  # seconds any wait may take on two loaded cores
TICK = re.compile(
    r"sweep: fired (\d+), held (\d+), discarded (\d+), failed (\d+)(?:; outbox: sent (\d+), retry (\d+), dead (\d+))?"
)

# ------------------------------------------------------------------ a workflow with one timer and one message

FLEET = """\
workflow: fleet
version: 1
title: 调度测试
ref_prefix: FL
roles:
  clerk: 经办人
fields:
  note: {{type: text, label: 备注}}
states:
  draft: {{label: 草稿, initial: true}}
  waiting:
    label: 等待
    timeout: {{after: 1 hours, fire: expire}}
  expired: {{label: 已过期, final: true}}
transitions:
  start: {{label: 开始, from: draft, to: waiting, by: clerk}}
  expire: {{label: 过期, from: waiting, to: expired, by: system}}
notify:
  - {{on: fire start, to: "user:zhou", template: started, channels: [{channels}]}}
"""
TEMPLATES = {
    "started.subject": "已开始：{{ case.ref }}",
    "started.txt": "{{ recipient.name }}，您好：{{ case.ref }} 已开始（{{ case.note }}）。\n",
}
CLERK = ("zhou", "周敏", ["clerk"], ["*"])
CLERK_EMAIL = "zhou@fleet.example"


def seed_fleet(svc: Casework, clock: FixedClock, n: int, channels: str) -> list[str]:
    """``n`` cases started three hours ago: each has a due timeout and one outbox row per channel."""
    clock.set(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    svc.load_workflow(load_definition(FLEET.format(channels=channels), "fleet.yaml", TEMPLATES))
    username, name, roles, scopes = CLERK
    svc.add_user(username, name, roles, scopes, email=CLERK_EMAIL)
    refs = svc.import_cases("fleet", username, [(i + 2, {"note": f"第{i}号"}) for i in range(n)]).imported
    report = svc.fire_many(refs, "start", username)
    assert (len(report.fired), report.refused) == (n, [])
    with svc.engine.connect() as conn:
        due = conn.execute(
            select(func.count())
            .select_from(_timers)
            .where(_timers.c.status == "pending", _timers.c.due_at <= dt.datetime.now(dt.UTC))
        ).scalar_one()
        pending = conn.execute(
            select(func.count()).select_from(_outbox).where(_outbox.c.status == "pending")
        ).scalar_one()
    assert (due, pending) == (n, n * len(channels.split(",")))
    return refs


# ------------------------------------------------------------------ processes


@dataclass
class Scheduler:
    """One ``casework scheduler`` child process, its output in a log file."""

    popen: subprocess.Popen[bytes]
    log: Path
    _handle: IO[bytes]

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def ticks(self) -> list[tuple[int, ...]]:
        """(fired, held, discarded, failed, sent, retry, dead) of every tick it logged."""
        return [tuple(int(g or 0) for g in m.groups()) for m in TICK.finditer(self.output())]

    def totals(self) -> tuple[int, ...]:
        return tuple(sum(col) for col in zip(*self.ticks(), strict=True)) or (0,) * 7

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        assert self.popen.wait(10) == -signal.SIGKILL

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (if still running) and wait; SIGKILL if it does not stop. Returns the exit code."""
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(10)
            return self.popen.returncode
        finally:
            self._handle.close()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CASEWORK_DB" and not k.startswith("CASEWORK_SMTP")}
    env.update(PYTHONUTF8="1", PYTHONIOENCODING="utf-8", **extra)
    return env


def start_scheduler(url: str, log: Path, *args: str, **env: str) -> Scheduler:
    handle = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "casework", "--db", url, "scheduler", "--interval", INTERVAL, *args],
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=_env(**env),
    )
    return Scheduler(popen, log, handle)


@contextlib.contextmanager
def fleet() -> Iterator[list[Scheduler]]:
    """The schedulers started inside; every one still running is stopped on the way out."""
    procs: list[Scheduler] = []
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def wait_for(what: str, check: Callable[[], T | None], procs: list[Scheduler], timeout: float = DEADLINE) -> T:
    """Poll ``check`` until it returns a true value; fail if a live scheduler dies or time runs out."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if p.popen.poll() is None]
    while True:
        value = check()
        if value:
            return value
        for proc in alive:
            if proc.popen.poll() is not None:
                pytest.fail(f"scheduler exited ({proc.popen.returncode}) waiting for {what}:\n{proc.output()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.05)


def check_and_verify(url: str) -> None:
    """``casework check`` and ``casework audit verify`` (in this process: tests/e2e/runner.py): both exit 0."""
    for args, says in ((("check",), "all invariants hold"), (("audit", "verify"), "audit trail intact")):
        done = casework(url, *args)
        assert done.rc == 0 and done.out.startswith(says), (args, done.out, done.err)


# ------------------------------------------------------------------ database facts


def scalar(engine: Engine, query: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()


def outbox_status(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(_outbox.c.status, func.count()).group_by(_outbox.c.status)).all())


def pending_timers(engine: Engine) -> int:
    return scalar(engine, select(func.count()).select_from(_timers).where(_timers.c.status == "pending"))


# ------------------------------------------------------------------ 1: timers and the inbox, 2 then 4 schedulers


@postgres_only()
@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
def test_schedulers_with_relay_fire_every_timer_once_and_deliver_every_inbox_message_once(
    svc: Casework, clock: FixedClock, db_url: str, tmp_path: Path, workers: int
) -> None:
    n = 1000
    seed_fleet(svc, clock, n, "inbox")
    engine = svc.engine
    started = time.perf_counter()
    with fleet() as procs:
        for i in range(workers):
            procs.append(start_scheduler(db_url, tmp_path / f"s{i}.log"))
        wait_for(
            "every timer fired and every message sent",
            lambda: pending_timers(engine) == 0 and outbox_status(engine) == {"sent": n},
            procs,
        )
        elapsed = time.perf_counter() - started
        codes = [p.stop() for p in procs]
    assert codes == [0] * workers, [p.output()[-2000:] for p in procs]
    for proc in procs:
        assert "Traceback" not in proc.output()
    totals = [p.totals() for p in procs]
    fired, sent = [t[0] for t in totals], [t[4] for t in totals]
    print(
        f"\n[fleet] {workers} schedulers: {n} timers and {n} inbox messages done {elapsed:.1f} s after start; "
        f"fired per process {fired}, sent per process {sent}"
    )
    # each fire and each delivery was done, and logged, by exactly one process; none failed or retried
    assert sum(fired) == n and sum(sent) == n
    assert [t[3] for t in totals] == [0] * workers  # failed timers
    assert [t[5:] for t in totals] == [(0, 0)] * workers  # outbox retry, dead

    with engine.connect() as conn:
        timers = conn.execute(
            select(_timers.c.status, func.count(), func.count(_timers.c.fired_at)).group_by(_timers.c.status)
        ).all()
        assert [tuple(r) for r in timers] == [("fired", n, n)]
        # one expire event per case, by system; nothing else after start
        per_case = collections.Counter(
            conn.execute(
                select(_events.c.case_id).where(_events.c.trigger == "expire", _events.c.actor == "system")
            ).scalars()
        )
        assert len(per_case) == n and set(per_case.values()) == {1}
        assert conn.execute(select(func.count()).select_from(_events)).scalar_one() == 3 * n
        states = conn.execute(
            select(_cases.c.state, _cases.c.version, func.count()).group_by(_cases.c.state, _cases.c.version)
        ).all()
        assert [tuple(r) for r in states] == [("expired", 3, n)]
        # every outbox row claimed once, delivered once, into exactly one inbox row
        attempts = conn.execute(select(_outbox.c.attempts, func.count()).group_by(_outbox.c.attempts)).all()
        assert [tuple(r) for r in attempts] == [(1, n)]
        inbox = conn.execute(select(_inbox.c.outbox_id, _inbox.c.username)).all()
        outbox_ids = set(conn.execute(select(_outbox.c.id)).scalars())
    assert len(inbox) == n
    assert {r.outbox_id for r in inbox} == outbox_ids
    assert {r.username for r in inbox} == {CLERK[0]}
    check_and_verify(db_url)


# ------------------------------------------------------------------ 2: email, at least once, <= 1 duplicate per kill


class SlowSmtpServer(SmtpServer):
    """The test SMTP server, taking ``delay`` seconds to accept each message (a real server's fsync)."""

    delay = 0.02

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[SlowSmtpServer]:
    server = SlowSmtpServer()
    server.start()
    yield server
    server.stop()


def by_sender(server: SmtpServer) -> collections.Counter[str]:
    return collections.Counter(mail_from for mail_from, _ in list(server.envelopes))


@postgres_only()
@pytest.mark.slow
def test_email_survives_schedulers_killed_mid_batch_with_at_most_one_duplicate_per_kill(
    svc: Casework, clock: FixedClock, db_url: str, tmp_path: Path, slow_smtp: SlowSmtpServer
) -> None:
    n, kills = 300, 3
    seed_fleet(svc, clock, n, "email")
    engine = svc.engine
    smtp = {
        "CASEWORK_SMTP_HOST": "127.0.0.1",
        "CASEWORK_SMTP_PORT": str(slow_smtp.port),
        "CASEWORK_SMTP_TIMEOUT": "5",
        # small batches and a short lease: a dead relay's claimed rows are taken over within seconds
        "CASEWORK_RELAY_BATCH": "20",
        "CASEWORK_RELAY_LEASE": "4",
    }

    def sender(name: str) -> dict[str, str]:
        # each process signs with its own address: the SMTP envelope says who sent what
        return {**smtp, "CASEWORK_SMTP_SENDER": f"{name} <{name}@fleet.example>"}

    killed_after: list[int] = []
    with fleet() as procs:
        procs.append(start_scheduler(db_url, tmp_path / "relay-a.log", **sender("relay-a")))
        for k in range(kills):
            name = f"victim{k}"
            victim = start_scheduler(db_url, tmp_path / f"{name}.log", **sender(name))
            procs.append(victim)
            address = f"{name}@fleet.example"
            # kill it in the middle of its batch: after it has sent a few of the 20 rows it claimed
            wait_for(f"{name} to send 5 emails", lambda a=address: by_sender(slow_smtp)[a] >= 5, procs)
            victim.kill()
            killed_after.append(by_sender(slow_smtp)[address])
        wait_for("every email sent", lambda: outbox_status(engine) == {"sent": n}, procs)
        codes = {p.log.stem: p.stop() for p in procs}
    assert codes == {"relay-a": 0, **{f"victim{k}": -signal.SIGKILL for k in range(kills)}}

    sent = [
        (str(m["Message-ID"]).removeprefix("<").split("@", 1)[0], mail_from)
        for m, (mail_from, _) in zip(list(slow_smtp.messages), list(slow_smtp.envelopes), strict=True)
    ]
    ids = collections.Counter(local for local, _ in sent)
    keys = scalar_list(engine, select(_outbox.c.key).where(_outbox.c.channel == "email"))
    expected = {message_id(key, CLERK_EMAIL).removeprefix("<").split("@", 1)[0] for key in keys}
    duplicates = sum(c - 1 for c in ids.values())
    print(
        f"\n[email] {n} emails, {kills} SIGKILLs (after {killed_after} sends each): {len(sent)} received, "
        f"{duplicates} duplicate(s); by sender {dict(by_sender(slow_smtp))}"
    )
    assert len(expected) == n and set(ids) == expected  # every message arrived, and nothing else did
    assert duplicates <= kills
    # a duplicate is a message a killed relay had sent but not yet marked sent: at most one per victim
    first_senders = collections.Counter(
        next(who for other, who in sent if other == local) for local, count in ids.items() if count > 1
    )
    assert all(who.startswith("victim") and c == 1 for who, c in first_senders.items()), first_senders
    assert all(rcpt == [CLERK_EMAIL] for _, rcpt in slow_smtp.envelopes)
    with engine.connect() as conn:
        # a row whose claim died with its relay was claimed once more; none more than that per kill
        retried = conn.execute(select(func.count()).select_from(_outbox).where(_outbox.c.attempts > 1)).scalar_one()
    assert retried <= kills * 20
    assert duplicates <= retried


def scalar_list(engine: Engine, query: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


# ------------------------------------------------------------------ 3: downtime catch-up of recurring work


SUPERVISOR = ("zheng", "郑国强", ["supervisor"], ["*"])


def seed_waiting_in_review(svc: Casework, clock: FixedClock, n: int) -> list[str]:
    """``n`` cases submitted three weeks ago, never reviewed: reminder and escalation long due."""
    clock.set(dt.datetime.now(dt.UTC) - dt.timedelta(days=21))
    svc.add_user(*SUPERVISOR)  # the bundled workflow and USERS are loaded by the svc fixture
    people = Households(seed=99)
    rows: list[dict[str, Any]] = []
    seen: set[Any] = set()
    while len(rows) < n:
        data = people()
        if data["id_number"] not in seen:
            seen.add(data["id_number"])
            rows.append(data)
    refs = svc.import_cases("poverty_archive", "lin", list(enumerate(rows, start=2))).imported
    assert svc.fire_many(refs, "submit", "lin").fired == refs
    return refs


def timer_messages(engine: Engine) -> dict[int, int]:
    """Outbox rows per timer id (their keys are ``timer:<id>:<role>:<channel>:<recipient>``)."""
    counts: collections.Counter[int] = collections.Counter()
    for key in scalar_list(engine, select(_outbox.c.key).where(_outbox.c.key.like("timer:%"))):
        counts[int(key.split(":")[1])] += 1
    return dict(counts)


def test_one_scheduler_after_downtime_fires_each_reminder_once_and_the_daily_digest_once(
    svc: Casework, clock: FixedClock, db_url: str, tmp_path: Path, backend: str
) -> None:
    n = 500
    refs = seed_waiting_in_review(svc, clock, n)
    engine = svc.engine
    now = dt.datetime.now(dt.UTC)
    with engine.connect() as conn:
        due = collections.Counter(
            conn.execute(select(_timers.c.kind).where(_timers.c.status == "pending", _timers.c.due_at <= now)).scalars()
        )
    assert due == {"remind": n, "escalate": n}  # both fell due while no scheduler ran
    assert scalar(engine, select(func.count()).select_from(_runs)) == 0
    digest_due_before = latest_fire_time("0 9 * * *", "Asia/Shanghai", now)

    started = time.perf_counter()
    with fleet() as procs:
        procs.append(start_scheduler(db_url, tmp_path / "s0.log", "--no-relay"))
        wait_for("every due timer fired", lambda: pending_timers(engine) == 0, procs)
        caught_up = time.perf_counter() - started
        ticks = len(procs[0].ticks())
        # a few more sweeps: nothing fires a second time
        wait_for("three more sweeps", lambda: len(procs[0].ticks()) >= ticks + 3, procs, 60)
        assert procs[0].stop() == 0
    fired, held, discarded, failed = procs[0].totals()[:4]
    print(
        f"\n[downtime, {backend}] {2 * n} reminders/escalations caught up {caught_up:.1f} s after start "
        f"over {len(procs[0].ticks())} sweeps"
    )
    assert (fired, held, discarded, failed) == (2 * n, 0, 0, 0)
    assert "Traceback" not in procs[0].output()

    with engine.connect() as conn:
        timers = {
            (r.kind, r.status): r.n
            for r in conn.execute(
                select(_timers.c.kind, _timers.c.status, func.count().label("n")).group_by(
                    _timers.c.kind, _timers.c.status
                )
            )
        }
        kinds = dict(conn.execute(select(_timers.c.id, _timers.c.kind)).all())
        runs = conn.execute(select(_runs.c.job, _runs.c.fire_time, _runs.c.outcome)).all()
        still = collections.Counter(conn.execute(select(_cases.c.state)).scalars())
    assert timers == {("remind", "fired"): n, ("escalate", "fired"): n}
    assert still == {"review": n}  # reminders tell people; they move nothing
    # one message per recipient per timer, however many sweeps ran: 3 reviewers covering 芗城区
    # are reminded (inbox; none has an email address), the one supervisor is told of the escalation
    per_timer = timer_messages(engine)
    reviewers = {u for u, _, roles, scopes in USERS if "reviewer" in roles and ("*" in scopes or "芗城区" in scopes)}
    assert len(per_timer) == 2 * n
    assert collections.Counter(per_timer[t] for t in per_timer if kinds[t] == "remind") == {len(reviewers): n}
    assert collections.Counter(per_timer[t] for t in per_timer if kinds[t] == "escalate") == {1: n}
    # the daily digest was missed on ~21 days; it runs once, for its latest due time
    digest_due_after = latest_fire_time("0 9 * * *", "Asia/Shanghai", dt.datetime.now(dt.UTC))
    assert {r.job for r in runs} == {"poverty_archive:overdue_digest"}  # the January campaign is not due
    digests = list(runs)
    expected = {digest_due_before, digest_due_after}  # two only if 09:00 Shanghai passed during the test
    assert len(digests) == len(expected)
    assert {_utc(r.fire_time) for r in digests} == {_utc(t) for t in expected if t is not None}
    print(f"[downtime, {backend}] overdue digest ran {len(digests)}x: {[(r.fire_time, r.outcome) for r in digests]}")
    assert len(refs) == n
    check_and_verify(db_url)


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite hands back text when a query bypasses the column type
        value = dt.datetime.fromisoformat(value)
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
