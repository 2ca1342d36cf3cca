"""The web pages at a million cases: the inbox ``/`` and the case page ``/cases/{ref}``, beside the engine calls.

    python -m bench web -v                   # 1,000,000 cases, 200 requests of each page, SQLite and PostgreSQL
    python -m bench web --cases 100000 -v    # a smaller archive
    python -m bench web --quick              # 2,000 cases, 20 requests: checks the harness, not speed

The database is :mod:`bench.inbox`'s (the same seeded population, populated
once per backend per run, and its nine users), with a password set for the
viewers. The application is :func:`casework.web.create_app` on that
database; each viewer logs in through the login form with an in-process
client (Starlette's ``TestClient``: no socket, so what is timed is the
application, not the network). Then, in turn, ``queries`` times each:

* **inbox page**: ``GET /`` of a clerk (one county), a reviewer (one county)
  and a reviewer of every county; **engine**: ``Casework.waiting_for`` for
  the same viewer (page 1, the page's size) — the call the page wraps;
* **case page**: ``GET /cases/{ref}`` of a random case the viewer may see;
  **engine**: ``Casework.get_case`` and ``Casework.history`` of the same case.

A page's time is the server's own, read from the ``Server-Timing: app;dur=``
header the application's middleware sets (:mod:`casework.web.timing`): from
the request entering the application to its response starting, everything
the route, the engine and the template do. The engine's is ``perf_counter``
around the calls. On a shared machine a request waits for a core as well:
the ``CPU`` columns are the process's CPU time per page request (the
in-process client's share included), what the page costs whatever the
load. Each request is answered once untimed first. The goal is the
issue's: p95 under 50 ms for both pages on both backends.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

from sqlalchemy import text

from bench.harness import Metric, Scenario, Variant
from bench.inbox import NOW, PER_PAGE, USERS, _shared
from db import make_engine
from engine import Casework, FixedClock

__all__ = ["SCENARIO", "pages"]

PASSWORD = "bench-password-2026"
#: the viewers whose pages are asked for: a clerk of one county, a reviewer of one county, a reviewer of all
VIEWERS = ("lin", "wu", "cai")
SEED = 7
_TIMING = re.compile(r"app;dur=([0-9.]+)")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _server_ms(response: Any) -> float:
    found = _TIMING.search(response.headers.get("server-timing", ""))
    if found is None:
        raise RuntimeError(f"{response.request.url} answered without Server-Timing")
    return float(found.group(1))


def _figures(name: str, times: list[float]) -> dict[str, float]:
    return {
        f"{name}_p50_ms": statistics.median(times),
        f"{name}_p95_ms": statistics.quantiles(times, n=20)[-1] if len(times) > 1 else times[0],
    }


def _refs(svc: Casework, viewer: str, count: int, rng: random.Random) -> list[str]:
    """``count`` random refs of cases ``viewer`` may see (their scope among the viewer's)."""
    scopes = next(u[3] for u in USERS if u[0] == viewer)
    with svc.engine.connect() as conn:
        top = conn.execute(text("SELECT max(id) FROM cases")).scalar_one()
        found: list[str] = []
        while len(found) < count:
            ids = [rng.randint(1, top) for _ in range(count * 4)]
            rows = conn.execute(text("SELECT ref, scope FROM cases WHERE id IN (" + ",".join(map(str, ids)) + ")"))
            found += [r.ref for r in rows if "*" in scopes or r.scope in scopes]
    return found[:count]


def _login(client: Any, username: str) -> None:
    form = client.get("/login")
    token = _TOKEN.search(form.text)
    if token is None:
        raise RuntimeError("the login form has no csrf_token")
    answer = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    if answer.status_code != 303:
        raise RuntimeError(f"login of {username} answered {answer.status_code}")


def _ask(client: Any, path: str, cpu: list[float] | None = None) -> float:
    """The server's time for ``GET path``; appends the process's CPU time for it (client included) to ``cpu``."""
    t0 = time.process_time()
    response = client.get(path)
    if cpu is not None:
        cpu.append((time.process_time() - t0) * 1000)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return _server_ms(response)


def _timed(call: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000


def _case(svc: Casework, ref: str, viewer: str) -> None:
    """What the case page asks the engine for first: the case and its timeline."""
    svc.get_case(ref, viewer)
    svc.history(ref, viewer)


def pages(url: str, cases: int = 1_000_000, queries: int = 200) -> dict[str, float]:
    """Inbox and case pages (server time) and the engine calls they wrap, ``queries`` requests of each."""
    from starlette.testclient import TestClient

    from casework.web import create_app

    shared, population = _shared(url, cases)
    eng = make_engine(shared)
    try:
        svc = Casework(eng, FixedClock(NOW))
        for viewer in VIEWERS:
            svc.logins.set_password(viewer, PASSWORD)
        app = create_app(svc)
        per_page = app.state.settings.per_page or PER_PAGE
        rng = random.Random(SEED)
        refs = {v: _refs(svc, v, queries, rng) for v in VIEWERS}
        names = ("inbox_page", "inbox_engine", "case_page", "case_engine", "inbox_cpu", "case_cpu")
        times: dict[str, list[float]] = {k: [] for k in names}
        with ExitStack() as stack:
            clients = {
                v: stack.enter_context(TestClient(app, base_url="http://testserver", follow_redirects=False))
                for v in VIEWERS
            }
            for viewer, client in clients.items():
                _login(client, viewer)
                _ask(client, "/")  # untimed: the first answer builds what later ones reuse
                _ask(client, f"/cases/{refs[viewer][0]}")
                svc.waiting_for(viewer, per_page=per_page)
            for i in range(queries):
                viewer = VIEWERS[i % len(VIEWERS)]
                client = clients[viewer]
                ref = refs[viewer][i // len(VIEWERS)]
                times["inbox_page"].append(_ask(client, "/", times["inbox_cpu"]))
                times["inbox_engine"].append(_timed(partial(svc.waiting_for, viewer, per_page=per_page)))
                times["case_page"].append(_ask(client, f"/cases/{ref}", times["case_cpu"]))
                times["case_engine"].append(_timed(partial(_case, svc, ref, viewer)))
    finally:
        eng.dispose()
    out: dict[str, float] = {"cases": float(cases), "queries": float(queries), **population}
    for name, values in times.items():
        out.update(_figures(name, values))
    out["worst_page_p95_ms"] = max(out["inbox_page_p95_ms"], out["case_page_p95_ms"])
    return out


# ------------------------------------------------------------------ scenario

_METRICS = (
    Metric("inbox_page_p50_ms", "inbox page p50", "{:,.2f}"),
    Metric("inbox_page_p95_ms", "inbox page p95", "{:,.2f}"),
    Metric("inbox_engine_p50_ms", "waiting_for p50", "{:,.2f}"),
    Metric("inbox_engine_p95_ms", "waiting_for p95", "{:,.2f}"),
    Metric("case_page_p50_ms", "case page p50", "{:,.2f}"),
    Metric("case_page_p95_ms", "case page p95", "{:,.2f}"),
    Metric("case_engine_p50_ms", "get_case+history p50", "{:,.2f}"),
    Metric("case_engine_p95_ms", "get_case+history p95", "{:,.2f}"),
    Metric("inbox_cpu_p50_ms", "inbox CPU p50", "{:,.2f}"),
    Metric("case_cpu_p50_ms", "case CPU p50", "{:,.2f}"),
    Metric("worst_page_p95_ms", "worst page p95", "{:,.2f}"),
    Metric("populate_s", "populate s", "{:,.0f}"),
)

SCENARIO = Scenario(
    name="web",
    title="the inbox page and the case page (server time, ms) beside the engine calls they wrap",
    goal="both pages' p95 < 50 ms at 1,000,000 cases on both backends",
    variants=(
        Variant("pages_sqlite", "web pages (SQLite)", "bench.web:pages", backend="sqlite"),
        Variant("pages_postgresql", "web pages (PostgreSQL)", "bench.web:pages", backend="postgresql"),
    ),
    metrics=_METRICS,
    primary="worst_page_p95_ms",
    rounds=1,
    quick={"cases": 2000, "queries": 20},
    timeout=5400.0,
)
