"""The email, webhook and console channels through the relay, against real servers.

Email goes to a real SMTP server (aiosmtpd on a local port), the webhook to
a real HTTP server in a thread; both databases.
"""

from __future__ import annotations

import io
import json
import random
import time
from typing import Any

import pytest
from sqlalchemy import Engine, select

from db import OutboxMessage
from engine import Casework, FixedClock, mask_name
from notifications import (
    ConsoleChannel,
    NotificationConfig,
    Relay,
    RelayConfig,
    SmtpConfig,
    WebhookConfig,
    default_channels,
    inbox,
    retry,
    verify_signature,
)
from notifications.channels.email import message_id
from tests.integration.conftest import SLOW, SmtpServer, WebhookServer, add_checkers, relay_workflow, submit_case

_outbox = OutboxMessage.__table__

SENDER = "漳州市总工会 <noreply@zzgh.example>"
SECRET = "s3cret-共享密钥"
RELAY = RelayConfig(max_attempts=3, base_delay=30, max_delay=3600, lease=120, batch=100)


class Crash(BaseException):
    """Stands for the process dying."""


def smtp_config(server: SmtpServer) -> NotificationConfig:
    return NotificationConfig(
        smtp=SmtpConfig(host="127.0.0.1", port=server.port, sender=SENDER, timeout=5), relay=RELAY
    )


def webhook_config(server: WebhookServer, timeout: float = 5) -> NotificationConfig:
    return NotificationConfig(webhook=WebhookConfig(url=server.url, secret=SECRET, timeout=timeout), relay=RELAY)


def make_relay(engine: Engine, svc: Casework, clock: FixedClock, config: NotificationConfig) -> Relay:
    return Relay(engine, svc, default_channels(config), config, clock=clock, rng=random.Random(3))


def rows(engine: Engine, channel: str) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(select(_outbox).where(_outbox.c.channel == channel).order_by(_outbox.c.id)).all()


# ------------------------------------------------------------------ email


