"""Decision tables: rows of tests on a case's fields → outputs, chosen by a hit policy (as in DMN).

A table (``tables:`` in a workflow) names its ``inputs`` (fields) and
``outputs``; each row gives one cell per input and one per output::

    self_paid: "(10000..30000]"      subsidy: "case.self_paid * 10 / 100"

**Input cells** are a small subset of DMN's simple unary tests:

==========================  ===============================================
``-``                       any value
``< 6000`` ``<= 6000``      compared with a number (also ``>``, ``>=``)
``[a..b]`` ``(a..b]``       a range; ``[``/``]`` include the end, ``(``/``)``
``[a..b)`` ``(a..b)``       leave it out (DMN's ``]a..b[`` is accepted too)
``6000`` or ``6000, 7000``  exact numbers (a YAML number or list works too)
``芗城区, 龙文区``          for a text or choice input: one of these values
==========================  ===============================================

**Output cells** are a number (``500``, ``"0.15"``: exact decimals), empty
(``~``: no value), or an expression over the case as in a guard
(``"case.self_paid * 10 / 100"``); a text constant is an expression in
quotes (``"'甲'"``).

**Hit policies.** ``unique``: exactly one row may apply to any input
values; ``first``: the first row that applies wins. :func:`analyse` finds,
before a workflow is loaded, the values no row covers, the rows that
overlap under ``unique``, and the rows that can never apply. It cuts each
numeric input's domain at every number the rows name (and the field's
``min``/``max``), so a finite set of probes — each point, each open stretch
between two points — decides every value exactly.

Nothing here knows the database or the clock.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from engine.expressions import ExpressionError, Guard, compile_guard

__all__ = [
    "Domain",
    "Finding",
    "Output",
    "Row",
    "TableError",
    "analyse",
    "decide",
    "expression_problem",
    "number_text",
    "parse_condition",
    "parse_output",
    "row_outputs",
]

#: the most (probe combinations × rows) :func:`analyse` examines; a bigger table is reported, not analysed
MAX_PROBES = 2_000_000

_NUMBER = r"[-+]?[0-9]{1,15}(?:\.[0-9]{1,12})?"
_NUMBER_ONLY = re.compile(rf"^\s*({_NUMBER})\s*$")
_COMPARE = re.compile(rf"^\s*(<=|>=|<|>)\s*({_NUMBER})\s*$")
_RANGE = re.compile(rf"^\s*([\[(\]])\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*([\])\[])\s*$")


class TableError(ValueError):
    """A cell that is not a test or an output, or a table that cannot decide; the message says what is right."""


def number_text(value: Decimal) -> str:
    """``value`` as people write it: ``80000``, ``0.15`` (no exponent, no trailing zeros)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


@dataclass(frozen=True)
class Interval:
    """Numbers from ``low`` to ``high`` (None: unbounded); ``*_open`` leaves that end out."""

    low: Decimal | None
    low_open: bool
    high: Decimal | None
    high_open: bool

    def contains(self, x: Decimal) -> bool:
        """True if ``x`` lies in the interval."""
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return not (self.high is not None and (x > self.high or (self.high_open and x == self.high)))

    def points(self) -> Iterable[Decimal]:
        """The finite ends."""
        return (p for p in (self.low, self.high) if p is not None)


@dataclass(frozen=True)
class Condition:
    """One input cell, compiled: any value, a union of number intervals, or a set of texts."""

    source: str
    any: bool = False
    intervals: tuple[Interval, ...] = ()
    texts: frozenset[str] = frozenset()

    def matches(self, value: Any) -> bool:
        """True if ``value`` (a number, a text, or :data:`_OTHER` in analysis) passes the test."""
        if self.any:
            return True
        if self.intervals:
            if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
                return False
            x = Decimal(value)
            return any(i.contains(x) for i in self.intervals)
        return isinstance(value, str) and value in self.texts


@dataclass(frozen=True)
class Output:
    """One output cell: a constant (a Decimal, or None for no value) or an expression over the case."""

    source: Any
    constant: Decimal | None = None
    expr: Guard | None = None

    def value(self, snapshot: Mapping[str, Any]) -> Any:
        """The cell's value for the case ``snapshot`` (typed values; raises :class:`ExpressionError`)."""
        if self.expr is None:
            return self.constant
        return self.expr.value(dict(snapshot))

    @property
    def reads(self) -> frozenset[str]:
        """The ``case.X`` names the cell's expression reads."""
        return self.expr.case_attributes if self.expr is not None else frozenset()


