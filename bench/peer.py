"""Peer engines: one persisted transition in casework, SpiffWorkflow, and a naive ``transitions`` app.

    python -m bench peer -v          # 3 rounds of 2,000 cases × 5 steps per variant
    python -m bench peer --quick     # 20 cases, one round: checks the harness, not speed

Every variant walks the same N cases through the same five steps of the
bundled 困难职工建档立卡 workflow — submit (申请) → pass_review (审核) →
end_publicity (公示期满) → grant (审批) → record (录入) → filed — and times each
step from the call to the commit. Steps run step by step over all cases (all
submits, then all reviews, …), as a day's work would; creating the cases is
not timed. Between the reviews and the ends of publicity, casework's own rule
is met untimed: the reviewed cases' 公示名单 are published (one per county)
and the clock moves past their period: casework runs on the engine's
:class:`~engine.FixedClock`, set a month back, then to the day after the
last period ends. The peers have no such rule and skip it. Every variant
persists to a fresh SQLite file in WAL mode with ``synchronous=NORMAL`` and
commits once per step.

* **casework** (baseline): ``Casework.fire`` through the public API, with
  every rule (role, scope, four-eyes, required fields, guards), the
  hash-chained audit event, the next state's timers and the outbox rows.
* **SpiffWorkflow 3.x**: the same five steps as user tasks in a BPMN process
  (inline below), one workflow instance per case, stored as the JSON of
  ``BpmnWorkflowSerializer`` in one row per instance. Each step does what a
  stateless Spiff server does: read the row, ``deserialize_json``, complete
  the ready user task, ``do_engine_steps``, ``serialize_json``, ``UPDATE`` —
  one transaction. Persistence is plain :mod:`sqlite3` (no ORM), so the Spiff
  side pays no SQLAlchemy overhead at all: the comparison favours the peer.
  SpiffWorkflow checks none of casework's rules; it only moves the token.
* **transitions, naive**: an ORM-mapped case and a *new*
  ``transitions.Machine(model=case)`` per step (the design the issue calls
  naive: building a machine costs ~150 µs), fire, add an audit ORM row,
  commit — SQLAlchemy ORM on its own small tables.

SpiffWorkflow is a bench-only extra; it is imported inside its variant, so
without it only that row fails.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bench.harness import Metric, Scenario, Variant
from casework.synthetic import SyntheticPeople
from db import make_engine, upgrade
from db.types import JSONType, UTCDateTime
from engine import Casework, FixedClock, WorkflowDef, load_definition_file

__all__ = ["SCENARIO", "casework", "spiff", "transitions_naive"]

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
WORKFLOW = "poverty_archive"
# The happy path and who takes each step. "system" is the publicity timer's
# own step (the engine's scheduler identity). pass_review is not_by submit and
# grant not_by pass_review, so those three are different people; record has
# no four-eyes rule, but a second clerk takes it, as at a real 录入 desk.
STEPS: tuple[tuple[str, str], ...] = (
    ("submit", "lin"),
    ("pass_review", "wu"),
    ("end_publicity", "system"),
    ("grant", "ye"),
    ("record", "su"),
)
USERS: tuple[tuple[str, str, str], ...] = (
    ("lin", "林晓", "clerk"),
    ("wu", "吴明辉", "reviewer"),
    ("ye", "叶振华", "approver"),
    ("su", "苏雅琴", "clerk"),
)
# pass_review's guard wants all four documents; household() sometimes leaves one out
MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def _households(cases: int, seed: int) -> list[dict[str, Any]]:
    """The same N households, with complete materials, for every variant."""
    people = SyntheticPeople(seed)
    return [{**people.household(), "materials": list(MATERIALS)} for _ in range(cases)]


def _figures(times: list[float], per_step: dict[str, list[float]]) -> dict[str, float]:
    """Median and p95 per persisted transition (µs), and each step's median (in the JSON only)."""
    out = {
        "median_us": statistics.median(times) * 1e6,
        "p95_us": statistics.quantiles(times, n=20)[-1] * 1e6,
        "transitions": float(len(times)),
    }
    out.update({f"{step}_us": statistics.median(ts) * 1e6 for step, ts in per_step.items()})
    return out


