"""Decision tables (engine.decisions): the cell syntax, the hit policies, and the analysis that finds
values no row covers, rows that overlap and rows that never apply (issue 12, item 1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from engine.decisions import (
    Domain,
    Row,
    TableError,
    analyse,
    decide,
    parse_condition,
    parse_output,
    row_outputs,
)

D = Decimal
MONEY = Domain(numeric=True, low=D(0))


def rows(*cells: tuple[str, object], numeric: bool = True) -> list[Row]:
    return [
        Row(i + 1, (parse_condition(test, numeric),), (parse_output(out),), {"x": test, "y": out})
        for i, (test, out) in enumerate(cells)
    ]


@pytest.mark.parametrize(
    ("cell", "inside", "outside"),
    [
        ("-", [D(-5), D(0), D(10**9)], []),
        ("< 6000", [D("5999.99"), D(-1)], [D(6000), D("6000.01")]),
        ("<= 6000", [D(6000)], [D("6000.01")]),
        ("> 80000", [D("80000.01")], [D(80000)]),
        (">= 80000", [D(80000)], [D("79999.99")]),
        ("[6000..10000]", [D(6000), D(10000)], [D("5999.99"), D("10000.01")]),
        ("(10000..30000]", [D("10000.01"), D(30000)], [D(10000), D("30000.01")]),
        ("[1..2)", [D(1)], [D(2)]),
        ("]1..2[", [D("1.5")], [D(1), D(2)]),  # DMN's reversed brackets
        ("(1..2)", [D("1.000001")], [D(1), D(2)]),
        ("6000", [D(6000), D("6000.00")], [D("6000.01")]),
        ("1, 3, [5..6]", [D(1), D(3), D("5.5")], [D(2), D(4)]),
    ],
)
def test_number_cells_accept_and_refuse_the_right_values(
    cell: str, inside: list[Decimal], outside: list[Decimal]
) -> None:
    c = parse_condition(cell, numeric=True)
    assert all(c.matches(v) for v in inside)
    assert not any(c.matches(v) for v in outside)


def test_yaml_numbers_and_lists_are_cells_too() -> None:
    assert parse_condition(6000, numeric=True).matches(6000)
    assert parse_condition([1, 2.5], numeric=True).matches(D("2.5"))
    texts = parse_condition(["芗城区", "龙文区"], numeric=False)
    assert texts.matches("龙文区") and not texts.matches("龙海区")
    assert parse_condition('芗城区, "龙文区"', numeric=False).texts == {"芗城区", "龙文区"}


@pytest.mark.parametrize(
    ("cell", "numeric", "says"),
    [
        ("about 6000", True, "not a test on a number; write e.g. '< 6000'"),
        ("[10000..6000]", True, "holds no number; write the smaller end first"),
        ("(5..5]", True, "holds no number"),
        (None, True, "is empty; write '-' for any value"),
        ("< 6000", False, "is not a text to match"),
    ],
)
def test_a_cell_that_is_no_test_says_what_is_right(cell: object, numeric: bool, says: str) -> None:
    with pytest.raises(TableError, match=r".*") as info:
        parse_condition(cell, numeric)
    assert says in str(info.value)


def test_outputs_are_exact_decimals_or_expressions() -> None:
    assert parse_output("0.15").constant == D("0.15")
    assert parse_output(0.1).constant == D("0.1")  # the number as written, not the binary float
    assert parse_output(None).value({}) is None
    rate = parse_output("case.self_paid * 10 / 100")
    assert rate.reads == {"self_paid"}
    assert rate.value({"self_paid": D("12345.65")}) == D("1234.565")
    with pytest.raises(TableError, match="unknown name 'os': an expression can read only 'case'"):
        parse_output("os")


def test_unique_and_first_pick_their_row() -> None:
    table = rows(("< 6000", 0), ("[6000..10000]", 500), ("> 10000", 1000))
    assert decide("t", "unique", table, [D(6000)]) is table[1]
    assert decide("t", "unique", table, [D("10000.01")]) is table[2]
    overlapping = rows(("<= 10000", 1), (">= 10000", 2))
    assert decide("t", "first", overlapping, [D(10000)]) is overlapping[0]
    with pytest.raises(TableError, match="rows 1 and 2 both apply"):
        decide("t", "unique", overlapping, [D(10000)])
    assert decide("t", "unique", rows(("> 0", 1)), [D(0)]) is None
    assert row_outputs(["y"], table[2], {}) == {"y": D(1000)}


def test_a_complete_table_has_no_findings() -> None:
    table = rows(("< 6000", 0), ("[6000..10000]", 500), ("(10000..30000]", 1), ("(30000..80000]", 2), ("> 80000", 3))
    assert analyse("unique", ["self_paid"], table, [MONEY]) == []


def test_a_missing_top_range_is_named_as_the_issue_words_it() -> None:
    table = rows(("< 6000", 0), ("[6000..10000]", 500), ("(10000..30000]", 1), ("(30000..80000]", 2))
    found = analyse("unique", ["self_paid"], table, [Domain(numeric=True)])
    assert [f.message.split(" (add")[0] for f in found] == [
        "self_paid: values from 80000 (exclusive) up are not covered"
    ]


def test_gaps_between_rows_and_single_values_are_found() -> None:
    table = rows(("< 6000", 0), ("(6000..10000)", 500), ("(10000..30000]", 1))
    found = [f.message.split(" (add")[0] for f in analyse("unique", ["x"], table, [MONEY])]
    assert found == [
        "x: the value 6000 is not covered",
        "x: the value 10000 is not covered",
        "x: values from 30000 (exclusive) up are not covered",
    ]


def test_the_field_bounds_limit_the_domain() -> None:
    table = rows(("[0..100]", 1))
    assert analyse("unique", ["x"], table, [Domain(numeric=True, low=D(0), high=D(100))]) == []
    found = analyse("unique", ["x"], table, [Domain(numeric=True, low=D(0), high=D(200))])
    assert found[0].message.startswith("x: values from 100 (exclusive) to 200 are not covered")


def test_whole_numbers_have_no_gap_between_neighbours() -> None:
    table = rows(("[1..5]", 1), ("[6..10]", 2))
    assert analyse("unique", ["n"], table, [Domain(numeric=True, integer=True, low=D(1), high=D(10))]) == []
    # for a decimal the stretch between 5 and 6 is a real gap
    gap = analyse("unique", ["n"], table, [Domain(numeric=True, low=D(1), high=D(10))])
    assert gap[0].message.startswith("n: values from 5 (exclusive) to 6 (exclusive) are not covered")


def test_overlaps_are_refused_under_unique_only() -> None:
    table = rows(("[6000..10000]", 1), ("[10000..30000]", 2), ("-", 3))
    found = analyse("unique", ["x"], table, [MONEY])
    assert [(f.kind, f.row) for f in found] == [("overlap", 2), ("overlap", 3), ("overlap", 3)]
    assert found[0].message.startswith("rows 1 and 2 both apply to x: the value 10000; with hit: unique")
    first = analyse("first", ["x"], table, [MONEY])
    assert first == []  # the '-' row catches the rest; rows 1 and 2 each win somewhere


def test_a_row_the_rows_above_hide_is_reported_under_first() -> None:
    table = rows(("-", 0), ("> 10", 1))
    found = analyse("first", ["x"], table, [MONEY])
    assert [(f.kind, f.row) for f in found] == [("unreachable", 2)]
    assert "the rows above it already cover all its values" in found[0].message


def test_text_inputs_check_every_choice_or_any_other_value() -> None:
    table = rows(("芗城区", 1), ("龙文区", 2), numeric=False)
    choices = Domain(numeric=False, choices=("芗城区", "龙文区", "龙海区"))
    assert [f.message.split(" (add")[0] for f in analyse("unique", ["county"], table, [choices])] == [
        "county: 龙海区 is not covered"
    ]
    free = analyse("unique", ["county"], table, [Domain(numeric=False)])
    assert free[0].message.startswith("county: any other value are not covered")


def test_two_inputs_name_the_gap_on_both() -> None:
    table = [
        Row(1, (parse_condition("芗城区", False), parse_condition("< 100", True)), (parse_output(1),)),
        Row(2, (parse_condition("-", False), parse_condition(">= 100", True)), (parse_output(2),)),
    ]
    domains = [Domain(numeric=False, choices=("芗城区", "龙文区")), MONEY]
    found = analyse("unique", ["county", "x"], table, domains)
    assert [f.message.split(" (add")[0] for f in found] == [
        "county: 龙文区, x: values from 0 to 100 (exclusive) — not covered"
    ]


_ENDS = st.integers(min_value=0, max_value=20).map(Decimal)


@st.composite
def interval_cells(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["<", "<=", ">", ">=", "range", "exact", "any"]))
    a = draw(_ENDS)
    if kind == "any":
        return "-"
    if kind == "exact":
        return str(a)
    if kind == "range":
        b = draw(_ENDS.filter(lambda x: x > a))
        return f"{draw(st.sampled_from('[('))}{a}..{b}{draw(st.sampled_from('])'))}"
    return f"{kind} {a}"


@settings(max_examples=300, deadline=None)
@given(st.lists(interval_cells(), min_size=1, max_size=5), st.sampled_from(["unique", "first"]))
def test_the_analysis_agrees_with_deciding_every_value(cells: list[str], hit: str) -> None:
    table = rows(*((c, i) for i, c in enumerate(cells)))
    found = analyse(hit, ["x"], table, [Domain(numeric=True)])
    probes = [Decimal(n) / 4 for n in range(-8, 4 * 22)]  # every quarter from -2 to 21.75
    matches = [[r for r in table if r.conditions[0].matches(p)] for p in probes]
    assert any(f.kind == "gap" for f in found) == any(not m for m in matches)
    if hit == "unique":
        assert any(f.kind == "overlap" for f in found) == any(len(m) > 1 for m in matches)
    winners = {m[0].number for m in matches if m} if hit == "first" else {r.number for m in matches for r in m}
    assert {f.row for f in found if f.kind == "unreachable"} == {r.number for r in table} - winners
