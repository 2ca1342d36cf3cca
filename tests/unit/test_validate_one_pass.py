"""One pass (issue 12, item 7b): every problem of a workflow at once, by line, with no false follow-ups.

``workflow validate`` used to stop at the schema (keys, types, formats) and
report reference and graph problems only after those were fixed. Now what the
schema refused is left out of a copy, and the later checks run on the rest.
"""

from __future__ import annotations

import pytest

from engine.definition import load_definition
from engine.errors import DefinitionError

# the example: a misspelt trigger in a timeout's fire, a bad duration, a step to an unknown state
EXAMPLE = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
states:
  draft:
    initial: true
    deadline: 5 workin days
    timeout: {after: 10 days, fire: auto_clse}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk}
  auto_close: {from: draft, to: done, by: system}
  archive: {from: draft, to: archived, by: clerk}
"""


def located(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "wf.yaml")
    return [(p.line, p.column, p.message) for p in info.value.problems]


def test_schema_reference_and_graph_problems_come_in_one_pass_by_line() -> None:
    # before: only the duration (a schema problem); the trigger and the state after it was fixed
    assert located(EXAMPLE) == [
        (
            9,
            15,
            "states.draft.deadline: '5 workin days' is not a duration; "
            "write e.g. '5 working days', '7 days' or '48 hours'",
        ),
        (10, 37, "unknown transition 'auto_clse'; did you mean 'auto_close'?"),
        (15, 30, "unknown state 'archived'; known: done, draft"),
    ]


def test_a_trigger_the_schema_refuses_is_reported_with_the_rest() -> None:
    text = EXAMPLE.replace("fire: auto_clse", "fire: Auto_Close")
    problems = located(text)
    assert [(line, col) for line, col, _ in problems] == [(9, 15), (10, 37), (15, 30)]
    assert problems[1][2].startswith("states.draft.timeout"), problems
    assert "unknown state 'archived'" in problems[2][2]


def test_a_type_check_problem_comes_with_schema_problems() -> None:
    text = EXAMPLE.replace("roles:", "fields:\n  name: {type: text}\nroles:").replace(
        "by: clerk}\n  auto_close", 'by: clerk, when: "case.name > 3", require: [name]}\n  auto_close'
    )
    messages = [m for _, _, m in located(text)]
    assert len(messages) == 4, messages
    assert messages[2].startswith("when: 'case.name > 3' cannot run with case.name = ")


def test_a_reference_to_an_entry_the_schema_refused_is_not_reported_again() -> None:
    text = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
fields:
  size: {type: integr}
states:
  draft: {initial: true, timeout: {after: 2 days, fire: broken}}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk, not_by: broken, when: "case.size > 1", require: [size]}
  broken: {from: draft, by: system}
  other: {from: draft, to: nowhere, by: clerk}
"""
    # not: unknown transition 'broken' (twice), case.size is not a field, unknown field 'size'
    assert located(text) == [
        (7, 16, "fields.size.type: 'integr' is not allowed here; did you mean 'integer'?"),
        (13, 11, "missing required key 'to'"),
        (14, 28, "unknown state 'nowhere'; known: done, draft"),
    ]


def test_a_state_refused_for_its_name_leaves_no_unknown_state_or_graph_problems() -> None:
    text = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
states:
  Draft: {initial: true}
  review: {}
  done: {final: true}
transitions:
  finish: {from: draft, to: review, by: clerk}
  approve: {from: review, to: done, by: clerk}
  more: {from: review, to: nowhere, by: clerk}
"""
    # not: unknown state 'draft', no initial state, review cannot be reached
    assert located(text) == [
        (
            7,
            3,
            "states.Draft: 'Draft' is not a valid name: use lowercase letters, digits and '_', starting with a letter",
        ),
        (13, 28, "unknown state 'nowhere'; known: done, review"),
    ]


def test_a_removed_key_leaves_no_problem_about_its_entry() -> None:
    # 'initial: yes' is text in YAML 1.2; without it there would be no initial state, and without the
    # deadline the reminder would "need a deadline": neither is reported
    text = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
states:
  draft: {initial: yes, deadline: 5 workin days, remind: [{before: 1 day, to: clrk}]}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk}
"""
    problems = located(text)
    assert [m.split(":")[0] for _, _, m in problems if "template" not in m] == [
        "states.draft.initial",
        "states.draft.deadline",
        "unknown role 'clrk'; did you mean 'clerk'?",
    ], problems


def test_a_list_entry_removed_keeps_the_positions_of_the_next() -> None:
    text = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
states:
  draft: {initial: true}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk}
notify:
  - {on: enter done, to: clerk, template: a, bogus: 1}
  - {on: "wrong", to: clerk, template: a}
  - {on: fire nope, to: clerk, template: a}
"""
    problems = [(line, col, m) for line, col, m in located(text) if "no template file" not in m]
    assert problems == [
        (12, 46, "unknown key 'bogus'; known: channels, on, template, to"),
        (13, 10, "notify.1.on: 'wrong' should be 'enter STATE' or 'fire TRIGGER'"),
        (14, 10, "unknown transition 'nope'; known: finish"),
    ]


def test_a_missing_workflow_name_still_lets_the_rest_be_checked() -> None:
    text = EXAMPLE.replace("workflow: mini\n", "")
    messages = [m for _, _, m in located(text)]
    assert messages[0] == "missing required key 'workflow'"
    assert len(messages) == 4 and "unknown state 'archived'" in messages[-1], messages


def test_without_states_there_is_nothing_more_to_check() -> None:
    text = "workflow: mini\nversion: 1\ntitle: T\nroles: {clerk: C}\ntransitions:\n  a: {from: x, to: y, by: clerk}\n"
    assert located(text) == [(1, 1, "missing required key 'states'")]
