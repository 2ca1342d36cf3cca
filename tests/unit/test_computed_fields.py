"""Computed fields (engine.compute, engine.definition.computing): checked when a workflow loads, computed in
decimal arithmetic with the declared rounding, never typed, and a workflow's ``tests:`` run on load with a
located problem for each failing example (issue 12, item 1).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from engine.compute import compute_fields, compute_values
from engine.definition import load_definition, load_definition_file
from engine.definition.model import WorkflowDef
from engine.errors import DefinitionError, InvalidCaseData, Problem
from engine.expressions import compile_guard
from engine.rules import merge_data

ROOT = Path(__file__).resolve().parents[2]
MEDICAL = ROOT / "workflows" / "medical_aid.yaml"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

BASE = """\
workflow: calc
version: 1
title: Calc
roles:
  clerk: Clerk
fields:
  amount: {{type: decimal, min: 0}}
  count: {{type: integer}}
  county: {{type: choice, choices: [甲, 乙]}}
{fields}
states:
  draft: {{initial: true}}
  done: {{final: true}}
transitions:
  finish: {{from: draft, to: done, by: clerk}}
{rest}
"""


def load(fields: str = "", rest: str = "") -> WorkflowDef:
    return load_definition(BASE.format(fields=fields, rest=rest), "calc.yaml")


def problems(fields: str = "", rest: str = "") -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load(fields, rest)
    found: list[Problem] = info.value.problems
    return [f"{p.line}:{p.column}: {p.message}" for p in found]


# ------------------------------------------------------------------ the medical tiers, both readings

BOUNDARIES = ["5999.99", "6000", "10000", "10000.01", "30000", "30000.01", "80000", "80000.01", "300000", "400000"]
WHOLE = ["0.00", "500.00", "500.00", "1000.00", "3000.00", "4500.00", "12000.00", "16000.00", "50000.00", "50000.00"]
BANDED = ["0.00", "500.00", "500.00", "500.00", "2500.00", "2500.00", "10000.00", "10000.00", "50000.00", "50000.00"]


def medical(table: str) -> WorkflowDef:
    wf = load_definition_file(MEDICAL)
    subsidy = wf.fields["subsidy"]
    assert subsidy.compute is not None
    chosen = dataclasses.replace(subsidy, compute=dataclasses.replace(subsidy.compute, table=table))
    return dataclasses.replace(wf, fields={**wf.fields, "subsidy": chosen})


def test_the_medical_tiers_under_both_readings(capsys: pytest.CaptureFixture[str]) -> None:
    whole, banded = medical("medical_whole"), medical("medical_banded")
    rows = []
    for amount in BOUNDARIES:
        a = compute_fields(whole, "submit", {"self_paid": amount})[0]["subsidy"]
        b = compute_fields(banded, "submit", {"self_paid": amount})[0]["subsidy"]
        rows.append((amount, a, b))
    with capsys.disabled():
        print("\n| 个人自付 self_paid | (a) rate on the whole | (b) banded |\n| ---: | ---: | ---: |")
        for amount, a, b in rows:
            print(f"| {amount} | {a} | {b} |")
    assert [r[1] for r in rows] == WHOLE
    assert [r[2] for r in rows] == BANDED


def test_the_shipped_workflow_uses_the_whole_reading_and_rounds_half_up() -> None:
    wf = load_definition_file(MEDICAL)
    subsidy = wf.fields["subsidy"].compute
    assert subsidy is not None and (subsidy.table, subsidy.round, subsidy.places) == ("medical_whole", "half_up", 2)
    # 12,345.65 × 10 % = 1,234.565: banker's rounding gave 1,234.56, the office rounds half up
    assert compute_fields(wf, "submit", {"self_paid": "12345.65"})[0]["subsidy"] == "1234.57"
    # only at the steps named in at:
    assert compute_fields(wf, "pass_review", {"self_paid": "12345.65"}) == ({"self_paid": "12345.65"}, {})


# ------------------------------------------------------------------ computing

RATE = """\
  subsidy:
    type: decimal
    compute: {{expr: "case.amount * 10 / 100", at: finish{extra}}}
