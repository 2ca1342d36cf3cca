"""Guards: ``when``/``unless`` expressions written by supervisors, run safely.

A guard is a Jinja2 expression compiled once in a ``SandboxedEnvironment``
and evaluated over a plain snapshot of the case (``case.<field>``,
``case.state``, ``case.open_objections``, ``case.ref``). Guard text is
untrusted, so on top of the sandbox it is checked statically when the
workflow loads:

* no calls at all (no ``.format``, no ``range``, no generator tricks);
* attributes only one level deep on ``case``, never starting with ``_``;
* only a short list of filters and tests (no ``attr``, ``format``, ``map``);
* no ``**``; ``*`` on strings or lists is bounded at run time;
* at most :data:`MAX_LENGTH` characters.

Only :class:`ExpressionError` ever leaves this module.
"""

from __future__ import annotations

import operator
import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["ExpressionError", "Guard", "SafeEnvironment", "compile_guard"]

MAX_LENGTH = 500
MAX_PRODUCT = 10_000
MAX_DEPTH = 32
TOO_DEEP = (
    f"the expression is nested more than {MAX_DEPTH} levels deep "
    "(long chains of and/or count too: use 'case.x in [...]')"
)

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


class ExpressionError(Exception):
    """A guard failed to compile or to evaluate; the message says why."""


class SafeEnvironment(SandboxedEnvironment):
    """The sandbox for everything supervisors write: bounded operators, keys before methods."""

    # Intercepting these also stops Jinja from folding them as constants at
    # compile time, where '%0999999999d' % 1 would build a gigabyte string.
    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            raise ExpressionError("'**' is not allowed in a guard")
        if operator_ == "%":
            if isinstance(left, (str, bytes)):
                raise ExpressionError("'%' formatting of text is not allowed in a guard")
            return operator.mod(left, right)
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, (list, tuple)):
                raise ExpressionError("'*' on lists is not allowed in a guard")
            if isinstance(seq, str) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_PRODUCT:
                raise ExpressionError(f"'*' would build a text of more than {MAX_PRODUCT} characters")
        return operator.mul(left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # case.items must read the field 'items', never the dict method
        if isinstance(obj, dict):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


_ENV = SafeEnvironment(undefined=StrictUndefined, autoescape=False)
_ENV.filters = {k: v for k, v in _ENV.filters.items() if k in ALLOWED_FILTERS}
_ENV.tests = {k: v for k, v in _ENV.tests.items() if k in ALLOWED_TESTS}


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


_ENV.tests.update(divisibleby=_divisibleby, odd=_odd, even=_even)
_ENV.globals.clear()


@dataclass(frozen=True)
class Guard:
    """A compiled guard; :attr:`case_attributes` are the ``case.X`` names it reads."""

    text: str
    case_attributes: frozenset[str]
    _fn: Any

    def evaluate(self, case: dict[str, Any]) -> bool:
        """Evaluate over a snapshot of the case; raise :class:`ExpressionError` on failure."""
        try:
            return bool(self._fn(case=case))
        except ExpressionError:
            raise
        except RecursionError as exc:  # pragma: no cover - static checks prevent it
            raise ExpressionError("the guard is nested too deeply") from exc
        except Exception as exc:
            raise ExpressionError(f"{type(exc).__name__}: {exc}") from exc


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
    elif isinstance(node, nodes.Test):
        if node.name not in ALLOWED_TESTS:
            raise ExpressionError(f"test {node.name!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_TESTS))}")
    for child in node.iter_child_nodes():
        _check(child, attributes, depth + 1)
