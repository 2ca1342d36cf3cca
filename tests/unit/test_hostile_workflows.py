"""Hostile workflow files: refused with a DefinitionError, quickly and in little memory.

Each input is loaded twice: once timed (< 1 s of this process's CPU) and
once under tracemalloc (peak < 100 MB), so tracemalloc's own overhead does
not count against the time bound. The bounds are safety limits, not
benchmarks; CPU time, not wall time, so another test process on the same
core (the suite runs on every core) cannot make a cheap load look slow.
"""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from engine.definition import Limits, load_definition, load_definition_file
from engine.errors import DefinitionError, Problem
from tests.unit.samples import MINIMAL

MAX_SECONDS = 1.0
MAX_PEAK_BYTES = 100 * 1024 * 1024


def _billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghi"
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BILLION_LAUGHS = _billion_laughs()
TEN_MB = "workflow: big\n# " + "x" * (10 * 1024 * 1024) + "\n"
TOO_BIG = f"file is {len(TEN_MB):,} bytes; a workflow may be at most {Limits.max_bytes:,} bytes"
TEN_THOUSAND_STATES = (
    "workflow: big\nversion: 1\ntitle: Big\nroles: {clerk: Clerk}\nstates:\n  s0: {initial: true}\n"
    + "".join(f"  s{i}: {{}}\n" for i in range(1, 10_000))
    + "  end: {final: true}\ntransitions:\n  t: {from: s0, to: end, by: clerk}\n"
)


def refused(load: Callable[[], object]) -> list[Problem]:
    """Run ``load`` three times (to warm up, timed, traced); it must raise DefinitionError within the bounds.

    The first run is not timed: the first load in a process imports and builds what every later one
    reuses (the schema's validators, the sandbox), which under a loaded xdist worker took the timed run
    past its bound once (1.09 s) with nothing wrong in the workflow's own cost.
    """
    with pytest.raises(DefinitionError):
        load()
    start = time.process_time()
    with pytest.raises(DefinitionError) as info:
        load()
    elapsed = time.process_time() - start
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f} s"

    tracemalloc.start()
    try:
        with pytest.raises(DefinitionError):
            load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"
    assert info.value.problems
    return info.value.problems


def messages(problems: list[Problem]) -> list[str]:
    return [p.message for p in problems]


def test_billion_laughs_is_the_classic_size() -> None:
    assert 330 <= len(BILLION_LAUGHS) <= 350


def test_billion_laughs() -> None:
    problems = refused(lambda: load_definition(BILLION_LAUGHS, "lol.yaml"))
    assert messages(problems) == [f"more than {Limits.max_aliases} aliases (*name); write the values out instead"]


def test_alias_expansion_below_alias_limit_is_bounded() -> None:
    # 40 aliases stay under the alias count but expand to 20 * 20 * 150 = 60,000 values
    text = (
        "a: &a ["
        + ",".join(["x"] * 150)
        + "]\nb: &b ["
        + ",".join(["*a"] * 20)
        + "]\nc: ["
        + ",".join(["*b"] * 20)
        + "]\n"
    )
    problems = refused(lambda: load_definition(text))
    assert messages(problems) == [
        f"the document expands to more than {Limits.max_nodes} values (an alias bomb?); write a smaller workflow"
    ]


def test_deep_flow_mapping_nesting() -> None:
    text = "{a: " * 1100 + "1" + "}" * 1100
    problems = refused(lambda: load_definition(text))
    assert messages(problems) == ["nesting deeper than 24 levels; a workflow needs only a few levels"]


def test_deep_block_sequence_nesting() -> None:
    text = "- " * 1100 + "x\n"
    problems = refused(lambda: load_definition(text))
    assert messages(problems) == ["nesting deeper than 24 levels; a workflow needs only a few levels"]


def test_deep_block_mapping_nesting() -> None:
    text = "".join(" " * i + "a:\n" for i in range(600)) + " " * 600 + "1\n"
    problems = refused(lambda: load_definition(text))
    assert messages(problems) == ["nesting deeper than 24 levels; a workflow needs only a few levels"]


def test_five_thousand_open_brackets() -> None:
    problems = refused(lambda: load_definition("[" * 5000))
    assert len(problems) == 1
    assert problems[0].message.startswith("YAML syntax: ") or "nesting" in problems[0].message


def test_five_thousand_open_brackets_says_the_workflow_limit() -> None:
    problems = refused(lambda: load_definition("[" * 5000))
    assert messages(problems) == ["nesting deeper than 24 levels; a workflow needs only a few levels"]