"""


@pytest.mark.parametrize(
    ("extra", "amount", "stored"),
    [
        ("", "12345.65", "1234.57"),
        (", round: half_even", "12345.65", "1234.56"),
        (", round: down", "12345.69", "1234.56"),
        (", round: up", "12345.61", "1234.57"),
        (", places: 0", "12345.65", "1235"),
        ("", "5000", "500.00"),  # the declared places are kept (fields.py would store "500")
        ("", "0", "0.00"),
    ],
)
def test_rounding_is_declared_and_places_are_kept(extra: str, amount: str, stored: str) -> None:
    wf = load(RATE.format(extra=extra))
    values, changes = compute_fields(wf, "finish", {"amount": amount})
    assert values["subsidy"] == stored
    assert changes == {"subsidy": [None, stored]}


def test_an_unchanged_value_is_no_change_and_an_emptied_input_empties_it() -> None:
    wf = load(RATE.format(extra=""))
    values, changes = compute_fields(wf, "finish", {"amount": "100", "subsidy": "10.00"})
    assert (values["subsidy"], changes) == ("10.00", {})
    values, changes = compute_fields(wf, "finish", {"subsidy": "10.00"})
    assert "subsidy" not in values and changes == {"subsidy": ["10.00", None]}


def test_a_computed_field_cannot_be_typed_on_any_path() -> None:
    wf = load(RATE.format(extra=""))
    for given in ("1", "", None):
        with pytest.raises(InvalidCaseData) as info:
            merge_data(wf, {"amount": "100"}, {"subsidy": given}, NOW)
        assert str(info.value) == (
            "invalid case data: subsidy: is computed from amount (an expression) at step finish; it cannot be typed"
        )


def test_a_float_result_is_refused_not_rounded() -> None:
    # the type check refuses such an expression when the workflow loads; the engine refuses it again at run time
    wf = load('  rate: {type: decimal, compute: {expr: "case.count * 2", at: finish}}\n')
    rate = wf.fields["rate"]
    assert rate.compute is not None
    floating = dataclasses.replace(
        rate, compute=dataclasses.replace(rate.compute, expr=compile_guard("case.count | float"))
    )
    with pytest.raises(InvalidCaseData, match=r"rate: could not be computed from count .* not an exact number"):
        compute_values({**wf.fields, "rate": floating}, {}, {"count": 3}, "finish")


def test_a_result_outside_the_fields_bounds_refuses_the_step() -> None:
    wf = load('  double: {type: decimal, max: 100, compute: {expr: "case.amount * 2", at: finish}}\n')
    with pytest.raises(InvalidCaseData, match=r"double: could not be computed .*: the result 120 must be at most 100"):
        compute_fields(wf, "finish", {"amount": "60"})


def test_computed_fields_read_computed_fields_declared_above_them() -> None:
    wf = load(
        '  base: {type: integer, compute: {expr: "case.count * 2", at: finish}}\n'
        '  total: {type: integer, compute: {expr: "case.base + 1", at: finish}}\n'
    )
    assert compute_fields(wf, "finish", {"count": 4})[0] == {"count": 4, "base": 8, "total": 9}


def test_a_text_choice_can_come_from_a_table() -> None:
    wf = load(
        "  tier: {type: choice, choices: [低, 高], compute: {table: tiers, at: finish}}\n",
        "tables:\n  tiers:\n    hit: first\n    inputs: [county, amount]\n    outputs: [tier]\n    rows:\n"
        "      - {county: 甲, amount: '>= 100', tier: \"'高'\"}\n"
        "      - {county: '-', amount: '-', tier: \"'低'\"}\n",
    )
    assert compute_fields(wf, "finish", {"county": "甲", "amount": "100"})[0]["tier"] == "高"
    assert compute_fields(wf, "finish", {"county": "乙", "amount": "100"})[0]["tier"] == "低"
    assert "tier" not in compute_fields(wf, "finish", {"county": "乙"})[0]  # an empty input: no value


def test_compute_values_without_a_trigger_computes_everything() -> None:
    wf = load(RATE.format(extra=""))
    assert compute_values(wf.fields, wf.tables, {"amount": "1"})[0]["subsidy"] == "0.10"


# ------------------------------------------------------------------ the definition checks


def test_each_compute_mistake_is_located() -> None:
    found = problems(
        '  a: {type: date, compute: {expr: "case.amount", at: finish}}\n'
        '  b: {type: decimal, required: true, compute: {expr: "case.amount", at: [finish, fnish]}}\n'
        '  c: {type: decimal, compute: {expr: "case.amuont + case.state", at: finish}}\n'
        "  d: {type: decimal, compute: {table: nope, at: finish}}\n"
        '  e: {type: decimal, compute: {expr: "case.f", table: t, at: finish}}\n'
        '  f: {type: integer, compute: {expr: "case.g", places: 2, at: finish}}\n'
        '  g: {type: integer, compute: {expr: "case.g", at: finish}}\n'
    )
    assert found == [
        "10:19: a date field cannot be computed; computed fields are integer, decimal, text or choice",
        "11:22: a computed field is filled in by the engine at its steps, not by people: drop 'required' and "
        "add 'require: [b]' to the steps that need it",
        "11:82: unknown step or moment 'fnish'; did you mean 'finish'?",
        "12:38: expr: case.amuont is not a field; did you mean 'amount'? (a computed value reads fields only)",
        "12:38: expr: case.state is not a field: a computed value reads the case's fields only",
        "13:39: unknown table 'nope'",
        "14:31: give either 'expr: EXPRESSION' or 'table: TABLE' (one of them)",
        "15:31: f reads g, which is computed after it; declare g above f",
        "15:56: an integer keeps no decimal places (places: 0), not 2",
        "16:31: g cannot be computed from itself",
    ]


def test_a_declared_edit_right_on_a_computed_field_is_refused() -> None:
    text = BASE.format(fields=RATE.format(extra=""), rest="").replace(
        "draft: {initial: true}", "draft: {initial: true, edit: {clerk: [amount, subsidy]}}"
    )
    with pytest.raises(DefinitionError) as info:
        load_definition(text, "calc.yaml")
    assert [p.message for p in info.value.problems] == [
        "subsidy is computed, so nobody edits it; grant the fields it is computed from instead"
    ]


def test_table_mistakes_are_located_at_the_row() -> None:
    rest = (
        "tables:\n  t:\n    inputs: [amount, county]\n    outputs: [v]\n    rows:\n"
        "      - {amount: '< 10', county: 丙, v: 1}\n"
        "      - {amount: 'around 10', county: '-', v: 2}\n"
        "      - {amount: '>= 10', v: 3, w: 4}\n"
        "      - {amount: '-', county: '-', v: 'case.nope'}\n"
    )
    assert problems(rest=rest) == [
        "21:34: row 1: '丙' is not one of county's choices; known: 乙, 甲",
        "22:18: row 2, amount: 'around 10' is not a test on a number; write e.g. '< 6000', '>= 6000', "
        "'[6000..10000]', '(10000..30000]', '6000' or '-' for any value",
        "23:9: row 3 has no cell for input 'county'; write '-' for any value",
        "23:33: row 3: 'w' is not an input or output; known: amount, county, v",
        "24:39: row 4, v: case.nope is not a field; known: amount, count, county (a computed value reads fields only)",
    ]


def test_a_gap_and_an_overlap_stop_the_load() -> None:
    rest = (
        "tables:\n  t:\n    inputs: [amount]\n    outputs: [v]\n    rows:\n"
        "      - {amount: '[0..6000]', v: 0}\n"
        "      - {amount: '[6000..80000]', v: 1}\n"
    )
    assert problems(rest=rest) == [
        "20:5: table t: amount: values from 80000 (exclusive) up are not covered (add a row for them, or end the "
        "table with a row of '-' and hit: first)",
        "22:9: table t: rows 1 and 2 both apply to amount: the value 6000; with hit: unique exactly one row may "
        "apply — make the ranges meet without overlapping (e.g. [6000..10000] then (10000..30000]) or use hit: first",
    ]


FAILING_TEST = """\
tests:
  - {given: {amount: "12345.65"}, expect: {subsidy: "1234.56"}, name: banker's}
  - {given: {amount: "5000"}, expect: {subsidy: 500}}
  - {given: {amount: 1.5}, expect: {subsidy: "0.15"}}
"""


def test_a_failing_test_is_a_located_problem_saying_expected_and_got() -> None:
    assert problems(RATE.format(extra=""), FAILING_TEST) == [
        '20:5: test "banker\'s" fails: subsidy expected 1234.56, got 1234.57 (given amount=12345.65)'
    ]


def test_tests_name_real_fields_and_outputs() -> None:
    rest = (
        "tests:\n"
        "  - {given: {amout: 1}, expect: {subsidy: 1}}\n"
        "  - {given: {amount: 1, subsidy: 2}, expect: {subsidy: 1}}\n"
        "  - {given: {amount: 1}, expect: {amount: 1}}\n"
        "  - {given: {amount: abc}, expect: {subsidy: 1}}\n"
    )
    found = problems(RATE.format(extra=""), rest)
    assert found == [
        "20:13: unknown field 'amout'; did you mean 'amount'?",
        "21:25: test 2: subsidy is computed; give the fields it is computed from",
        "22:35: test 3: 'amount' is not a computed field; known: subsidy",
        "23:22: test 4: amount: expected a decimal number such as 612.50, got 'abc'",
    ]


def test_a_stored_version_loads_without_rerunning_its_tests() -> None:
    text = BASE.format(fields=RATE.format(extra=""), rest=FAILING_TEST)
    with pytest.raises(DefinitionError):
        load_definition(text, "calc.yaml")
    stored = load_definition(text, "calc v1", stored=True)
    assert stored.computed_fields == ("subsidy",)


def test_describe_shows_compute_and_tables() -> None:
    d = load_definition_file(MEDICAL).describe()
    assert d["fields"]["subsidy"]["compute"] == {
        "table": "medical_whole",
        "output": "subsidy",
        "at": ["opened", "edited", "submit"],
        "round": "half_up",
        "places": 2,
        "reads": ["self_paid"],
    }
    assert d["tables"]["medical_banded"]["rows"][2] == {
        "self_paid": "(10000..30000]",
        "subsidy": "500 + (case.self_paid - 10000) * 10 / 100",
    }
    assert Decimal(d["tables"]["medical_whole"]["rows"][1]["subsidy"]) == 500


def test_a_step_named_like_a_moment_is_refused_where_at_names_the_moment() -> None:
    """``at: [edited]`` means "when the data is edited"; a step of that name would make it ambiguous."""
    source = (
        "workflow: w\nversion: 1\ntitle: t\nroles: {clerk: c}\n"
        "fields:\n  a: {type: decimal}\n"
        '  b: {type: decimal, compute: {expr: "case.a * 2", at: [opened, edited]}}\n'
        "states:\n  s: {initial: true}\n  e: {final: true}\n"
        "transitions:\n  edited: {from: s, to: e, by: clerk}\n"
    )
    with pytest.raises(DefinitionError) as info:
        load_definition(source, "w.yaml")
    assert [str(p) for p in info.value.problems] == [
        "w.yaml:7:65: 'edited' names both a step and the moment a case is edited; rename the step"
    ]
    wf = load_definition(source.replace("edited: {from", "finish: {from"), "w.yaml")
    assert compute_fields(wf, "opened", {"a": "1.5"})[0]["b"] == "3.00"
    assert compute_fields(wf, "finish", {"a": "1.5"})[0] == {"a": "1.5"}  # not computed at that step
