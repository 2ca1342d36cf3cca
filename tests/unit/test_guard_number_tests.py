"""Guard tests that compute ``%`` take numbers only: on text, ``%`` is formatting (a memory bomb)."""

from __future__ import annotations

import time

import pytest

from engine.expressions import ExpressionError, compile_guard


@pytest.mark.parametrize("test", ["odd", "even", "divisibleby 3"])
def test_a_format_string_is_refused_at_once(test: str) -> None:
    guard = compile_guard(f"case.household_size is {test}")
    started = time.process_time()
    with pytest.raises(ExpressionError, match="needs numbers, got str"):
        guard.evaluate({"household_size": "%0999999999d"})  # '%0999999999d' % 3 would build 1 GB
    assert time.process_time() - started < 0.1


@pytest.mark.parametrize(
    ("test", "value", "expected"),
    [("odd", 3, True), ("odd", 4, False), ("even", 4, True), ("divisibleby 3", 9, True), ("divisibleby 3", 10, False)],
)
def test_numbers_still_work(test: str, value: int, expected: bool) -> None:
    assert compile_guard(f"case.n is {test}").evaluate({"n": value}) is expected


def test_a_flag_is_not_a_number() -> None:
    with pytest.raises(ExpressionError, match="needs numbers, got bool"):
        compile_guard("case.n is odd").evaluate({"n": True})
