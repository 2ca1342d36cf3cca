"""Guards: ``when``/``unless`` expressions written by supervisors, run safely; and the evaluation budget.

A guard is a Jinja2 expression compiled once in a ``SandboxedEnvironment``
and evaluated over a plain snapshot of the case (``case.<field>``,
``case.state``, ``case.open_objections``, ``case.ref``). Guard text is
untrusted, so on top of the sandbox it is checked statically when the
workflow loads:

* no calls at all (no ``.format``, no ``range``, no generator tricks);
* attributes only one level deep on ``case``, never starting with ``_``;
* only a short list of filters and tests (no ``attr``, ``format``, ``map``);
* no ``**``; ``*`` on strings or lists is bounded at run time;
* filter arguments written as constants within their bounds (``round``'s digits);
* at most :data:`MAX_LENGTH` characters.

**The budget.** Every evaluation of supervisor-written text — a guard here, a
template in :mod:`engine.templates` — runs under a budget of CPU time
(:data:`TIME_LIMIT_ENV`, default 1 s of the evaluating thread's CPU time) and
of memory (:data:`MEMORY_LIMIT_ENV`, default 100 MB). Pure-Python evaluation
cannot be interrupted reliably inside one C call (``'x' * 10**9``,
``str.center``, ``10 ** n`` inside ``round``), so the budget works in two
layers instead of signals or a subprocess:

1. *Every operation is bounded before it runs*: ``round``'s digits, ``center``
   and ``truncate`` widths, ``*`` on text and on integers, ``+``/``~``
   concatenation, ``replace``, ``join``, and the list-building filters refuse
   arguments that would build more than :data:`MAX_TEXT` characters (or
   :data:`MAX_ITEMS` items, or :data:`MAX_INT_BITS`-bit integers). The sandbox
   intercepts the operators; the filter table holds bounded wrappers; and the
   environment never constant-folds an unbounded call at compile time (a
   refused argument makes folding impossible, so it is left to run time,
   where it is refused).
2. *The evaluation is metered*: each operator, attribute, filter, test,
   output value and ``for``-loop iteration ticks a counter, and every
   :data:`CHECK_EVERY` ticks the thread's CPU time is compared with the
   deadline; each value an operator or filter builds is charged, by its size
   in bytes, to the memory allowance. The memory allowance counts bytes
   *built*, not bytes live, so it is an upper bound on what the evaluation can
   hold, and it also stops cheap loops that build a lot.

Going over either raises :class:`BudgetExceeded` (an :class:`ExpressionError`).
A subprocess under ``setrlimit`` would also bound C calls, but costs a fork per
evaluation (the relay renders thousands of messages a minute, steps evaluate
guards on every request); the bounds in layer 1 make that unnecessary.

Only :class:`ExpressionError` ever leaves this module, and
:class:`~engine.errors.InputError` for an unusable ``CASEWORK_EVAL_*`` setting.
"""

from __future__ import annotations

import functools
import math
import operator
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, TypeVar

from jinja2 import StrictUndefined, filters as jinja_filters, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import pass_environment, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import soft_str

from engine.errors import InputError

__all__ = [
    "MEMORY_LIMIT_ENV",
    "TIME_LIMIT_ENV",
    "BudgetExceeded",
    "EvalLimits",
    "ExpressionError",
    "Guard",
    "SafeEnvironment",
    "argument_problem",
    "bounded_filters",
    "bounded_tests",
    "compile_guard",
    "eval_limits",
    "metered",
]

T = TypeVar("T")

MAX_LENGTH = 500
MAX_PRODUCT = 10_000
MAX_DEPTH = 32
TOO_DEEP = (
    f"the expression is nested more than {MAX_DEPTH} levels deep "
    "(long chains of and/or count too: use 'case.x in [...]')"
)

# Bounds on single operations (layer 1 of the budget, see the module documentation).
MAX_TEXT = 1_000_000  # characters one operator or filter may build
MAX_ITEMS = 100_000  # items a list-building filter may take
MAX_INT_BITS = 4_096  # bits of an integer '*' may build (about 1,200 digits)
MAX_DIGITS = 30  # round(value, digits): |digits| at most this
MAX_WIDTH = 10_000  # center(width), truncate(length)
CHECK_EVERY = 32  # ticks between two reads of the CPU clock

