"""Edit rights ("what was decided stays decided"): a state's ``edit:``, the default rule, the loader's
refusals, the refusal of a change, and the four-eyes facts of who entered or changed the data.

Pure: the definitions are loaded from text and the rules are called directly; the database paths
(editing, steps with data, corrections) are in tests/integration/test_edit_rights.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest

from engine.access import (
    SYSTEM,
    Actor,
    check_edit,
    four_eyes_conflict,
    four_eyes_facts,
    with_data_entry,
    with_fired,
)
from engine.definition import WorkflowDef, load_definition, load_definition_file
from engine.errors import CODES, Code, DefinitionError, PermissionDenied, Problem

ROOT = Path(__file__).resolve().parents[2]
POVERTY = load_definition_file(ROOT / "workflows" / "poverty_archive.yaml")
ANNUAL = load_definition_file(ROOT / "workflows" / "annual_review.yaml")
SUBSIDY = load_definition_file(ROOT / "tests" / "fixtures" / "workflows" / "valid" / "subsidy_payment.yaml")

MINI = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
  reviewer: Reviewer
fields:
  cause: {type: text}
  income: {type: integer}
  materials: {type: checklist, items: [form, id]}
states:
  draft: {initial: true DRAFT}
  checked: {CHECKED}
  done: {final: true}
transitions:
  submit: {from: draft, to: checked, by: clerk}
  drop: {from: draft, to: done, by: reviewer}
  finish: {from: checked, to: done, by: reviewer, not_by: submit}
"""


def mini(draft: str = "", checked: str = "") -> WorkflowDef:
    return load_definition(MINI.replace(" DRAFT", draft).replace("CHECKED", checked), "mini.yaml")


def problems(draft: str = "", checked: str = "") -> list[tuple[int, int, str]]:
    with pytest.raises(DefinitionError) as info:
        mini(draft, checked)
    return [(p.line, p.column, p.message) for p in info.value.problems]


def rights(wf: WorkflowDef, state: str) -> dict[str, tuple[str, ...]]:
    return {e.role: e.fields for e in wf.states[state].edit}


ALL = ("cause", "income", "materials")

# --- the definition ----------------------------------------------------------------------------


def test_the_bundled_archive_is_edited_only_in_apply_by_the_clerk() -> None:
    assert rights(POVERTY, "apply") == {"clerk": tuple(POVERTY.fields)}
    assert all(not POVERTY.states[s].edit for s in POVERTY.states if s != "apply")
    # and the way back to change what was decided: a correction step, comment required
    correct = POVERTY.transitions["correct"]
    assert (correct.sources, correct.dest, correct.comment_required) == (
        ("publicise", "approve", "enter"),
        "apply",
        True,
    )


def test_the_annual_review_keeps_the_default_rule() -> None:
    assert rights(ANNUAL, "survey") == {"clerk": tuple(ANNUAL.fields)}  # the role that reports from it
    assert not ANNUAL.states["confirm"].edit  # its way back is resurvey


def test_default_rule_is_the_initial_state_by_every_role_acting_there() -> None:
    wf = mini()
    assert rights(wf, "draft") == {"clerk": ALL, "reviewer": ALL}  # reviewer acts there too (drop)
    assert rights(wf, "checked") == {} and rights(wf, "done") == {}


def test_declared_rights_replace_the_default_and_keep_the_field_order() -> None:
    wf = mini(", edit: {clerk: all}", "edit: {reviewer: [materials, cause]}")
    assert rights(wf, "draft") == {"clerk": ALL}
    assert rights(wf, "checked") == {"reviewer": ("cause", "materials")}
    assert wf.states["checked"].editable(["clerk", "reviewer"]) == {"cause", "materials"}
    described = wf.describe()["states"]
    assert described["draft"]["edit"] == {"clerk": "all"}
    assert described["checked"]["edit"] == {"reviewer": ["cause", "materials"]}
    assert "edit" not in described["done"]


def test_an_empty_edit_closes_even_the_initial_state() -> None:
    assert rights(mini(", edit: {}"), "draft") == {}


