"""Hostile workflow files: refused with a DefinitionError, quickly and in little memory.

Each input is loaded twice: once timed (< 1 s) and once under tracemalloc
(peak < 100 MB), so tracemalloc's own overhead does not count against the
time bound. The bounds are safety limits, not benchmarks.
"""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

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
    """Run ``load`` twice (timed, then traced); it must raise DefinitionError within the bounds."""
    start = time.perf_counter()
    with pytest.raises(DefinitionError) as info:
        load()
    elapsed = time.perf_counter() - start
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
        "fields: {size: {type: integer}, cause: {type: text}}\n"
        "states:\n  s0: {initial: true}\n" + states + "  s199: {final: true}\n"
        "transitions:\n  t0: {from: s0, to: s1, by: clerk}\n"
        + transitions
        + "  t198: {from: s198, to: s199, by: clerk}\n"
    )
    start = time.perf_counter()
    wf = load_definition(text)
    assert time.perf_counter() - start < 5 * MAX_SECONDS
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

    start = time.perf_counter()
    load()
    assert time.perf_counter() - start < MAX_SECONDS
    tracemalloc.start()
    try:
        load()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"peak {peak / 1e6:.0f} MB"
