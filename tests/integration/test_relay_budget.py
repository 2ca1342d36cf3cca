"""The relay under the evaluation budget, on real databases: a costly template makes its row dead, once.

Before the budget, a message template with three nested loops over
``'x' * 10000`` hung ``outbox relay``; when its lease ran out the row was
claimed again, and hung the next relay, forever. Now the rendering stops at
the CPU budget (set to 0.3 s here to keep the suite fast) and the row is dead
with the reason after its first attempt. The relay runs in a daemon thread
joined with a timeout, so a regression fails the test instead of hanging it.

Also here: publishing a 公示名单 whose template is too costly is refused
(and publishes nothing), and a notice of a workflow that declares no ``pii``
at all shows the ID number, name and phone masked.
"""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, select

from db import OutboxMessage
from engine import Casework, Code, FixedClock, TemplateRenderError, load_definition
from notifications import NotificationConfig, Relay, RelayConfig, RelayReport, default_channels, inbox
from notifications.notices import publish_list
from tests.integration.conftest import add_checkers, relay_workflow, submit_case

_outbox = OutboxMessage.__table__

CONFIG = NotificationConfig(relay=RelayConfig(max_attempts=3, base_delay=30, max_delay=3600, lease=120, batch=100))
NESTED_LOOPS = (
    "{% for a in 'x'*10000 %}{% for b in 'x'*10000 %}{% for c in 'x'*10000 %}{% endfor %}{% endfor %}{% endfor %}"
)
TOO_COSTLY = "is too costly to render: it ran for more than 0.3 s of CPU time, the limit (CASEWORK_EVAL_TIME_LIMIT)"
FULL_ID = "350602199001011235"


@pytest.fixture(autouse=True)
def _short_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEWORK_EVAL_TIME_LIMIT", "0.3")


def make_relay(engine: Engine, svc: Casework, clock: FixedClock, **kw: Any) -> Relay:
    return Relay(engine, svc, default_channels(CONFIG), CONFIG, clock=clock, rng=random.Random(7), **kw)


def run_bounded(relay: Relay, seconds: float = 60) -> RelayReport:
    """One relay pass in a daemon thread; fail if it does not finish within ``seconds``."""
    reports: list[RelayReport] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            reports.append(relay.run_once())
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the relay hung: one pass took more than {seconds} s")
    if errors:
        raise errors[0]
    return reports[0]


def outbox_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(_outbox).order_by(_outbox.c.id)).all())


def test_a_message_template_with_nested_loops_goes_dead_with_the_reason_and_does_not_come_back(
    engine: Engine, svc: Casework, clock: FixedClock
) -> None:
    relay_workflow(svc, templates={"review_waiting.txt": "您好\n" + NESTED_LOOPS})
    add_checkers(svc, 2, with_email=False)
    submit_case(svc)
    relay = make_relay(engine, svc, clock)

    report = run_bounded(relay)

    assert report.to_json() == {"sent": 0, "failed": 0, "dead": 2, "skipped": 0}
    rows = outbox_rows(engine)
    assert [(r.status, r.attempts, r.lease_until) for r in rows] == [("dead", 1, None)] * 2
    for row in rows:
        assert row.last_error.startswith(f"review_waiting.txt {TOO_COSTLY}"), row.last_error
    # long after any lease or backoff, nothing is claimed again
    clock.advance(days=1)
    assert run_bounded(relay).total == 0
    assert [r.status for r in outbox_rows(engine)] == ["dead", "dead"]


def test_a_cheap_message_beside_a_costly_one_is_still_delivered(
    engine: Engine, svc: Casework, clock: FixedClock
) -> None:
    relay_workflow(
        svc,
        templates={"review_waiting.txt": "{% if case.applicant_name == '陈*强' %}" + NESTED_LOOPS + "{% endif %}ok"},
    )
    add_checkers(svc, 1, with_email=False)
    submit_case(svc, name="陈志强")  # its message loops
    submit_case(svc, name="林晓")  # its message does not

    report = run_bounded(make_relay(engine, svc, clock))

    assert (report.sent, report.dead) == (1, 1)
    (message,) = inbox(engine, "chk0")
    assert message.body == "ok"


NOTICE_YAML = """\
workflow: bare_notice
version: 1
title: 公示测试
ref_prefix: BN
roles:
  intake: 经办人
  checker: 审核人
fields:
  applicant_name: {type: text, label: 申请人姓名, required: true}
  id_number: {type: cn_id, label: 公民身份号码}
  phone: {type: text, label: 联系电话}
  county: {type: choice, label: 所属县区, scope: true, choices: [芗城区, 龙文区]}
states:
  draft: {label: 申请, initial: true}
  publicise: {label: 公示}
  done: {label: 完成, final: true}
transitions:
  submit: {label: 提交申请, from: draft, to: publicise, by: intake}
  finish: {label: 办结, from: publicise, to: done, by: [checker, system]}
publicity:
  state: publicise
  list_template: names
  issuer: 漳州市总工会
  contact: 电话 0596-2023333
"""


def load_notice_workflow(svc: Casework, page: str) -> None:
    svc.load_workflow(load_definition(NOTICE_YAML, "bare.yaml", {"names.html": page}))
    svc.add_user("zhou", "周敏", ["intake"], ["*"])
    data = {"applicant_name": "陈志强", "id_number": FULL_ID, "phone": "13812345678", "county": "芗城区"}
    ref = svc.create_case("bare_notice", "zhou", data).ref
    svc.fire(ref, "submit", "zhou")


def test_a_costly_notice_template_is_refused_when_publishing_and_publishes_nothing(svc: Casework) -> None:
    load_notice_workflow(svc, "<title>公示</title>" + NESTED_LOOPS)
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            publish_list(svc, "bare_notice", "芗城区")
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "publishing the notice hung"
    (error,) = errors
    assert isinstance(error, TemplateRenderError)
    assert error.code is Code.TEMPLATE_TOO_COSTLY
    assert str(error).startswith(f"names.html {TOO_COSTLY}")
    assert svc.notices("bare_notice") == []


def test_a_notice_of_a_workflow_declaring_no_pii_shows_the_id_number_name_and_phone_masked(svc: Casework) -> None:
    load_notice_workflow(
        svc,
        "<title>公示</title>{% for c in cases %}"
        "<p>{{ c.applicant_name }} {{ c.id_number }} {{ c.phone }}</p>{% endfor %}",
    )

    notice = publish_list(svc, "bare_notice", "芗城区")

    assert notice is not None
    assert "<p>陈*强 350602********1235 138****5678</p>" in notice.html
    assert FULL_ID not in notice.html and "陈志强" not in notice.html and "13812345678" not in notice.html
