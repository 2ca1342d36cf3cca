"""Who may take which step: every role × every trigger × every non-final state × scope.

The expected outcome of each cell is derived from the bundled workflow definitions, following
the documented order of checks (README, "Rules the engine enforces"):

1. the case is in the user's scopes, else PermissionDenied;
2. the user holds a role in the trigger's ``by`` (``system`` is no human's role), else PermissionDenied;
3. the case's state is one the trigger leaves, else InvalidTransition;

and otherwise the step is taken. The case is brought into each state by helper users (one per
role, scope ``*``), never by the user under test, so four-eyes plays no part in the matrix;
it is tested separately below, with people holding two roles and scope ``*``.

Every refusal must change nothing (case, version, audit trail) and be logged once by
``engine.service`` with the actor, the case and the trigger.

The full matrix runs on SQLite on one module-scoped database (each cell uses its own case);
a handful of cells and the four-eyes tests also run on PostgreSQL.
"""

from __future__ import annotations

import collections
import itertools
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from db import make_engine
from engine import (
    Casework,
    FixedClock,
    InvalidTransition,
    PermissionDenied,
    RefusedError,
    SameActorForbidden,
    WorkflowDef,
    load_definition,
    load_definition_file,
)
from engine.definition.model import SYSTEM_ROLE, TransitionDef
from tests.conftest import ROOT
from tests.e2e.runner import casework
from tests.integration.race_support import POSTGRES, SQLITE, START, Households, audit_count, module_database
from tests.integration.test_publicity_period import through_publicity

WORKFLOW_FILES = [ROOT / "workflows" / "poverty_archive.yaml", ROOT / "workflows" / "annual_review.yaml"]
DEFS: dict[str, WorkflowDef] = {d.name: d for d in map(load_definition_file, WORKFLOW_FILES)}
ROLES = sorted({role for d in DEFS.values() for role in d.roles} - {SYSTEM_ROLE})
HOME, ELSEWHERE = "芗城区", "龙文区"
SCOPES = {"own": [HOME], "other": [ELSEWHERE], "star": ["*"]}
COMMENT = "矩阵测试：核对权限"


# ------------------------------------------------------------------------ the expected outcome


def humans(t: TransitionDef) -> set[str]:
    return set(t.by) - {SYSTEM_ROLE}


def expected(wf: WorkflowDef, trigger: str, state: str, role: str, scope: str) -> type[RefusedError] | None:
    """What the rules say for a user with one ``role`` and ``scope`` firing ``trigger`` in ``state``."""
    t = wf.transitions[trigger]
    if scope == "other":
        return PermissionDenied
    if role not in humans(t):
        return PermissionDenied
    if state not in t.sources:
        return InvalidTransition
    return None


def paths(wf: WorkflowDef) -> dict[str, list[TransitionDef]]:
    """The shortest path of steps from the initial state to every reachable non-final state."""
    found: dict[str, list[TransitionDef]] = {wf.initial_state: []}
    frontier = [wf.initial_state]
    while frontier:
        nxt = []
        for state in frontier:
            for t in wf.transitions_from(state):
                if t.dest not in found and not wf.states[t.dest].final and humans(t):
                    found[t.dest] = [*found[state], t]
                    nxt.append(t.dest)
        frontier = nxt
    return found


def cells() -> Iterator[Any]:
    for wf in DEFS.values():
        states = [s for s in wf.states if not wf.states[s].final]
        assert set(paths(wf)) == set(states), f"{wf.name}: some non-final state cannot be reached"
        for trigger, state, role, scope in itertools.product(wf.transitions, states, ROLES, SCOPES):
            outcome = expected(wf, trigger, state, role, scope)
            verdict = "allowed" if outcome is None else outcome.__name__
            yield pytest.param(
                wf.name, trigger, state, role, scope, id=f"{wf.name}-{trigger}-in_{state}-{role}-{scope}-{verdict}"
            )


CELLS = list(cells())


# ---------------------------------------------------------------------------------- the world


