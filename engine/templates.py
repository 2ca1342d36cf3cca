"""Message and notice templates written by supervisors: checked at load, rendered in a sandbox.

Templates live beside a workflow file, in ``templates/<file stem>/``:
``NAME.subject`` (one line), ``NAME.txt`` and ``NAME.html``. A message
(``notify``) needs ``.subject`` and ``.txt`` (``.html`` adds an HTML part to
emails); a notice needs ``.html``. They are stored with the workflow
version, so a version renders the same way for ever.

Templates are untrusted. They are rendered by Jinja2's sandbox with
``StrictUndefined`` (HTML autoescaped) and checked statically when the
workflow loads: no calls, no ``_`` attributes, no ``include``/``import``/
``extends``, no ``{% autoescape %}`` blocks (HTML output is always
escaped), a short list of filters (no ``attr``, ``format``, ``map``,
``safe``) whose constant arguments are within bounds, only the variables the
engine provides, and ``case.X`` only for fields that exist. Output is capped
in size, and each rendering runs under the evaluation budget of
:mod:`engine.expressions` (CPU time and memory; every loop iteration is
counted), so a costly template fails with :data:`Code.TEMPLATE_TOO_COSTLY`
instead of hanging whoever renders it. Every value that reaches a
template has already been masked by policy (:mod:`engine.masking`): a
template cannot get a raw name or ID number because it is never given one.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import TemplateError, TemplateSyntaxError

from engine.errors import CaseworkError, Code, Problem
from engine.expressions import (
    BudgetExceeded,
    SafeEnvironment,
    argument_problem,
    bounded_filters,
    bounded_tests,
    eval_limits,
    metered,
)
from engine.suggest import did_you_mean

__all__ = [
    "KIND_VARIABLES",
    "MAX_OUTPUT",
    "MAX_TEMPLATE_BYTES",
    "PARTS",
    "TemplateRenderError",
    "TemplateSet",
    "check_template",
    "cn_date",
]

PARTS = {"subject": ".subject", "text": ".txt", "html": ".html"}
MAX_TEMPLATE_BYTES = 64 * 1024
MAX_TEMPLATES = 100
MAX_OUTPUT = 5_000_000

ALLOWED_FILTERS = frozenset(
    {
        "abs", "capitalize", "center", "cn_date", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
        "int", "join", "last", "length", "list", "lower", "max", "min", "replace", "reverse", "round", "sort",
        "string", "striptags", "sum", "title", "trim", "truncate", "unique", "upper", "wordcount",
    }
)  # fmt: skip
ALLOWED_TESTS = frozenset(
    {
        "defined", "divisibleby", "eq", "equalto", "even", "ge", "gt", "in", "le", "lt", "ne", "none",
        "number", "odd", "string", "undefined",
    }
)  # fmt: skip

# What the engine passes to each kind of template.
KIND_VARIABLES = {
    "message": frozenset({"case", "workflow", "recipient", "event", "deadline"}),
    "notice": frozenset({"case", "workflow", "notice", "publicity"}),
    "list": frozenset({"cases", "workflow", "notice", "publicity", "scope"}),
    "digest": frozenset({"cases", "workflow", "recipient", "date"}),
}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class TemplateRenderError(CaseworkError):
    """A template failed while rendering (e.g. output too large)."""


def cn_date(value: object) -> str:
    """A date as a Chinese notice writes it (成文日期): ``2026年12月2日``.

    Takes a date, a datetime (its own date) or ISO text (``2026-12-02``, as a
    notice's context holds its dates); in templates, ``{{ notice.date | cn_date }}``.

    Raises:
        ValueError: the value is not a date.
    """
    day: dt.date | None = None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.datetime.fromisoformat(value.strip()).date()
        except ValueError:
            day = None
    if day is None:
        raise ValueError(f"cn_date needs a date such as 2026-12-02, not {str(value)[:40]!r}")
    return f"{day.year}年{day.month}月{day.day}日"


def _environment(autoescape: bool) -> SafeEnvironment:
    env = SafeEnvironment(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=False)
    env.filters["cn_date"] = cn_date
    env.filters = bounded_filters(env, ALLOWED_FILTERS)
    env.tests = bounded_tests(env, ALLOWED_TESTS)
    env.globals.clear()
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def _env_for(filename: str) -> SafeEnvironment:
    return _HTML if filename.endswith(".html") else _TEXT


def check_template(
    filename: str, source: str, kind: str, case_attributes: Iterable[str], *, location: str | None = None
) -> list[Problem]:
    """Check one template file; return located problems (empty when it is fine).

    Args:
        filename: e.g. ``review_waiting.subject``.
        source: the template text.
        kind: ``message``, ``notice`` or ``list`` (decides the variables it may use).
        case_attributes: the names ``case.X`` may read (fields and builtins).
        location: the path to report (default: ``filename``).
    """
    where = location or filename
    if len(source.encode("utf-8")) > MAX_TEMPLATE_BYTES:
        return [Problem(where, 1, 1, f"template is larger than {MAX_TEMPLATE_BYTES:,} bytes")]
    env = _env_for(filename)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [Problem(where, exc.lineno or 1, 1, f"template syntax: {exc.message}")]
    except RecursionError:
        return [Problem(where, 1, 1, "template is nested too deeply")]
    problems: list[Problem] = []
    allowed = KIND_VARIABLES[kind]
    attrs = set(case_attributes)
    loop_names = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    try:
        for node in _walk(tree):
            line = getattr(node, "lineno", 1) or 1
            message = _forbidden(node, allowed | loop_names, attrs, kind)
            if message:
                problems.append(Problem(where, line, 1, message))
    except TemplateError:
        problems.append(Problem(where, 1, 1, "template is nested too deeply"))
    return sorted(set(problems))


def _walk(node: nodes.Node, depth: int = 0) -> Iterable[nodes.Node]:
    if depth > 64:
        raise TemplateError("nested too deeply")
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child, depth + 1)


# attributes of generators, coroutines, frames, code and tracebacks: the sandbox refuses them at
# render time, but a workflow using them is wrong and must fail at load ('format' and the like are
# harmless without a call, and calls are refused on their own)
_INTERNAL_PREFIXES = ("gi_", "cr_", "ag_", "f_", "co_", "tb_")
_INTERNALS = frozenset({"mro", "func_globals"})


def _forbidden(node: nodes.Node, names: frozenset[str] | set[str], attrs: set[str], kind: str) -> str | None:
    if isinstance(node, nodes.Call):
        return "calls are not allowed in templates (use filters such as '| upper')"
    if isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        return "include/import/extends are not allowed: a template stands alone"
    if isinstance(node, (nodes.Macro, nodes.CallBlock)):
        return "macros are not allowed in templates"
    if isinstance(node, (nodes.ScopedEvalContextModifier, nodes.EvalContextModifier)):
        # {% autoescape false %} would let a clerk's <script> from case data into a published page
        return "{% autoescape %} is not allowed: HTML templates always escape what they show"
    if isinstance(node, nodes.Pow):
        return "'**' is not allowed in templates"
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in names and node.name != "loop":
        known = ", ".join(sorted(KIND_VARIABLES[kind]))
        return f"unknown variable {node.name!r}; a {kind} template can use {known}"
    if isinstance(node, nodes.Getattr):
        if node.attr.startswith("_"):
            return f"attribute {node.attr!r} is not allowed (names starting with '_')"
        on_case = isinstance(node.node, nodes.Name) and node.node.name == "case"  # a field may be named f_x
        if not on_case and (node.attr in _INTERNALS or node.attr.startswith(_INTERNAL_PREFIXES)):
            return f"attribute {node.attr!r} is not allowed (Python internals, not data)"
        if isinstance(node.node, nodes.Name) and node.node.name == "case" and node.attr not in attrs:
            return f"case.{node.attr} is not a field{did_you_mean(node.attr, attrs)}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        if isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
            return f"key {node.arg.value!r} is not allowed (starts with '_')"
    if isinstance(node, nodes.Filter) and node.name == "safe":
        return "filter 'safe' is not allowed: what a template shows is always escaped in HTML"
    if isinstance(node, nodes.Filter) and node.name not in ALLOWED_FILTERS:
        return f"filter {node.name!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_FILTERS))}"
    if isinstance(node, nodes.Filter):
        return argument_problem(node)
    if isinstance(node, nodes.Test) and node.name not in ALLOWED_TESTS:
        return f"test {node.name!r} is not allowed"
    return None


@dataclass(frozen=True)
class TemplateSet:
    """A workflow version's templates: ``{filename: source}``, compiled on first use."""

    sources: Mapping[str, str]
    _compiled: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has(self, name: str, part: str) -> bool:
        return name + PARTS[part] in self.sources

    def render(self, name: str, part: str, context: Mapping[str, Any]) -> str:
        """Render ``name``'s ``part`` (subject, text or html) with ``context``.

        Raises:
            TemplateRenderError: the template failed or its output was too large; with
                :data:`Code.TEMPLATE_TOO_COSTLY` when it went over the evaluation budget.
            InputError: the ``CASEWORK_EVAL_*`` settings are unusable.
        """
        filename = name + PARTS[part]
        template = self._compiled.get(filename)
        if template is None:
            if filename not in self.sources:
                raise TemplateRenderError(f"no template {filename!r} in this workflow version")
            template = _env_for(filename).from_string(self.sources[filename])
            self._compiled[filename] = template
        limits = eval_limits()

        def generate() -> list[str]:
            size = 0
            chunks = []
            for chunk in template.generate(**context):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateRenderError(
                        f"{filename} produced more than {MAX_OUTPUT:,} characters",
                        code=Code.TEMPLATE_TOO_COSTLY,
                        template=filename,
                    )
                chunks.append(chunk)
            return chunks

        try:
            chunks = metered(generate, limits)
        except TemplateRenderError:
            raise
        except BudgetExceeded as exc:
            raise TemplateRenderError(
                f"{filename} is too costly to render: {exc}; simplify the template "
                "(fewer or shorter loops, smaller texts)",
                code=Code.TEMPLATE_TOO_COSTLY,
                template=filename,
                error=str(exc),
            ) from None
        except Exception as exc:
            raise TemplateRenderError(f"{filename} failed to render: {type(exc).__name__}: {exc}") from exc
        text = "".join(chunks)
        return " ".join(text.split()) if part == "subject" else text


def valid_template_name(name: str) -> bool:
    """Template names follow the same rule as other names in a workflow."""
    return bool(_NAME.match(name))
