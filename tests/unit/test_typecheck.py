"""Type-checked expressions (issue 12, item 2): a guard or computed expression that cannot run is refused at load.

``workflow validate`` used to accept ``case.cost * 0.10``, which then failed
at every step with ``TypeError: Decimal and float`` and told the clerk to
fill in fields that were filled in. Now a number written with a decimal point
is an exact Decimal, and every guard and ``compute.expr`` is run on typed
example values of the fields it reads when the workflow loads.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.definition import load_definition, load_definition_file
from engine.definition.typecheck import examples, snapshot
from engine.errors import Code, DefinitionError, GuardFailed, Problem
from engine.expressions import ExpressionError, compile_guard
from engine.rules import check_ready

ROOT = Path(__file__).resolve().parents[2]

# line 19 holds the guard; its value starts at column 52 (after 'when: ')
WORKFLOW = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
fields:
  cost: {{type: decimal, min: 0}}
  self_paid: {{type: decimal, min: 0, max: 100000}}
  size: {{type: integer, min: 0, max: 20}}
  name: {{type: text}}
  kind: {{type: choice, choices: [a, b]}}
  docs: {{type: checklist, items: [x, y]}}
  day: {{type: date}}
  needed: {{type: integer, required: true}}
states:
  draft: {{initial: true}}
  done: {{final: true}}
transitions:
  finish: {{from: draft, to: done, by: clerk, when: "{guard}"{extra}}}
"""
GUARD_AT = (19, 52)


def workflow(guard: str, require: list[str] | None = None) -> str:
    extra = f", require: [{', '.join(require)}]" if require else ""
    return WORKFLOW.format(guard=guard, extra=extra)


def problems(text: str) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "wf.yaml")
    return info.value.problems


# --- exact decimal literals ------------------------------------------------------------------------------------


def test_a_decimal_literal_times_a_decimal_field_is_exact() -> None:
    # before: 0.10 was a float, and Decimal * float raised TypeError at every step
    value = compile_guard("case.self_paid * 0.10").value({"self_paid": Decimal("612.5")})
    assert type(value) is Decimal
    assert value == Decimal("61.25")
    assert compile_guard("0.1").value({}) == Decimal("0.1")  # the literal's text, not 0.1000000000000000055…
    assert str(compile_guard("0.10 + 0.20").value({})) == "0.3"
    assert compile_guard("case.x * 0.1 == 0.3").evaluate({"x": 3}) is True


def test_a_float_from_the_float_filter_still_does_not_mix_with_a_decimal() -> None:
    with pytest.raises(ExpressionError, match=r"Decimal.*float|float.*Decimal"):
        compile_guard("case.x * (case.t | float) > 1").evaluate({"x": Decimal("2"), "t": "1.5"})


def test_division_and_rounding_of_exact_numbers_stay_exact() -> None:
    assert compile_guard("7 / 2 * 0.5").value({}) == Decimal("1.75")
    assert compile_guard("case.n / 4 == 0.25").evaluate({"n": 1}) is True
    floor = compile_guard("case.x | round(1, 'floor')").value({"x": Decimal("1.29")})
    assert floor == Decimal("1.2") and type(floor) is Decimal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("case.x < 0.12345678901234567", "more than 15 significant digits"),
        ("case.x < 1e999", "too large"),
    ],
)
def test_a_literal_that_a_float_cannot_hold_exactly_is_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_guard(text)


# --- guards that cannot run --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guard", "require", "parts"),
    [
        (
            "case.cost * (case.name | float) > 5",
            ["cost", "name"],
            ["case.cost = 0 (decimal)", "Decimal' and 'float'", "leave out '| float'"],
        ),
        (
            "case.name > 3",
            ["name"],
            ["case.name = '陈' (text)", "'>' not supported between instances of 'str' and 'int'", "quoted text"],
        ),
        ("case.size | length > 3", ["size"], ["case.size = 0 (integer)", "has no len()", "'| length' counts"]),
        ("case.day < 3", ["day"], ["case.day = '2026-11-02' (date)", "compare it with another date field"]),
        ("case.cost / case.size > 3", ["cost", "size"], ["divides by zero when case.size is 0", "'min: 1'"]),
        ("case.self_paid * 0.10 > case.needed * case.kind", ["self_paid", "kind"], ["case.kind = 'a' (choice)"]),
    ],
)
def test_a_guard_that_raises_on_filled_values_is_refused_where_it_is(
    guard: str, require: list[str], parts: list[str]
) -> None:
    [problem] = problems(workflow(guard, require))
    assert (problem.line, problem.column) == GUARD_AT
    assert problem.message.startswith(f"when: '{guard}' cannot run with "), problem.message
    for part in parts:
        assert part in problem.message, problem.message


@pytest.mark.parametrize(
    ("guard", "empty"),
    [
        ("case.cost * 0.10 > 5", "cost"),  # the issue's guard: fine when filled, but cost may be empty
        ("case.self_paid * 0.10 < case.cost", "cost"),
        ("case.name | length > 2", "name"),
    ],
)
def test_a_guard_that_raises_on_an_empty_field_is_refused_with_the_remedies(guard: str, empty: str) -> None:
    require = ["self_paid"] if "self_paid" in guard else []
    [problem] = problems(workflow(guard, require))
    assert (problem.line, problem.column) == GUARD_AT
    assert f"cannot run when case.{empty} is empty" in problem.message, problem.message
    assert f"add {empty} to the step's 'require:'" in problem.message
    assert f"'case.{empty} is not none and …'" in problem.message


