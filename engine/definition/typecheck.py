"""Stage 4: every guard and computed expression is run on typed example values of the fields it reads.

An expression that parses can still be unable to run: ``case.cost * ('0.1' |
float)`` mixes a decimal with a float, ``case.name > 3`` compares text with a
number, ``case.size | length`` counts the characters of a number. Such a
guard used to load and then refuse every step that reached it, telling the
clerk to fill in fields that were filled in. So each one is run here, when
the workflow is validated, on values its fields can really hold — through
:func:`snapshot`, the same function that builds what a guard sees at run
time:

* numbers: their ``min`` and ``max`` (or a large value either way), 0, 1 and,
  for decimals, 0.01 — those inside the bounds;
* each choice; an empty, a one-item and a full checklist; two real dates;
  a short and a longest text; an ID number; an email address;
* empty values (None) for the fields that may be empty when the expression
  runs.

**Empty values.** A guard runs only after the step's required fields are
checked (:func:`engine.rules.check_ready`): the fields in its ``require:``
and those marked ``required: true`` are filled in; any other field may be
empty, so a guard that raises on an empty value is refused too. A checklist
is never None: empty, it is ``[]`` (so ``case.materials | length`` works).
A computed field's ``expr`` is checked on filled values only: when a field it
reads is empty, the computed value is empty, and the expression is not run.

A problem names the example values that made the expression fail and what to
write instead, at the ``when``/``unless``/``compute.expr`` it is about.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, DivisionByZero, DivisionUndefined, InvalidOperation
from typing import Any, Protocol

from engine.definition.model import FieldDef, TransitionDef
from engine.expressions import BUILTIN_ATTRIBUTES, BudgetExceeded, ExpressionError, Guard
from engine.fields import DEFAULT_MAX_TEXT

__all__ = ["check_types", "examples", "snapshot"]

#: the most combinations of example values one expression is run on; above it, each field is varied alone
MAX_ROWS = 200
#: CPU seconds for checking one workflow's expressions; past them, each expression is run on one row only
#: (a legitimate workflow of 500 guards takes well under a second; this bounds a hostile one)
CHECK_SECONDS = 5.0
_LONGEST_TEXT = 100_000  # characters of the longest example text (a field's max may be larger)
_BIG_INTEGER = 10**15  # the largest integer a field accepts (engine.fields)
_BIG_DECIMAL = Decimal("999999999999999.999999")  # 15 digits and 6 places: the largest decimal accepted
_SAMPLE_REF = "ZZ-2026-000001"
_SAMPLE_ID = "11010519491231002X"
_SAMPLE_EMAIL = "lin@example.org"
_TYPE_NAMES = {
    "text": "text",
    "integer": "an integer",
    "decimal": "a decimal",
    "date": "a date",
    "choice": "a choice (text)",
    "checklist": "a checklist (a list of texts)",
    "cn_id": "an ID number (text)",
    "email": "an email address (text)",
}


class _Adds(Protocol):
    def add(self, path: tuple[Any, ...], message: str, *, key: bool = False) -> None: ...


def snapshot(
    fields: Mapping[str, FieldDef], ref: str, state: str, values: Mapping[str, Any], open_objections: int
) -> dict[str, Any]:
    """What a guard or computed expression sees: ``case.<field>`` typed, plus ``state``, ``ref``, ``open_objections``.

    ``values`` are the stored forms (:mod:`engine.fields`): a decimal becomes a
    :class:`~decimal.Decimal`, a date a :class:`datetime.date`; an empty checklist
    is ``[]`` (so ``| length`` counts it), any other empty field None. The
    runtime (:mod:`engine.rules`) and the type check use this one function, so
    what validates is what runs.
    """
    snap: dict[str, Any] = {name: [] if f.type == "checklist" else None for name, f in fields.items()}
    for name, value in values.items():
        kind = fields[name].type if name in fields else None
        if value is None:
            continue  # already the field's empty value
        if kind == "decimal":
            value = Decimal(value)
        elif kind == "date":
            value = dt.date.fromisoformat(value)
        snap[name] = value
    snap.update(state=state, ref=ref, open_objections=open_objections)
    return snap


def examples(f: FieldDef) -> list[Any]:
    """Filled example values of ``f`` in their stored form: its boundaries and typical values."""
    if f.type == "integer":
        low = math.ceil(f.min) if f.min is not None else -_BIG_INTEGER
        high = math.floor(f.max) if f.max is not None else _BIG_INTEGER
        return _within([low, high, 0, 1], low, high)
    if f.type == "decimal":
        dlow = Decimal(str(f.min)) if f.min is not None else -_BIG_DECIMAL
        dhigh = Decimal(str(f.max)) if f.max is not None else _BIG_DECIMAL
        return [str(d) for d in _within([dlow, dhigh, Decimal(0), Decimal("0.01"), Decimal(1)], dlow, dhigh)]
    if f.type == "text":
        shortest = max(int(f.min or 1), 1)
        longest = min(max(int(f.max) if f.max is not None else DEFAULT_MAX_TEXT, shortest), _LONGEST_TEXT)
        return list(dict.fromkeys(["陈" * shortest, "陈" * longest]))
    if f.type == "date":
        return ["2026-11-02", "2000-02-29"]
    if f.type == "choice":
        return list(f.choices)
    if f.type == "checklist":
        return list(_unique([list(f.items[:1]), list(f.items)])) if f.items else [[]]
    if f.type == "cn_id":
        return [_SAMPLE_ID]
    if f.type == "email":
        return [_SAMPLE_EMAIL]
    return ["x"]  # pragma: no cover - the schema knows no other type


def _within(values: list[Any], low: Any, high: Any) -> list[Any]:
    return list(dict.fromkeys(v for v in values if low <= v <= high))


def _unique(lists: list[list[str]]) -> Iterator[list[str]]:
    seen: set[tuple[str, ...]] = set()
    for x in lists:
        if tuple(x) not in seen:
            seen.add(tuple(x))
            yield x


def check_types(c: _Adds, fields: dict[str, FieldDef], transitions: dict[str, TransitionDef]) -> None:
    """Add to ``c`` a located problem for each guard or ``compute`` expression that raises on typed values."""
    known = set(fields) | BUILTIN_ATTRIBUTES
    deadline = time.thread_time() + CHECK_SECONDS
    for name, t in transitions.items():
        filled = set(t.require) | {f.name for f in fields.values() if f.required}
        for kind, guard in (("when", t.when), ("unless", t.unless)):
            if guard is None or not guard.case_attributes <= known:
                continue  # an unknown field is reported already
            problem = _problem(guard, kind, fields, t.sources, filled, guard.evaluate, deadline)
            if problem:
                c.add(("transitions", name, kind), problem)
    for f in fields.values():
        expr = f.compute.expr if f.compute is not None else None
        if expr is None or not expr.case_attributes <= known:
            continue
        at = [transitions[a] for a in f.compute.at if a in transitions] if f.compute else []
        states = tuple(dict.fromkeys(s for a in at for s in a.sources)) or ("draft",)
        # inputs are filled when the expression runs: with an empty input the computed value is empty
        problem = _problem(expr, "expr", fields, states, set(expr.case_attributes), _computing(f, expr), deadline)
        if problem:
            c.add(("fields", f.name, "compute", "expr"), problem)


def _computing(f: FieldDef, expr: Guard) -> Callable[[dict[str, Any]], Any]:
    """Run a computed field's expression as :mod:`engine.compute` does: a number field needs an exact number."""

    def run(snap: dict[str, Any]) -> Any:
        value = expr.value(snap)
        if f.type in ("integer", "decimal") and (isinstance(value, bool) or not isinstance(value, (int, Decimal))):
            raise ExpressionError(f"it gives {value!r}, not an exact number for a {f.type} field")
        return value

    return run