def test_ten_megabyte_text() -> None:
    problems = refused(lambda: load_definition(TEN_MB, "big.yaml"))
    assert problems == [Problem("big.yaml", 1, 1, TOO_BIG)]


def test_ten_megabyte_bytes() -> None:
    data = TEN_MB.encode("utf-8")
    problems = refused(lambda: load_definition(data, "big.yaml"))
    assert messages(problems) == [TOO_BIG]


def test_ten_megabyte_file(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(TEN_MB, encoding="utf-8")
    problems = refused(lambda: load_definition_file(path))
    assert problems == [Problem(str(path), 1, 1, TOO_BIG)]


def test_just_over_the_size_limit_counts_utf8_bytes() -> None:
    # 中 is 3 bytes in UTF-8: few characters, too many bytes
    text = MINIMAL + "# " + "中" * (Limits.max_bytes // 3) + "\n"
    assert len(text) < Limits.max_bytes
    problems = refused(lambda: load_definition(text))
    assert messages(problems)[0].endswith(f"a workflow may be at most {Limits.max_bytes:,} bytes")


def test_ten_thousand_states() -> None:
    assert len(TEN_THOUSAND_STATES.encode()) < Limits.max_bytes
    problems = refused(lambda: load_definition(TEN_THOUSAND_STATES, "states.yaml"))
    assert len(problems) == 1
    assert problems[0].message == "states: 10,001 entries; a workflow may have at most 200"
    assert (problems[0].line, problems[0].column) == (6, 3)


def test_ten_thousand_states_message_is_plain() -> None:
    problems = refused(lambda: load_definition(TEN_THOUSAND_STATES, "states.yaml"))
    message = problems[0].message
    assert "after validation" not in message
    assert "10,001" in message or "10001" in message
    assert "200" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    data = MINIMAL.replace("Minimal", "Caf\xe9").encode("latin-1")
    message = f"not UTF-8 text (byte {MINIMAL.index('Minimal') + 3}); save the file as UTF-8"
    problems = refused(lambda: load_definition(data, "latin1.yaml"))
    assert problems == [Problem("latin1.yaml", 1, 1, message)]
    path = tmp_path / "latin1.yaml"
    path.write_bytes(data)
    assert messages(refused(lambda: load_definition_file(path))) == [message]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", b""], ids=["empty", "blank", "comment", "bytes"])
def test_empty_file(text: str | bytes) -> None:
    problems = refused(lambda: load_definition(text, "empty.yaml"))
    assert problems == [Problem("empty.yaml", 1, 1, "the file is empty; expected a workflow mapping")]


def test_empty_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")
    assert messages(refused(lambda: load_definition_file(path))) == ["the file is empty; expected a workflow mapping"]


@pytest.mark.parametrize(
    "text",
    ["- workflow: mini\n- states: {}\n", "just a string\n", "42\n", "null\n", "[]\n"],
    ids=["list", "string", "number", "null", "flow-list"],
)
def test_top_level_not_a_mapping(text: str) -> None:
    problems = refused(lambda: load_definition(text, "top.yaml"))
    assert len(problems) == 1
    assert problems[0].file == "top.yaml"
    assert problems[0].message in (
        "a workflow file must be a mapping with 'workflow:', 'states:', ...",
        "the file is empty; expected a workflow mapping",
    )


def test_top_level_list_message() -> None:
    problems = refused(lambda: load_definition("- workflow: mini\n- states: {}\n", "top.yaml"))
    assert problems == [Problem("top.yaml", 1, 1, "a workflow file must be a mapping with 'workflow:', 'states:', ...")]


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system [ls]",
        "!!python/name:os.system",
        "!custom x",
        "!!binary aGVsbG8=",
    ],
)
def test_tags_are_refused(tag: str) -> None:
    text = MINIMAL.replace("title: Minimal", f"title: {tag}")
    problems = refused(lambda: load_definition(text))
    assert len(problems) == 1
    assert problems[0].line == 3
    assert problems[0].message.endswith("are not allowed in a workflow; write a plain value")


@pytest.mark.parametrize("tag", ["!<tag:yaml.org,2002:str> x", "!<tag:yaml.org,2002:python/object:os.system> x"])
def test_verbatim_tags_are_refused(tag: str) -> None:
    text = MINIMAL.replace("title: Minimal", f"title: {tag}")
    problems = refused(lambda: load_definition(text))
    assert len(problems) == 1
    assert problems[0].line == 3
    assert problems[0].message.endswith("are not allowed in a workflow; write a plain value")