@pytest.mark.parametrize(
    ("guard", "require"),
    [
        ("case.cost * 0.10 > 5", ["cost"]),  # required by the step: never empty when the guard runs
        ("case.needed * 0.5 > 1", []),  # required: true on the field
        ("case.cost is not none and case.cost * 0.10 > 5", []),
        ("case.cost is none or case.cost > 5", []),
        ("case.docs | length == 2", []),  # an empty checklist is [], so | length counts it
        ("'x' in case.docs", []),
        ("case.kind == 'a' and case.state == 'draft' and case.open_objections == 0", []),
        ("case.size * case.cost > 100", ["size", "cost"]),
        ("case.cost / 3 > 1.5", ["cost"]),
        ("case.name ~ case.kind != ''", []),
    ],
)
def test_a_guard_that_runs_on_every_value_loads(guard: str, require: list[str]) -> None:
    wf = load_definition(workflow(guard, require))
    assert wf.transitions["finish"].when is not None


def test_the_unless_guard_is_checked_too() -> None:
    text = workflow("case.needed > 0").replace('when: "case.needed > 0"', 'unless: "case.name > 3", require: [name]')
    [problem] = problems(text)
    assert problem.message.startswith("unless: 'case.name > 3' cannot run with case.name = ")


def test_a_guard_reading_an_unknown_field_is_reported_once() -> None:
    [problem] = problems(workflow("case.nmae > 3"))
    assert problem.message == "when: case.nmae is not a field; did you mean 'name'?"


# --- computed expressions ----------------------------------------------------------------------------------------

COMPUTED = """\
workflow: mini
version: 1
title: Minimal
roles:
  clerk: Clerk
fields:
  cost: {{type: decimal, min: 0}}
  share: {{type: decimal, compute: {{expr: "{expr}", at: finish}}}}
states:
  draft: {{initial: true}}
  done: {{final: true}}
transitions:
  finish: {{from: draft, to: done, by: clerk}}
"""


@pytest.mark.parametrize(
    ("expr", "part"),
    [
        ("case.cost * ('0.1' | float)", "Decimal' and 'float'"),
        ("case.cost | float", "it gives 0.0, not an exact number for a decimal field"),
        ("case.cost | length", "has no len()"),
    ],
)
def test_a_computed_expression_that_cannot_run_is_refused_at_its_expr(expr: str, part: str) -> None:
    [problem] = problems(COMPUTED.format(expr=expr))
    assert (problem.line, problem.column) == (8, 42)
    assert problem.message.startswith(f"expr: '{expr}' cannot run with case.cost = "), problem.message
    assert part in problem.message


@pytest.mark.parametrize("expr", ["case.cost * 0.10", "case.cost / 3", "case.cost * 1.5 - 0.01"])
def test_a_computed_expression_is_checked_on_filled_inputs_only(expr: str) -> None:
    # an empty input leaves the computed value empty (engine.compute): the expression does not run then
    wf = load_definition(COMPUTED.format(expr=expr))
    assert wf.fields["share"].compute is not None


# --- runtime and type check agree --------------------------------------------------------------------------------


def test_an_empty_checklist_is_an_empty_list_at_run_time_as_in_the_check() -> None:
    wf = load_definition(workflow("case.docs | length == 2"))
    snap = snapshot(wf.fields, "ZZ-1", "draft", {"needed": 1}, 0)
    assert snap["docs"] == [] and snap["cost"] is None
    # before: docs was None, '| length' raised, and the clerk was told the condition could not be checked
    with pytest.raises(GuardFailed) as info:
        check_ready(wf, "ZZ-1", "draft", wf.transitions["finish"], {"needed": 1}, 0)
    assert info.value.code == Code.GUARD_FAILED
    check_ready(wf, "ZZ-1", "draft", wf.transitions["finish"], {"needed": 1, "docs": ["x", "y"]}, 0)


def test_the_issues_guard_runs_at_a_step_once_the_field_is_required() -> None:
    wf = load_definition(workflow("case.cost * 0.10 > 5", ["cost"]))
    t = wf.transitions["finish"]
    check_ready(wf, "ZZ-1", "draft", t, {"needed": 1, "cost": "50.01"}, 0)
    with pytest.raises(GuardFailed) as info:
        check_ready(wf, "ZZ-1", "draft", t, {"needed": 1, "cost": "50"}, 0)
    assert info.value.code == Code.GUARD_FAILED  # not met; before: GUARD_UNCHECKABLE with TypeError


def test_examples_keep_to_a_fields_bounds() -> None:
    wf = load_definition(workflow("case.needed > 0"))
    assert examples(wf.fields["size"]) == [0, 20, 1]
    assert examples(wf.fields["self_paid"]) == ["0", "100000", "0.01", "1"]
    assert examples(wf.fields["cost"])[1] == "999999999999999.999999"
    assert examples(wf.fields["docs"]) == [["x"], ["x", "y"]]


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "workflows").glob("*.yaml")) + sorted((ROOT / "tests/fixtures/workflows/valid").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_bundled_workflows_and_valid_fixtures_pass_the_type_check(path: Path) -> None:
    load_definition_file(path)


def test_a_guard_checked_on_many_fields_loads_quickly() -> None:
    import time

    guard = " and ".join(f"case.f{i} * 0.5 >= 0" for i in range(12))
    fields = "".join(f"  f{i}: {{type: decimal, required: true}}\n" for i in range(12))
    text = workflow(guard).replace("  cost: {type: decimal, min: 0}\n", fields + "  cost: {type: decimal, min: 0}\n")
    start = time.process_time()
    load_definition(text)
    assert time.process_time() - start < 1.0
