"""Fixtures for the web application's tests: a seeded database, an HTTP client, a live server, a browser.

* ``site`` — a fresh SQLite copy of a template (the bundled workflow, the usual
  users, each with the password :data:`PASSWORD`), the engine on it with a
  clock the test moves (:class:`~engine.FixedClock`), and the application.
  The passwords are hashed once per test session (Argon2 is slow on purpose).
* ``web`` — an in-process HTTP client of ``site`` (Starlette's TestClient):
  fast, for everything a browser is not needed for. ``web.login("lin")``
  logs in; ``web.form_token()`` reads the form token of the last page.
* ``live`` and ``browser`` — the same application served by uvicorn on a free
  port in this process, and Playwright's Chromium (the distribution's
  ``/usr/bin/chromium``, never a downloaded one), for the browser scenarios.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from db import make_engine
from engine import Casework, FixedClock, load_definition_file
from engine.logins import LoginPolicy
from tests.casedata import BAD_ID, GOOD_ID, case_data  # noqa: F401 - the web tests import them from here

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = ROOT / "workflows" / "poverty_archive.yaml"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: a Monday morning in Zhangzhou
START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)
#: every test user's password
PASSWORD = "correct-horse-7"
CHROMIUM = "/usr/bin/chromium"

# username, name, roles, scopes
WEB_USERS = [
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
    ("ye", "叶志远", ["clerk", "reviewer"], ["芗城区"]),
    ("su", "苏文斌", ["approver"], ["*"]),
    ("luo", "罗国平", ["supervisor"], ["*"]),
]

#: Argon2id at its lowest costs: the pages' tests log in hundreds of times (the real costs are the
#: engine's defaults, tested in tests/integration/test_logins.py)
LIGHT = LoginPolicy(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1)


def light_logins(svc: Casework) -> Casework:
    """``svc`` with logins hashed at :data:`LIGHT` costs."""
    svc.logins = svc.logins_with(LIGHT)  # type: ignore[misc]
    return svc


@pytest.fixture(scope="session")
def web_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the bundled workflow and WEB_USERS, each with PASSWORD."""
    path = tmp_path_factory.mktemp("web") / "web.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    svc = light_logins(Casework(engine, FixedClock(START)))
    svc.load_workflow(load_definition_file(BUNDLED))
    for username, name, roles, scopes in WEB_USERS:
        svc.add_user(username, name, roles, scopes)
        svc.logins.set_password(username, PASSWORD)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@dataclass
class Site:
    """A seeded database, the engine on it, its clock, and the web application."""

    url: str
    svc: Casework
    clock: FixedClock
    app: Any

    def open_case(self, actor: str = "lin", **overrides: Any) -> str:
        """Open a case as ``actor`` through the engine (setting a scene); its ref."""
        return self.svc.create_case("poverty_archive", actor, case_data(**overrides)).ref


@pytest.fixture
def site(web_template: Path, tmp_path: Path) -> Iterator[Site]:
    path = tmp_path / "web.db"
    shutil.copy(web_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    clock = FixedClock(START)
    svc = light_logins(Casework(engine, clock))
    from casework.web import create_app

    yield Site(url, svc, clock, create_app(svc))
    engine.dispose()


_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class WebClient:
    """An HTTP client of the application, in this process, that can log in."""

    def __init__(self, app: Any) -> None:
        from starlette.testclient import TestClient

        self.http = TestClient(app, base_url="http://testserver", follow_redirects=False)
        self.last_text = ""

    def get(self, path: str, **kw: Any) -> Any:
        response = self.http.get(path, **kw)
        self.last_text = response.text
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, token: str | None = None, **kw: Any) -> Any:
        """POST a form; ``token`` defaults to the form token of the last page fetched."""
        form = dict(data or {})
        form.setdefault("csrf_token", token if token is not None else self.form_token())
        response = self.http.post(path, data=form, **kw)
        self.last_text = response.text
        return response

    def form_token(self, text: str | None = None) -> str:
        found = _TOKEN.search(text if text is not None else self.last_text)
        return found.group(1) if found else ""

    def login(self, username: str, password: str = PASSWORD) -> Any:
        """Log in through the form; returns the response (303 to / on success)."""
        self.get("/login")
        return self.post("/login", {"username": username, "password": password})


@pytest.fixture
def web(site: Site) -> Iterator[WebClient]:
    client = WebClient(site.app)
    with client.http:
        yield client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live(site: Site) -> Iterator[str]:
    """``site`` served by uvicorn on 127.0.0.1 in a thread of this process; its base URL."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(site.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 10 s")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Playwright's Chromium: the distribution's binary, headless, with no network of its own."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's 'chromium' package (scripts/system-packages does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium: Any, live: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the live server, in Chinese."""
    context = chromium.new_context(base_url=live, locale="zh-CN", viewport={"width": 1280, "height": 900})
    # a page answers in well under a second: 10 s (not Playwright's 30) fails a missing element sooner
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


#: where the browser tests keep their screenshots (CI keeps them as artifacts)
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
