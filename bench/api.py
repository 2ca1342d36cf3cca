"""The HTTP API scaled out: real ``casework serve`` processes on one PostgreSQL database, beside the engine.

    python -m bench api -v                                  # 2 and 4 servers, 8 clients, 30 s, 3 rounds
    python -m bench api --servers 2 --clients 8 --seconds 20 --rounds 1
    python -m bench api --quick --servers 2                 # 4 clients for 3 s: checks the harness, not speed

Each round, on a fresh database of the run's throwaway PostgreSQL server:
``casework init``, the bundled workflow (``workflows/poverty_archive.yaml``),
two clerks (``lin`` of 芗城区, ``chen`` of 龙文区) and a reviewer of both
(``wu``), each with an API token. Then, for the **HTTP** variants,
``--servers`` processes of ``casework serve --no-scheduler --workers 1``
and one ``casework scheduler`` (every one a real process, with
``CASEWORK_WEB_API_REQUESTS_PER_MINUTE`` high enough that the rate limit
never answers), and ``--clients`` concurrent clients (asyncio and httpx, in
the bench's process) spread request by request over the servers,
round-robin, as a load balancer would. For ``--seconds`` each client
repeats one cycle, a case's first two steps with the reads around them:

* **create**: ``POST /cases`` as its clerk, with an ``Idempotency-Key``;
* **replay** (a client's first cycle, and every :data:`REPLAY_EVERY`-th after): the same request again,
  to whichever server is next: it must answer 200 ``Idempotent-Replayed`` with the same
  case, never a second one;
* **read**: ``GET /cases/{ref}``; **submit**: ``POST /cases/{ref}/steps/submit``
  with ``If-Match`` from the ``ETag``; **inbox**: ``GET /inbox`` as the clerk;
* **review**: ``pass_review`` as the reviewer with ``If-Match``; every
  :data:`RACE_EVERY`-th cycle, the first included, the same request goes to two servers at once,
  a deliberate race: one must move the case, the other be refused with 412
  (**race**, counted apart from the errors); then ``GET /inbox`` as the
  reviewer.

Any other answer — a 5xx, a transport error, an unexpected status — is an
**error** (the goal is none). A cycle under way when the time is up is
finished; requests/s is every answer over the time from the first request to
the last answer. Then the servers and the scheduler are stopped and
``casework check`` and ``casework audit verify`` run on the database; the
cases in it must be exactly the ones answered 201.

The **baseline**, in the same run, is the engine in one process: the same
cycle called on :class:`engine.Casework` from ``--clients`` threads for the
same time (the race's second call from a thread of its own), no HTTP, no
token, no access log. The ``× baseline`` column is the engine's requests/s
over the variant's (how many times slower); the details below the table
give HTTP/engine the other way round.

The load generator shares the machine with the servers and PostgreSQL: its
CPU and the servers' (from ``/proc``) are reported as a share of one core.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.harness import ROOT, Metric, Scenario, Variant

__all__ = ["SCENARIO", "details", "engine", "http"]

WORKFLOW = "poverty_archive"
BUNDLED = ROOT / "workflows" / "poverty_archive.yaml"
#: username, name, roles, counties: the clerks whose cases the reviewer reviews (four-eyes: never their own)
USERS = (
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
)
CLERKS = (("lin", "芗城区"), ("chen", "龙文区"))
REVIEWER = "wu"
#: every this many cycles (the first included: a short run has both) a create is sent again with its key, and a
#: review is raced
REPLAY_EVERY = 5
RACE_EVERY = 5
#: the inbox page the clients ask for
PER_PAGE = 20
#: high enough that the rate limit (600 a minute by default) never answers in a run
RATE = "1000000"
SCHEDULER_INTERVAL = "2"
#: the kinds of request, in the order the details list them
KINDS = ("create", "replay", "read", "submit", "review", "race", "inbox")
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
SEED = 15


# ------------------------------------------------------------------ tallies


@dataclass
class Tally:
    """What the clients saw: latencies by kind, errors by what they were, the cases answered 201."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    created: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def took(self, kind: str, ms: float) -> None:
        with self.lock:
            self.ms[kind].append(ms)

    def error(self, what: str, sample: str) -> None:
        with self.lock:
            self.errors[what] += 1
            if len(self.samples) < 5:
                self.samples.append(f"{what}: {sample[:300]}")

    def figures(self, elapsed: float) -> dict[str, float]:
        """Requests/s overall and by kind, p50/p95/p99 by kind (ms), errors and races."""
        every = [ms for values in self.ms.values() for ms in values]
        answered = len(every) + sum(self.errors.values())
        out: dict[str, float] = {
            "seconds": elapsed,
            "requests": float(answered),
            "rps": answered / elapsed,
            "errors": float(sum(self.errors.values())),
            "races": float(len(self.ms.get("race", []))),
            "created": float(self.created),
            **_percentiles("all", every),
        }
        for kind in KINDS:
            values = self.ms.get(kind, [])
            out[f"{kind}_rps"] = len(values) / elapsed
            out.update(_percentiles(kind, values))
        return out