@dataclass(frozen=True)
class Row:
    """A compiled row: its number (from 1), one condition per input and one output per output column."""

    number: int
    conditions: tuple[Condition, ...]
    outputs: tuple[Output, ...]
    cells: Mapping[str, Any] = field(default_factory=dict)  # as written, for descriptions


def parse_condition(cell: Any, numeric: bool) -> Condition:
    """Compile an input cell for a number input (``numeric``) or a text one; :class:`TableError` if it is none."""
    if cell is None:
        raise TableError("is empty; write '-' for any value")
    if isinstance(cell, list):
        items = list(cell)
        source = ", ".join(str(x) for x in items)
    elif isinstance(cell, str):
        source = cell.strip()
        if source == "-":
            return Condition(source, any=True)
        items = _split(source)
    else:
        items, source = [cell], str(cell)
    if not items:
        raise TableError("is empty; write '-' for any value")
    if not numeric:
        texts = []
        for item in items:
            if not isinstance(item, str) or _COMPARE.match(item) or _RANGE.match(item):
                raise TableError(f"{source!r} is not a text to match; a text input takes values such as 芗城区, 龙文区")
            texts.append(item.strip().strip('"').strip())
        if any(t == "" for t in texts):
            raise TableError(f"{source!r} has an empty value; list texts separated by commas")
        return Condition(source, texts=frozenset(texts))
    return Condition(source, intervals=tuple(_interval(item) for item in items))


def _split(text: str) -> list[str]:
    # a list is comma-separated; a range's own comma-free syntax never contains one
    return [p.strip() for p in text.split(",") if p.strip()] if "," in text else [text]


def _interval(item: Any) -> Interval:
    if isinstance(item, bool) or not isinstance(item, (int, float, str)):
        raise TableError(f"{item!r} is not a test on a number")
    if isinstance(item, (int, float)):
        value = _decimal(repr(item))
        return Interval(value, False, value, False)
    m = _NUMBER_ONLY.match(item)
    if m:
        value = _decimal(m.group(1))
        return Interval(value, False, value, False)
    m = _COMPARE.match(item)
    if m:
        op, value = m.group(1), _decimal(m.group(2))
        if op.startswith("<"):
            return Interval(None, False, value, op == "<")
        return Interval(value, op == ">", None, False)
    m = _RANGE.match(item)
    if m:
        low, high = _decimal(m.group(2)), _decimal(m.group(3))
        low_open, high_open = m.group(1) != "[", m.group(4) != "]"
        if low > high or (low == high and (low_open or high_open)):
            raise TableError(
                f"the range {item.strip()!r} holds no number; write the smaller end first, e.g. [6000..10000]"
            )
        return Interval(low, low_open, high, high_open)
    raise TableError(
        f"{item!r} is not a test on a number; write e.g. '< 6000', '>= 6000', '[6000..10000]', "
        "'(10000..30000]', '6000' or '-' for any value"
    )


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the patterns admit only numbers
        raise TableError(f"{text!r} is not a number") from exc
    if not value.is_finite():
        raise TableError(f"{text!r} is not a number")
    return value


def parse_output(cell: Any) -> Output:
    """Compile an output cell: a number, empty, or an expression; :class:`TableError` if it is none."""
    if cell is None:
        return Output(cell)
    if isinstance(cell, (bool, list)):
        raise TableError(f"{cell!r} is not an output; write a number, ~ for no value, or an expression")
    if isinstance(cell, (int, float)):
        return Output(cell, constant=_decimal(repr(cell)))
    m = _NUMBER_ONLY.match(cell)
    if m:  # "0.15" is the exact decimal, not a float
        return Output(cell, constant=_decimal(m.group(1)))
    try:
        return Output(cell, expr=compile_guard(cell))
    except ExpressionError as exc:
        raise TableError(expression_problem(exc)) from None


def expression_problem(exc: ExpressionError) -> str:
    """An expression's compile error, worded for a computed value rather than a guard."""
    return str(exc).replace("a guard", "an expression").replace("guard", "expression")


