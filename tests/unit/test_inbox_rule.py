"""Which roles a case waits for (its place in their inbox): the work that moves it forward.

A step into a ``void`` final state (a withdrawal, a rejection) or a step back
does not by itself put a case in anyone's inbox; ``inbox: true|false`` on a
step decides for it. Issue 12, item 6: ``case inbox --as lin`` (clerk) and
``--as wu`` (reviewer) listed the same cases, because ``withdraw`` (allowed
to both) counted as work waiting for both.
"""

from __future__ import annotations

import pytest

from engine import WorkflowDef, load_definition, load_definition_file
from engine.access import roles_acting_in, waits_for
from tests.conftest import BUNDLED, ROOT

ARCHIVE = load_definition_file(BUNDLED)
REVIEW = load_definition_file(ROOT / "workflows" / "annual_review.yaml")


@pytest.mark.parametrize(
    ("state", "waiting"),
    [
        ("apply", {"clerk"}),  # submit (withdraw is allowed to clerk and reviewer: not work)
        ("review", {"reviewer"}),  # pass_review (reject and withdraw end in void states; return is back)
        ("publicise", {"reviewer", "system"}),  # end_publicity
        ("approve", {"approver"}),  # grant (reject, withdraw void; correct back)
        ("enter", {"clerk"}),  # record
        ("filed", set()),  # exit: inbox: false — a filed archive waits for no one
        ("exited", set()),
        ("withdrawn", set()),
    ],
)
def test_the_bundled_archive_waits_for_the_work_that_moves_it_on(state: str, waiting: set[str]) -> None:
    assert waits_for(ARCHIVE, state) == waiting


def test_a_case_in_review_is_not_in_the_clerks_inbox_though_the_clerk_may_withdraw_it() -> None:
    assert "clerk" in roles_acting_in(ARCHIVE, "review")  # withdraw
    assert "clerk" not in waits_for(ARCHIVE, "review")


def test_when_every_step_forward_ends_void_those_steps_are_the_work() -> None:
    """annual_review's confirm: keep and exit both close the review in a void state (freeing archive_ref)."""
    assert waits_for(REVIEW, "confirm") == {"reviewer"}
    assert waits_for(REVIEW, "survey") == {"clerk"}


SMALL = """\
workflow: small
version: 1
title: 小
roles: {{a: 甲, b: 乙, c: 丙}}
fields:
  x: {{type: text, label: x}}
states:
  start: {{label: 开始, initial: true}}
  middle: {{label: 中间}}
  done: {{label: 完成, final: true}}
  dropped: {{label: 撤销, final: true, void: true}}
transitions:
  go: {{label: 下一步, from: start, to: middle, by: a{go}}}
  drop: {{label: 撤销, from: [start, middle], to: dropped, by: b{drop}}}
  back: {{label: 退回, from: middle, to: start, by: c{back}}}
  finish: {{label: 完成, from: middle, to: done, by: a}}
"""


def small(go: str = "", drop: str = "", back: str = "") -> WorkflowDef:
    """A four-state workflow; each argument is added to that step's declaration (e.g. ``, inbox: true``)."""
    return load_definition(SMALL.format(go=go, drop=drop, back=back), "small.yaml")


def test_inbox_declared_on_a_step_decides_for_it() -> None:
    plain = small()
    assert waits_for(plain, "start") == {"a"} and waits_for(plain, "middle") == {"a"}
    forced = small(drop=", inbox: true", back=", inbox: true")
    assert waits_for(forced, "start") == {"a", "b"}
    assert waits_for(forced, "middle") == {"a", "b", "c"}
    out = small(go=", inbox: false")
    assert waits_for(out, "start") == set()  # declared: the case waits for no one there
    assert out.transitions["go"].inbox is False and plain.transitions["go"].inbox is None
