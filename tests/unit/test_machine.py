"""The machine's table lookup (``move``) agrees with firing through ``transitions`` itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import load_definition_file
from engine.machine import build_machine, fire_on_model, move

WORKFLOWS = sorted((Path(__file__).resolve().parents[2] / "workflows").glob("*.yaml"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_move_agrees_with_transitions_for_every_state_and_trigger(path: Path) -> None:
    wf = load_definition_file(path)
    machine = build_machine(wf)
    pairs = 0
    for state in wf.states:
        for trigger in [*wf.transitions, "no_such_trigger"]:
            assert move(machine, state, trigger) == fire_on_model(machine, state, trigger), (state, trigger)
            pairs += 1
    assert pairs == len(wf.states) * (len(wf.transitions) + 1)


def test_move_follows_the_declared_graph() -> None:
    wf = load_definition_file(WORKFLOWS[[p.stem for p in WORKFLOWS].index("poverty_archive")])
    machine = build_machine(wf)
    assert move(machine, "apply", "submit") == "review"
    assert move(machine, "review", "submit") is None  # submit does not leave 审核
    assert move(machine, "filed", "withdraw") is None  # nothing leaves a final state
