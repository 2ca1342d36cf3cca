"""Computed fields: the values the engine works out at a step (a field's ``compute:``), rounded as declared.

A computed field is never typed. At each step its ``at:`` names, right
after the step's own data is merged and before the step's required fields
and conditions are checked, the engine evaluates its expression or decision
table (:mod:`engine.decisions`) over the case's data, rounds the result to
the declared ``places`` in the declared way (``half_up`` by default: the
office rounds 1234.565 to 1234.57, not to the banker's 1234.56), and stores
it; a changed value joins the step's changes (old → new) in the audit trail,
so a replay of the trail gives the same data.

Arithmetic is :class:`~decimal.Decimal` throughout: decimal fields reach the
expression as Decimals, table constants are exact decimals, and a result that
is a binary float is refused rather than rounded from an inexact number.

**Empty inputs.** If a field the computation reads is empty, the computed
value is left empty (cleared if it had one): a ``require:`` on the step that
needs the value then says which field is missing, instead of the engine
guessing a number. A table row whose output cell is ``~`` gives no value
either.

Pure: no database, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from typing import Any

from engine.decisions import TableError, decide, number_text
from engine.definition.model import EDITED, MOMENTS, OPENED, FieldDef, TableDef, WorkflowDef
from engine.definition.typecheck import snapshot
from engine.errors import FieldProblem, InvalidCaseData
from engine.expressions import ExpressionError
from engine.fields import coerce_value, is_empty, shown

__all__ = ["EDITED", "MOMENTS", "OPENED", "compute_fields", "compute_values", "computed_from"]


#: a ``round:`` value → the decimal module's rounding
ROUNDING = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN, "down": ROUND_DOWN, "up": ROUND_UP}

# a date only cn_id checks against (a computed field is never a cn_id); fixed so computing stays pure
_NO_DAY = dt.date(2000, 1, 1)


def compute_fields(
    wf: WorkflowDef, trigger: str, values: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The case data after the fields computed at step ``trigger``, and their changes (old → new).

    Raises :class:`InvalidCaseData` (one :class:`FieldProblem` per field) if
    a value cannot be computed or does not fit its field; nothing is changed then.
    """
    if not wf.computed_fields:
        return dict(values), {}
    return compute_values(wf.fields, wf.tables, values, trigger)


def compute_values(
    fields: Mapping[str, FieldDef],
    tables: Mapping[str, TableDef],
    values: Mapping[str, Any],
    trigger: str | None = None,
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """As :func:`compute_fields` over ``fields`` and ``tables``; ``trigger`` None computes every computed field.

    Fields are computed in their declared order, so one may read a computed
    field declared above it (the definition checks refuse any other order).
    """
    out = dict(values)
    changes: dict[str, list[Any]] = {}
    problems = []
    for f in fields.values():
        c = f.compute
        if c is None or (trigger is not None and trigger not in c.at):
            continue
        try:
            new = _value(f, fields, tables, out)
        except ValueError as exc:
            problems.append(FieldProblem(f.name, f"could not be computed {computed_from(f)}: {exc}"))
            continue
        old = out.get(f.name)
        if new is None:
            out.pop(f.name, None)
        else:
            out[f.name] = new
        if old != new:
            changes[f.name] = [old, new]
    if problems:
        raise InvalidCaseData(problems)
    return out, changes


def computed_from(f: FieldDef) -> str:
    """Where a computed field's value comes from, in words: ``from self_paid (table medical_whole) at step submit``."""
    c = f.compute
    assert c is not None
    how = (
        f"table {c.table}" + (f", output {c.output}" if c.output and c.output != f.name else "")
        if c.table
        else "an expression"
    )
    reads = ", ".join(c.reads) or "constants"
    moments = [m for m in MOMENTS if m in c.at]
    steps = [t for t in c.at if t not in MOMENTS]
    when = [f"when the case is {' or '.join(moments)}"] if moments else []
    if steps:
        when.append(f"at step{'s' if len(steps) > 1 else ''} {', '.join(steps)}")
    return f"from {reads} ({how}) {', and '.join(when)}"


def _value(
    f: FieldDef, fields: Mapping[str, FieldDef], tables: Mapping[str, TableDef], values: Mapping[str, Any]
) -> Any:
    """The stored form of ``f``'s computed value, None if an input is empty; ``ValueError`` saying why not."""
    c = f.compute
    assert c is not None
    if any(is_empty(values.get(name)) for name in c.reads if name in fields):
        return None
    snap = snapshot(fields, "", "", values, 0)  # what a guard sees; a computed value reads only fields
    try:
        if c.expr is not None:
            raw = c.expr.value(snap)
        else:
            assert c.table is not None
            table = tables[c.table]
            row = decide(table.name, table.hit, table.rows, [snap[name] for name in table.inputs])
            if row is None:
                return None
            out = row.outputs[table.outputs.index(c.output or f.name)]
            if any(is_empty(values.get(name)) for name in out.reads if name in fields):
                return None
            raw = out.value(snap)
    except (ExpressionError, TableError) as exc:
        raise ValueError(str(exc)) from None
    return _stored(f, raw)


def _stored(f: FieldDef, raw: Any) -> Any:
    """``raw`` rounded and checked as ``f`` keeps it; a decimal keeps its declared places ("500.00")."""
    c = f.compute
    assert c is not None
    if raw is None:
        return None
    if f.type in ("decimal", "integer"):
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal)):
            hint = " (write rates as exact fractions, e.g. case.x * 10 / 100, or put them in a table)"
            raise ValueError(f"gave {shown(raw)}, not an exact number{hint if isinstance(raw, float) else ''}")
        value = Decimal(raw)
        if not value.is_finite():
            raise ValueError(f"gave {value}, not a number")
        places = c.places if f.type == "decimal" else 0
        try:
            rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING[c.round])
        except InvalidOperation:
            raise ValueError(f"gave {shown(raw)}, too large a number") from None
        if rounded == 0:
            rounded = abs(rounded)  # not "-0.00"
        text = format(rounded, "f")
        try:
            coerce_value(f, text, _NO_DAY)  # the field's own bounds and size
        except ValueError as exc:
            raise ValueError(f"the result {number_text(rounded)} {exc}") from None
        return int(rounded) if f.type == "integer" else text
    if isinstance(raw, bool) or not isinstance(raw, (str, int, Decimal)):
        raise ValueError(f"gave {shown(raw)}, not a text")
    try:
        return coerce_value(f, raw if isinstance(raw, str) else number_text(Decimal(raw)), _NO_DAY)
    except ValueError as exc:
        raise ValueError(f"the result {shown(raw)} {exc}") from None