def _percentiles(name: str, values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    if len(values) == 1:
        return {f"{name}_p50_ms": values[0], f"{name}_p95_ms": values[0], f"{name}_p99_ms": values[0]}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {f"{name}_p50_ms": statistics.median(values), f"{name}_p95_ms": cuts[94], f"{name}_p99_ms": cuts[98]}


class Households:
    """Complete applications with ID numbers never given twice, for either clerk's county (thread-safe)."""

    def __init__(self) -> None:
        from casework.synthetic import SyntheticPeople

        self.people = SyntheticPeople(SEED)
        self.lock = threading.Lock()

    def next(self, county: str) -> dict[str, Any]:
        with self.lock:
            data = self.people.household()
            data.update(county=county, id_number=self.people.id_number(county), materials=list(ALL_MATERIALS))
        return data


# ------------------------------------------------------------------ the database


def _casework(url: str, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``casework --db URL ARGS`` as its own process (the console the operator types)."""
    return subprocess.run(
        [sys.executable, "-m", "casework", "--db", url, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _prepare(url: str, tokens: int = 1) -> dict[str, list[str]]:
    """``casework init``, the workflow, the users and ``tokens`` tokens each; the tokens' secrets by user."""
    from db import make_engine
    from engine import Casework, load_definition_file

    done = _casework(url, "init")
    if done.returncode != 0:
        raise RuntimeError(f"casework init failed:\n{done.stderr[-2000:]}")
    eng = make_engine(url)
    try:
        svc = Casework(eng)
        svc.load_workflow(load_definition_file(BUNDLED))
        secrets: dict[str, list[str]] = {}
        for username, name, roles, scopes in USERS:
            svc.add_user(username, name, roles, scopes)
            secrets[username] = [svc.tokens.create(username, f"bench-{n}")[0] for n in range(1, tokens + 1)]
        return secrets
    finally:
        eng.dispose()


def _verdict(url: str, out: dict[str, float]) -> None:
    """Run ``casework check`` and ``casework audit verify``; count the cases against the 201s."""
    from sqlalchemy import text

    from db import make_engine

    for key, args in (("check", ("check",)), ("audit", ("audit", "verify"))):
        t0 = time.perf_counter()
        done = _casework(url, *args)
        out[f"{key}_clean"] = 1.0 if done.returncode == 0 else 0.0
        out[f"{key}_s"] = time.perf_counter() - t0
        if done.returncode != 0:
            print(f"casework {' '.join(args)} exited {done.returncode}:\n{done.stdout[-1500:]}", file=sys.stderr)
    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            out["cases"] = float(conn.execute(text("SELECT count(*) FROM cases")).scalar_one())
    finally:
        eng.dispose()
    out["cases_unaccounted"] = abs(out["cases"] - out["created"])


# ------------------------------------------------------------------ processes


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far, from ``/proc`` (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_pids(url: str) -> list[int]:
    """The PostgreSQL server's processes (the postmaster and its children) when it runs on this machine."""
    from sqlalchemy import text

    from db import make_engine

    eng = make_engine(url)
    try:
        with eng.connect() as conn:
            data = Path(conn.execute(text("SHOW data_directory")).scalar_one())
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except Exception:
        return []  # another host, or a file this user may not read: no figure rather than a wrong one
    finally:
        eng.dispose()
    pids = [postmaster]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def _postgres_cpu_s(url: str) -> float:
    """CPU seconds the PostgreSQL server's live processes have used (those that exited are not counted)."""
    return sum(_cpu_s(pid) for pid in _postgres_pids(url))


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench's process dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """A process this bench started, its log file and its name."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""

    def cpu_s(self) -> float:
        """User and system CPU seconds so far."""
        return _cpu_s(self.proc.pid)


@contextlib.contextmanager
def _fleet(url: str, servers: int, logs: Path) -> Iterator[tuple[list[str], list[Child]]]:
    """``servers`` × ``casework serve`` and one ``casework scheduler``, answering; stopped on the way out.

    Yields the servers' base URLs and every child. Each child also dies with this process (a
    ``kill -9`` of the bench included), and SIGTERM here is turned into an exception so the
    ``finally`` stops them on Ctrl-C, a timeout or a failure alike.
    """
    import httpx2 as httpx

    env = {**os.environ, "CASEWORK_WEB_API_REQUESTS_PER_MINUTE": RATE, "PYTHONUNBUFFERED": "1"}
    children: list[Child] = []
    handles: list[IO[bytes]] = []

    def start(name: str, *args: str) -> Child:
        log = logs / f"{name}.log"
        handle = log.open("wb")
        handles.append(handle)
        proc = subprocess.Popen(
            [sys.executable, "-m", "casework", "--db", url, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # one thread runs here: nothing else forks meanwhile
        )
        child = Child(name, proc, log)
        children.append(child)
        return child

    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        ports = [_free_port() for _ in range(servers)]
        for n, port in enumerate(ports, 1):
            start(f"serve-{n}", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        start("scheduler", "scheduler", "--interval", SCHEDULER_INTERVAL)
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        deadline = time.monotonic() + 120
        with httpx.Client(timeout=5) as probe:
            for base, child in zip(bases, children, strict=False):
                while True:
                    if child.proc.poll() is not None:
                        raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if probe.get(f"{base}/api/v1/openapi.json").status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{child.name} did not answer within 120 s:\n{child.tail()}")
                    time.sleep(0.2)
        scheduler = children[-1]
        if scheduler.proc.poll() is not None:
            raise RuntimeError(f"the scheduler exited with {scheduler.proc.returncode}:\n{scheduler.tail()}")
        yield bases, children
    finally:
        for child in children:
            if child.proc.poll() is None:
                child.proc.terminate()
        for child in children:
            try:
                child.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        for handle in handles:
            handle.close()
        signal.signal(signal.SIGTERM, previous)


class Terminated(Exception):
    """The bench's process was sent SIGTERM (the harness's timeout, an operator)."""


def _terminated(signum: int, _frame: Any) -> None:
    raise Terminated(f"signal {signum}")


# ------------------------------------------------------------------ HTTP clients


class Load:
    """The clients' shared state: the servers in turn, the tokens, the households, the tally."""

    def __init__(self, http: Any, bases: Sequence[str], secrets: Mapping[str, list[str]], stop_at: float) -> None:
        self.http = http
        self.bases = bases
        self.turn = itertools.count()
        self.secrets = secrets
        self.stop_at = stop_at
        self.households = Households()
        self.tally = Tally()

    def base(self) -> str:
        """The next server, round-robin over every request of every client."""
        return self.bases[next(self.turn) % len(self.bases)]

    async def send(
        self,
        kind: str,
        method: str,
        path: str,
        auth: Mapping[str, str],
        *,
        expect: int = 200,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        base: str | None = None,
    ) -> Any:
        """The response if it is ``expect`` (its time tallied under ``kind``); else None, an error tallied."""
        import httpx2 as httpx

        url = (base or self.base()) + "/api/v1" + path
        t0 = time.perf_counter()
        try:
            response = await self.http.request(method, url, json=body, headers={**auth, **(headers or {})})
        except httpx.HTTPError as exc:
            self.tally.error(f"{kind} transport", f"{method} {url}: {type(exc).__name__} {exc}")
            return None
        ms = (time.perf_counter() - t0) * 1000
        if response.status_code != expect:
            self.tally.error(f"{kind} {response.status_code}", f"{method} {url}: {response.text}")
            return None
        self.tally.took(kind, ms)
        return response

    async def client(self, number: int) -> None:
        """One client: the cycle over and over until the time is up."""
        clerk, county = CLERKS[number % len(CLERKS)]
        # the client's token of each user: the same for every client, or one each (--tokens-per-client)
        auth = {user: {"Authorization": f"Bearer {held[number % len(held)]}"} for user, held in self.secrets.items()}
        for cycle in itertools.count(1):
            if time.perf_counter() >= self.stop_at:
                return
            await self.cycle(auth, clerk, county, cycle)

    async def cycle(self, auth: Mapping[str, Mapping[str, str]], clerk: str, county: str, cycle: int) -> None:
        body = {"workflow": WORKFLOW, "data": self.households.next(county)}
        key = {"Idempotency-Key": uuid.uuid4().hex}
        opened = await self.send("create", "POST", "/cases", auth[clerk], expect=201, body=body, headers=key)
        if opened is None:
            return
        self.tally.created += 1
        ref = opened.json()["ref"]
        if cycle % REPLAY_EVERY == 1:
            again = await self.send("replay", "POST", "/cases", auth[clerk], body=body, headers=key)
            if again is not None and (again.headers.get("idempotent-replayed") != "true" or again.json()["ref"] != ref):
                self.tally.error("replay not replayed", f"{again.headers} {again.text}")
        if await self.send("read", "GET", f"/cases/{ref}", auth[clerk]) is None:
            return
        submitted = await self.send(
            "submit",
            "POST",
            f"/cases/{ref}/steps/submit",
            auth[clerk],
            body={},
            headers={"If-Match": opened.headers["etag"]},
        )
        if submitted is None:
            return
        await self.send("inbox", "GET", f"/inbox?per_page={PER_PAGE}", auth[clerk])
        match = {"If-Match": submitted.headers["etag"]}
        path = f"/cases/{ref}/steps/pass_review"
        if cycle % RACE_EVERY == 1:
            await self.race(path, {**auth[REVIEWER], **match})
        else:
            await self.send("review", "POST", path, auth[REVIEWER], body={}, headers=match)
        await self.send("inbox", "GET", f"/inbox?per_page={PER_PAGE}", auth[REVIEWER])

    async def race(self, path: str, headers: Mapping[str, str]) -> None:
        """The same step with the same ``If-Match`` to two servers at once: one moves it, one gets 412."""
        import httpx2 as httpx

        first, second = self.base(), self.base()

        async def one(base: str) -> tuple[int | str, float, str]:
            t0 = time.perf_counter()
            try:
                response = await self.http.post(base + "/api/v1" + path, json={}, headers=headers)
            except httpx.HTTPError as exc:
                return "transport", 0.0, f"{type(exc).__name__} {exc}"
            return response.status_code, (time.perf_counter() - t0) * 1000, response.text

        answers = await asyncio.gather(one(first), one(second))
        if sorted(str(status) for status, _, _ in answers) == ["200", "412"]:
            for status, ms, _ in answers:
                self.tally.took("review" if status == 200 else "race", ms)
            return
        for status, _, text in answers:
            self.tally.error(f"race {status}", f"POST {path}: {text}")


async def _drive(
    bases: Sequence[str], secrets: Mapping[str, list[str]], clients: int, seconds: float
) -> tuple[Tally, float]:
    import httpx2 as httpx

    limits = httpx.Limits(max_connections=clients * 2 + 4, max_keepalive_connections=clients * 2 + 4)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        for base in bases:  # untimed: each server's first answer builds what later ones reuse
            for held in secrets.values():
                await http.get(
                    f"{base}/api/v1/inbox?per_page={PER_PAGE}", headers={"Authorization": f"Bearer {held[0]}"}
                )
        t0 = time.perf_counter()
        load = Load(http, bases, secrets, t0 + seconds)
        await asyncio.gather(*(load.client(n) for n in range(clients)))
        return load.tally, time.perf_counter() - t0


def http(
    url: str, servers: int = 2, clients: int = 8, seconds: float = 30.0, tokens_per_client: bool = False
) -> dict[str, float]:
    """``clients`` HTTP clients for ``seconds`` over ``servers`` real server processes and a scheduler.

    ``tokens_per_client``: each client has its own token of each user, instead of every client sharing
    the user's one (every use of a token is counted on its row, under a row lock).
    """
    secrets = _prepare(url, clients if tokens_per_client else 1)
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, _fleet(url, servers, Path(tmp)) as (bases, children):
        cpu0, pg0 = time.process_time(), _postgres_cpu_s(url)
        served0 = sum(c.cpu_s() for c in children)
        tally, elapsed = asyncio.run(_drive(bases, secrets, clients, seconds))
        load_cpu = time.process_time() - cpu0
        served = sum(c.cpu_s() for c in children) - served0
        pg = _postgres_cpu_s(url) - pg0
        for child in children:
            if child.proc.poll() is not None:
                tally.error(f"{child.name} exited", child.tail())
    for sample in tally.samples:
        print(sample, file=sys.stderr)
    out = tally.figures(elapsed)
    out.update(
        servers=float(servers),
        clients=float(clients),
        client_cpu_pct=100 * load_cpu / elapsed,
        server_cpu_pct=100 * served / elapsed,
        postgres_cpu_pct=100 * pg / elapsed,
        app_cpu_ms=1000 * served / max(1.0, out["requests"]),
    )
    _verdict(url, out)
    return out


# ------------------------------------------------------------------ the engine, in process


class EngineLoad:
    """The same cycle on :class:`engine.Casework`, from threads."""

    def __init__(self, svc: Any, stop_at: float) -> None:
        self.svc = svc
        self.stop_at = stop_at
        self.households = Households()
        self.tally = Tally()

    def timed(self, kind: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        from engine import CaseworkError

        t0 = time.perf_counter()
        try:
            answer = call(*args, **kwargs)
        except CaseworkError as exc:
            self.tally.error(f"{kind} {exc.code}", str(exc))
            return None
        self.tally.took(kind, (time.perf_counter() - t0) * 1000)
        return answer

    def client(self, number: int) -> None:
        clerk, county = CLERKS[number % len(CLERKS)]
        for cycle in itertools.count(1):
            if time.perf_counter() >= self.stop_at:
                return
            self.cycle(clerk, county, cycle)

    def cycle(self, clerk: str, county: str, cycle: int) -> None:
        svc = self.svc
        data = self.households.next(county)
        key = uuid.uuid4().hex
        opened = self.timed("create", svc.create_case, WORKFLOW, clerk, data, idempotency_key=key)
        if opened is None:
            return
        with self.tally.lock:
            self.tally.created += 1
        if cycle % REPLAY_EVERY == 1:
            again = self.timed("replay", svc.create_case, WORKFLOW, clerk, data, idempotency_key=key)
            if again is not None and (not again.replayed or again.ref != opened.ref):
                self.tally.error("replay not replayed", repr(again))
        if self.timed("read", svc.get_case, opened.ref, clerk) is None:
            return
        submitted = self.timed("submit", svc.fire, opened.ref, "submit", clerk, expected_version=opened.version)
        if submitted is None:
            return
        self.timed("inbox", svc.waiting_for, clerk, per_page=PER_PAGE)
        if cycle % RACE_EVERY == 1:
            self.race(submitted.ref, submitted.version)
        else:
            self.timed("review", svc.fire, submitted.ref, "pass_review", REVIEWER, expected_version=submitted.version)
        self.timed("inbox", svc.waiting_for, REVIEWER, per_page=PER_PAGE)

    def race(self, ref: str, version: int) -> None:
        from engine import CaseworkError, ConflictError

        answers: list[tuple[str, float, str]] = []

        def one() -> None:
            t0 = time.perf_counter()
            try:
                self.svc.fire(ref, "pass_review", REVIEWER, expected_version=version)
                answers.append(("moved", (time.perf_counter() - t0) * 1000, ""))
            except ConflictError:
                answers.append(("conflict", (time.perf_counter() - t0) * 1000, ""))
            except CaseworkError as exc:
                answers.append((str(exc.code), 0.0, str(exc)))

        partner = threading.Thread(target=one)
        partner.start()
        one()
        partner.join()
        if sorted(a[0] for a in answers) == ["conflict", "moved"]:
            for status, ms, _ in answers:
                self.tally.took("review" if status == "moved" else "race", ms)
            return
        for status, _, text in answers:
            self.tally.error(f"race {status}", text)


def engine(url: str, clients: int = 8, seconds: float = 30.0) -> dict[str, float]:
    """The same cycle on the engine from ``clients`` threads for ``seconds``: the baseline."""
    from db import make_engine
    from engine import Casework

    _prepare(url)
    # every thread and each race's partner holds a connection at once
    eng = make_engine(url, pool_size=clients + 2)
    try:
        svc = Casework(eng)
        svc.waiting_for(REVIEWER, per_page=PER_PAGE)  # untimed, as the servers' first answers are
        cpu0, pg0 = time.process_time(), _postgres_cpu_s(url)
        t0 = time.perf_counter()
        load = EngineLoad(svc, t0 + seconds)
        threads = [threading.Thread(target=load.client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        pg = _postgres_cpu_s(url) - pg0
    finally:
        eng.dispose()
    for sample in load.tally.samples:
        print(sample, file=sys.stderr)
    out = load.tally.figures(elapsed)
    out.update(
        servers=0.0,
        clients=float(clients),
        client_cpu_pct=100 * cpu / elapsed,
        postgres_cpu_pct=100 * pg / elapsed,
        app_cpu_ms=1000 * cpu / max(1.0, out["requests"]),  # the threads are the engine's clients: all of it is app
    )
    _verdict(url, out)
    return out


# ------------------------------------------------------------------ scenario


def variants(servers: Sequence[int] = (2, 4)) -> tuple[Variant, ...]:
    """The engine baseline and one HTTP variant per count of servers."""
    return (
        Variant("engine", "engine in process (threads)", "bench.api:engine", backend="postgresql"),
        *(
            Variant(
                f"http_{n}",
                f"HTTP API, {n} servers",
                "bench.api:http",
                params={"servers": n},
                baseline="engine",
                backend="postgresql",
            )
            for n in servers
        ),
    )


def details(outcomes: Sequence[Any]) -> str:
    """Below the table: each variant's requests/s and latencies by kind, its errors, HTTP/engine."""
    lines = ["requests/s and latency (ms) by kind, medians over the rounds:", ""]
    header = ["variant", "kind", "req/s", "p50", "p95", "p99"]
    rows = [header]
    base = next((o for o in outcomes if o.variant.key == "engine" and not o.error), None)
    for outcome in outcomes:
        if outcome.error:
            continue
        for kind in KINDS:
            if outcome.median(f"{kind}_rps") is None:
                continue
            cells = [outcome.variant.label, "race lost (412)" if kind == "race" else kind]
            cells.append(f"{outcome.median(f'{kind}_rps'):,.1f}")
            for p in ("p50", "p95", "p99"):
                value = outcome.median(f"{kind}_{p}_ms")
                cells.append("–" if value is None else f"{value:,.1f}")
            rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        lines.append(
            "  ".join(
                [
                    r[0].ljust(widths[0]),
                    r[1].ljust(widths[1]),
                    *(c.rjust(w) for c, w in zip(r[2:], widths[2:], strict=True)),
                ]
            ).rstrip()
        )
    lines.append("")
    for outcome in outcomes:
        if outcome.error:
            continue
        clean = " and ".join(
            f"{name} {'clean' if outcome.median(f'{key}_clean') == 1 else 'NOT CLEAN'}"
            for key, name in (("check", "casework check"), ("audit", "casework audit verify"))
        )
        note = f"{outcome.variant.label}: {clean}; cases unaccounted for {outcome.median('cases_unaccounted'):,.0f}"
        if base is not None and outcome is not base:
            mine, theirs = outcome.median("rps"), base.median("rps")
            if mine and theirs:
                note += f"; HTTP/engine requests/s {mine / theirs:.2f}"
        lines.append(note)
    return "\n".join(lines)


_METRICS = (
    Metric("rps", "req/s", "{:,.0f}", lower=False),
    Metric("all_p50_ms", "p50 ms", "{:,.1f}"),
    Metric("all_p95_ms", "p95 ms", "{:,.1f}"),
    Metric("all_p99_ms", "p99 ms", "{:,.1f}"),
    Metric("errors", "errors", "{:,.0f}"),
    Metric("races", "412 (race)", "{:,.0f}"),
    Metric("cases", "cases", "{:,.0f}", lower=False),
    Metric("client_cpu_pct", "client CPU %", "{:,.0f}"),
    Metric("server_cpu_pct", "servers CPU %", "{:,.0f}"),
    Metric("postgres_cpu_pct", "PostgreSQL CPU %", "{:,.0f}"),
    Metric("app_cpu_ms", "app CPU ms/req", "{:,.1f}"),
    Metric("check_clean", "check ok", "{:.0f}", lower=False),
    Metric("audit_clean", "audit ok", "{:.0f}", lower=False),
)

SCENARIO = Scenario(
    name="api",
    title="the HTTP API on several server processes and one PostgreSQL, beside the engine in process",
    goal="no errors (a 412 of a deliberate race is not one); casework check and audit verify clean after the load",
    variants=variants(),
    metrics=_METRICS,
    primary="rps",
    rounds=3,
    quick={"seconds": 3.0, "clients": 4},
    timeout=1800.0,
)