TIME_LIMIT_ENV = "CASEWORK_EVAL_TIME_LIMIT"
MEMORY_LIMIT_ENV = "CASEWORK_EVAL_MEMORY_LIMIT"
DEFAULT_TIME_LIMIT = 1.0  # seconds of the evaluating thread's CPU time
DEFAULT_MEMORY_LIMIT = 100  # megabytes built


class ExpressionError(Exception):
    """A guard failed to compile or to evaluate; the message says why."""


class BudgetExceeded(ExpressionError):
    """An evaluation went over its CPU-time or memory budget, or one operation would build too much."""


@dataclass(frozen=True)
class EvalLimits:
    """The budget of one evaluation: CPU seconds, and megabytes of values built."""

    time: float = DEFAULT_TIME_LIMIT
    memory: int = DEFAULT_MEMORY_LIMIT


@functools.lru_cache(maxsize=16)
def _parse_limits(time_text: str | None, memory_text: str | None) -> EvalLimits:
    limits = EvalLimits()
    try:
        seconds = float(time_text) if time_text is not None else limits.time
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise InputError(
            f"{TIME_LIMIT_ENV} must be a number of CPU seconds between 0 and 3600 (e.g. 1 or 0.5), not {time_text!r}",
            option=TIME_LIMIT_ENV,
            value=time_text,
        )
    try:
        megabytes = int(memory_text) if memory_text is not None else limits.memory
    except ValueError:
        megabytes = -1
    if not 1 <= megabytes <= 100_000:
        raise InputError(
            f"{MEMORY_LIMIT_ENV} must be a whole number of megabytes between 1 and 100000 (e.g. 100), "
            f"not {memory_text!r}",
            option=MEMORY_LIMIT_ENV,
            value=memory_text,
        )
    return EvalLimits(seconds, megabytes)


def eval_limits(env: Mapping[str, str] | None = None) -> EvalLimits:
    """The budget from ``CASEWORK_EVAL_TIME_LIMIT`` (seconds) and ``CASEWORK_EVAL_MEMORY_LIMIT`` (MB).

    Read on every evaluation (two dictionary look-ups; parsing is cached), so a
    test or an operator can change them without restarting anything.

    Raises:
        InputError: a setting is not a usable number.
    """
    source = os.environ if env is None else env
    return _parse_limits(source.get(TIME_LIMIT_ENV) or None, source.get(MEMORY_LIMIT_ENV) or None)