@dataclass
class World:
    """One database with both bundled workflows, helper users and a user per (role, scope)."""

    url: str
    engine: Engine
    svc: Casework
    backend: str
    people: Households = field(default_factory=lambda: Households(seed=97))
    parked: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)

    def data(self, workflow: str) -> dict[str, Any]:
        household = self.people(HOME)
        if workflow == "poverty_archive":
            return household
        return {
            # a filed archive of its own: the review's exit exits it too (then:), as the same user
            "archive_ref": self.case_in("poverty_archive", "filed"),
            "applicant_name": household["applicant_name"],
            "id_number": household["id_number"],
            "county": HOME,
            "household_size": household["household_size"],
            "income_per_capita": household["income_per_capita"],
            "finding": "入户核实，家庭情况与档案一致",
        }

    def case_in(self, workflow: str, state: str) -> str:
        """A new case of ``workflow`` brought into ``state`` by the helper users."""
        wf = DEFS[workflow]
        opener = f"h_{sorted(humans(wf.transitions_from(wf.initial_state)[0]))[0]}"
        ref = self.svc.create_case(workflow, opener, self.data(workflow)).ref
        for t in paths(wf)[state]:
            through_publicity(self.svc, ref)  # published, and its period over: as before publicity had one
            self.svc.fire(ref, t.name, f"h_{sorted(humans(t))[0]}", comment=COMMENT)
        through_publicity(self.svc, ref)
        assert self.svc.get_case(ref).state == state
        return ref

    def parked_in(self, workflow: str, state: str) -> str:
        """A case in ``state`` that refused cells share (they change nothing); checked before each use."""
        key = (workflow, state)
        if key in self.parked:
            ref, version = self.parked[key]
            view = self.svc.get_case(ref)
            if view.state == state and view.version == version:
                return ref
        ref = self.case_in(workflow, state)
        self.parked[key] = (ref, self.svc.get_case(ref).version)
        return ref


def _make_world(url: str, backend: str) -> tuple[World, Engine]:
    engine = make_engine(url)
    svc = Casework(engine, FixedClock(START))
    for definition in DEFS.values():
        svc.load_workflow(definition)
    for role in ROLES:
        svc.add_user(f"h_{role}", f"助手{role}", [role], ["*"])
        for scope, scopes in SCOPES.items():
            svc.add_user(f"{role}_{scope}", f"{role}{scope}", [role], scopes)
    return World(url, engine, svc, backend), engine


@pytest.fixture(scope="module")
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with module_database(request, tmp_path_factory, request.param, "matrix") as url:
        made, engine = _make_world(url, request.param)
        try:
            yield made
        finally:
            engine.dispose()


# ----------------------------------------------------------------------------------- helpers


def snapshot(world: World, ref: str) -> dict[str, Any]:
    return {
        "case": world.svc.get_case(ref).to_json(),
        "history": [h.to_json() for h in world.svc.history(ref)],
        "events": audit_count(world.engine),
    }


def refusal_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "engine.service" and r.getMessage().startswith("refused ")]


def assert_refused_and_logged(
    world: World,
    caplog: pytest.LogCaptureFixture,
    ref: str,
    trigger: str,
    actor: str,
    error: type[RefusedError],
    needles: list[str],
    **kwargs: Any,
) -> RefusedError:
    """Fire, expect exactly ``error`` (not a subclass) whose message has every needle; nothing changed;
    one refusal logged naming the actor, the case, the trigger and the kind of refusal."""
    before = snapshot(world, ref)
    caplog.clear()
    with pytest.raises(RefusedError) as info:
        world.svc.fire(ref, trigger, actor, **kwargs)
    exc = info.value
    assert type(exc) is error, f"expected {error.__name__}, got {type(exc).__name__}: {exc}"
    for needle in needles:
        assert needle in str(exc), f"{needle!r} not in {str(exc)!r}"
    assert snapshot(world, ref) == before
    records = refusal_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    message = records[0].getMessage()
    assert records[0].levelno == logging.INFO
    for part in (trigger, ref, actor, error.__name__):
        assert part in message, f"{part!r} not in log line {message!r}"
    return exc


# ------------------------------------------------------------------------------------ the matrix


