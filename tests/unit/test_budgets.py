"""The evaluation budget: hostile guards and templates are refused or stopped, never hang or exhaust memory.

Each reproduction from the issue runs in a child process with a wall-clock
timeout and an address-space limit (``RLIMIT_AS``), so a regression fails
the test instead of hanging the suite or eating the machine's memory
(pytest-timeout is not a dependency). The child reports what happened as
JSON: the refusal's type, code and message, the CPU seconds it took (imports
excluded) and how much its peak resident memory grew.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from engine.definition import load_definition
from engine.errors import DefinitionError, InputError
from engine.expressions import BudgetExceeded, compile_guard, eval_limits
from engine.templates import TemplateSet, check_template
from tests.e2e.runner import ROOT

WALL_TIMEOUT = 60  # seconds: far above the 1 s budget, so only a hang reaches it
ADDRESS_SPACE = 2 * 1024**3  # the child may map at most this: a gigabyte-string regression fails fast

_CHILD = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import engine.definition, engine.rules, engine.templates  # imported before the clock starts
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = {{}}
start = time.process_time()
try:
{body}
    result["outcome"] = "returned"
except BaseException as exc:
    result.update(outcome=type(exc).__name__, message=str(exc), code=str(getattr(exc, "code", "")))
result["seconds"] = time.process_time() - start
result["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
print(json.dumps(result, default=str))
"""