def _options(name: str, fields: Mapping[str, FieldDef], states: Sequence[str]) -> list[Any]:
    if name == "state":
        return list(states)
    if name == "ref":
        return [_SAMPLE_REF]
    if name == "open_objections":
        return [0, 1]
    return examples(fields[name])


def _rows(options: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Combinations of the options: all of them if few, else each name varied alone plus a diagonal."""
    names = list(options)
    if math.prod(len(v) for v in options.values()) <= MAX_ROWS:
        for combo in itertools.product(*options.values()):
            yield dict(zip(names, combo, strict=True))
        return
    base = {n: v[0] for n, v in options.items()}
    for n in names:
        for value in options[n]:
            yield {**base, n: value}
    for i in range(max(len(v) for v in options.values())):
        yield {n: v[i % len(v)] for n, v in options.items()}


def _problem(
    expr: Guard,
    kind: str,
    fields: Mapping[str, FieldDef],
    states: Sequence[str],
    filled: set[str],
    run: Callable[[dict[str, Any]], Any],
    deadline: float,
) -> str | None:
    """Why ``expr`` cannot run on values its fields can hold, or None."""
    read = sorted(expr.case_attributes)
    options = {n: _options(n, fields, states) for n in read}
    field_values = {n: o for n, o in options.items() if n in fields}

    def attempt(row: dict[str, Any]) -> ExpressionError | None:
        values = {n: v for n, v in row.items() if n in fields}
        state = row.get("state", states[0])
        snap = snapshot(fields, row.get("ref", _SAMPLE_REF), state, values, row.get("open_objections", 0))
        try:
            run(snap)
        except BudgetExceeded as exc:
            return exc
        except ExpressionError as exc:
            return exc
        return None

    for i, row in enumerate(_rows(options)):
        if i and time.thread_time() > deadline:
            return None
        error = attempt(row)
        if error is not None:
            # the fields whose value made it fail: another of their values lets it run
            culprits = [
                n for n in field_values if any(attempt({**row, n: alt}) is None for alt in options[n] if alt != row[n])
            ]
            return _typed_problem(expr, kind, fields, row, culprits, error)
    # an empty field, one at a time, the others filled; then all of them empty together
    nullable = [n for n in field_values if n not in filled and fields[n].type != "checklist"]
    if not nullable:
        return None
    for n in nullable:
        for row in itertools.islice(_rows(options), 20):
            if time.thread_time() > deadline:
                return None
            error = attempt({**row, n: None})
            if error is not None:
                return _empty_problem(expr, kind, [n], error)
    all_empty = {**{n: o[0] for n, o in options.items()}, **dict.fromkeys(nullable)}
    error = attempt(all_empty)
    if error is not None:
        return _empty_problem(expr, kind, nullable, error)
    return None


def _shown(name: str, value: Any, fields: Mapping[str, FieldDef]) -> str:
    f = fields.get(name)
    if f is None:
        return f"case.{name} = {value!r}"
    if f.type == "text" and isinstance(value, str) and len(value) > 12:
        text = f"a text of {len(value)} characters"
    elif f.type in ("integer", "decimal"):
        text = str(value)
    else:
        text = repr(value)
    return f"case.{name} = {text} ({f.type})"


def _typed_problem(
    expr: Guard,
    kind: str,
    fields: Mapping[str, FieldDef],
    row: dict[str, Any],
    culprits: list[str],
    error: ExpressionError,
) -> str:
    shown = ", ".join(_shown(n, v, fields) for n, v in row.items())
    return f"{kind}: '{expr.text}' cannot run with {shown}: {error}; {_hint(fields, row, culprits, error)}"


def _empty_problem(expr: Guard, kind: str, names: list[str], error: ExpressionError) -> str:
    listed = ", ".join(f"case.{n}" for n in names)
    one = names[0]
    where = (
        "the step's 'require:' (so it is filled in before the guard runs)"
        if kind != "expr"
        else "'required: true' on the field"
    )
    return (
        f"{kind}: '{expr.text}' cannot run when {listed} {'is' if len(names) == 1 else 'are'} empty ({error}); "
        f"add {', '.join(names)} to {where}, or test for it first: "
        f"'case.{one} is not none and …' (or 'case.{one} is none or …')"
    )


def _hint(fields: Mapping[str, FieldDef], row: dict[str, Any], culprits: list[str], error: ExpressionError) -> str:
    """What to write instead, from the kind of failure."""
    cause = error.__cause__
    text = str(cause if cause is not None else error)
    kinds = ", ".join(f"case.{n} is {_TYPE_NAMES.get(fields[n].type, fields[n].type)}" for n in row if n in fields)
    if "not an exact number" in text:
        return "leave out '| float': a number written with a decimal point, such as 0.10, is exact already"
    if isinstance(cause, TypeError) and "Decimal" in text and "float" in text:
        return (
            "a decimal does not mix with a float: leave out '| float' "
            "(a number written with a decimal point, such as 0.10, is exact already)"
        )
    if isinstance(cause, (ZeroDivisionError, DivisionByZero, DivisionUndefined)) or (
        isinstance(cause, InvalidOperation) and "division" in text.lower()
    ):
        zero = [n for n in culprits if row[n] in (0, "0")]
        if zero:
            n = zero[0]
            return f"it divides by zero when case.{n} is 0: give the field 'min: 1', or test 'case.{n} != 0 and …'"
        return "it divides by zero: test the divisor is not 0 first"
    dates = [n for n in row if n in fields and fields[n].type == "date"]
    if isinstance(cause, TypeError) and "datetime.date" in text and dates:
        return f"case.{dates[0]} is a date: compare it with another date field ('case.{dates[0]} <= case.other')"
    if isinstance(cause, TypeError) and "not supported between instances of" in text:
        return f"it compares values of different kinds ({kinds}): compare text with quoted text, numbers with numbers"
    if isinstance(cause, TypeError) and "has no len()" in text:
        return f"'| length' counts the items of a checklist or the characters of a text ({kinds})"
    if isinstance(error, BudgetExceeded):
        return "make the expression build less (keep repetitions and joins small)"
    return f"check the kinds of values it combines ({kinds})"