def test_email_is_delivered_with_chinese_subject_text_and_html(
    engine: Engine, svc: Casework, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    relay_workflow(svc, channels=("inbox", "email"))
    add_checkers(svc, 2)
    ref = submit_case(svc)

    report = make_relay(engine, svc, clock, smtp_config(smtp_server)).run_once()

    assert report.to_json() == {"sent": 4, "failed": 0, "dead": 0, "skipped": 0}
    assert sorted(rcpt for _, rcpt in smtp_server.envelopes) == [["chk0@zzgh.example"], ["chk1@zzgh.example"]]
    keys = {r.recipient: r.key for r in rows(engine, "email")}
    for msg, (mail_from, (to,)) in zip(smtp_server.messages, smtp_server.envelopes, strict=True):
        username = to.split("@")[0]
        (in_app,) = inbox(engine, username)
        assert mail_from == "noreply@zzgh.example"
        assert msg["Subject"] == in_app.subject == f"待审核：{ref}（{mask_name('陈志强')}）"
        assert msg["From"].addresses[0].display_name == "漳州市总工会"
        assert msg["To"] == to
        assert msg["Message-ID"] == message_id(keys[to], SENDER)
        assert msg["Auto-Submitted"] == "auto-generated"
        # MIME text is CRLF-delimited on the wire; the email package ends it with a newline
        assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == in_app.body + "\n"
        html = msg.get_body(("html",)).get_content()
        assert f"<b>{ref}</b>" in html and "您好" in html
        assert "陈志强" not in msg.as_string()  # masked before it reached the template
        # 7-bit clean on the wire: the server needs no 8BITMIME or SMTPUTF8
        assert msg.as_bytes().isascii()


def test_email_outage_is_retried_with_backoff_and_does_not_block_the_inbox(
    engine: Engine, svc: Casework, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    relay_workflow(svc, channels=("inbox", "email"))
    add_checkers(svc, 2)
    submit_case(svc)
    relay = make_relay(engine, svc, clock, smtp_config(smtp_server))

    smtp_server.stop()
    assert relay.run_once().to_json() == {"sent": 2, "failed": 2, "dead": 0, "skipped": 0}
    assert len(inbox(engine, "chk0")) == len(inbox(engine, "chk1")) == 1  # the inbox went out regardless
    for row in rows(engine, "email"):
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.last_error.startswith(f"cannot reach SMTP server 127.0.0.1:{smtp_server.port}: ")
        assert 15 <= (row.next_attempt_at - clock.now()).total_seconds() <= 30
    assert relay.run_once().total == 0  # not due yet

    smtp_server.start()
    clock.advance(seconds=30)
    assert relay.run_once().to_json() == {"sent": 2, "failed": 0, "dead": 0, "skipped": 0}
    assert len(smtp_server.messages) == 2
    assert relay.run_once().total == 0
    assert len(smtp_server.messages) == 2
    assert {(r.status, r.attempts) for r in rows(engine, "email")} == {("sent", 2)}


def test_email_goes_dead_after_max_attempts_and_retry_revives_it(
    engine: Engine, svc: Casework, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    relay_workflow(svc, channels=("email",))
    add_checkers(svc, 1)
    submit_case(svc)
    relay = make_relay(engine, svc, clock, smtp_config(smtp_server))
    smtp_server.stop()

    delays = []
    for _ in range(RELAY.max_attempts):
        relay.run_once()
        (row,) = rows(engine, "email")
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.advance(hours=2)
    (row,) = rows(engine, "email")
    assert (row.status, row.attempts) == ("dead", 3)
    assert "ConnectionRefusedError" in row.last_error
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60  # doubling, with jitter
    assert relay.run_once().total == 0

    smtp_server.start()
    revived = retry(engine, row.id, clock)
    assert (revived.status, revived.attempts) == ("pending", 0)
    assert relay.run_once().sent == 1
    assert len(smtp_server.messages) == 1


def test_refused_recipient_is_permanent(
    engine: Engine, svc: Casework, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    relay_workflow(svc, channels=("email",))
    add_checkers(svc, 2)
    submit_case(svc)
    smtp_server.refuse["chk1@zzgh.example"] = "550 5.1.1 mailbox unavailable"

    report = make_relay(engine, svc, clock, smtp_config(smtp_server)).run_once()

    assert report.to_json() == {"sent": 1, "failed": 0, "dead": 1, "skipped": 0}
    status = {r.recipient: (r.status, r.last_error) for r in rows(engine, "email")}
    assert status["chk0@zzgh.example"] == ("sent", None)
    assert status["chk1@zzgh.example"][0] == "dead"
    assert "refused the recipient: 550 5.1.1 mailbox unavailable" in status["chk1@zzgh.example"][1]


def test_temporary_refusal_is_retried(
    engine: Engine, svc: Casework, clock: FixedClock, smtp_server: SmtpServer
) -> None:
    relay_workflow(svc, channels=("email",))
    add_checkers(svc, 1)
    submit_case(svc)
    smtp_server.refuse["chk0@zzgh.example"] = "451 4.7.1 greylisted, try again later"
    relay = make_relay(engine, svc, clock, smtp_config(smtp_server))

    assert relay.run_once().failed == 1
    smtp_server.refuse.clear()
    clock.advance(minutes=1)
    assert relay.run_once().sent == 1
    assert len(smtp_server.messages) == 1


def test_email_resent_after_a_crash_keeps_its_message_id(
    engine: Engine, svc: Casework, clock: FixedClock, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay_workflow(svc, channels=("email",))
    add_checkers(svc, 1)
    submit_case(svc)
    original = Relay._mark_sent
    crashed: list[bool] = []

    def mark_or_die(self: Relay, conn: Any, claim: Any) -> bool:
        if not crashed:
            crashed.append(True)
            raise Crash  # sent, but the process dies before recording it
        return original(self, conn, claim)

    monkeypatch.setattr(Relay, "_mark_sent", mark_or_die)
    with pytest.raises(Crash):
        make_relay(engine, svc, clock, smtp_config(smtp_server)).run_once()
    clock.advance(seconds=121)
    assert make_relay(engine, svc, clock, smtp_config(smtp_server)).run_once().sent == 1

    # at least once: sent twice, recognisably the same message
    first, second = smtp_server.messages
    assert first["Message-ID"] == second["Message-ID"]
    assert first.as_bytes() == second.as_bytes()


def test_unconfigured_email_goes_dead_saying_what_to_set(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc, channels=("inbox", "email"))
    add_checkers(svc, 1)
    submit_case(svc)

    report = make_relay(engine, svc, clock, NotificationConfig()).run_once()

    assert report.to_json() == {"sent": 1, "failed": 0, "dead": 1, "skipped": 0}
    (row,) = rows(engine, "email")
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == "email is not configured: set CASEWORK_SMTP_HOST or [smtp] host in casework.toml"


# ----------------------------------------------------------------- webhook


def test_webhook_posts_signed_json(
    engine: Engine, svc: Casework, clock: FixedClock, webhook_server: WebhookServer
) -> None:
    relay_workflow(svc, channels=("webhook",))
    add_checkers(svc, 2)
    ref = submit_case(svc)

    assert make_relay(engine, svc, clock, webhook_config(webhook_server)).run_once().sent == 1  # one per rule

    (request,) = webhook_server.requests
    (row,) = rows(engine, "webhook")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert request.path == "/hooks/casework"
    assert headers["content-type"] == "application/json"
    assert headers["x-casework-key"] == row.key
    timestamp, signature = headers["x-casework-timestamp"], headers["x-casework-signature"]
    assert abs(int(timestamp) - time.time()) < 60
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, timestamp, request.body, signature, tolerance=300)
    assert not verify_signature("wrong secret", timestamp, request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body.replace(b"submit", b"reject"), signature)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), request.body, signature)
    assert not verify_signature(SECRET, timestamp, request.body, signature, tolerance=300, now=time.time() + 3600)

    body = json.loads(request.body)
    assert set(body) == {"key", "kind", "case_ref", "subject", "text", "event", "case"}
    assert (body["key"], body["kind"], body["case_ref"]) == (row.key, "message", ref)
    assert body["subject"] == f"待审核：{ref}（{mask_name('陈志强')}）"
    assert body["event"]["trigger"] == "submit" and body["event"]["to_state"] == "review"
    assert body["case"]["applicant_name"] == mask_name("陈志强")
    assert "陈志强" not in request.body.decode("utf-8")


def test_webhook_5xx_and_429_are_retried_and_4xx_is_permanent(
    engine: Engine, svc: Casework, clock: FixedClock, webhook_server: WebhookServer
) -> None:
    relay_workflow(svc, channels=("webhook",), rules=2)
    add_checkers(svc, 1)
    submit_case(svc)
    relay = make_relay(engine, svc, clock, webhook_config(webhook_server))
    first, second = (r.id for r in rows(engine, "webhook"))

    webhook_server.statuses[:] = [500, 400]  # the rows go out in id order
    assert relay.run_once().to_json() == {"sent": 0, "failed": 1, "dead": 1, "skipped": 0}
    status = {r.id: (r.status, r.last_error) for r in rows(engine, "webhook")}
    assert status[first] == ("failed", "webhook answered 500 Internal Server Error")
    assert status[second] == ("dead", "webhook answered 400 Bad Request")

    webhook_server.statuses[:] = [429]
    clock.advance(minutes=1)
    assert relay.run_once().failed == 1
    clock.advance(minutes=2)
    assert relay.run_once().sent == 1
    keys = [r.headers["X-Casework-Key"] for r in webhook_server.requests]
    assert len(keys) == 4 and keys[0] == keys[2] == keys[3] != keys[1]  # the same key on every re-send


def test_webhook_unreachable_or_slow_is_retried(
    engine: Engine, svc: Casework, clock: FixedClock, webhook_server: WebhookServer
) -> None:
    relay_workflow(svc, channels=("webhook",))
    add_checkers(svc, 1)
    submit_case(svc)
    closed = WebhookConfig(url="http://127.0.0.1:9/nothing-listens", secret=SECRET, timeout=2)
    config = NotificationConfig(webhook=closed, relay=RELAY)

    assert make_relay(engine, svc, clock, config).run_once().failed == 1
    (row,) = rows(engine, "webhook")
    assert row.last_error.startswith("cannot reach webhook: ")

    webhook_server.statuses[:] = [SLOW]  # the server sits on the request past the timeout
    clock.advance(minutes=1)
    assert make_relay(engine, svc, clock, webhook_config(webhook_server, timeout=0.3)).run_once().failed == 1
    (row,) = rows(engine, "webhook")
    assert "timed out" in row.last_error


def test_unconfigured_webhook_goes_dead_saying_what_to_set(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc, channels=("webhook",))
    add_checkers(svc, 1)
    submit_case(svc)
    config = NotificationConfig(webhook=WebhookConfig(url="http://127.0.0.1:9/x"), relay=RELAY)

    assert make_relay(engine, svc, clock, config).run_once().dead == 1
    (row,) = rows(engine, "webhook")
    assert row.last_error == (
        "webhook is not configured: set CASEWORK_WEBHOOK_SECRET or [webhook] secret in casework.toml"
    )


# ----------------------------------------------------------------- console


def test_console_prints_to_its_stream(engine: Engine, svc: Casework, clock: FixedClock) -> None:
    relay_workflow(svc, channels=("console",))
    add_checkers(svc, 1)
    ref = submit_case(svc)
    stream = io.StringIO()
    relay = Relay(engine, svc, {"console": ConsoleChannel(stream)}, NotificationConfig(), clock=clock)

    assert relay.run_once().sent == 1
    assert stream.getvalue().startswith(
        f"[console] to chk0: 待审核：{ref}（{mask_name('陈志强')}）\n审核员0号，您好：\n通知测试 {ref} 已提交申请"
    )