def isolated(body: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``body`` (Python, may set ``result[...]``) in a child process; what it reported."""
    code = _CHILD.format(limit=ADDRESS_SPACE, body=textwrap.indent(textwrap.dedent(body), "    "))
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=WALL_TIMEOUT,
            cwd=ROOT,
            env={**_environment(), **(env or {})},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the evaluation hung: no answer within {WALL_TIMEOUT} s")
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_EVAL_")}


GUARD_WORKFLOW = """\
workflow: costly
version: 1
title: Costly
roles:
  clerk: Clerk
fields:
  household_size: {{type: integer, required: true}}
  digits: {{type: integer, min: -30, max: 30, required: true}}
states:
  draft: {{initial: true}}
  done: {{final: true}}
transitions:
  finish: {{from: draft, to: done, by: clerk, when: "{guard}"}}
"""

NESTED_LOOPS = (
    "{% for a in 'x'*10000 %}{% for b in 'x'*10000 %}{% for c in 'x'*10000 %}{% endfor %}{% endfor %}{% endfor %}"
)
FORTY_DOUBLINGS = "{% set x = 'ab' %}" + "{% set x = x ~ x %}" * 40 + "{{ x | length }}"


# --- guards -------------------------------------------------------------------------------------------------


def test_a_guard_rounding_to_minus_a_hundred_billion_digits_is_refused_when_the_workflow_loads() -> None:
    # it used to validate, then hang case fire, case show and the timer sweeps (10 ** 99999999999 inside C)
    got = isolated(
        f"""
        from engine.definition import load_definition
        load_definition({GUARD_WORKFLOW.format(guard="case.household_size | round(-99999999999) == 0")!r}, "g.yaml")
        """
    )
    assert got["outcome"] == "DefinitionError"
    assert "g.yaml:13:52: when: " in got["message"]
    assert "round's number of digits must be between -30 and 30, not -99,999,999,999" in got["message"]
    assert got["seconds"] < 1


def test_validating_a_constant_round_to_minus_a_hundred_billion_digits_does_not_hang() -> None:
    # Jinja folds constants while compiling: 4 | round(-99999999999) used to hang 'workflow validate' itself
    got = isolated(
        f"""
        from engine.definition import load_definition
        load_definition({GUARD_WORKFLOW.format(guard="4 | round(-99999999999) == 0")!r}, "g.yaml")
        """
    )
    assert got["outcome"] == "DefinitionError"
    assert "round's number of digits must be between -30 and 30" in got["message"]
    assert got["seconds"] < 1


def test_a_round_computed_from_case_data_is_a_too_costly_refusal_of_the_step() -> None:
    # the digits come from the case, so only the run-time bound can stop it: a refusal, never a hang
    # (the type check refuses the guard at load if the field's bounds allow such digits; these come from
    # data that bypassed the field's bounds)
    got = isolated(
        f"""
        from engine.definition import load_definition
        from engine.rules import check_ready
        wf = load_definition({GUARD_WORKFLOW.format(guard="case.household_size | round(case.digits) == 0")!r})
        check_ready(wf, "C-1", "draft", wf.transitions["finish"], {{"household_size": 4, "digits": -99999999999}}, 0)
        """
    )
    assert (got["outcome"], got["code"]) == ("GuardFailed", "guard_too_costly")
    assert got["message"] == (
        "finish refused: its condition 'case.household_size | round(case.digits) == 0' is too costly to check "
        "(round's number of digits must be between -30 and 30, not -99,999,999,999); "
        "the workflow's condition must be simplified"
    )
    assert got["seconds"] < 1


@pytest.mark.parametrize(
    ("guard", "case", "message"),
    [
        ("case.x * case.x > 0", {"x": 10**700}, "'*' would build a number of more than 4,096 bits"),
        ("(case.x + case.x) | length > 0", {"x": "x" * 600_000}, "'+' would build a text of 1,200,000 characters"),
        ("(case.x ~ case.x) | length > 0", {"x": "x" * 600_000}, "'~' would build a text of 1,200,000 characters"),
    ],
)
def test_guard_operators_on_case_data_are_bounded(guard: str, case: dict[str, Any], message: str) -> None:
    with pytest.raises(BudgetExceeded) as info:
        compile_guard(guard).evaluate(case)
    assert message in str(info.value)


def test_ordinary_guards_evaluate_as_before() -> None:
    guard = compile_guard("case.household_size | round(0) >= 2 and (case.name ~ '!') == 'ok!' and case.n * 3 == 9")
    assert guard.evaluate({"household_size": 2.4, "name": "ok", "n": 3}) is True
    assert compile_guard("case.income | round(2) < 1000.01").evaluate({"income": 1000.004}) is True


# --- templates ----------------------------------------------------------------------------------------------


def test_three_nested_loops_over_ten_thousand_characters_stop_at_the_cpu_budget() -> None:
    got = isolated(
        f"""
        from engine.templates import TemplateSet
        TemplateSet({{"told.txt": {NESTED_LOOPS!r}}}).render("told", "text", {{}})
        """
    )
    assert (got["outcome"], got["code"]) == ("TemplateRenderError", "template_too_costly")
    assert got["message"] == (
        "told.txt is too costly to render: it ran for more than 1 s of CPU time, the limit "
        "(CASEWORK_EVAL_TIME_LIMIT); simplify the template (fewer or shorter loops, smaller texts)"
    )
    assert 1 <= got["seconds"] < 1.3


def test_the_cpu_budget_is_configurable() -> None:
    got = isolated(
        f"""
        from engine.templates import TemplateSet
        TemplateSet({{"told.txt": {NESTED_LOOPS!r}}}).render("told", "text", {{}})
        """,
        env={"CASEWORK_EVAL_TIME_LIMIT": "0.2"},
    )
    assert got["code"] == "template_too_costly"
    assert "more than 0.2 s of CPU time" in got["message"]
    assert 0.2 <= got["seconds"] < 0.35


def test_forty_doublings_of_a_text_stop_at_a_megabyte_instead_of_exhausting_memory() -> None:
    got = isolated(
        f"""
        from engine.templates import TemplateSet
        TemplateSet({{"told.txt": {FORTY_DOUBLINGS!r}}}).render("told", "text", {{}})
        """
    )
    assert got["code"] == "template_too_costly"
    assert "'~' would build a text of 1,048,576 characters; at most 1,000,000 are allowed" in got["message"]
    assert got["seconds"] < 1
    assert got["rss_growth_mb"] < 100


@pytest.mark.parametrize(
    "body",
    [
        "{% set x = 'ab' %}" + "{% set x = x + x %}" * 40,
        "{% set x = 'ab' %}" + "{% set x %}{{ x }}{{ x }}{% endset %}" * 40,
        "{% set x = 10 %}" + "{% set x = x * x %}" * 40,
        "{{ ('x' * 10000) | replace('x', 'y' * 10000) }}",
        "{{ ('x' * 10000) | list | join('y' * 10000) }}",
        "{% set s = '漢' * 10000 %}{% for i in s %}{% set l = s | list %}{{ l | length }}{% endfor %}",
    ],
    ids=["plus-doubling", "block-set-doubling", "number-squaring", "replace", "join", "list-in-a-loop"],
)
def test_other_ways_to_build_a_huge_value_are_stopped(body: str) -> None:
    got = isolated(
        f"""
        from engine.templates import TemplateSet
        TemplateSet({{"told.html": {body!r}}}).render("told", "html", {{}})
        """
    )
    assert got["code"] == "template_too_costly", got
    assert got["seconds"] < 1.5
    assert got["rss_growth_mb"] < 150


def test_the_memory_budget_is_configurable() -> None:
    body = "{% set s = '漢' * 10000 %}{% for i in s %}{% set l = s | list %}{% endfor %}"
    got = isolated(
        f"""
        from engine.templates import TemplateSet
        TemplateSet({{"told.txt": {body!r}}}).render("told", "text", {{}})
        """,
        env={"CASEWORK_EVAL_MEMORY_LIMIT": "5"},
    )
    assert got["code"] == "template_too_costly"
    assert "it built more than 5 MB of values, the limit (CASEWORK_EVAL_MEMORY_LIMIT)" in got["message"]
    assert got["rss_growth_mb"] < 50


def test_center_two_billion_is_refused_at_load_and_bounded_at_render() -> None:
    assert [p.message for p in check_template("t.html", "{{ case.ref | center(2000000000) }}", "notice", ["ref"])] == [
        "center's width must be between 0 and 10,000, not 2,000,000,000"
    ]
    got = isolated(
        """
        from engine.templates import TemplateSet
        TemplateSet({"t.html": "{{ 'a' | center(case.n * 1000) }}"}).render("t", "html", {"case": {"n": 2000000}})
        """
    )
    assert got["code"] == "template_too_costly"
    assert "center's width must be between 0 and 10,000, not 2,000,000,000" in got["message"]
    assert got["rss_growth_mb"] < 100


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{{ 4 | round(-99999999999) }}", "round's number of digits must be between -30 and 30, not -99,999,999,999"),
        (
            "{{ case.ref | truncate(length=99999999) }}",
            "truncate's length must be between 0 and 10,000, not 99,999,999",
        ),
        ("{{ case.ref | round(1.5) }}", "round's number of digits must be a whole number, not 1.5"),
    ],
)
def test_out_of_bounds_constant_filter_arguments_are_refused_at_load(body: str, message: str) -> None:
    assert [p.message for p in check_template("t.txt", body, "notice", ["ref"])] == [message]


def test_ordinary_templates_render_as_before() -> None:
    templates = TemplateSet(
        {
            "t.html": (
                "<p>{{ case.ref }}</p>{% for c in cases %}<li>{{ loop.index }}. {{ c.name | upper }} "
                "{{ c.name ~ '/' ~ c.ref | center(8) }} {{ c.amount | round(1) }} "
                "{{ c.note | truncate(9) }} {{ c.tags | join(', ') }}</li>{% endfor %}"
                "{% set total %}{{ cases | length }}{% endset %}<p>{{ total }}</p>"
            )
        }
    )
    context = {
        "case": {"ref": "R-1"},
        "cases": [{"name": "a<b", "ref": "r1", "amount": 1.26, "note": "x" * 20, "tags": ["t1", "t2"]}],
    }
    assert templates.render("t", "html", context) == (
        "<p>R-1</p><li>1. A&lt;B a&lt;b/   r1    1.3 xxxxxx... t1, t2</li><p>1</p>"
    )


# --- HTML is always escaped ---------------------------------------------------------------------------------


NOTICE_WORKFLOW = """\
workflow: esc
version: 1
title: Escaping
roles:
  clerk: Clerk
fields:
  cause: {type: text}
states:
  draft: {initial: true}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk}
