"""Stage 4 for computed fields, decision tables and a workflow's ``tests:``.

* each table's inputs are fields a table can test (numbers, texts,
  choices), every row has one cell per input and output, each input cell is
  a test (:mod:`engine.decisions`) and each output a number, ``~`` or an
  expression over the fields; a choice input's values are among its choices;
* the tables are analysed: values no row covers (gaps), rows that overlap
  under ``hit: unique``, rows that can never apply;
* each ``compute:`` is an expression or a table's output (not both), reads
  only fields — computed ones only if declared above it — and is computed at
  existing steps; a computed field is an integer, decimal, text or choice,
  is not ``required`` (a step's ``require:`` asks for it where it is needed)
  nor the scope, and no ``edit:`` grants it;
* then the ``tests:`` run (not for a version already stored): each given
  its values, the named table's outputs or the computed fields must come
  out as expected. A failing test is a problem located at the test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engine.decisions import (
    Domain,
    Output,
    Row,
    TableError,
    analyse,
    decide,
    expression_problem,
    parse_condition,
    parse_output,
    row_outputs,
)
from engine.definition.model import MOMENTS, ComputeDef, FieldDef, TableDef, TransitionDef
from engine.definition.typecheck import snapshot
from engine.errors import InvalidCaseData
from engine.expressions import BUILTIN_ATTRIBUTES, ExpressionError, compile_guard
from engine.fields import coerce_value, is_empty, shown
from engine.suggest import did_you_mean

if TYPE_CHECKING:
    from engine.definition.schema import ComputeSchema, TableSchema, TestSchema, WorkflowSchema

__all__ = ["check_computing"]

_NUMERIC = ("integer", "decimal")
_TEXTUAL = ("text", "choice", "cn_id", "email")
_COMPUTABLE = ("integer", "decimal", "text", "choice")


def check_computing(
    c: Any,
    schema: WorkflowSchema,
    fields: dict[str, FieldDef],
    transitions: dict[str, TransitionDef],
    *,
    stored: bool = False,
) -> tuple[dict[str, FieldDef], dict[str, TableDef]]:
    """The fields with their ``compute`` resolved, and the compiled tables; problems go to ``c``.

    ``stored``: a version already stored (its tests passed when it was
    loaded; they are not run again, so a stored version always loads).
    """
    before = len(c.problems)
    tables = {name: t for name, t in ((n, _table(c, n, s, fields)) for n, s in schema.tables.items()) if t is not None}
    fields = dict(fields)
    for name, f in schema.fields.items():
        if f.compute is not None and name in fields:
            compute = _compute(c, name, f.compute, fields, transitions, tables, schema)
            if compute is not None:
                fields[name] = dataclasses.replace(fields[name], compute=compute)
    _edit_grants(c, schema, fields)
    if not stored and len(c.problems) == before:
        for i, test in enumerate(schema.tests):
            _run_test(c, i, test, fields, tables)
    return fields, tables


# ---------------------------------------------------------------------------- tables


def _table(c: Any, name: str, t: TableSchema, fields: Mapping[str, FieldDef]) -> TableDef | None:
    path = ("tables", name)
    before = len(c.problems)
    domains = []
    for i, inp in enumerate(t.inputs):
        if not c.ref(path + ("inputs",), inp, fields, "field", index=i):
            continue
        kind = fields[inp].type
        if kind not in _NUMERIC + _TEXTUAL:
            c.add(path + ("inputs",) + (i,), f"field {inp!r} is {kind}; a table tests number, text and choice fields")
            continue
        domains.append(_domain(fields[inp]))
    names = [*t.inputs, *t.outputs]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        c.add(path, f"{dup!r} is listed more than once in inputs and outputs; name each column once")
    if len(c.problems) > before:
        return None
    rows = []
    for r, cells in enumerate(t.rows):
        row_path = path + ("rows", r)
        for key in cells:
            if key not in names:
                c.add(
                    row_path + (key,),
                    f"row {r + 1}: {key!r} is not an input or output{did_you_mean(key, names)}",
                    key=True,
                )
        conditions = []
        for inp, domain in zip(t.inputs, domains, strict=True):
            if inp not in cells:
                c.add(row_path, f"row {r + 1} has no cell for input {inp!r}; write '-' for any value")
                continue
            try:
                cond = parse_condition(cells[inp], domain.numeric)
            except TableError as exc:
                c.add(row_path + (inp,), f"row {r + 1}, {inp}: {exc}")
                continue
            if domain.choices is not None:
                for text in sorted(cond.texts - set(domain.choices)):
                    c.add(
                        row_path + (inp,),
                        f"row {r + 1}: {text!r} is not one of {inp}'s choices{did_you_mean(text, domain.choices)}",
                    )
            conditions.append(cond)
        outputs = []
        for out in t.outputs:
            if out not in cells:
                c.add(row_path, f"row {r + 1} has no cell for output {out!r}; write ~ for no value")
                continue
            try:
                compiled = parse_output(cells[out])
            except TableError as exc:
                c.add(row_path + (out,), f"row {r + 1}, {out}: {exc}")
                continue
            _reads_fields(c, row_path + (out,), compiled, fields, f"row {r + 1}, {out}")
            outputs.append(compiled)
        rows.append(Row(r + 1, tuple(conditions), tuple(outputs), dict(cells)))
    if len(c.problems) > before:
        return None
    for finding in analyse(t.hit, t.inputs, rows, domains):
        where = path + ("rows", finding.row - 1) if finding.row is not None else path + ("rows",)
        c.add(where, f"table {name}: {finding.message}", key=finding.row is None)
    return TableDef(name, t.hit, tuple(t.inputs), tuple(t.outputs), tuple(rows), t.label)


def _domain(f: FieldDef) -> Domain:
    if f.type in _NUMERIC:
        low, high = (None if v is None else Decimal(str(v)) for v in (f.min, f.max))
        return Domain(True, f.type == "integer", low, high)
    return Domain(False, choices=f.choices if f.type == "choice" else None)


def _reads_fields(c: Any, path: tuple[Any, ...], out: Output, fields: Mapping[str, FieldDef], what: str) -> None:
    for attr in sorted(out.reads - set(fields)):
        c.add(path, f"{what}: {_not_a_field(attr, fields)}")


def _not_a_field(attr: str, fields: Mapping[str, FieldDef]) -> str:
    if attr in BUILTIN_ATTRIBUTES:
        # a value worked out once and stored must not depend on where the case happens to be
        return f"case.{attr} is not a field: a computed value reads the case's fields only"
    return f"case.{attr} is not a field{did_you_mean(attr, fields)} (a computed value reads fields only)"


# ---------------------------------------------------------------------------- computes


def _compute(
    c: Any,
    name: str,
    spec: ComputeSchema,
    fields: Mapping[str, FieldDef],
    transitions: Mapping[str, TransitionDef],
    tables: Mapping[str, TableDef],
    schema: WorkflowSchema,
) -> ComputeDef | None:
    path = ("fields", name, "compute")
    f = fields[name]
    before = len(c.problems)
    if f.type not in _COMPUTABLE:
        c.add(
            path, f"a {f.type} field cannot be computed; computed fields are integer, decimal, text or choice", key=True
        )
    if f.required:
        c.add(
            ("fields", name, "required"),
            "a computed field is filled in by the engine at its steps, not by people: drop 'required' and "
            f"add 'require: [{name}]' to the steps that need it",
            key=True,
        )
    if f.scope:
        c.add(("fields", name, "scope"), "the scope is needed to open a case; it cannot be computed later", key=True)
    places = spec.places if spec.places is not None else (0 if f.type == "integer" else 2)
    if f.type == "integer" and places != 0:
        c.add(path + ("places",), f"an integer keeps no decimal places (places: 0), not {places}")
    at = (spec.at,) if isinstance(spec.at, str) else tuple(spec.at)
    for i, step in enumerate(at):
        where = path + ("at",) + (() if isinstance(spec.at, str) else (i,))
        if step in MOMENTS:
            if step in transitions:
                c.add(where, f"{step!r} names both a step and the moment a case is {step}; rename the step")
            continue
        c.ref(where, step, [*transitions, *MOMENTS], "step or moment", index=None)
    reads: list[str] = []
    expr = None
    output = None
    if (spec.expr is None) == (spec.table is None):
        c.add(path, "give either 'expr: EXPRESSION' or 'table: TABLE' (one of them)")
    elif spec.expr is not None:
        try:
            expr = compile_guard(spec.expr)
        except ExpressionError as exc:
            c.add(path + ("expr",), f"expr: {expression_problem(exc)}")
        else:
            for attr in sorted(expr.case_attributes - set(fields)):
                c.add(path + ("expr",), f"expr: {_not_a_field(attr, fields)}")
            reads = sorted(expr.case_attributes & set(fields))
    elif spec.table is not None:
        if c.ref(path + ("table",), spec.table, schema.tables, "table", index=None) and spec.table in tables:
            table = tables[spec.table]
            output = spec.output or name
            if output not in table.outputs:
                c.add(
                    path + ("output" if spec.output else "table",),
                    f"table {spec.table} has no output {output!r} (its outputs: {', '.join(table.outputs)})"
                    + ("" if spec.output else "; name the column with 'output:'"),
                )
            else:
                column = table.outputs.index(output)
                used = {a for row in table.rows for a in row.outputs[column].reads}
                reads = [*table.inputs, *sorted(used - set(table.inputs))]
    order = list(fields)
    for read in reads:
        if read == name:
            c.add(path, f"{name} cannot be computed from itself")
        elif schema.fields[read].compute is not None and order.index(read) > order.index(name):
            # computed in declared order: a value read must already be worked out
            c.add(path, f"{name} reads {read}, which is computed after it; declare {read} above {name}")
    if len(c.problems) > before:
        return None
    return ComputeDef(
        at=at,
        expr=expr,
        table=spec.table,
        output=output,
        round=spec.round,
        places=places,
        reads=tuple(reads),
    )


def _edit_grants(c: Any, schema: WorkflowSchema, fields: Mapping[str, FieldDef]) -> None:
    """A declared ``edit:`` may not list a computed field (``all`` may: it means every field that can be typed)."""
    for state, s in schema.states.items():
        for role, listed in (s.edit or {}).items():
            if listed == "all":
                continue
            for i, name in enumerate(listed):
                f = schema.fields.get(name)
                if f is not None and f.compute is not None:
                    c.add(
                        ("states", state, "edit", role, i),
                        f"{name} is computed, so nobody edits it; grant the fields it is computed from instead",
                    )


# ---------------------------------------------------------------------------- tests


def _run_test(c: Any, i: int, test: TestSchema, fields: Mapping[str, FieldDef], tables: Mapping[str, TableDef]) -> None:
    path = ("tests", i)
    label = f"test {test.name!r}" if test.name else f"test {i + 1}"
    values: dict[str, Any] = {}
    ok = True
    for name, raw in test.given.items():
        if not c.ref(path + ("given",), name, fields, "field", index=None):
            ok = False
            continue
        if fields[name].compute is not None and test.table is None:
            c.add(path + ("given", name), f"{label}: {name} is computed; give the fields it is computed from", key=True)
            ok = False
            continue
        try:
            value = coerce_value(fields[name], repr(raw) if isinstance(raw, float) else raw, dt.date.today())
        except ValueError as exc:
            c.add(path + ("given", name), f"{label}: {name}: {exc}")
            ok = False
            continue
        if value is not None:
            values[name] = value
    if test.table is not None:
        if not c.ref(path + ("table",), test.table, tables, "table", index=None):
            return
        table = tables[test.table]
        expected_names: list[str] = list(table.outputs)
    else:
        expected_names = [f.name for f in fields.values() if f.compute is not None]
    for name in test.expect:
        if name not in expected_names:
            what = f"an output of table {test.table}" if test.table else "a computed field"
            c.add(
                path + ("expect", name),
                f"{label}: {name!r} is not {what}{did_you_mean(name, expected_names)}",
                key=True,
            )
            ok = False
    if not ok:
        return
    given = ", ".join(f"{k}={_show(v)}" for k, v in values.items()) or "nothing"
    # engine.compute imports the definition model, whose package imports this module: import it when used
    from engine.compute import compute_values

    try:
        got = (
            _table_outputs(tables[test.table], fields, values)
            if test.table
            else compute_values(fields, tables, values)[0]
        )
    except (InvalidCaseData, TableError, ExpressionError) as exc:
        c.add(path, f"{label} fails: {exc} (given {given})")
        return
    wrong = [
        f"{name} expected {_show(expected)}, got {_show(got.get(name))}"
        for name, expected in test.expect.items()
        if not _same(expected, got.get(name))
    ]
    if wrong:
        c.add(path, f"{label} fails: {'; '.join(wrong)} (given {given})")


def _table_outputs(table: TableDef, fields: Mapping[str, FieldDef], values: Mapping[str, Any]) -> dict[str, Any]:
    snap = snapshot(fields, "", "", values, 0)
    row = decide(table.name, table.hit, table.rows, [snap[name] for name in table.inputs])
    if row is None:
        return {}
    return row_outputs(table.outputs, row, snap)


def _same(expected: Any, got: Any) -> bool:
    """Numbers compare by value (500 = "500.00"), everything else as written; ~ expects no value."""
    if is_empty(expected) or is_empty(got):
        return is_empty(expected) and is_empty(got)
    a, b = _number(expected), _number(got)
    if a is not None and b is not None:
        return a == b
    return bool(expected == got)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _show(value: Any) -> str:
    if value is None:
        return "no value"
    if isinstance(value, Decimal):
        return format(value, "f")
    return value if isinstance(value, str) else shown(value)
