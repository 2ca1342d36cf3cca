"""End-to-end tests of telling people: ``outbox``, ``inbox``, ``notice`` and ``objection``.

Like ``test_cli.py``, every command runs as a user types it (in this process),
on SQLite and PostgreSQL (``db_url``), held to the same rules: exact exit
codes, a refusal is one ``error: ...`` line on stderr with nothing on stdout,
no traceback ever, and a refused command changes nothing. Scenes (cases
parked in some state) are set, and "nothing changed" is checked, through the
engine API, so the commands run are what each test is about.

The email scenario talks to a real SMTP server (``aiosmtpd`` on a free local
port, stopped and started again to simulate an outage); the command finds it
through ``CASEWORK_SMTP_*`` environment variables, as an operator would set
them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from engine import Casework
from engine.calendar import WorkingCalendar
from notifications import inbox, list_outbox
from notifications.notices import publish_list
from tests.e2e.conftest import Seeded
from tests.e2e.runner import casework as run_command
from tests.e2e.test_cli import (
    ID_1,
    ID_2,
    ID_3,
    WF,
    Result,
    a_month_back,
    after_period,
    assert_iso_shanghai,
    full_household,
    ok,
    ok_json,
    refused,
    usage_error,
)
from tests.integration.conftest import SmtpServer

ID_RE = re.compile(r"\d{17}[\dX]")  # a full resident ID number
NOTICE_RE = re.compile(r"ZZGS-\d{4}-\d{6}")
OUTBOX_KEYS = {
    "id", "key", "kind", "channel", "recipient", "template", "status", "attempts",
    "next_attempt_at", "last_error", "created_at", "sent_at", "case_ref",
}  # fmt: skip
INBOX_KEYS = {"id", "case_ref", "subject", "body", "created_at", "read_at"}
OBJECTION_KEYS = {
    "id", "ref", "channel", "text", "received_by", "received_at", "status", "resolved_by", "resolved_at", "comment",
}  # fmt: skip
HELD = "公示期内有未处理的异议"  # the explain text of end_publicity's guard


# --------------------------------------------------------------------- helpers


def cw(db_url: str, *args: str, env: Mapping[str, str] | None = None) -> Result:
    """``casework --db DB_URL ARGS...`` in this process, with ``env`` over an environment without our settings."""
    return run_command(db_url, *args, env=env)


class WithEnv(NamedTuple):
    """A command for :func:`cw_all` that runs with its own environment settings."""

    args: Sequence[str]
    env: Mapping[str, str]


def cw_all(db_url: str, *commands: Sequence[str] | WithEnv, env: Mapping[str, str] | None = None) -> list[Result]:
    """Run commands (none may depend on another) one after the other; results in the order given."""
    return [cw(db_url, *c.args, env=c.env) if isinstance(c, WithEnv) else cw(db_url, *c, env=env) for c in commands]


def cn_id(first17: str) -> str:
    """A resident ID number with its GB 11643 check digit."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def publicised(svc: Casework, clerk: str = "lin", **data: Any) -> str:
    """A complete case submitted by ``clerk`` and passed by wu: in publicity. Returns its ref."""
    ref = svc.create_case(WF, clerk, full_household(**data)).ref
    svc.fire(ref, "submit", clerk)
    svc.fire(ref, "pass_review", "wu")
    return ref


def outbox_rows(svc: Casework) -> list[dict[str, Any]]:
    return [r.to_json() for r in list_outbox(svc.engine)]


def state_of(svc: Casework, refs: Sequence[str]) -> list[Any]:
    """Everything a refusal must not touch: the cases, their trails and objections, the outbox."""
    return [
        [c.to_json() for c in svc.list_cases()],
        {ref: [e.to_json() for e in svc.history(ref)] for ref in refs},
        {ref: [o.to_json() for o in svc.objections(ref)] for ref in refs},
        outbox_rows(svc),
    ]


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def delivered(out: str, sent: int, failed: int = 0, dead: int = 0) -> None:
    assert out.strip() == f"delivered {sent}, will retry {failed}, dead {dead}", out