def test_key_that_is_a_collection() -> None:
    text = MINIMAL.replace("  clerk: Clerk", "  ? [a, b]\n  : Clerk")
    assert messages(refused(lambda: load_definition(text))) == ["a key must be a plain name, not a collection"]


def test_many_transitions_and_guards_load_quickly() -> None:
    # a large but legitimate workflow: 200 states in a chain, 499 guarded transitions
    states = "".join(f"  s{i}: {{}}\n" for i in range(1, 199))
    transitions = "".join(
        f"  t{i}: {{from: s{i}, to: s{i + 1}, by: clerk, when: 'case.size > {i} and case.cause | length < 400'}}\n"
        for i in range(1, 198)
    )
    text = (
        "workflow: big\nversion: 1\ntitle: Big\nroles: {clerk: Clerk}\n"
        # required: a guard that reads an empty field cannot run, and the type check refuses it
        "fields: {size: {type: integer, required: true}, cause: {type: text, required: true}}\n"
        "states:\n  s0: {initial: true}\n" + states + "  s199: {final: true}\n"
        "transitions:\n  t0: {from: s0, to: s1, by: clerk}\n"
        + transitions
        + "  t198: {from: s198, to: s199, by: clerk}\n"
    )
    start = time.process_time()
    wf = load_definition(text)
    assert time.process_time() - start < 5 * MAX_SECONDS
    assert len(wf.states) == 200
    assert len(wf.transitions) == 199


# --- hostile guards inside a workflow ------------------------------------------------------


def _with_guard(guard: str, count: int = 1) -> str:
    extra = "".join(f'  g{i}: {{from: draft, to: done, by: clerk, when: "{guard}"}}\n' for i in range(count))
    return MINIMAL + extra


def test_deeply_nested_guard_is_a_definition_error() -> None:
    text = _with_guard("-" * 480 + "case.cause")
    problems = refused(lambda: load_definition(text))
    assert len(problems) == 1
    assert problems[0].message.startswith("when: ")


def test_slow_to_compile_guards_are_refused_quickly() -> None:
    text = _with_guard("case.cause" + "[0]" * 160, count=2)
    problems = refused(lambda: load_definition(text))
    assert all(p.message.startswith("when: ") for p in problems)


def test_string_formatting_bomb_in_guard_is_bounded() -> None:
    text = _with_guard("'%0150000000d' % 1 != ''")

    def load() -> object:
        try:
            return load_definition(text)
        except DefinitionError:
            return None

    start = time.process_time()
    load()
    assert time.process_time() - start < MAX_SECONDS
    tracemalloc.start()
    try:
        load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"


# --- loads that must succeed within the same bounds ----------------------------------------------------

T = TypeVar("T")


def loaded(load: Callable[[], T]) -> T:
    """Run ``load`` twice (timed, then traced); it must succeed within the bounds."""
    start = time.process_time()
    result = load()
    elapsed = time.process_time() - start
    assert elapsed < MAX_SECONDS, f"took {elapsed:.2f} s"
    tracemalloc.start()
    try:
        load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"
    return result


# --- nesting is reported where it crosses the limit ---------------------------------------------------

NESTING = "nesting deeper than 24 levels; a workflow needs only a few levels"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("{a: " * 1100 + "1" + "}" * 1100, (1, 97), id="1100-flow-mappings"),
        pytest.param("- " * 1100 + "x\n", (1, 49), id="1100-block-sequences"),
        pytest.param("".join(" " * i + "a:\n" for i in range(600)) + " " * 600 + "1\n", (25, 25), id="600-block-maps"),
        pytest.param("[" * 30 + "]" * 30, (1, 25), id="30-brackets"),
        pytest.param(
            "[" * 5000,
            (1, 25),
            id="5000-brackets",
            marks=pytest.mark.xfail(
                strict=True,
                reason="engine defect: PyYAML's scanner stops at its own 1,000-level limit before the prescan "
                "sees the 25th '[', so the problem is located at 1:1001 instead of 1:25",
            ),
        ),
    ],
)
def test_nesting_is_located_at_the_first_level_too_deep(text: str, where: tuple[int, int]) -> None:
    """The 25th opening bracket/indent is where the file went wrong: that is where the problem points."""
    problems = refused(lambda: load_definition(text, "deep.yaml"))
    assert problems == [Problem("deep.yaml", *where, NESTING)]


# --- python tags, wherever they are written ------------------------------------------------------------

