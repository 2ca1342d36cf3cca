"""Fixtures for the notifications tests: a real SMTP server, a real HTTP server, a small workflow.

The SMTP server is ``aiosmtpd`` on a free local port; it can be stopped and
started again on the same port to simulate an outage. The HTTP server is
``http.server`` in a thread; it records every request and answers with the
status codes it is told to.
"""

from __future__ import annotations

import email
import email.policy
import http.server
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from engine import Casework, WorkflowDef, load_definition

# ----------------------------------------------------------------- a workflow

RELAY_WORKFLOW = "relay_test"

_YAML = """\
workflow: relay_test
version: 1
title: 通知测试
ref_prefix: RT
roles:
  intake: 经办人
  checker: 审核人
fields:
  applicant_name: {{type: text, label: 申请人姓名, required: true, pii: name, max: 40}}
  county: {{type: choice, label: 所属县区, scope: true, choices: [芗城区, 龙文区]}}
states:
  draft: {{label: 申请, initial: true}}
  review: {{label: 审核}}
  done: {{label: 完成, final: true}}
transitions:
  submit: {{label: 提交申请, from: draft, to: review, by: intake}}
  finish: {{label: 办结, from: review, to: done, by: checker}}
notify:
{rules}
"""

TEMPLATES = {
    "review_waiting.subject": "待审核：{{ case.ref }}（{{ case.applicant_name }}）",
    "review_waiting.txt": (
        "{{ recipient.name }}，您好：\n{{ workflow.title }} {{ case.ref }} 已{{ event.trigger_label }}，请审核。\n"
    ),
    "review_waiting.html": (
        "<p>{{ recipient.name }}，您好：</p><p>{{ workflow.title }} <b>{{ case.ref }}</b> 请审核。</p>"
    ),
}


def relay_workflow(
    svc: Casework,
    channels: tuple[str, ...] = ("inbox",),
    rules: int = 1,
    *,
    templates: Mapping[str, str] | None = None,
) -> WorkflowDef:
    """Load the test workflow: ``rules`` identical rules telling every checker on entering review.

    Args:
        channels: the rules' channels.
        rules: how many rules (each gives one row per checker and channel).
        templates: template sources replacing the standard ones.
    """
    line = f"  - {{on: enter review, to: checker, template: review_waiting, channels: [{', '.join(channels)}]}}"
    text = _YAML.format(rules="\n".join([line] * rules))
    sources = {**TEMPLATES, **(templates or {})}
    definition = load_definition(text, "t.yaml", templates=sources)
    svc.load_workflow(definition)
    if "zhou" not in {u.username for u in svc.users()}:
        svc.add_user("zhou", "周敏", ["intake"], ["*"])
    return definition


def add_checkers(svc: Casework, count: int, *, with_email: bool = True) -> list[str]:
    """Add checkers ``chk0``... covering both counties; return their usernames."""
    names = []
    for i in range(count):
        username = f"chk{i}"
        address = f"{username}@zzgh.example" if with_email else None
        svc.add_user(username, f"审核员{i}号", ["checker"], ["芗城区", "龙文区"], email=address)
        names.append(username)
    return names


def submit_case(svc: Casework, name: str = "陈志强", county: str = "芗城区") -> str:
    """Open a case and submit it (which queues the notifications); return its ref."""
    ref = svc.create_case(RELAY_WORKFLOW, "zhou", {"applicant_name": name, "county": county}).ref
    svc.fire(ref, "submit", "zhou")
    return ref


# ------------------------------------------------------------------ SMTP server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """An aiosmtpd server that records what it receives and refuses addresses in :attr:`refuse`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: dict[str, str] = {}  # address → SMTP reply, e.g. "550 5.1.1 no such user"
        self._controller: Controller | None = None

    def start(self) -> None:
        controller = Controller(self, hostname="127.0.0.1", port=self.port, server_hostname="localhost")
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


# ------------------------------------------------------------------ HTTP server


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes


SLOW = -1  # a "status" that makes the server wait a second before answering 200


@dataclass
class WebhookServer:
    """Records POSTs; answers with the statuses in :attr:`statuses` (in turn; or :data:`SLOW`), then 200."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def webhook_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookServer]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the request must reach 127.0.0.1 directly
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.requests.append(Recorded(self.path, dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            if status == SLOW:
                time.sleep(1)  # past the client's timeout; it has gone when we answer
                status = 200
            answer = b'{"ok": true}' if status < 300 else b'{"error": "no"}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = WebhookServer(f"http://127.0.0.1:{server.server_address[1]}/hooks/casework")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="webhook-server", daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)