# ---------------------------------------------------- 1. the happy path, in-app


def test_submit_relay_inbox_and_the_published_list(seeded: Seeded, tmp_path: Path) -> None:
    """Submitting tells the reviewers (queued, relayed to their inboxes); passing the review renders no
    notice — the relay renders none — and the public notice is the county's published 公示名单."""
    url, svc = seeded.url, seeded.svc
    ref = svc.create_case(WF, "lin", full_household(applicant_name="陈志强", id_number=ID_1)).ref

    assert ok(cw(url, "case", "fire", ref, "submit", "--as", "lin")).strip() == f"{ref}: submit → review (审核)"
    svc.fire(ref, "pass_review", "wu")  # into publicity, awaiting its county's list

    # queued, not sent: one in-app message per reviewer of 芗城区 (wu, ye), and no per-case notice
    pending = ok_json(cw(url, "outbox", "list", "--json"))
    assert isinstance(pending, list)
    for row in pending:
        assert set(row) == OUTBOX_KEYS
        assert row["status"] == "pending" and row["attempts"] == 0
        assert row["sent_at"] is None and row["last_error"] is None
        assert row["case_ref"] == ref
        assert_iso_shanghai(row["created_at"])
        assert_iso_shanghai(row["next_attempt_at"])
    assert len({row["key"] for row in pending}) == len(pending)
    assert [row["id"] for row in pending] == sorted((row["id"] for row in pending), reverse=True)  # newest first
    assert sorted((r["kind"], r["channel"], r["recipient"], r["template"]) for r in pending) == [
        ("message", "inbox", "wu", "review_waiting"),
        ("message", "inbox", "ye", "review_waiting"),
    ]

    delivered(ok(cw(url, "outbox", "relay", "--once")), 2)
    assert ok_json(cw(url, "notice", "list", "--json")) == []  # the relay published nothing

    published = ok_json(cw(url, "notice", "publish", WF, "--scope", "芗城区", "--json"))
    wu_inbox, notices = cw_all(url, ["inbox", "wu", "--json"], ["notice", "list", "--json"])
    (message,) = ok_json(wu_inbox)
    assert set(message) == INBOX_KEYS
    assert message["case_ref"] == ref and message["read_at"] is None
    assert message["subject"] == f"待审核：{ref}（芗城区，陈*强）"
    assert "吴明辉，您好" in message["body"] and "陈*强" in message["body"]
    assert_iso_shanghai(message["created_at"])
    assert "陈志强" not in wu_inbox.out and not ID_RE.search(wu_inbox.out)  # personal data only ever masked
    (ye_message,) = [m.to_json() for m in inbox(svc.engine, "ye")]
    assert ye_message["subject"] == message["subject"] and ye_message["id"] != message["id"]

    sent_rows = outbox_rows(svc)
    assert sorted(r["id"] for r in sent_rows) == sorted(r["id"] for r in pending)
    for row in sent_rows:
        assert row["status"] == "sent" and row["attempts"] == 1 and row["last_error"] is None
        assert_iso_shanghai(row["sent_at"])

    (notice,) = ok_json(notices)
    assert notice == published
    number = notice["number"]
    assert NOTICE_RE.fullmatch(number), number
    assert notice["kind"] == "list" and notice["workflow"] == WF and notice["scope"] == "芗城区"
    assert notice["cases"] == [ref]
    assert number in notice["title"] and "公示" in notice["title"]
    assert re.fullmatch(r"[0-9a-f]{64}", notice["sha256"])
    (event,) = [e for e in svc.history(ref) if e.action == "publicised"]  # its publicity started with the list
    assert event.actor == "system" and event.changes["notice"] == [None, number]

    assert ok(cw(url, "inbox", "read", "wu", str(message["id"]))).strip() == f"message {message['id']} marked read"

    pdf = tmp_path / "notice.pdf"
    unread, html, written, no_file, not_yours = cw_all(
        url,
        ["inbox", "wu", "--unread", "--json"],
        ["notice", "show", number],
        ["notice", "show", number, "--format", "pdf", "-o", str(pdf)],
        ["notice", "show", number, "--format", "pdf"],
        ["inbox", "read", "ye", str(message["id"])],  # wu's message, not ye's
    )
    assert ok_json(unread) == []
    (read,) = [m.to_json() for m in inbox(svc.engine, "wu")]
    assert {**read, "read_at": None} == message
    assert_iso_shanghai(read["read_at"])
    assert [m.to_json() for m in inbox(svc.engine, "ye", unread_only=True)] == [ye_message]  # ye's stays unread

    page = ok(html)
    assert page.startswith("<!DOCTYPE html>")
    assert hashlib.sha256(page.removesuffix("\n").encode("utf-8")).hexdigest() == notice["sha256"]
    assert "陈*强" in page and "350602********0015" in page and "芗城区" in page
    assert "陈志强" not in page and ID_1 not in page

    assert re.fullmatch(rf"wrote {re.escape(str(pdf))} \([\d,]+ bytes\)\n", ok(written)), written.out
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    assert "陈*强" in text and number in text and "陈志强" not in text

    refused(no_file, "a PDF is binary", "-o FILE.pdf", rc=2)
    refused(not_yours, f"no message {message['id']} in ye's inbox")
    assert {r["status"] for r in outbox_rows(svc)} == {"sent"}
    assert [r["kind"] for r in outbox_rows(svc)] == ["message", "message"]  # publishing queues no notice
    assert len(svc.notices()) == 1  # published once