def _check_cell(
    world: World, caplog: pytest.LogCaptureFixture, workflow: str, trigger: str, state: str, role: str, scope: str
) -> None:
    caplog.set_level(logging.INFO, logger="engine.service")
    wf = DEFS[workflow]
    t = wf.transitions[trigger]
    actor = f"{role}_{scope}"
    outcome = expected(wf, trigger, state, role, scope)
    if outcome is None:
        ref = world.case_in(workflow, state)
        before = world.svc.get_case(ref)
        events = audit_count(world.engine)
        caplog.clear()
        view = world.svc.fire(ref, trigger, actor, comment=COMMENT)
        assert refusal_records(caplog) == []
        assert view.state == t.dest
        stored = world.svc.get_case(ref)
        assert (stored.state, stored.version) == (t.dest, before.version + 1)
        # a step with a then: takes a step on the linked case too (an annual review's exit: its archive's)
        assert audit_count(world.engine) == events + 1 + (t.then is not None)
        last = world.svc.history(ref)[-1]
        assert (last.actor, last.role, last.action, last.trigger) == (actor, role, "fired", trigger)
        assert (last.from_state, last.to_state) == (state, t.dest)
        return
    ref = world.parked_in(workflow, state)
    if scope == "other":
        needles = [f"{actor} covers {ELSEWHERE}, not {HOME}, where case {ref} belongs"]
    elif outcome is PermissionDenied:
        needles = [f"{actor} ({role}) may not {trigger} case {ref}: that step needs role {' or '.join(t.by)}"]
    else:
        needles = [f"case {ref} is in {state} ({wf.states[state].label}); {trigger} applies only from"]
    exc = assert_refused_and_logged(world, caplog, ref, trigger, actor, outcome, needles, comment=COMMENT)
    assert getattr(exc, "ref", None) == ref


@pytest.mark.parametrize("world", [SQLITE], indirect=True)
@pytest.mark.parametrize(("workflow", "trigger", "state", "role", "scope"), CELLS)
def test_matrix(
    world: World, caplog: pytest.LogCaptureFixture, workflow: str, trigger: str, state: str, role: str, scope: str
) -> None:
    _check_cell(world, caplog, workflow, trigger, state, role, scope)


PG_CELLS = [
    ("poverty_archive", "submit", "apply", "clerk", "own"),
    ("poverty_archive", "submit", "apply", "clerk", "other"),
    ("poverty_archive", "pass_review", "review", "clerk", "star"),
    ("poverty_archive", "pass_review", "review", "reviewer", "star"),
    ("poverty_archive", "grant", "review", "approver", "star"),
    ("poverty_archive", "end_publicity", "publicise", "reviewer", "own"),
    ("poverty_archive", "record", "enter", "supervisor", "star"),
    ("annual_review", "keep", "confirm", "reviewer", "own"),
    ("annual_review", "report", "survey", "approver", "star"),
]


@pytest.mark.parametrize("world", [POSTGRES], indirect=True)
@pytest.mark.parametrize(("workflow", "trigger", "state", "role", "scope"), PG_CELLS)
def test_matrix_sample_on_postgres(
    world: World, caplog: pytest.LogCaptureFixture, workflow: str, trigger: str, state: str, role: str, scope: str
) -> None:
    _check_cell(world, caplog, workflow, trigger, state, role, scope)


def test_matrix_covers_what_it_should() -> None:
    """The matrix is not vacuous: it has every role, trigger and non-final state, and both verdicts."""
    assert ROLES == ["approver", "clerk", "reviewer", "supervisor"]
    verdicts = collections.Counter(p.id.rsplit("-", 1)[1] for p in CELLS)
    # (11 triggers × 6 non-final states of poverty_archive + 4 × 2 of annual_review) × 4 roles × 3 scopes
    assert len(CELLS) == (11 * 6 + 4 * 2) * 4 * 3
    # allowed: per trigger, each human role in its by × each of its source states × the 'own' and '*' scopes
    allowed = sum(len(humans(t)) * len(t.sources) * 2 for wf in DEFS.values() for t in wf.transitions.values())
    # poverty_archive: 19 before the correction step, which two roles take from three states (+6), and the
    # reviewer's exit from filed (+1, version 3); annual_review 4
    assert verdicts["allowed"] == allowed == (19 + 2 * 3 + 1 + 4) * 2
    assert verdicts["InvalidTransition"] > 0 and verdicts["PermissionDenied"] > 0
    assert set(verdicts) == {"allowed", "InvalidTransition", "PermissionDenied"}
    for d in DEFS.values():
        for t in d.transitions.values():
            assert any(f"{d.name}-{t.name}-" in p.id and p.id.endswith("-allowed") for p in CELLS), t.name