notify:
  - {on: enter done, to: clerk, template: shown}
"""

#: a message with an HTML part, escaped as a public notice is
TEXT_PARTS = {"shown.subject": "x", "shown.txt": "x"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "{% autoescape false %}{{ case.cause }}{% endautoescape %}",
            "{% autoescape %} is not allowed: HTML templates always escape what they show",
        ),
        ("{{ case.cause | safe }}", "filter 'safe' is not allowed: what a template shows is always escaped in HTML"),
        (
            "{% filter safe %}{{ case.cause }}{% endfilter %}",
            "filter 'safe' is not allowed: what a template shows is always escaped in HTML",
        ),
    ],
    ids=["autoescape-false", "safe-filter", "safe-filter-block"],
)
def test_turning_html_escaping_off_is_refused_at_load(body: str, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        load_definition(
            NOTICE_WORKFLOW, "esc.yaml", {**TEXT_PARTS, "shown.html": f"<title>x</title>\n{body}\n"}, "templates/esc"
        )
    assert [(p.file, p.line, p.message) for p in info.value.problems] == [("templates/esc/shown.html", 2, message)]


def test_a_clerks_script_in_case_data_is_escaped_in_a_notice() -> None:
    wf = load_definition(
        NOTICE_WORKFLOW, "esc.yaml", {**TEXT_PARTS, "shown.html": "<p>{{ case.cause }}</p>"}, "templates/esc"
    )
    page = wf.templates.render("shown", "html", {"case": {"cause": "<script>alert(1)</script>"}})
    assert page == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


# --- settings -----------------------------------------------------------------------------------------------


def test_limits_default_to_one_second_and_a_hundred_megabytes() -> None:
    assert (eval_limits({}).time, eval_limits({}).memory) == (1.0, 100)
    limits = eval_limits({"CASEWORK_EVAL_TIME_LIMIT": "2.5", "CASEWORK_EVAL_MEMORY_LIMIT": "200"})
    assert (limits.time, limits.memory) == (2.5, 200)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CASEWORK_EVAL_TIME_LIMIT": "soon"},
            "CASEWORK_EVAL_TIME_LIMIT must be a number of CPU seconds between 0 and 3600 (e.g. 1 or 0.5), not 'soon'",
        ),
        (
            {"CASEWORK_EVAL_MEMORY_LIMIT": "0"},
            "CASEWORK_EVAL_MEMORY_LIMIT must be a whole number of megabytes between 1 and 100000 (e.g. 100), not '0'",
        ),
    ],
)
def test_an_unusable_limit_is_an_input_error_naming_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as info:
        eval_limits(env)
    assert str(info.value) == message