# ------------------------------------------------------- 2. email, outages, retry


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def test_email_via_real_smtp_with_outage_backoff_and_retry(seeded: Seeded, smtp_server: SmtpServer) -> None:
    url, svc = seeded.url, seeded.svc
    env = {
        "CASEWORK_SMTP_HOST": "127.0.0.1",
        "CASEWORK_SMTP_PORT": str(smtp_server.port),
        "CASEWORK_SMTP_SENDER": "漳州市总工会 <noreply@zzgh.example>",
        "CASEWORK_RELAY_BASE_DELAY": "0.001",  # must be > 0; a failed row is due again at once
    }
    address = "mei@zzgh.example"
    r = cw(url, "user", "add", "mei", "--name", "郑美玲", "--role", "reviewer", "--scope", "芗城区", "--email", address)
    assert ok(r).strip() == "added mei (郑美玲): roles reviewer; scopes 芗城区"
    assert next(u for u in svc.users() if u.username == "mei").email == address

    def submit(name: str, id_number: str) -> str:
        ref = svc.create_case(WF, "lin", full_household(applicant_name=name, id_number=id_number)).ref
        svc.fire(ref, "submit", "lin")
        return ref

    def email_row(ref: str) -> dict[str, Any]:
        (row,) = [r for r in outbox_rows(svc) if r["case_ref"] == ref and r["channel"] == "email"]
        return row

    # --- delivered: inbox for wu, ye, mei; one email for mei, with a Chinese subject
    first = submit("陈志强", ID_1)
    delivered(ok(cw(url, "outbox", "relay", "--once", env=env)), 4)
    (mail,) = smtp_server.messages
    assert smtp_server.envelopes == [("noreply@zzgh.example", [address])]
    assert mail["Subject"] == f"待审核：{first}（芗城区，陈*强）"
    assert mail["To"] == address
    assert mail["From"].addresses[0].display_name == "漳州市总工会"
    body = mail.get_body(("plain",))
    assert body is not None and "郑美玲，您好" in body.get_content() and "陈*强" in body.get_content()
    raw = mail.as_string()
    assert "陈志强" not in raw and ID_1 not in raw

    # --- the server is down: the email fails and will be retried; the in-app messages still go
    smtp_server.stop()
    second = submit("王秀英", ID_2)
    delivered(ok(cw(url, "outbox", "relay", "--once", env=env)), 3, failed=1)
    (failed,) = ok_json(cw(url, "outbox", "list", "--status", "failed", "--json"))
    assert failed["case_ref"] == second and failed["recipient"] == address and failed["attempts"] == 1
    assert failed["last_error"].startswith(f"cannot reach SMTP server 127.0.0.1:{smtp_server.port}: "), failed

    # --- back up: the retry is due (tiny backoff), delivered exactly once
    smtp_server.start()
    delivered(ok(cw(url, "outbox", "relay", "--once", env=env)), 1)
    assert [m["Subject"] for m in smtp_server.messages] == [mail["Subject"], f"待审核：{second}（芗城区，王*英）"]
    sent_id = str(failed["id"])
    assert email_row(second)["status"] == "sent"

    # --- down again, and one attempt allowed: dead at once, with its error
    smtp_server.stop()
    third = submit("欧阳志华", ID_3)
    delivered(ok(cw(url, "outbox", "relay", "--once", env={**env, "CASEWORK_RELAY_MAX_ATTEMPTS": "1"})), 3, dead=1)
    listed, retry_sent = cw_all(url, ["outbox", "list", "--status", "dead", "--json"], ["outbox", "retry", sent_id])
    refused(retry_sent, f"outbox message {sent_id} is sent", "only failed or dead messages can be retried")
    (dead,) = ok_json(listed)
    assert dead["case_ref"] == third and dead["channel"] == "email" and dead["attempts"] == 1
    assert dead["last_error"].startswith(f"cannot reach SMTP server 127.0.0.1:{smtp_server.port}: "), dead

    # --- put back by hand, then delivered
    smtp_server.start()
    r = cw(url, "outbox", "retry", str(dead["id"]))
    assert ok(r).strip() == f"outbox {dead['id']} (email to {address}) is pending again"
    row = email_row(third)
    assert row["status"] == "pending" and row["attempts"] == 0
    delivered(ok(cw(url, "outbox", "relay", "--once", env=env)), 1)
    assert [m["Subject"] for m in smtp_server.messages][-1] == f"待审核：{third}（芗城区，欧阳*华）"
    assert len(smtp_server.messages) == 3  # each email exactly once, outages and retries included
    assert len({m["Message-ID"] for m in smtp_server.messages}) == 3
    assert {r["status"] for r in outbox_rows(svc)} == {"sent"}


