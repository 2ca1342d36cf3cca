"""Who a case waits for: the roles that may move it on, not those that may only send it back."""

from __future__ import annotations

import pytest

from engine import load_definition_file
from engine.access import is_step_back, roles_acting_in, waits_for
from tests.conftest import BUNDLED

WF = load_definition_file(BUNDLED)


@pytest.mark.parametrize(
    ("state", "waiting"),
    [
        # a step into a void state (withdraw, reject) is not work waiting (tests/unit/test_inbox_rule.py)
        ("apply", {"clerk"}),  # submit
        ("review", {"reviewer"}),  # pass_review (return is back)
        ("publicise", {"system", "reviewer"}),  # end_publicity (uphold and correct are back)
        ("approve", {"approver"}),  # grant (correct is back)
        ("enter", {"clerk"}),  # record (correct is back)
        ("filed", set()),  # exit is declared inbox: false
    ],
)
def test_a_case_waits_for_the_roles_that_move_it_on(state: str, waiting: set[str]) -> None:
    assert waits_for(WF, state) == waiting
    assert waits_for(WF, state) <= roles_acting_in(WF, state)


def test_steps_back_are_the_returns_the_upheld_objection_and_the_correction() -> None:
    back = {(t.name, s) for t in WF.transitions.values() for s in t.sources if is_step_back(WF, t, s)}
    assert back == {
        ("return", "review"),
        ("uphold_objection", "publicise"),
        ("correct", "publicise"),
        ("correct", "approve"),
        ("correct", "enter"),
    }