class _Budget:
    """What is left of one evaluation's budget."""

    __slots__ = ("countdown", "deadline", "left", "limits")

    def __init__(self, limits: EvalLimits) -> None:
        self.limits = limits
        self.deadline = time.thread_time() + limits.time
        self.left = limits.memory * 1024 * 1024
        self.countdown = CHECK_EVERY

    def tick(self) -> None:
        self.countdown -= 1
        if self.countdown <= 0:
            self.check_clock()

    def check_clock(self) -> None:
        self.countdown = CHECK_EVERY
        if time.thread_time() > self.deadline:
            raise BudgetExceeded(
                f"it ran for more than {self.limits.time:g} s of CPU time, the limit ({TIME_LIMIT_ENV})"
            )

    def charge(self, nbytes: int) -> None:
        self.left -= nbytes
        if self.left < 0:
            raise BudgetExceeded(
                f"it built more than {self.limits.memory:,} MB of values, the limit ({MEMORY_LIMIT_ENV})"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("casework_eval_budget", default=None)


def metered(run: Callable[[], T], limits: EvalLimits | None = None) -> T:
    """Call ``run`` under a fresh budget (``limits``, default :func:`eval_limits`).

    Raises:
        BudgetExceeded: it went over the budget (a ``MemoryError`` inside counts as that too).
        InputError: the ``CASEWORK_EVAL_*`` settings are unusable.
    """
    token = _BUDGET.set(_Budget(limits or eval_limits()))
    try:
        return run()
    except MemoryError:
        raise BudgetExceeded("it ran out of memory") from None
    finally:
        _BUDGET.reset(token)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.countdown -= 1
        if budget.countdown <= 0:
            budget.check_clock()


def _size(value: Any) -> int:
    """Bytes a built value occupies (the strings of a list counted too: '漢字' | list makes new ones)."""
    if type(value) is str:
        return sys.getsizeof(value)
    if isinstance(value, (list, tuple)):
        return sys.getsizeof(value) + sum(sys.getsizeof(x) for x in value if isinstance(x, str))
    if isinstance(value, (str, bytes, dict, int)):
        return sys.getsizeof(value)
    return 0


def _built(value: T) -> T:
    """Tick, and charge a value an operator or filter built to the budget; return it."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.countdown -= 1
        if budget.countdown <= 0:
            budget.check_clock()
        budget.charge(_size(value))
    return value


def _too_long(what: str, length: int) -> BudgetExceeded:
    return BudgetExceeded(f"{what} would build a text of {length:,} characters; at most {MAX_TEXT:,} are allowed")


def _text_length(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value))


def _whole(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExpressionError(f"{what} must be a whole number, not {type(value).__name__}")
    if not low <= value <= high:
        raise BudgetExceeded(f"{what} must be between {low:,} and {high:,}, not {value:,}")
    return value


# --- bounded filters: the same as Jinja's, with their arguments checked before they run -------------------------


def _round(value: Any, precision: Any = 0, method: str = "common") -> Any:
    # round(4, -99999999999) computes 10**99999999999 inside C: no signal or deadline could stop it
    _whole(precision, "round's number of digits", -MAX_DIGITS, MAX_DIGITS)
    if method in ("floor", "ceil") and isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        # Jinja's floor/ceil divide by 10**precision and so give a float; an exact number stays exact
        rounding = ROUND_FLOOR if method == "floor" else ROUND_CEILING
        return Decimal(value).quantize(Decimal(1).scaleb(-precision), rounding=rounding)
    return jinja_filters.do_round(value, precision, method)  # type: ignore[arg-type]


def _center(value: Any, width: Any = 80) -> str:
    _whole(width, "center's width", 0, MAX_WIDTH)
    return jinja_filters.do_center(value, width)


@pass_environment
def _truncate(
    env: Any, s: Any, length: Any = 255, killwords: bool = False, end: str = "...", leeway: Any = None
) -> str:
    _whole(length, "truncate's length", 0, MAX_WIDTH)
    if leeway is not None:
        _whole(leeway, "truncate's leeway", 0, MAX_WIDTH)
    return jinja_filters.do_truncate(env, s, length, killwords, end, leeway)


@pass_eval_context
def _replace(eval_ctx: EvalContext, s: Any, old: Any, new: Any, count: Any = None) -> str:
    text, old_text, new_text = str(s), str(old), str(new)
    times = len(text) + 1 if old_text == "" else text.count(old_text)
    if count is not None and _whole(count, "replace's count", -sys.maxsize, sys.maxsize) >= 0:
        times = min(times, count)  # a negative count replaces every one
    length = len(text) + times * (len(new_text) - len(old_text))
    if length > MAX_TEXT:
        raise _too_long("replace", length)
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx: EvalContext, value: Any, d: Any = "", attribute: Any = None) -> str:
    items = _items(value, "join")
    if attribute is None:
        length = len(str(d)) * max(len(items) - 1, 0) + sum(_text_length(x) for x in items)
        if length > MAX_TEXT:
            raise _too_long("join", length)
    result: str = jinja_filters.do_join(eval_ctx, items, d, attribute)
    if len(result) > MAX_TEXT:
        raise _too_long("join", len(result))
    return result


def _items(value: Any, what: str) -> list[Any]:
    if hasattr(value, "__len__") and len(value) > MAX_ITEMS:
        raise BudgetExceeded(f"{what} would take {len(value):,} items; at most {MAX_ITEMS:,} are allowed")
    items = []
    for x in value:
        items.append(x)
        if len(items) > MAX_ITEMS:
            raise BudgetExceeded(f"{what} would take more than {MAX_ITEMS:,} items")
    return items


def _few(what: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if hasattr(value, "__len__") and len(value) > MAX_ITEMS:
            raise BudgetExceeded(f"{what} would take {len(value):,} items; at most {MAX_ITEMS:,} are allowed")

    return check


_BOUNDED: dict[str, Callable[..., Any]] = {
    "round": _round,
    "center": _center,
    "truncate": _truncate,
    "replace": _replace,
    "join": _join,
}
# filters that build a list from their input: the input's size is checked before they run
_LIST_BUILDERS = frozenset({"list", "sort", "unique", "dictsort"})


def _metered_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    offset = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0
    check = _few(name) if name in _LIST_BUILDERS else None

    @functools.wraps(fn)  # keeps jinja_pass_arg: the wrapper is passed what the filter expects
    def run(*args: Any, **kwargs: Any) -> Any:
        if check is not None and len(args) > offset:
            check(args[offset])
        return _built(fn(*args, **kwargs))

    return run


def _metered_test(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        _tick()
        return fn(*args, **kwargs)

    return run


def bounded_filters(env: SandboxedEnvironment, names: Iterable[str]) -> dict[str, Any]:
    """``env``'s filters called ``names``, each bounded and metered; plus the budget's internal ones."""
    wanted = set(names)
    table = {k: _BOUNDED.get(k, v) for k, v in env.filters.items() if k in wanted}
    out = {k: _metered_filter(k, v) for k, v in table.items()}
    out[_LOOP_FILTER] = _budget_loop
    out[_CONCAT_FILTER] = _budget_concat
    return out


# the first argument of these filters, and its bounds
_ARGUMENT_LIMITS = {
    "round": ("round's number of digits", -MAX_DIGITS, MAX_DIGITS),
    "center": ("center's width", 0, MAX_WIDTH),
    "truncate": ("truncate's length", 0, MAX_WIDTH),
}


def argument_problem(node: nodes.Filter) -> str | None:
    """What is wrong with a filter's constant arguments (``round(-99999999999)``), or None.

    Checked when the workflow loads, so such a guard or template never gets stored; arguments
    computed at run time are checked by the bounded filters themselves.
    """
    if node.name not in _ARGUMENT_LIMITS:
        return None
    what, low, high = _ARGUMENT_LIMITS[node.name]
    first: nodes.Expr | None = node.args[0] if node.args else None
    for kw in node.kwargs:
        if kw.key in ("precision", "width", "length"):
            first = kw.value
    if isinstance(first, nodes.Neg) and isinstance(first.node, nodes.Const):
        value: Any = first.node.value
        value = -value if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    elif isinstance(first, nodes.Const):
        value = first.value
    else:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"{what} must be a whole number, not {value!r}"
    if not low <= value <= high:
        return f"{what} must be between {low:,} and {high:,}, not {value:,}"
    return None


# --- the budget's hooks in compiled code ------------------------------------------------------------------------

_LOOP_FILTER = "_casework_budget_loop"
_CONCAT_FILTER = "_casework_budget_concat"


def _budget_loop(iterable: Any) -> Any:
    budget = _BUDGET.get()
    return iterable if budget is None else _ticking(iterable, budget)


def _ticking(iterable: Any, budget: _Budget) -> Iterator[Any]:
    for item in iterable:
        budget.tick()
        yield item


@pass_eval_context
def _budget_concat(eval_ctx: EvalContext, values: list[Any]) -> str:
    texts = [v if isinstance(v, str) else soft_str(v) for v in values]
    length = sum(len(t) for t in texts)
    if length > MAX_TEXT:
        raise _too_long("'~'", length)
    return _built(markup_join(texts) if eval_ctx.autoescape else str_join(texts))


class _Metering(NodeTransformer):
    """Routes every for-loop's iterable and every '~' through the budget's filters."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _LOOP_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), _CONCAT_FILTER, [], [], None, None)


_SMALL = 256  # characters: shorter outputs are not charged (loops are timed; only large values can pile up)


def _finalize(value: Any) -> Any:
    # every {{ value }} passes here, also inside {% set x %}...{% endset %}, which builds text without '~'
    if isinstance(value, str) and len(value) > _SMALL:  # Markup too: what an HTML {% set %} block captured
        if len(value) > MAX_TEXT:
            raise _too_long("showing a value", len(value))
        return _built(value)
    return value


class SafeEnvironment(SandboxedEnvironment):
    """The sandbox for everything supervisors write: bounded and metered operators, keys before methods."""

    # Intercepting these also stops Jinja from folding them as constants at
    # compile time, where '%0999999999d' % 1 would build a gigabyte string.
    intercepted_binops = frozenset({"*", "**", "%", "+", "/"})

    def __init__(self, **options: Any) -> None:
        options.setdefault("finalize", _finalize)
        super().__init__(**options)

    def _generate(
        self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False
    ) -> str:
        tree = _Metering().visit(source)
        tree.set_environment(self)
        return super()._generate(tree, name, filename, defer_init=defer_init)

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        _tick()
        if operator_ == "**":
            raise ExpressionError("'**' is not allowed in a guard")
        if operator_ == "/":
            if isinstance(left, int) and isinstance(right, int):
                # exact, as decimal literals are: 7 / 2 * 0.5 must not mix a float with a Decimal
                return Decimal(left) / Decimal(right)
            return operator.truediv(left, right)
        if operator_ == "%":
            if isinstance(left, (str, bytes)):
                raise ExpressionError("'%' formatting of text is not allowed in a guard")
            return operator.mod(left, right)
        if operator_ == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                if len(left) + len(right) > MAX_TEXT:
                    raise _too_long("'+'", len(left) + len(right))
                return _built(operator.add(left, right))
            return operator.add(left, right)
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (list, tuple)):
                raise ExpressionError("'*' on lists is not allowed in a guard")
            if isinstance(seq, str) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_PRODUCT:
                raise ExpressionError(f"'*' would build a text of more than {MAX_PRODUCT} characters")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise BudgetExceeded(f"'*' would build a number of more than {MAX_INT_BITS:,} bits")
        return _built(operator.mul(left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        # case.items must read the field 'items', never the dict method
        if isinstance(obj, dict):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        found = super().getitem(obj, argument)
        # a slice copies: charged, so a thousand {% set %} of big[1:] cannot hold gigabytes
        return _built(found) if isinstance(argument, slice) else found


ALLOWED_FILTERS = frozenset(
    {
        "abs",
        "count",
        "d",
        "default",
        "first",
        "float",
        "int",
        "last",
        "length",
        "lower",
        "max",
        "min",
        "round",
        "string",
        "sum",
        "trim",
        "upper",
    }
)
ALLOWED_TESTS = frozenset(
    {
        "defined",
        "divisibleby",
        "eq",
        "equalto",
        "even",
        "ge",
        "gt",
        "in",
        "le",
        "lt",
        "ne",
        "none",
        "number",
        "odd",
        "string",
        "undefined",
    }
)
# Names of case attributes that exist in every workflow besides its fields.
BUILTIN_ATTRIBUTES = frozenset({"state", "open_objections", "ref"})


_ENV = SafeEnvironment(undefined=StrictUndefined, autoescape=False)
_ENV.filters = bounded_filters(_ENV, ALLOWED_FILTERS)


def _numbers(test: str, *values: Any) -> None:
    # Jinja's own tests compute value % n, which on text is %-formatting: '%0999999999d' % 3
    # builds a gigabyte string (found by the property test). Numbers only.
    for x in values:
        if isinstance(x, bool) or not isinstance(x, (int, float, Decimal)):
            raise ExpressionError(f"{test!r} needs numbers, got {type(x).__name__}")


def _divisibleby(value: Any, num: Any) -> bool:
    _numbers("divisibleby", value, num)
    return bool(value % num == 0)


def _odd(value: Any) -> bool:
    _numbers("odd", value)
    return bool(value % 2 == 1)


def _even(value: Any) -> bool:
    _numbers("even", value)
    return bool(value % 2 == 0)


def bounded_tests(env: SandboxedEnvironment, names: Iterable[str]) -> dict[str, Any]:
    """``env``'s tests called ``names`` (numbers-only ``divisibleby``, ``odd``, ``even``), each metered."""
    wanted = set(names)
    table: dict[str, Any] = {k: v for k, v in env.tests.items() if k in wanted}
    table.update({k: v for k, v in (("divisibleby", _divisibleby), ("odd", _odd), ("even", _even)) if k in wanted})
    return {k: _metered_test(v) for k, v in table.items()}


_ENV.tests = bounded_tests(_ENV, ALLOWED_TESTS)
_ENV.globals.clear()

# A number written with a decimal point is exact: 0.10 is Decimal("0.1"), so it mixes with decimal fields.
_DECIMAL_FILTER = "_casework_decimal"
_ENV.filters[_DECIMAL_FILTER] = Decimal
# a float keeps about 17 significant digits; a literal with more would silently lose some
_FLOAT_DIGITS = 15


class _ExactNumbers(NodeTransformer):
    """Turns each float literal into its exact Decimal (the shortest text that reads back as the same float)."""

    def visit_Const(self, node: nodes.Const) -> nodes.Node:
        if not isinstance(node.value, float):
            return node
        if not math.isfinite(node.value):
            raise ExpressionError("a number in the guard is too large; write one below 1e308")
        text = nodes.Const(repr(node.value), lineno=node.lineno)
        return nodes.Filter(text, _DECIMAL_FILTER, [], [], None, None, lineno=node.lineno)


def _check_float_literals(text: str) -> None:
    """Refuse a literal with more digits than a float keeps (its exact value could not be recovered)."""
    for _, token, raw in _ENV.lexer.tokeniter(text, None, state="variable"):
        if token != "float":
            continue
        digits = raw.replace("_", "").lower().split("e")[0].replace(".", "").lstrip("0")
        if len(digits) > _FLOAT_DIGITS:
            raise ExpressionError(
                f"the number {raw} has more than {_FLOAT_DIGITS} significant digits; a guard keeps at most "
                f"{_FLOAT_DIGITS}"
            )


@dataclass(frozen=True)
class Guard:
    """A compiled guard; :attr:`case_attributes` are the ``case.X`` names it reads."""

    text: str
    case_attributes: frozenset[str]
    _fn: Any

    def evaluate(self, case: dict[str, Any]) -> bool:
        """Evaluate over a snapshot of the case, under the budget (:func:`eval_limits`).

        Raises:
            BudgetExceeded: the guard went over its CPU-time or memory budget.
            ExpressionError: it could not be evaluated on this data.
            InputError: the ``CASEWORK_EVAL_*`` settings are unusable.
        """
        return bool(self._run(case, bool))

    def value(self, case: dict[str, Any]) -> Any:
        """The expression's value over a snapshot of the case (a computed field's), under the budget.

        Raises as :meth:`evaluate`; an undefined value raises too.
        """
        return self._run(case, lambda v: v if isinstance(v, (str, int, Decimal, list)) or v is None else _plain(v))

    def _run(self, case: dict[str, Any], finish: Callable[[Any], Any]) -> Any:
        limits = eval_limits()
        try:
            return metered(lambda: finish(self._fn(case=case)), limits)
        except ExpressionError:
            raise
        except RecursionError as exc:  # pragma: no cover - static checks prevent it
            raise ExpressionError("the guard is nested too deeply") from exc
        except Exception as exc:
            raise ExpressionError(f"{type(exc).__name__}: {exc}") from exc


def _plain(value: Any) -> Any:
    """A value the engine can keep: an undefined one raises here, inside the budget's error handling."""
    str(value)  # StrictUndefined raises on any use
    return value


def compile_guard(text: str) -> Guard:
    """Check and compile a guard expression.

    Raises:
        ExpressionError: saying what is not allowed or not valid.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError('a guard must be a non-empty expression, e.g. "case.household_size > 0"')
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"a guard may be at most {MAX_LENGTH} characters, this one has {len(text)}")
    if "{{" in text or "{%" in text or "{#" in text:
        raise ExpressionError("a guard is a bare expression: leave out {{ }} and {% %}")
    try:
        with warnings.catch_warnings():
            # Python's compiler warns (SyntaxWarning) on code such as 0[1:]
            warnings.simplefilter("error")
            parser = Parser(_ENV, text, state="variable")
            expr = parser.parse_expression()
            if not parser.stream.eos:
                token = parser.stream.current
                raise ExpressionError(
                    f"unexpected {token.value!r} after the end of the expression; a guard is one expression"
                )
            attributes: set[str] = set()
            _check(expr, attributes, 0)
            _check_float_literals(text)
            expr = _ExactNumbers().visit(expr)
            expr.set_environment(_ENV)
            body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
            template = _ENV.from_string(nodes.Template(body, lineno=1))
    except TemplateError as exc:
        message = str(getattr(exc, "message", None) or exc)
        if "end of template" in message:
            missing = message.rsplit("expected", 1)[1].strip(" .") if ", expected" in message else "something"
            message = f"the guard ends too early: {missing} is missing at the end"
        raise ExpressionError(f"not a valid expression: {message}") from exc
    except RecursionError as exc:
        raise ExpressionError(TOO_DEEP) from exc
    except (SyntaxError, SyntaxWarning, ValueError, MemoryError) as exc:
        raise ExpressionError(f"not a valid expression ({type(exc).__name__})") from exc
    return Guard(text=text, case_attributes=frozenset(attributes), _fn=TemplateExpression(template, False))


_ALLOWED_NODES = (
    nodes.Const,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.Compare,
    nodes.Operand,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Mod,
    nodes.Concat,
    nodes.CondExpr,
    nodes.List,
    nodes.Tuple,
    nodes.Slice,
    nodes.Keyword,
)


def _check(node: nodes.Node, attributes: set[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionError(TOO_DEEP)
    if isinstance(node, nodes.Call):
        raise ExpressionError("calls are not allowed in a guard; use filters such as '| length'")
    if isinstance(node, nodes.Pow):
        raise ExpressionError("'**' is not allowed in a guard")
    if not isinstance(node, _ALLOWED_NODES):
        raise ExpressionError(f"{type(node).__name__.lower()} is not allowed in a guard")
    if isinstance(node, nodes.Name):
        if node.name != "case":
            raise ExpressionError(f"unknown name {node.name!r}: a guard can read only 'case' (e.g. case.county)")
    elif isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed (names starting with '_')")
        if not (isinstance(node.node, nodes.Name) and node.node.name == "case"):
            raise ExpressionError(f"'.{node.attr}' is not allowed: a guard reads attributes of 'case' only")
        attributes.add(node.attr)
    elif isinstance(node, nodes.Getitem):
        if isinstance(node.node, (nodes.Const, nodes.List, nodes.Tuple)):
            raise ExpressionError("indexing a literal is not allowed in a guard")
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            if node.arg.value.startswith("_"):
                raise ExpressionError(f"key {node.arg.value!r} is not allowed (starts with '_')")
            if isinstance(node.node, nodes.Name) and node.node.name == "case":
                attributes.add(node.arg.value)
        elif isinstance(node.node, nodes.Name) and node.node.name == "case":
            raise ExpressionError("case[...] needs a quoted field name")
    elif isinstance(node, nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            raise ExpressionError(f"filter {node.name!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_FILTERS))}")
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise ExpressionError("*args/**kwargs are not allowed in a guard")
        problem = argument_problem(node)
        if problem:
            raise ExpressionError(problem)
    elif isinstance(node, nodes.Test):
        if node.name not in ALLOWED_TESTS:
            raise ExpressionError(f"test {node.name!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_TESTS))}")
    for child in node.iter_child_nodes():
        _check(child, attributes, depth + 1)