# ----------------------------------------------------------- 3. the 公示名单


def test_notice_publish_lists_a_county_once(seeded: Seeded, tmp_path: Path) -> None:
    url, svc = seeded.url, seeded.svc
    names = ["陈志强", "王秀英", "欧阳志华"]
    ids = [ID_1, ID_2, ID_3]
    refs = [publicised(svc, applicant_name=n, id_number=i) for n, i in zip(names, ids, strict=True)]
    # another county's case in publicity: not on 芗城区's list
    elsewhere = publicised(svc, "chen", applicant_name="李娜", id_number=cn_id("35060319880808002"), county="龙文区")
    out_dir = tmp_path / "notices"
    # dated tomorrow (a later date is allowed: the period starts then); 7 days, the day of publication not
    # counted, the last one moved on to the next working day if it is a rest day
    start = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() + dt.timedelta(days=1)
    end = start + dt.timedelta(days=7)
    calendar = WorkingCalendar.load()
    while not calendar.is_working_day(end):
        end += dt.timedelta(days=1)

    r = cw(url, "notice", "publish", WF, "--scope", "芗城区", "--date", str(start), "--out", str(out_dir))
    first, *wrote = ok(r).strip().splitlines()
    m = re.fullmatch(
        rf"published (ZZGS-{start.year}-\d{{6}}): 3 cases, publicity {start} to {end}, "
        rf"objections until the end of {end} \(sha256 ([0-9a-f]{{12}})\)",
        first,
    )
    assert m, first
    number, short_hash = m[1], m[2]
    html_file, pdf_file = out_dir / f"{number}.html", out_dir / f"{number}.pdf"
    assert wrote == [f"wrote {html_file}", f"wrote {pdf_file}"]

    again, nobody, listed, history = cw_all(
        url,
        ["notice", "publish", WF, "--scope", "芗城区", "--date", str(start)],
        ["notice", "publish", WF, "--scope", "龙海区"],
        ["notice", "list", "--workflow", WF, "--json"],
        ["case", "history", refs[0], "--json"],
    )
    assert ok(again).strip() == f"nothing to publish: no {WF} case of 芗城区 awaits publication"
    assert ok(nobody).strip() == f"nothing to publish: no {WF} case of 龙海区 awaits publication"

    (notice,) = ok_json(listed)  # the list is the only notice: no per-case notices
    assert notice["number"] == number and notice["kind"] == "list" and notice["scope"] == "芗城区"
    assert notice["cases"] == refs and elsewhere not in notice["cases"]
    assert (notice["period_start"], notice["period_end"]) == (str(start), str(end))
    assert notice["sha256"].startswith(short_hash)

    page = html_file.read_text(encoding="utf-8")
    assert hashlib.sha256(page.encode("utf-8")).hexdigest() == notice["sha256"]  # the exact stored text
    text = pdf_text(pdf_file.read_bytes())
    for shown in (page, text):
        assert number in shown and "芗城区" in shown
        for masked in ("陈*强", "王*英", "欧阳*华"):
            assert masked in shown
        for secret in (*names, "李娜", "李*"):
            assert secret not in shown
        assert not ID_RE.search(shown)

    trail = ok_json(history)
    assert not [e for e in trail if e["action"] == "notice_published"]
    linked = [e for e in trail if e["action"] == "publicised"]  # its publicity started with this list
    assert len(linked) == 1 and linked[0]["changes"]["notice"] == [None, number]
    assert linked[0]["changes"]["notice_sha256"] == [None, notice["sha256"]]
    assert linked[0]["changes"]["period"] == [None, [str(start), str(end)]]
    assert (linked[0]["actor"], linked[0]["from_state"], linked[0]["to_state"]) == ("system", "publicise", "publicise")
    # the case's deadline is the period's end; the other county's case still awaits its own list
    assert svc.get_case(refs[0]).deadline == dt.datetime.combine(
        end + dt.timedelta(days=1), dt.time(), ZoneInfo("Asia/Shanghai")
    )
    assert svc.get_case(elsewhere).deadline is None