PYTHON_TAG = "YAML tags such as '!!python/object/apply:os.system' are not allowed in a workflow; write a plain value"


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("title: Minimal", "title: !!python/object/apply:os.system [ls]", (3, 8)),
        ("  draft: {initial: true}", "  !!python/object/apply:os.system [ls]: {initial: true}", (9, 3)),
        ("  done: {final: true}", "  done: !!python/object/apply:os.system [ls]", (10, 9)),
        ("  cause: {type: text}", "  cause: {type: !!python/object/apply:os.system [ls]}", (7, 17)),
    ],
    ids=["value", "state-name", "state-body", "nested-value"],
)
def test_python_object_tag_is_refused_where_it_is_written(old: str, new: str, where: tuple[int, int]) -> None:
    text = MINIMAL.replace(old, new)
    assert text != MINIMAL
    problems = refused(lambda: load_definition(text, "tag.yaml"))
    assert problems == [Problem("tag.yaml", *where, PYTHON_TAG)]


def test_python_object_tag_fixture_runs_nothing(tmp_path: Path) -> None:
    """The fixture's tag would run ``echo pwned``; loading it only reports it (nothing is created)."""
    marker = tmp_path / "pwned"
    text = MINIMAL.replace("title: Minimal", f"title: !!python/object/apply:os.system ['touch {marker}']")
    problems = refused(lambda: load_definition(text, "tag.yaml"))
    assert problems == [Problem("tag.yaml", 3, 8, PYTHON_TAG)]
    assert not marker.exists()


# --- YAML 1.1 booleans as state names --------------------------------------------------------------------


def _named(name: str) -> str:
    """A workflow whose middle state is called ``name``, written bare (unquoted) everywhere."""
    return (
        "workflow: switch\nversion: 1\ntitle: Switch\nroles: {clerk: Clerk}\n"
        f"states:\n  draft: {{initial: true}}\n  {name}: {{}}\n  done: {{final: true}}\n"
        f"transitions:\n  go: {{from: draft, to: {name}, by: clerk}}\n  close: {{from: {name}, to: done, by: clerk}}\n"
    )


@pytest.mark.parametrize("name", ["yes", "no", "on", "off", "y", "n"])
def test_yaml_1_1_booleans_as_state_names_stay_names(name: str) -> None:
    """YAML 1.1 would read these as booleans: a workflow is read as YAML 1.2, so they are names (documented).

    They are not refused: each loads, within the bounds, as the text that was written, as a key and
    as a bare value in ``from``/``to``.
    """
    text = _named(name)
    wf = loaded(lambda: load_definition(text, "switch.yaml"))
    assert list(wf.states) == ["draft", name, "done"]
    assert all(type(state) is str for state in wf.states)
    assert wf.transitions["go"].dest == name
    assert wf.transitions["close"].sources == (name,)


def test_yaml_1_1_booleans_fixture_loads_within_bounds() -> None:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "workflows" / "valid" / "yaml11_booleans.yaml"
    wf = loaded(lambda: load_definition_file(path))
    assert list(wf.states) == ["off", "on", "yes", "no"]


INVALID_NAME = "'{0}' is not a valid name: use lowercase letters, digits and '_', starting with a letter"


@pytest.mark.parametrize("name", ["Yes", "NO", "On", "OFF", "True"])
def test_capitalised_booleans_as_state_names_are_refused_where_written(name: str) -> None:
    problems = refused(lambda: load_definition(_named(name), "switch.yaml"))
    assert Problem("switch.yaml", 7, 3, f"states.{name}: " + INVALID_NAME.format(name)) in problems


@pytest.mark.xfail(
    strict=True,
    reason="engine defect: a bad state name in 'from' is reported twice at one place, in pydantic's words "
    "('transitions.close.from.constrained-str: ...' and 'transitions.close.from: Input should be a valid "
    "list'); a bare true/null in from/to says only 'Input should be a valid string'",
)
@pytest.mark.parametrize("name", ["Yes", "OFF", "true", "null"])
def test_a_boolean_looking_state_name_is_reported_once_per_place_in_plain_words(name: str) -> None:
    problems = refused(lambda: load_definition(_named(name), "switch.yaml"))
    places = [(p.line, p.column) for p in problems]
    assert len(places) == len(set(places)), [str(p) for p in problems]
    for p in problems:
        assert "constrained-str" not in p.message and "Input should be" not in p.message, str(p)
        assert name in p.message, str(p)


# --- guard escape attempts inside a workflow file ---------------------------------------------------------