# ------------------------------------------------------------------------------------ four-eyes

FOUR_EYES = [
    pytest.param(wf.name, t.name, earlier, id=f"{wf.name}-{earlier}-then-{t.name}")
    for wf in DEFS.values()
    for t in wf.transitions.values()
    for earlier in t.not_by
]


def _bring(world: World, ref: str, workflow: str, target: set[str]) -> None:
    """Move a case forward with helper users, along the shortest path to ``target``, until it is there."""
    wf = DEFS[workflow]
    route = min((paths(wf)[s] for s in target), key=len)
    while (state := world.svc.get_case(ref).state) not in target:
        step = next(t for t in route if state in t.sources)
        through_publicity(world.svc, ref)
        world.svc.fire(ref, step.name, f"h_{sorted(humans(step))[0]}", comment=COMMENT)


@pytest.mark.parametrize("world", [SQLITE, POSTGRES], indirect=True)
@pytest.mark.parametrize(("workflow", "trigger", "earlier"), FOUR_EYES)
@pytest.mark.parametrize("scope", ["own", "star"])
def test_four_eyes_holds_for_a_person_with_both_roles(
    world: World, caplog: pytest.LogCaptureFixture, workflow: str, trigger: str, earlier: str, scope: str
) -> None:
    """Someone holding the roles of both steps (and scope ``*``) fired the earlier step: refused."""
    caplog.set_level(logging.INFO, logger="engine.service")
    wf = DEFS[workflow]
    t, e = wf.transitions[trigger], wf.transitions[earlier]
    dual = f"dual_{trigger}_{earlier}_{scope}"
    if dual not in {u.username for u in world.svc.users()}:
        world.svc.add_user(dual, "两职人员", sorted(humans(t) | humans(e)), SCOPES[scope])
    ref = world.case_in(workflow, wf.initial_state)
    _bring(world, ref, workflow, set(e.sources))
    world.svc.fire(ref, earlier, dual, comment=COMMENT)
    _bring(world, ref, workflow, set(t.sources))
    needles = [f"{dual} fired {earlier} on case {ref}, so someone else must {trigger} it (four-eyes rule)"]
    assert_refused_and_logged(world, caplog, ref, trigger, dual, SameActorForbidden, needles, comment=COMMENT)
    # somebody else may
    world.svc.fire(ref, trigger, f"h_{sorted(humans(t))[0]}", comment=COMMENT)
    assert world.svc.get_case(ref).state == t.dest