# ------------------------------------------------------------- 4. objections


def test_objections_hold_publicity_until_resolved(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Objections come in during the period (a month back); once it is over, an open one still holds the end of
    publicity until it is resolved: dismissed, the case goes on; upheld, it goes back to review."""
    with a_month_back(db_url, monkeypatch) as (seeded, clock):
        url, svc = seeded.url, seeded.svc
        held = publicised(svc, applicant_name="陈志强", id_number=ID_1)
        upheld = publicised(svc, applicant_name="王秀英", id_number=ID_2)
        in_review = svc.create_case(WF, "lin", full_household(applicant_name="欧阳志华", id_number=ID_3)).ref
        svc.fire(in_review, "submit", "lin")
        refs = [held, upheld, in_review]
        listed = publish_list(svc, WF, "芗城区")  # their publicity starts: objections are taken during the period
        assert listed is not None and listed.cases == (held, upheld) and listed.period_end is not None

        r = cw(url, "objection", "add", held, "--as", "lin", "--text", "申请人家庭收入情况不实", "--channel", "来信")
        m = re.fullmatch(
            rf"{held}: objection #(\d+) recorded \(来信\); the end of publicity is held until it is resolved\n", ok(r)
        )
        assert m, r.out
        oid = int(m[1])
        other = svc.add_objection(upheld, "ye", "申请人有房产未申报", "电话").id

        # the period is over: an objection still open holds the end of publicity; none is taken any more
        clock.move_to(after_period(str(listed.period_end)))
        before = state_of(svc, refs)
        shown, *results = cw_all(
            url,
            ["case", "show", held, "--json"],
            ["case", "fire", held, "end_publicity", "--as", "wu"],
            ["objection", "add", held, "--as", "lin", "--text", "迟到的异议"],
            ["objection", "add", in_review, "--as", "lin", "--text", "不符合条件"],
            ["objection", "resolve", held, str(oid), "--as", "lin", "--outcome", "dismissed", "--comment", "经核实"],
            ["objection", "resolve", held, str(other), "--as", "wu", "--outcome", "dismissed", "--comment", "经核实"],
        )  # fmt: skip
        case = ok_json(shown)
        assert case["state"] == "publicise"
        (objection,) = case["objections"]
        assert set(objection) == OBJECTION_KEYS
        assert objection["id"] == oid and objection["ref"] == held and objection["status"] == "open"
        assert (objection["channel"], objection["received_by"]) == ("来信", "lin")
        assert objection["text"] == "申请人家庭收入情况不实"
        assert objection["resolved_by"] is None and objection["resolved_at"] is None and objection["comment"] is None
        assert_iso_shanghai(objection["received_at"])

        hold, late, not_in_publicity, clerk, unknown = results
        refused(hold, "end_publicity is held", HELD)
        refused(late, f"公示期至 {listed.period_end} 止", "objections are taken only until the period's last day ends")
        refused(not_in_publicity, f"case {in_review} is in review", "objections are taken only during publicity")
        refused(clerk, f"lin may not resolve objections on {held}", "needs role reviewer")
        # the other case's objection is no objection of this one
        refused(unknown, f"case {held} has no objection #{other}", f"casework case show {held}")
        assert state_of(svc, refs) == before

        # resolving an objection already taken stays possible after the period
        resolve = ["objection", "resolve"]
        dismissed, sent_back = cw_all(
            url,
            [*resolve, held, str(oid), "--as", "wu", "--outcome", "dismissed", "--comment", "经核实收入属实"],
            [*resolve, upheld, str(other), "--as", "wu", "--outcome", "upheld", "--comment", "核实有房产"],
        )
        assert ok(dismissed).strip() == f"{held}: objection #{oid} dismissed; the case is now in publicise"
        assert ok(sent_back).strip() == f"{upheld}: objection #{other} upheld; the case is now in review"

        (closed,) = [o.to_json() for o in svc.objections(held)]
        assert (closed["status"], closed["resolved_by"], closed["comment"]) == ("dismissed", "wu", "经核实收入属实")
        assert_iso_shanghai(closed["resolved_at"])
        assert svc.get_case(upheld).state == "review"
        assert [(o.status, o.resolved_by) for o in svc.objections(upheld)] == [("upheld", "wu")]

        before = state_of(svc, refs)
        r = cw(url, "objection", "resolve", held, str(oid), "--as", "wu", "--outcome", "upheld", "--comment", "再议")
        refused(r, f"objection #{oid} on case {held} is already dismissed")
        assert state_of(svc, refs) == before
        last = svc.history(upheld)[-1].to_json()
        assert (last["action"], last["trigger"], last["actor"], last["to_state"]) == (
            "fired", "uphold_objection", "wu", "review",
        )  # fmt: skip
        told = {r["recipient"] for r in outbox_rows(svc) if r["template"] == "objection_upheld"}
        assert told == {"lin", "ye"}  # the clerks of 芗城区

        assert ok(cw(url, "case", "fire", held, "end_publicity", "--as", "wu")).strip() == (
            f"{held}: end_publicity → approve (审批)"
        )
        trail = [(e.action, e.actor) for e in svc.history(held)]
        assert trail[-3:] == [("objection_added", "lin"), ("objection_dismissed", "wu"), ("fired", "wu")]


# --------------------------------------------------------- 5. more refusals


def test_unknown_users_messages_notices_settings_and_channels_are_refused(sqlite_seeded: Seeded) -> None:
    # nothing here depends on the backend: one is enough
    url = sqlite_seeded.url
    nobody, read_nobody, no_message, not_a_number, no_row, zero_delay, no_notice, bad_channel = cw_all(
        url,
        ["inbox", "nobody"],
        ["inbox", "read", "nobody", "1"],
        ["inbox", "read", "wu", "99999"],
        ["inbox", "read", "wu", "abc"],
        ["outbox", "retry", "99999"],
        WithEnv(["outbox", "relay", "--once"], {"CASEWORK_RELAY_BASE_DELAY": "0"}),  # a delay must be > 0
        ["notice", "show", "ZZGS-2026-999999"],
        ["objection", "add", "ZZ-2026-000001", "--as", "lin", "--text", "不符合条件", "--channel", "微信"],
    )
    refused(nobody, "no user 'nobody'", "casework user add")
    refused(read_nobody, "no user 'nobody'")
    refused(no_message, "no message 99999 in wu's inbox")
    refused(not_a_number, "usage: casework inbox read USER ID", rc=2)
    refused(no_row, "no outbox message 99999", "casework outbox list")
    refused(zero_delay, "CASEWORK_RELAY_BASE_DELAY", "greater than 0", "not '0'", rc=2)
    refused(no_notice, "no notice 'ZZGS-2026-999999'", "casework notice list")
    usage_error(bad_channel, "--channel", "'微信' is not one of '电话', '来信', '来访'")


# ------------------------------------------------------ product problems found by these tests


def test_inbox_read_of_an_unknown_message_names_the_right_command(sqlite_seeded: Seeded) -> None:
    line = refused(cw(sqlite_seeded.url, "inbox", "read", "wu", "99999"), "no message 99999 in wu's inbox")
    assert "'casework inbox wu'" in line and "--as" not in line


def test_resolving_a_resolved_objection_says_it_is_already_resolved(sqlite_seeded: Seeded) -> None:
    svc = sqlite_seeded.svc
    ref = publicised(svc, applicant_name="陈志强", id_number=ID_1)
    oid = svc.add_objection(ref, "lin", "收入不实", "电话").id
    svc.resolve_objection(ref, oid, "wu", "dismissed", "经核实")
    r = cw(sqlite_seeded.url, "objection", "resolve", ref, str(oid), "--as", "wu", "--outcome", "dismissed",
           "--comment", "再议")  # fmt: skip
    line = refused(r, f"objection #{oid}", "already dismissed")
    assert "someone else" not in line and "retry" not in line


def test_notice_publish_refuses_a_scope_that_does_not_exist(sqlite_seeded: Seeded) -> None:
    publicised(sqlite_seeded.svc, applicant_name="陈志强", id_number=ID_1)
    r = cw(sqlite_seeded.url, "notice", "publish", WF, "--scope", "芗城")
    refused(r, "芗城", "did you mean '芗城区'", rc=2)


def test_an_empty_objection_text_or_comment_names_the_option(sqlite_seeded: Seeded) -> None:
    svc = sqlite_seeded.svc
    ref = publicised(svc, applicant_name="陈志强", id_number=ID_1)
    oid = svc.add_objection(ref, "lin", "收入不实", "电话").id
    no_text, no_comment = cw_all(
        sqlite_seeded.url,
        ["objection", "add", ref, "--as", "lin", "--text", " "],
        ["objection", "resolve", ref, str(oid), "--as", "wu", "--outcome", "dismissed", "--comment", " "],
    )
    for r, option in ((no_text, "--text"), (no_comment, "--comment")):
        line = refused(r, option)
        assert "case data" not in line, line


def test_cn_id_gives_the_check_digit() -> None:
    assert [cn_id(number[:17]) for number in (ID_1, ID_2, ID_3)] == [ID_1, ID_2, ID_3]