def decide(name: str, hit: str, rows: Sequence[Row], values: Sequence[Any]) -> Row | None:
    """The row that applies to the input ``values`` (in the table's input order) under ``hit``; None if none.

    Raises :class:`TableError` if more than one row applies under ``unique``
    (:func:`analyse` refuses such a table before it is loaded).
    """
    found = None
    for row in rows:
        if all(c.matches(v) for c, v in zip(row.conditions, values, strict=True)):
            if hit == "first":
                return row
            if found is not None:
                raise TableError(f"table {name}: rows {found.number} and {row.number} both apply (hit: unique)")
            found = row
    return found


def row_outputs(outputs: Sequence[str], row: Row, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """Every output of ``row`` for the case ``snapshot`` (raises :class:`ExpressionError`)."""
    return {name: out.value(snapshot) for name, out in zip(outputs, row.outputs, strict=True)}


# ---------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Domain:
    """The values an input may take: numbers (``integer``: whole ones; within ``low``/``high``), or texts
    (``choices``, or any text if None)."""

    numeric: bool
    integer: bool = False
    low: Decimal | None = None
    high: Decimal | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Finding:
    """A problem :func:`analyse` found: ``kind`` is gap, overlap, unreachable or too_big; ``row`` from 1."""

    kind: str
    message: str
    row: int | None = None


class _Other:
    """Any text no row names (the probe for "every other value" of a free text input)."""

    def __repr__(self) -> str:
        return "any other value"


_OTHER = _Other()


@dataclass(frozen=True)
class _Segment:
    """A stretch of an input's domain no row boundary cuts: a point, or an open stretch between points."""

    probe: Any
    low: Decimal | None = None
    low_open: bool = False
    high: Decimal | None = None
    high_open: bool = False


def analyse(hit: str, inputs: Sequence[str], rows: Sequence[Row], domains: Sequence[Domain]) -> list[Finding]:
    """The gaps (values no row covers), overlaps (``unique``: two rows apply) and rows that never apply."""
    segments = [_segments(i, rows, d) for i, d in enumerate(domains)]
    size = 1
    for s in segments:
        size *= max(len(s), 1)
    if size * max(len(rows), 1) > MAX_PROBES:
        return [
            Finding(
                "too_big",
                f"the table has too many combinations of input values to check ({size} × {len(rows)} rows); "
                "split it into smaller tables",
            )
        ]
    # for each input and segment: the rows (a bit each) whose test the segment passes
    masks = [
        [sum(1 << r for r, row in enumerate(rows) if row.conditions[i].matches(seg.probe)) for seg in segs]
        for i, segs in enumerate(segments)
    ]
    full = (1 << len(rows)) - 1
    gaps: list[tuple[int, ...]] = []
    overlaps: dict[tuple[int, int], list[tuple[int, ...]]] = {}
    applies = 0
    for cell in itertools.product(*(range(len(s)) for s in segments)):
        mask = full
        for i, j in enumerate(cell):
            mask &= masks[i][j]
        if mask == 0:
            gaps.append(cell)
            continue
        first = mask & -mask
        if hit == "first":
            applies |= first
            continue
        applies |= mask
        rest = mask ^ first
        if rest:
            pair = (first.bit_length() - 1, (rest & -rest).bit_length() - 1)
            overlaps.setdefault(pair, []).append(cell)
    found = []
    for region in _regions(gaps, segments):
        found.append(Finding("gap", _describe(inputs, segments, region, "not covered") + _GAP_HINT))
    for (a, b), cells in sorted(overlaps.items()):
        where = "; ".join(_describe(inputs, segments, r, None) for r in _regions(cells, segments))
        found.append(
            Finding(
                "overlap",
                f"rows {a + 1} and {b + 1} both apply to {where}; with hit: unique exactly one row may apply — "
                "make the ranges meet without overlapping (e.g. [6000..10000] then (10000..30000]) "
                "or use hit: first",
                row=b + 1,
            )
        )
    for r, row in enumerate(rows):
        if not applies >> r & 1:
            why = (
                "the rows above it already cover all its values (with hit: first the first matching row wins); "
                "remove it or move it up"
                if _any_cell(masks, r)
                else "no value its inputs may take passes its tests"
            )
            found.append(Finding("unreachable", f"row {row.number} can never apply: {why}", row=row.number))
    return found


_GAP_HINT = " (add a row for them, or end the table with a row of '-' and hit: first)"


def _any_cell(masks: list[list[int]], r: int) -> bool:
    """True if some combination of segments passes every test of row ``r``."""
    return all(any(m >> r & 1 for m in ms) for ms in masks)


def _segments(i: int, rows: Sequence[Row], domain: Domain) -> list[_Segment]:
    if not domain.numeric:
        if domain.choices is not None:
            return [_Segment(c) for c in domain.choices]
        named = sorted({t for row in rows for t in row.conditions[i].texts})
        return [*(_Segment(t) for t in named), _Segment(_OTHER)]
    points = {p for row in rows for iv in row.conditions[i].intervals for p in iv.points()}
    points |= {p for p in (domain.low, domain.high) if p is not None}
    ordered = sorted(points)
    out: list[_Segment] = []
    if not ordered:
        out.append(_Segment(Decimal(0)))
    else:
        out.append(_Segment(ordered[0] - 1, None, False, ordered[0], True))
        for k, p in enumerate(ordered):
            out.append(_Segment(p, p, False, p, False))
            if k + 1 < len(ordered):
                q = ordered[k + 1]
                out.append(_Segment((p + q) / 2, p, True, q, True))
        out.append(_Segment(ordered[-1] + 1, ordered[-1], True, None, False))
    kept = []
    for seg in out:
        probe = _integer_probe(seg) if domain.integer else seg.probe
        if probe is None:
            continue
        if (domain.low is not None and probe < domain.low) or (domain.high is not None and probe > domain.high):
            continue
        kept.append(_Segment(probe, seg.low, seg.low_open, seg.high, seg.high_open))
    return kept


def _integer_probe(seg: _Segment) -> Decimal | None:
    """A whole number inside the segment, or None if it holds none."""
    if seg.low is not None and seg.low == seg.high:
        return seg.low if seg.low == seg.low.to_integral_value() else None
    if seg.low is None:
        assert seg.high is not None
        top = seg.high.to_integral_value(rounding=ROUND_CEILING)
        return top - 1
    candidate = seg.low.to_integral_value(rounding=ROUND_FLOOR) + 1
    if seg.high is not None and candidate >= seg.high:
        return None
    return candidate


def _regions(cells: list[tuple[int, ...]], segments: list[list[_Segment]]) -> list[list[tuple[int, ...]]]:
    """``cells`` grouped into runs that are contiguous along the first numeric input (the rest fixed)."""
    axis = next((i for i, s in enumerate(segments) if s and isinstance(s[0].probe, Decimal)), None)
    if axis is None:
        return [[c] for c in cells]
    groups: dict[tuple[int, ...], list[int]] = {}
    for c in cells:
        groups.setdefault(c[:axis] + c[axis + 1 :], []).append(c[axis])
    out = []
    for rest, indexes in groups.items():
        run: list[int] = []
        for j in sorted(indexes):
            if run and j != run[-1] + 1:
                out.append([rest[:axis] + (k,) + rest[axis:] for k in run])
                run = []
            run.append(j)
        out.append([rest[:axis] + (k,) + rest[axis:] for k in run])
    return out


def _describe(
    inputs: Sequence[str], segments: list[list[_Segment]], region: list[tuple[int, ...]], verb: str | None
) -> str:
    """Words for a region (a run along one numeric input, the other inputs fixed)."""
    parts = []
    first, last = region[0], region[-1]
    for i, name in enumerate(inputs):
        a, b = segments[i][first[i]], segments[i][last[i]]
        if isinstance(a.probe, Decimal):
            words = _range_words(a.low, a.low_open, b.high, b.high_open)
        else:
            words = repr(a.probe) if a.probe is _OTHER else a.probe
        parts.append((name, words))
    if len(inputs) == 1 and verb:
        name, words = parts[0]
        plural = words.startswith("values") or words.startswith("every") or words == "any other value"
        return f"{name}: {words} {'are' if plural else 'is'} {verb}"
    text = ", ".join(f"{name}: {words}" for name, words in parts)
    return f"{text} — {verb}" if verb else text


def _range_words(low: Decimal | None, low_open: bool, high: Decimal | None, high_open: bool) -> str:
    if low is None and high is None:
        return "every value"
    if low is not None and low == high:
        return f"the value {number_text(low)}"
    if low is None:
        assert high is not None
        return f"values below {number_text(high)}" if high_open else f"values up to {number_text(high)} (inclusive)"
    start = f"from {number_text(low)}" + (" (exclusive)" if low_open else "")
    if high is None:
        return f"values {start} up"
    return f"values {start} to {number_text(high)}" + (" (exclusive)" if high_open else "")