@pytest.mark.parametrize(
    ("draft", "checked", "expected"),
    [
        ("", "edit: {reviewer: [cause, incme]}", (13, 38, "unknown field 'incme'; did you mean 'income'?")),
        ("", "edit: {reveiwer: all}", (13, 20, "unknown role 'reveiwer'; did you mean 'reviewer'?")),
        (
            "",
            "edit: {system: all}",
            (13, 20, "'system' (the scheduler) never changes a case's data; give the right to a person's role"),
        ),
        ("", "edit: {reviewer: [cause, cause]}", (13, 30, "cause listed more than once; list each field once")),
        (
            "",
            "edit: {reviewer: everything}",
            (
                13,
                30,
                "states.checked.edit.reviewer: write 'all' or a list of the fields reviewer may change here, "
                "e.g. [materials]",
            ),
        ),
        (
            "",
            "edit: {reviewer: []}",
            (
                13,
                30,
                "states.checked.edit.reviewer: write 'all' or a list of the fields reviewer may change here, "
                "e.g. [materials]",
            ),
        ),
        (
            ", edit: [clerk]",
            "",
            (
                12,
                32,
                "states.draft.edit: map each role to the fields it may change here, "
                "e.g. {reviewer: [materials]} or {clerk: all}",
            ),
        ),
    ],
    ids=["unknown-field", "unknown-role", "system", "field-twice", "not-all", "empty-list", "not-a-mapping"],
)
def test_the_loader_refuses_a_bad_edit_located(draft: str, checked: str, expected: tuple[int, int, str]) -> None:
    assert problems(draft, checked) == [expected]


def test_the_loader_refuses_edit_rights_in_a_final_state() -> None:
    text = (
        MINI.replace(" DRAFT", "")
        .replace("CHECKED", "")
        .replace("done: {final: true}", "done: {final: true, edit: {clerk: [cause]}}")
    )
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "mini.yaml")
    assert [(p.line, p.message) for p in info.value.problems] == [
        (14, "'done' is a final state: its data can no longer be changed; remove 'edit'")
    ]


def test_an_edit_cannot_name_an_unknown_state_a_misspelt_state_is_caught_as_unreachable() -> None:
    # edit: sits under the state it is about, so it names no state; a misspelt state key is a new state
    text = MINI.replace(" DRAFT", "").replace(
        "  checked: {CHECKED}\n", "  checked: {}\n  chekced: {edit: {clerk: all}}\n"
    )
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "mini.yaml")
    messages = [p.message for p in info.value.problems]
    assert "state 'chekced' cannot be reached from the initial state 'draft'; add a transition to it or remove it" in (
        messages
    )


def test_every_problem_is_a_located_problem() -> None:
    with pytest.raises(DefinitionError) as info:
        mini("", "edit: {reveiwer: [incme]}")
    assert all(isinstance(p, Problem) and p.file == "mini.yaml" for p in info.value.problems)


# --- refusing a change -------------------------------------------------------------------------


def actor(name: str, *roles: str) -> Actor:
    return Actor(name, roles, ("*",))


def refusal(wf: WorkflowDef, state: str, user: Actor, fields: list[str], trigger: str | None = None) -> Any:
    with pytest.raises(PermissionDenied) as info:
        check_edit(wf, "ZZ-2026-000001", state, user, fields, trigger)
    assert info.value.code is Code.NOT_EDITABLE
    assert set(info.value.facts) <= set(CODES[Code.NOT_EDITABLE].facts)
    return info.value


def test_the_clerk_may_change_anything_in_apply() -> None:
    assert check_edit(POVERTY, "ZZ-2026-000001", "apply", actor("lin", "clerk"), list(POVERTY.fields)) == "clerk"


def test_a_reviewer_changing_the_id_number_in_review_is_told_the_way_back() -> None:
    exc = refusal(POVERTY, "review", actor("wu", "reviewer"), ["applicant_name", "id_number", "income_per_capita"])
    assert exc.message == (
        "wu (reviewer) may not change applicant_name (申请人姓名), id_number (公民身份号码), "
        "income_per_capita (家庭月人均收入（元）) of case ZZ-2026-000001 in review (审核): nothing may be changed "
        "there; to correct them, send the case back with return (reviewer, comment required) to apply (申请), "
        "where clerk may change them; the steps after it are then taken again"
    )
    assert exc.facts == {
        "case": "ZZ-2026-000001",
        "state": "review",
        "user": "wu",
        "roles": ["reviewer"],
        "fields": ["applicant_name", "id_number", "income_per_capita"],
        "editable": [],
        "corrections": ["return"],
    }


@pytest.mark.parametrize(
    ("state", "user", "field"),
    [("approve", actor("su", "approver"), "household_size"), ("enter", actor("lin", "clerk"), "applicant_name")],
)
def test_after_review_the_way_back_is_the_correction_step(state: str, user: Actor, field: str) -> None:
    exc = refusal(POVERTY, state, user, [field], "grant")
    assert exc.facts["corrections"] == ["correct"] and exc.facts["trigger"] == "grant"
    assert "send the case back with correct (reviewer or approver, comment required) to apply (申请), " in exc.message
    assert f"may not change {field} ({POVERTY.fields[field].label})" in exc.message


