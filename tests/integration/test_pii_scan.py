"""Privacy by policy: nothing the public or a message can see carries raw personal data.

10,000 synthetic households go through the real engine into publicity; the
relay delivers every in-app message and email (to a real SMTP server) and
publishes a list notice (HTML and PDF)
per county. Then every notice, email and inbox message is scanned: no
18-character ID number, and no applicant's full name, anywhere.
"""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from casework.synthetic import ZHANGZHOU_COUNTIES, SyntheticPeople
from db import InboxMessage
from engine import Casework, RefusedError
from notifications import NotificationConfig, Relay, default_channels
from notifications.config import RelayConfig, SmtpConfig
from notifications.notices import notice_pdf, publish_list

pytestmark = pytest.mark.slow

HOUSEHOLDS = int(__import__("os").environ.get("CASEWORK_PII_HOUSEHOLDS", "10000"))
ID_PATTERN = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
COUNTIES = list(ZHANGZHOU_COUNTIES)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_raw_personal_data_in_notices_emails_inbox_or_logs(
    svc: Casework, smtp_server: Any, engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # casework's own loggers at every level: what an operator's log file would hold (SQLAlchemy's
    # statement log is off in production and would only slow this down)
    for name in ("engine", "notifications", "casework", "db"):
        caplog.set_level(logging.DEBUG, logger=name)
    # one clerk and one reviewer (with an email address) per county
    for i, county in enumerate(COUNTIES):
        svc.add_user(f"clerk{i}", f"经办人{i}", ["clerk"], [county])
        svc.add_user(f"rev{i}", f"审核人{i}", ["reviewer"], [county], email=f"rev{i}@zzgh.example")
    people = SyntheticPeople(2026)
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    started = time.perf_counter()
    for n in range(HOUSEHOLDS):
        data = people.household()
        county_index = n % len(COUNTIES)
        data["county"] = COUNTIES[county_index]
        data["materials"] = ["申请表", "身份证", "户口簿", "收入证明"]
        clerk = f"clerk{county_index}"
        ref = svc.create_case("poverty_archive", clerk, data).ref
        svc.fire(ref, "submit", clerk)
        svc.fire(ref, "pass_review", f"rev{county_index}")
        names[ref], ids[ref] = data["applicant_name"], data["id_number"]
    filed = time.perf_counter() - started

    config = NotificationConfig(
        smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port, sender="漳州市总工会 <noreply@zzgh.example>"),
        relay=RelayConfig(batch=500),
    )
    relay = Relay(engine, svc, default_channels(config), config)
    delivered = 0
    while True:
        report = relay.run_once()
        assert report.failed == 0 and report.dead == 0, report
        if not report.sent:
            break
        delivered += report.sent
    lists = [publish_list(svc, "poverty_archive", county) for county in COUNTIES]
    relayed = time.perf_counter() - started - filed
    # refusals are logged with their reasons: a household filed twice, a step by the wrong person
    for ref in list(names)[:200]:
        with pytest.raises(RefusedError):
            svc.create_case(
                "poverty_archive",
                "clerk0",
                {"county": COUNTIES[0], "id_number": ids[ref], "applicant_name": names[ref]},
            )
        with pytest.raises(RefusedError):
            svc.fire(ref, "grant", "clerk0")

    def scan(text: str, refs: list[str], where: str) -> None:
        found = ID_PATTERN.search(text)
        assert found is None, f"{where}: an ID number {found.group()[:6]}… is readable"
        for ref in refs:
            assert names[ref] not in text, f"{where}: the full name of {ref}'s applicant is readable"

    # notices: one list per county (HTML, and the PDF of one); there are no per-case notices
    notices = svc.notices()
    assert {n.kind for n in notices} == {"list"}
    for n in notices:
        scan(n.html, list(n.cases), f"notice {n.number}")
    assert all(lst is not None for lst in lists)
    assert sum(len(lst.cases) for lst in lists if lst) == HOUSEHOLDS
    biggest = max((lst for lst in lists if lst), key=lambda v: len(v.cases))
    pdf_text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(notice_pdf(biggest))).pages)
    scan(pdf_text, list(biggest.cases), f"PDF of {biggest.number}")

    # emails, as the SMTP server received them
    assert len(smtp_server.messages) == HOUSEHOLDS
    for message in smtp_server.messages:
        subject = str(message["Subject"])
        ref = re.search(r"ZZ-\d{4}-\d{6}", subject)
        assert ref is not None, subject
        body = "".join(part.get_content() for part in message.walk() if part.get_content_maintype() == "text")
        scan(subject + "\n" + body, [ref.group()], f"email {message['Message-ID']}")

    # in-app messages
    inbox = InboxMessage.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(inbox.c.case_ref, inbox.c.subject, inbox.c.body)).all()
    assert {r.case_ref for r in rows} == set(names)  # every case told someone (several reviewers may cover it)
    for case_ref, subject, body in rows:
        scan(subject + "\n" + body, [case_ref], f"inbox message for {case_ref}")

    # logs, as captured from every logger during all of the above (refusals included)
    assert any("refused" in r.getMessage() for r in caplog.records)
    scan(caplog.text, list(names), "the log")

    # the masked forms are what is shown
    some = next(iter(names))
    assert ids[some][:6] + "********" + ids[some][-4:] in next(n.html for n in notices if some in n.cases)
    print(
        f"\nfiled {HOUSEHOLDS} into publicity in {filed:.1f} s; relayed {delivered}, lists published: {relayed:.1f} s"
    )