def _time_steps(
    keys: Iterable[Any],
    steps: Iterable[tuple[str, str]],
    one: Callable[[Any, str, str], None],
    before: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Time ``one(key, trigger, actor)`` for every step over every key, step by step.

    ``before(trigger)``, if given, runs untimed before each step's round.
    """
    keys = list(keys)
    times: list[float] = []
    per_step: dict[str, list[float]] = {}
    clock = time.perf_counter
    for trigger, actor in steps:
        if before is not None:
            before(trigger)
        mine = per_step.setdefault(trigger, [])
        for key in keys:
            t0 = clock()
            one(key, trigger, actor)
            mine.append(clock() - t0)
        times.extend(mine)
    return _figures(times, per_step)


# --------------------------------------------------------------------- casework


def casework(url: str, cases: int = 2000, seed: int = 7) -> dict[str, float]:
    """The baseline: ``Casework.fire`` on the bundled workflow, one transaction per step."""
    from notifications.notices import publish_list

    engine = make_engine(url)
    upgrade(engine)
    # a month back: publicity lasts its list's period (7 days), which must be over before end_publicity
    clock = FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    svc = Casework(engine, clock)
    svc.load_workflow(load_definition_file(BUNDLED))
    for username, name, role in USERS:
        svc.add_user(username, name, [role], ["*"])
    households = _households(cases, seed)
    refs = [svc.create_case(WORKFLOW, "lin", data).ref for data in households]

    def publicity_over(trigger: str) -> None:
        """Before the ends of publicity (untimed): publish every county's 公示名单, then let its period pass."""
        if trigger != "end_publicity":
            return
        views = [publish_list(svc, WORKFLOW, county) for county in sorted({d["county"] for d in households})]
        last = max(v.period_end for v in views if v is not None and v.period_end is not None)
        # 24:00 of the period's last day in Shanghai (UTC+8), and a little more
        clock.set(dt.datetime.combine(last + dt.timedelta(days=1), dt.time(9), dt.timezone(dt.timedelta(hours=8))))

    def one(ref: str, trigger: str, actor: str) -> None:
        if actor == "system":
            # the publicity timer's step, exactly as the sweeper takes it (no objections: the guard holds)
            svc.fire_as_system(ref, trigger)
        else:
            svc.fire(ref, trigger, actor)

    figures = _time_steps(refs, STEPS, one, before=publicity_over)
    last = svc.get_case(refs[-1]).state
    assert last == "filed", f"{refs[-1]} ended in {last}, not filed"
    engine.dispose()
    return figures


# ---------------------------------------------------------------- SpiffWorkflow


def bpmn_xml(steps: Iterable[str] = tuple(s for s, _ in STEPS)) -> str:
    """A BPMN process: start → one user task per step, in sequence → end (``filed``)."""
    names = list(steps)
    nodes = ["start", *names, "filed"]
    tasks = "\n    ".join(f'<bpmn:userTask id="{n}" name="{n}" />' for n in names)
    flows = "\n    ".join(
        f'<bpmn:sequenceFlow id="flow_{i}" sourceRef="{a}" targetRef="{b}" />'
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  id="casework_peer" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="{WORKFLOW}" name="困难职工建档立卡" isExecutable="true">
    <bpmn:startEvent id="start" />
    {tasks}
    <bpmn:endEvent id="filed" />
    {flows}
  </bpmn:process>
</bpmn:definitions>
"""


def _sqlite_path(url: str) -> str:
    database = make_url(url).database
    if not database:
        raise ValueError(f"{url!r} is not a SQLite file URL")
    return database


def _connect(path: str) -> sqlite3.Connection:
    """Plain sqlite3 with casework's settings: WAL, synchronous=NORMAL, explicit transactions."""
    conn = sqlite3.connect(path, isolation_level=None)  # autocommit: we issue BEGIN ourselves
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def spiff(url: str, cases: int = 2000, seed: int = 7) -> dict[str, float]:
    """SpiffWorkflow: deserialize, complete the ready user task, serialize, UPDATE — per step."""
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.bpmn.parser import BpmnParser
    from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
    from SpiffWorkflow.util.task import TaskState

    parser = BpmnParser()
    parser.add_bpmn_str(bpmn_xml().encode("utf-8"))
    spec = parser.get_spec(WORKFLOW)
    serializer = BpmnWorkflowSerializer()  # builds its converter registry: once per process, as a server would

    conn = _connect(_sqlite_path(url))
    conn.execute(
        "CREATE TABLE workflow_instances (id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE, "
        "task TEXT, completed INTEGER NOT NULL, version INTEGER NOT NULL, serialization TEXT NOT NULL, "
        "updated_at TEXT NOT NULL)"
    )
    refs = []
    conn.execute("BEGIN")
    for i, data in enumerate(_households(cases, seed), start=1):
        ref = f"ZZ-2026-{i:06d}"
        wf = BpmnWorkflow(spec)
        wf.do_engine_steps()
        # the application form's data goes into the first user task, and travels with the token from there
        wf.get_next_task(state=TaskState.READY, manual=True).data.update(data)
        conn.execute(
            "INSERT INTO workflow_instances (ref, task, completed, version, serialization, updated_at) "
            "VALUES (?, ?, 0, 1, ?, ?)",
            (ref, "submit", serializer.serialize_json(wf), dt.datetime.now(dt.UTC).isoformat()),
        )
        refs.append(ref)
    conn.execute("COMMIT")

    def one(ref: str, trigger: str, actor: str) -> None:
        conn.execute("BEGIN")
        try:
            raw, version = conn.execute(
                "SELECT serialization, version FROM workflow_instances WHERE ref = ?", (ref,)
            ).fetchone()
            wf = serializer.deserialize_json(raw)
            task = wf.get_next_task(state=TaskState.READY, manual=True)
            if task is None or task.task_spec.name != trigger:
                raise RuntimeError(f"{ref}: {trigger} is not the ready task ({task and task.task_spec.name})")
            task.data[f"{trigger}_by"] = actor  # who completed it: the only trace Spiff keeps of a step
            task.run()
            wf.do_engine_steps()
            ready = wf.get_next_task(state=TaskState.READY, manual=True)
            cur = conn.execute(
                "UPDATE workflow_instances SET task = ?, completed = ?, version = version + 1, serialization = ?, "
                "updated_at = ? WHERE ref = ? AND version = ?",
                (
                    ready.task_spec.name if ready else None,
                    int(wf.is_completed()),
                    serializer.serialize_json(wf),
                    dt.datetime.now(dt.UTC).isoformat(),
                    ref,
                    version,
                ),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"{ref} changed underneath")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    figures = _time_steps(refs, STEPS, one)
    done, size = conn.execute("SELECT sum(completed), avg(length(serialization)) FROM workflow_instances").fetchone()
    assert done == cases, f"{cases - done} Spiff instances did not complete"
    conn.close()
    figures["state_kb"] = size / 1024
    return figures


# ----------------------------------------------------------- transitions, naive


class _NaiveBase(DeclarativeBase):
    pass


class NaiveCase(_NaiveBase):
    """A case as a naive ORM app keeps it; ``version`` is SQLAlchemy's own optimistic lock."""

    __tablename__ = "naive_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    state: Mapped[str] = mapped_column(String(63))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative hook


class NaiveAudit(_NaiveBase):
    """One audit row per step (no hash chain: the naive app does not have one)."""

    __tablename__ = "naive_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("naive_cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(63))
    event: Mapped[str] = mapped_column(String(63))
    from_state: Mapped[str] = mapped_column(String(63))
    to_state: Mapped[str] = mapped_column(String(63))


def _machine_spec(wf: WorkflowDef) -> tuple[list[str], list[dict[str, Any]]]:
    """The workflow's states and transitions, as ``transitions`` takes them (the same graph casework fires on)."""
    return list(wf.states), [
        {"trigger": t.name, "source": list(t.sources), "dest": t.dest} for t in wf.transitions.values()
    ]


def transitions_naive(url: str, cases: int = 2000, seed: int = 7) -> dict[str, float]:
    """A new ``transitions.Machine(model=case)`` per step, then an audit row and a commit (ORM)."""
    from transitions import Machine

    states, edges = _machine_spec(load_definition_file(BUNDLED))
    engine = make_engine(url)  # the same connection settings (WAL, synchronous=NORMAL, explicit BEGIN)
    _NaiveBase.metadata.create_all(engine)
    refs = []
    with Session(engine) as session, session.begin():
        for i, data in enumerate(_households(cases, seed), start=1):
            ref = f"ZZ-2026-{i:06d}"
            session.add(NaiveCase(ref=ref, state="apply", data=data, updated_at=dt.datetime.now(dt.UTC)))
            refs.append(ref)

    def one(ref: str, trigger: str, actor: str) -> None:
        with Session(engine) as session, session.begin():
            case = session.scalars(select(NaiveCase).where(NaiveCase.ref == ref)).one()
            before = case.state
            Machine(
                model=case,
                states=states,
                transitions=edges,
                initial=before,
                auto_transitions=False,
                ignore_invalid_triggers=False,
            )
            getattr(case, trigger)()  # the trigger method the machine just bound to the model
            now = dt.datetime.now(dt.UTC)
            case.updated_at = now
            session.add(
                NaiveAudit(case_id=case.id, at=now, actor=actor, event=trigger, from_state=before, to_state=case.state)
            )

    figures = _time_steps(refs, STEPS, one)
    with Session(engine) as session:
        left = session.scalar(select(NaiveCase.ref).where(NaiveCase.state != "filed").limit(1))
    assert left is None, f"{left} did not reach filed"
    engine.dispose()
    return figures


# --------------------------------------------------------------------- scenario

_PARAMS = {"cases": 2000, "seed": 7}

SCENARIO = Scenario(
    name="peer",
    title="one persisted transition (5-step 建档 workflow): casework vs SpiffWorkflow vs naive transitions",
    goal="casework ≥ 4× faster per persisted transition than the SpiffWorkflow peer",
    variants=(
        Variant("casework", "casework (Casework.fire)", "bench.peer:casework", _PARAMS),
        Variant(
            "spiff",
            "SpiffWorkflow 3 (JSON per step, sqlite3)",
            "bench.peer:spiff",
            _PARAMS,
            baseline="casework",
        ),
        Variant(
            "naive",
            "transitions, naive (Machine per step, ORM)",
            "bench.peer:transitions_naive",
            _PARAMS,
            baseline="casework",
        ),
    ),
    metrics=(
        Metric("median_us", "median µs"),
        Metric("p95_us", "p95 µs"),
        Metric("rss_mb", "peak RSS MB", "{:,.1f}"),
    ),
    primary="median_us",
    rounds=3,
    quick={"cases": 20},
)