def test_what_may_be_changed_there_is_named() -> None:
    exc = refusal(SUBSIDY, "pay", actor("qian", "cashier"), ["amount"])
    assert "in pay (发放), where they may change only voucher; to correct it, send the case back with reconsider " in (
        exc.message
    )
    assert "to approve (审批), where approver may change it" in exc.message
    assert exc.facts["editable"] == ["voucher"]


def test_without_a_way_back_the_refusal_says_so() -> None:
    exc = refusal(mini(), "checked", actor("wu", "reviewer"), ["cause"])
    assert exc.message.endswith(
        ": nothing may be changed there; "
        "no step of this workflow sends the case back to a state where it may be changed"
    )
    assert exc.facts["corrections"] == []


def test_the_scheduler_changes_no_data() -> None:
    refusal(POVERTY, "apply", SYSTEM, ["cause"])


# --- four-eyes: who entered or changed the data -------------------------------------------------


class Ev(NamedTuple):
    actor: str
    action: str
    trigger: str | None = None
    changes: dict[str, Any] | None = None


def test_four_eyes_facts_replay_the_trail() -> None:
    trail = [
        Ev("ye", "created", changes={"cause": [None, "x"]}),
        Ev("lin", "updated", changes={"cause": ["x", "y"]}),
        Ev("lin", "fired", "submit"),
        Ev("wu", "objection_added", changes={"objection": [None, 1]}),  # a note, not data
        Ev("wu", "paused"),
        Ev("wu", "fired", "return", changes={}),
        Ev("chen", "updated", changes={"income": [1, 2]}),
        Ev("lin", "fired", "submit", changes={"materials": [None, ["form"]]}),  # data given with the step
        Ev("xu", "fired", "pass_review"),
    ]
    assert four_eyes_facts(trail) == {
        "@": ["ye", "lin", "chen"],
        "@submit": ["ye", "lin", "chen"],
        "submit": ["lin"],
        "@return": ["ye", "lin"],
        "return": ["wu"],
        "@pass_review": ["ye", "lin", "chen"],
        "pass_review": ["xu"],
    }
    assert "wu" not in four_eyes_facts(trail)["@"]


def test_the_row_helpers_make_the_same_facts_as_the_replay() -> None:
    fired_by: dict[str, list[str]] = {"@": ["ye"]}  # as opening a case records it
    fired_by = with_data_entry(fired_by, "lin")
    fired_by = with_fired(fired_by, "submit", "lin")
    fired_by = with_fired(fired_by, "return", "wu", edited=False)
    fired_by = with_fired(fired_by, "submit", "chen", edited=True)
    trail = [
        Ev("ye", "created"),
        Ev("lin", "updated", changes={"a": [1, 2]}),
        Ev("lin", "fired", "submit"),
        Ev("wu", "fired", "return"),
        Ev("chen", "fired", "submit", changes={"a": [2, 3]}),
    ]
    assert fired_by == four_eyes_facts(trail)


def test_whoever_entered_the_data_before_a_step_may_not_check_it() -> None:
    pass_review, grant = POVERTY.transitions["pass_review"], POVERTY.transitions["grant"]
    facts = four_eyes_facts([Ev("ye", "created"), Ev("lin", "fired", "submit")])
    assert four_eyes_conflict("ye", pass_review, facts) == "submit"  # ye entered what lin submitted
    assert four_eyes_conflict("lin", pass_review, facts) == "submit"
    assert four_eyes_conflict("wu", pass_review, facts) is None
    # a change after a step is not part of it: the reviewer who changed data in review may still pass it
    facts = four_eyes_facts(
        [Ev("lin", "created"), Ev("lin", "fired", "submit"), Ev("wu", "updated", changes={"a": [1, 2]})]
    )
    assert four_eyes_conflict("wu", pass_review, facts) is None
    facts = with_data_entry(four_eyes_facts([Ev("lin", "created"), Ev("lin", "fired", "submit")]), "wu")
    facts = with_fired(facts, "pass_review", "xu")
    assert four_eyes_conflict("wu", grant, facts) == "pass_review"  # ... but not grant what they changed
    assert four_eyes_conflict("su", grant, facts) is None


def test_a_step_without_not_by_is_open_to_editors() -> None:
    facts = four_eyes_facts([Ev("ye", "created")])
    assert four_eyes_conflict("ye", POVERTY.transitions["submit"], facts) is None