GUARD_ESCAPES = [
    ("case.__class__", "attribute '__class__' is not allowed (names starting with '_')"),
    ("case.cause.__class__.__mro__", "attribute '__mro__' is not allowed (names starting with '_')"),
    ("cycler.__init__.__globals__", "attribute '__globals__' is not allowed (names starting with '_')"),
    ("lipsum.__globals__", "attribute '__globals__' is not allowed (names starting with '_')"),
    ("case['__globals__']", "key '__globals__' is not allowed (starts with '_')"),
    ("case.cause | attr('__class__')", "filter 'attr' is not allowed; allowed: "),
    ("case.cause | format(1)", "filter 'format' is not allowed; allowed: "),
    ("'{0.__class__}'.format(case.cause)", "calls are not allowed in a guard; use filters such as '| length'"),
    ("case.cause.gi_frame", "'.gi_frame' is not allowed: a guard reads attributes of 'case' only"),
    ("case.cause[0].gi_frame", "'.gi_frame' is not allowed: a guard reads attributes of 'case' only"),
    ("(case.cause | first).gi_frame.f_globals", "'.f_globals' is not allowed: a guard reads attributes of 'case' only"),
    ("case.cause | map('upper') | first", "filter 'map' is not allowed; allowed: "),
]


@pytest.mark.parametrize(("guard", "message"), GUARD_ESCAPES, ids=[g for g, _ in GUARD_ESCAPES])
@pytest.mark.parametrize("key", ["when", "unless"])
def test_guard_escape_in_a_workflow_is_refused_where_written(guard: str, message: str, key: str) -> None:
    text = MINIMAL + f'  g: {{from: draft, to: done, by: clerk, {key}: "{guard}"}}\n'
    problems = refused(lambda: load_definition(text, "guard.yaml"))
    assert len(problems) == 1
    column = len(f"  g: {{from: draft, to: done, by: clerk, {key}: ") + 1
    assert (problems[0].file, problems[0].line, problems[0].column) == ("guard.yaml", 13, column)
    assert problems[0].message.startswith(f"{key}: {message}"), problems[0].message


# --- template escape attempts ------------------------------------------------------------------------------

TEMPLATE_WORKFLOW = MINIMAL + "notify:\n  - {on: enter done, to: clerk, template: told}\n"
TEMPLATE_ESCAPES = [
    ("{{ case.cause.__class__.__mro__ }}", "attribute '__class__' is not allowed (names starting with '_')"),
    ("{{ cycler.__init__.__globals__ }}", "attribute '__globals__' is not allowed (names starting with '_')"),
    ("{{ case.cause | attr('__class__') }}", "filter 'attr' is not allowed; allowed: "),
    ("{{ '%s' | format(case.cause) }}", "filter 'format' is not allowed; allowed: "),
    ("{{ '{0.__class__}'.format(case.cause) }}", "calls are not allowed in templates (use filters such as '| upper')"),
    ("{{ case['__class__'] }}", "key '__class__' is not allowed (starts with '_')"),
    ("{% include 'other.txt' %}", "include/import/extends are not allowed: a template stands alone"),
    ("{% macro m() %}x{% endmacro %}", "macros are not allowed in templates"),
    pytest.param(
        "{{ (case.cause | list | unique).gi_frame.f_globals }}",
        "attribute 'gi_frame' is not allowed (Python internals, not data)",
        id="gi_frame",
    ),
]


@pytest.mark.parametrize(("body", "message"), TEMPLATE_ESCAPES)
def test_template_escape_is_refused_at_load_where_written(body: str, message: str) -> None:
    templates = {"told.subject": "已办结 {{ case.ref }}", "told.txt": "第一行\n" + body + "\n"}
    problems = refused(lambda: load_definition(TEMPLATE_WORKFLOW, "t.yaml", templates, "templates/t"))
    at = [p for p in problems if p.file == "templates/t/told.txt"]
    assert at and all(p.line == 2 for p in at), problems
    assert any(p.message.startswith(message) for p in at), [p.message for p in at]


def test_a_generator_frame_in_a_template_is_stopped_by_the_sandbox_at_render() -> None:
    """Defence in depth: were the load-time check (above) to miss it, the sandbox refuses it at render."""
    from engine.templates import TemplateRenderError, TemplateSet

    templates = TemplateSet(
        {"told.subject": "已办结", "told.txt": "{{ (case.cause | list | unique).gi_frame.f_globals }}"}
    )
    context = {"case": {"ref": "MI-1", "cause": "失业"}, "recipient": {}, "event": {}, "workflow": {}}
    start = time.process_time()
    with pytest.raises(TemplateRenderError) as info:
        templates.render("told", "text", context)
    assert time.process_time() - start < MAX_SECONDS
    assert str(info.value) == (
        "told.txt failed to render: SecurityError: access to attribute 'gi_frame' of 'generator' object is unsafe."
    )