@pytest.mark.parametrize("world", [SQLITE, POSTGRES], indirect=True)
def test_clerk_and_reviewer_who_submitted_cannot_pass_review(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.service")
    if "ye2" not in {u.username for u in world.svc.users()}:
        world.svc.add_user("ye2", "叶志远", ["clerk", "reviewer"], [HOME])
    ref = world.svc.create_case("poverty_archive", "ye2", world.data("poverty_archive")).ref
    world.svc.fire(ref, "submit", "ye2")
    assert world.svc.history(ref)[-1].role == "clerk"
    assert_refused_and_logged(
        world, caplog, ref, "pass_review", "ye2", SameActorForbidden, ["ye2 fired submit", "four-eyes"]
    )
    # the user is still a reviewer for other steps (return needs no second pair of eyes)
    world.svc.fire(ref, "return", "ye2", comment="材料不全")
    assert world.svc.get_case(ref).state == "apply"


@pytest.mark.parametrize("world", [SQLITE, POSTGRES], indirect=True)
def test_nobody_can_act_as_system_through_the_service(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """``fire(..., actor='system')`` is refused for every trigger — even end_publicity, which the
    workflow gives to system — so nobody can use the scheduler's identity to get past four-eyes."""
    caplog.set_level(logging.INFO, logger="engine.service")
    for workflow, wf in DEFS.items():
        for state in paths(wf):
            ref = world.parked_in(workflow, state)
            for trigger in wf.transitions:
                assert_refused_and_logged(
                    world,
                    caplog,
                    ref,
                    trigger,
                    "system",
                    PermissionDenied,
                    ["'system' is the scheduler's own identity"],
                )


def test_nobody_can_act_as_system_from_the_cli(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "cli.db"
    shutil.copy(sqlite_template, path)
    made, engine = _make_world(f"sqlite:///{path}", "sqlite")
    try:
        ref = made.case_in("poverty_archive", "publicise")
        before = snapshot(made, ref)
        now = made.svc.clock.now()  # past the publicity period (case_in took it there)
    finally:
        engine.dispose()
    runs = {
        "fire": ["case", "fire", ref, "end_publicity", "--as", "system"],
        "add": ["user", "add", "system", "--name", "调度", "--role", "reviewer", "--scope", "*"],
    }
    for what, args in runs.items():
        done = casework(f"sqlite:///{path}", *args)  # the command's own code, in this process
        # firing is refused by the rules (1); a reserved username is unusable input (2)
        assert done.rc == (1 if what == "fire" else 2), (what, done)
        assert done.out == "" and "Traceback" not in done.err
        lines = done.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), done.err
        if what == "fire":
            assert "'system' is the scheduler's own identity" in lines[0]
        else:
            assert "'system' is reserved for the scheduler" in lines[0]
    engine = make_engine(f"sqlite:///{path}")
    try:
        again = World(f"sqlite:///{path}", engine, Casework(engine, FixedClock(now)), "sqlite")
        assert snapshot(again, ref) == before
        assert "system" not in {u.username for u in again.svc.users()}
    finally:
        engine.dispose()


SYSTEM_ONLY = """\
workflow: expiry_test
version: 1
title: 到期测试
ref_prefix: EX
roles:
  clerk: 经办人
fields:
  county: {type: choice, label: 所属县区, scope: true, choices: [芗城区, 龙文区]}
states:
  open: {label: 办理中, initial: true, timeout: {after: 2 days, fire: expire}}
  closed: {label: 办结, final: true}
  expired: {label: 已过期, final: true}
transitions:
  close: {label: 办结, from: open, to: closed, by: clerk}
  expire: {label: 过期, from: open, to: expired, by: system}
"""


@pytest.mark.parametrize("world", [SQLITE], indirect=True)
def test_a_system_only_step_refuses_every_human(world: World, caplog: pytest.LogCaptureFixture) -> None:
    """The bundled workflows have no system-only step, so one is declared here: every human role,
    with any scope, is refused it; only the scheduler's path may take it."""
    caplog.set_level(logging.INFO, logger="engine.service")
    wf = load_definition(SYSTEM_ONLY, "expiry_test.yaml")
    world.svc.load_workflow(wf)
    for role in ("clerk", "reviewer"):
        if f"x_{role}" not in {u.username for u in world.svc.users()}:
            world.svc.add_user(f"x_{role}", "人员", [role, "approver", "supervisor"], ["*"])
    ref = world.svc.create_case("expiry_test", "x_clerk", {"county": HOME}).ref
    for actor in ("x_clerk", "x_reviewer", "clerk_star", "clerk_own"):
        assert_refused_and_logged(
            world, caplog, ref, "expire", actor, PermissionDenied, [f"{actor} (", "that step needs role system"]
        )
    assert_refused_and_logged(
        world, caplog, ref, "expire", "system", PermissionDenied, ["'system' is the scheduler's own identity"]
    )
    assert world.svc.fire_as_system(ref, "expire").state == "expired"
    last = world.svc.history(ref)[-1]
    assert (last.actor, last.role, last.trigger) == ("system", "system", "expire")


@pytest.mark.parametrize("world", [SQLITE], indirect=True)
def test_refusal_log_says_why(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="engine.service")
    ref = world.parked_in("poverty_archive", "review")
    lines = {}
    for actor in ("clerk_star", "reviewer_other"):  # wrong role; wrong scope
        caplog.clear()
        with pytest.raises(PermissionDenied) as info:
            world.svc.fire(ref, "pass_review", actor)
        (record,) = refusal_records(caplog)
        reason = str(info.value)
        logged = record.getMessage() + " " + " ".join(str(v) for v in record.__dict__.values())
        assert reason in logged, f"{reason!r} not in the log record {record.getMessage()!r}"
        lines[actor] = record.getMessage()
    assert lines["clerk_star"].replace("clerk_star", "X") != lines["reviewer_other"].replace("reviewer_other", "X")
