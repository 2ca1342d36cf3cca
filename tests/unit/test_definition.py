"""Loading workflow definitions: every check, located, with the exact message.

Each file in ``tests/fixtures/workflows/invalid/`` starts with one
``# expect: LINE:COL: MESSAGE`` comment per problem it must produce, and
nothing else may be reported. A ``# xfail: REASON`` line marks a fixture that
describes what a user *should* get but the engine does not do yet.
Files in ``valid/`` must load without problems.
"""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.definition import Duration, load_definition, load_definition_file
from engine.errors import CaseworkError, DefinitionError, Problem
from tests.unit.samples import MINIMAL

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "workflows"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
BUNDLED = ROOT / "workflows" / "poverty_archive.yaml"

_EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")
_XFAIL = re.compile(r"^# xfail: (.+)$")


def _header(path: Path) -> tuple[set[tuple[int, int, str]], str | None]:
    """The expected (line, col, message) set and the xfail reason, from the leading comments."""
    expected: set[tuple[int, int, str]] = set()
    xfail = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if m := _EXPECT.match(line):
            expected.add((int(m.group(1)), int(m.group(2)), m.group(3)))
        elif m := _XFAIL.match(line):
            xfail = m.group(1)
    return expected, xfail


def _invalid_params() -> list[object]:
    params = []
    for path in INVALID:
        _, xfail = _header(path)
        marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def problems_of(text: str | bytes, file: str = "wf.yaml", templates: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text, file, templates)
    return info.value.problems


# --- fixtures ------------------------------------------------------------------


def test_there_are_fixtures_for_every_check() -> None:
    assert len(INVALID) >= 35
    assert VALID


@pytest.mark.parametrize("path", _invalid_params())
def test_invalid_fixture_reports_exactly_the_expected_problems(path: Path) -> None:
    expected, _ = _header(path)
    assert expected, f"{path.name} has no '# expect:' lines"
    problems = problems_of(path.read_bytes(), path.name)
    assert {(p.line, p.column, p.message) for p in problems} == expected
    assert all(p.file == path.name for p in problems)


@pytest.mark.parametrize("path", _invalid_params())
def test_invalid_fixture_also_fails_through_load_definition_file(path: Path) -> None:
    expected, _ = _header(path)
    with pytest.raises(DefinitionError) as info:
        load_definition_file(path)
    assert {(p.line, p.column, p.message) for p in info.value.problems} == expected
    assert all(p.file == str(path) for p in info.value.problems)


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_fixture_loads(path: Path) -> None:
    wf = load_definition_file(path)
    assert wf.file == str(path)
    assert wf.states


def test_yaml_1_1_booleans_stay_state_names() -> None:
    wf = load_definition_file(FIXTURES / "valid" / "yaml11_booleans.yaml")
    assert list(wf.states) == ["off", "on", "yes", "no"]
    assert all(isinstance(name, str) for name in wf.states)
    assert wf.initial_state == "off"
    assert wf.states["no"].final
    assert wf.transitions["switch_on"].sources == ("off",)
    assert wf.transitions["switch_on"].dest == "on"
    assert wf.transitions["agree"].dest == "yes"
    assert wf.transitions["close"].sources == ("on", "yes")
    assert wf.notify[0].on == "enter yes"


def test_several_problems_are_all_reported_sorted_and_in_the_message() -> None:
    path = FIXTURES / "invalid" / "several_problems.yaml"
    with pytest.raises(DefinitionError) as info:
        load_definition(path.read_text(encoding="utf-8"), "several.yaml")
    problems = info.value.problems
    assert len(problems) == 7
    assert problems == sorted(problems)
    text = str(info.value)
    assert text.startswith("7 problems in workflow definition:\n")
    assert all(str(p) in text for p in problems)
    assert str(problems[0]).startswith("several.yaml:")
    assert info.value.exit_code == 2
    assert isinstance(info.value, CaseworkError)


@pytest.mark.parametrize("line", ['title: "a\tb" c: d', "title:\tMinimal: x"], ids=["in-quotes", "separator"])
def test_tab_that_is_not_indentation_is_not_blamed(line: str) -> None:
    problems = problems_of(MINIMAL.replace("title: Minimal", line, 1))
    assert [(p.line, p.column, p.message) for p in problems] == [
        (3, 15, "YAML syntax: mapping values are not allowed in this context")
    ]


def test_tab_in_indentation_after_spaces_is_blamed() -> None:
    problems = problems_of(MINIMAL.replace("  clerk: Clerk", "  \tclerk: Clerk", 1))
    assert [(p.line, p.message) for p in problems] == [
        (5, "YAML syntax: a tab cannot be used for indentation; indent with spaces")
    ]


def test_one_problem_is_singular() -> None:
    with pytest.raises(DefinitionError) as info:
        load_definition("", "empty.yaml")
    assert (
        str(info.value)
        == "1 problem in workflow definition:\nempty.yaml:1:1: the file is empty; expected a workflow mapping"
    )


# --- the bundled workflow ------------------------------------------------------------


@pytest.fixture(scope="module")
def poverty():  # type: ignore[no-untyped-def]
    return load_definition_file(BUNDLED)


def test_bundled_workflow_loads_identically_from_text_and_file(poverty) -> None:  # type: ignore[no-untyped-def]
    text = BUNDLED.read_text(encoding="utf-8")
    again = load_definition(text, str(BUNDLED), dict(poverty.templates.sources))
    assert again.source_hash == poverty.source_hash
    assert again.describe() == poverty.describe()
    assert poverty.source == text
    assert len(poverty.source_hash) == 64


def test_bundled_workflow_header(poverty) -> None:  # type: ignore[no-untyped-def]
    assert (poverty.name, poverty.version, poverty.title) == ("poverty_archive", 4, "困难职工建档立卡")
    assert poverty.timezone == "Asia/Shanghai"
    assert poverty.calendar == "cn"
    assert poverty.ref_prefix == "ZZ"
    assert poverty.roles == {
        "clerk": "基层工会经办人",
        "reviewer": "县级工会审核人",
        "approver": "市总工会审批人",
        "supervisor": "县级工会负责人",
    }


def test_bundled_workflow_states(poverty) -> None:  # type: ignore[no-untyped-def]
    assert list(poverty.states) == [
        "apply",
        "review",
        "publicise",
        "approve",
        "enter",
        "filed",
        "exited",
        "rejected",
        "withdrawn",
    ]
    assert poverty.initial_state == "apply"
    # filed is not final (version 3): an annual review's exit takes it to exited, on file, not void
    assert {s.name for s in poverty.states.values() if s.final} == {"exited", "rejected", "withdrawn"}
    assert {s.name for s in poverty.states.values() if s.void} == {"rejected", "withdrawn"}
    assert poverty.states["review"].deadline == Duration(5, "working_days")
    assert poverty.states["approve"].deadline == Duration(5, "working_days")
    assert poverty.states["enter"].deadline == Duration(3, "working_days")
    timeout = poverty.states["publicise"].timeout
    assert timeout is not None
    assert (timeout.after, timeout.fire) == (Duration(7, "days"), "end_publicity")


def test_bundled_workflow_transitions(poverty) -> None:  # type: ignore[no-untyped-def]
    edges = {name: (t.sources, t.dest, t.by) for name, t in poverty.transitions.items()}
    assert edges == {
        "submit": (("apply",), "review", ("clerk",)),
        "pass_review": (("review",), "publicise", ("reviewer",)),
        "return": (("review",), "apply", ("reviewer",)),
        "reject": (("review", "approve"), "rejected", ("reviewer", "approver")),
        "withdraw": (("apply", "review", "publicise", "approve"), "withdrawn", ("clerk", "reviewer")),
        "uphold_objection": (("publicise",), "review", ("reviewer",)),
        "end_publicity": (("publicise",), "approve", ("system", "reviewer")),
        "grant": (("approve",), "enter", ("approver",)),
        "record": (("enter",), "filed", ("clerk",)),
        "correct": (("publicise", "approve", "enter"), "apply", ("reviewer", "approver")),
        "exit": (("filed",), "exited", ("reviewer",)),
    }
    assert poverty.transitions["exit"].inbox is False and poverty.transitions["exit"].comment_required
    commented = {t.name for t in poverty.transitions.values() if t.comment_required}
    assert commented == {"return", "reject", "withdraw", "uphold_objection", "correct", "exit"}
    assert poverty.transitions["submit"].require == (
        "applicant_name",
        "id_number",
        "household_type",
        "county",
        "household_size",
        "income_per_capita",
        "cause",
    )
    assert [t.name for t in poverty.transitions_from("publicise")] == [
        "withdraw",
        "uphold_objection",
        "end_publicity",
        "correct",
    ]


def test_bundled_workflow_four_eyes_rules(poverty) -> None:  # type: ignore[no-untyped-def]
    rules = {t.name: t.not_by for t in poverty.transitions.values() if t.not_by}
    assert rules == {"pass_review": ("submit",), "grant": ("pass_review",)}


def test_bundled_workflow_guards(poverty) -> None:  # type: ignore[no-untyped-def]
    when = poverty.transitions["pass_review"].when
    unless = poverty.transitions["end_publicity"].unless
    assert when is not None and unless is not None
    assert when.text == "case.materials | length == 4"
    assert when.case_attributes == {"materials"}
    assert when.evaluate({"materials": ["申请表", "身份证", "户口簿", "收入证明"]}) is True
    assert when.evaluate({"materials": ["申请表"]}) is False
    assert unless.text == "case.open_objections > 0"
    assert unless.evaluate({"open_objections": 0}) is False
    assert unless.evaluate({"open_objections": 2}) is True
    guarded = {t.name for t in poverty.transitions.values() if t.when or t.unless}
    assert guarded == {"pass_review", "end_publicity"}


def test_bundled_workflow_fields(poverty) -> None:  # type: ignore[no-untyped-def]
    assert poverty.scope_field == "county"
    assert poverty.unique_fields == ("id_number",)
    assert poverty.pii_fields == {"applicant_name": "name", "id_number": "id_number", "phone": "phone"}
    types = {name: f.type for name, f in poverty.fields.items()}
    assert types == {
        "applicant_name": "text",
        "id_number": "cn_id",
        "household_type": "choice",
        "county": "choice",
        "household_size": "integer",
        "income_per_capita": "decimal",
        "cause": "text",
        "materials": "checklist",
        "phone": "text",
    }
    assert len(poverty.fields["county"].choices) == 11
    assert poverty.fields["materials"].items == ("申请表", "身份证", "户口簿", "收入证明")
    assert (poverty.fields["household_size"].min, poverty.fields["household_size"].max) == (1, 20)


def test_bundled_workflow_describe_is_json(poverty) -> None:  # type: ignore[no-untyped-def]
    described = json.loads(json.dumps(poverty.describe(), ensure_ascii=False))
    assert described["workflow"] == "poverty_archive"
    assert described["transitions"]["grant"]["not_by"] == ["pass_review"]
    assert described["states"]["publicise"]["timeout"] == {"after": "7 days", "fire": "end_publicity"}
    assert described["states"]["review"]["deadline"] == "5 working days"


# --- loading details -----------------------------------------------------------------


def test_minimal_workflow_loads_with_defaults() -> None:
    wf = load_definition(MINIMAL, "mini.yaml")
    assert wf.timezone == "Asia/Shanghai"
    assert wf.calendar == "cn"
    assert wf.ref_prefix == "M"
    assert wf.states["draft"].label == "draft"
    assert wf.fields["cause"].label == "cause"
    assert wf.file == "mini.yaml"


@pytest.mark.parametrize(
    "prefix",
    [b"\xef\xbb\xbf", b""],
    ids=["utf8-bom", "plain"],
)
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_bom_and_crlf_are_accepted(prefix: bytes, newline: bytes) -> None:
    data = prefix + BUNDLED.read_bytes().replace(b"\n", newline)
    templates = dict(load_definition_file(BUNDLED).templates.sources)
    assert load_definition(data, "wf.yaml", templates).name == "poverty_archive"


def test_utf16_file_is_refused_with_advice() -> None:
    data = BUNDLED.read_text(encoding="utf-8").encode("utf-16")
    assert [p.message for p in problems_of(data)] == ["not UTF-8 text (byte 0); save the file as UTF-8"]


def test_missing_file_is_a_definition_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(DefinitionError) as info:
        load_definition_file(path)
    assert info.value.problems == [Problem(str(path), 1, 1, "cannot read the file: No such file or directory")]


def test_workflow_def_is_frozen() -> None:
    wf = load_definition(MINIMAL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        wf.states["draft"].final = True  # type: ignore[misc]


def test_workflow_def_mappings_are_read_only() -> None:
    # shared by every case on that version, so read-only views rather than dicts
    wf = load_definition(MINIMAL)
    for mapping in (wf.roles, wf.fields, wf.states, wf.transitions):
        assert isinstance(mapping, MappingProxyType)
    with pytest.raises(TypeError):
        wf.states["extra"] = wf.states["draft"]  # type: ignore[index]
    with pytest.raises(TypeError):
        wf.roles["system"] = "me"  # type: ignore[index]
    with pytest.raises(TypeError):
        wf.fields["extra"] = wf.fields["cause"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del wf.transitions["finish"]  # type: ignore[attr-defined]
    assert list(wf.states) == ["draft", "done"]
    assert list(wf.transitions) == ["finish"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 working days", Duration(5, "working_days")),
        ("1 working day", Duration(1, "working_days")),
        ("7 days", Duration(7, "days")),
        ("1 day", Duration(1, "days")),
        ("48 hours", Duration(48, "hours")),
        (" 2  hours ", Duration(2, "hours")),
    ],
)
def test_duration_parse(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["5 workdays", "five days", "5", "days", "-1 days", "12345 days", "1.5 days", ""])
def test_duration_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Duration.parse(text)
    assert str(info.value) == f"{text!r} is not a duration; write e.g. '5 working days', '7 days' or '48 hours'"


def test_duration_str() -> None:
    assert str(Duration(1, "working_days")) == "1 working day"
    assert str(Duration(5, "working_days")) == "5 working days"
    assert str(Duration(48, "hours")) == "48 hours"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("version: 1", "version: 0", "version: Input should be greater than or equal to 1"),
        ("version: 1", 'version: "1"', "version: Input should be a valid integer"),
        (
            "  draft: {initial: true}",
            "  draft: {initial: yes}",
            "states.draft.initial: Input should be a valid boolean",
        ),
        ("states:\n", "notify: [{on: leave draft, to: clerk, template: t}]\nstates:\n", None),
        ("title: Minimal", "title: Minimal\nref_prefix: zz", None),
    ],
    ids=["version-0", "version-string", "yes-is-not-a-boolean", "notify-on", "ref-prefix"],
)
def test_shape_problems(old: str, new: str, message: str | None) -> None:
    text = MINIMAL.replace(old, new, 1)
    assert text != MINIMAL
    problems = problems_of(text)
    assert len(problems) == 1
    if message is not None:
        assert problems[0].message == message


def test_notify_references_are_checked() -> None:
    text = (
        MINIMAL + "notify:\n  - {on: enter dne, to: clrk, template: t}\n  - {on: fire finsh, to: clerk, template: t}\n"
    )
    problems = problems_of(text, templates={"t.subject": "Hi", "t.txt": "Body"})
    assert [(p.line, p.message) for p in problems] == [
        (14, "unknown state 'dne'; did you mean 'done'?"),
        (14, "unknown role 'clrk'; did you mean 'clerk'?"),
        (15, "unknown transition 'finsh'; did you mean 'finish'?"),
    ]


def test_guard_may_read_builtin_attributes() -> None:
    text = MINIMAL.replace(
        "by: clerk}",
        "by: clerk, when: \"case.state == 'draft' and case.ref != ''\", unless: 'case.open_objections > 0'}",
    )
    wf = load_definition(text)
    guard = wf.transitions["finish"].when
    assert guard is not None
    assert guard.case_attributes == {"state", "ref"}


# --- robustness: mangled workflows never raise anything but DefinitionError ----------------

_BUNDLED_TEXT = BUNDLED.read_text(encoding="utf-8")


@st.composite
def _mangled(draw: st.DrawFn) -> str:
    text = _BUNDLED_TEXT
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["delete", "insert", "swap-line"]))
        if op == "delete":
            end = pos + draw(st.integers(1, 20))
            text = text[:pos] + text[end:]
        elif op == "insert":
            snippet = draw(
                st.sampled_from(
                    [":", "-", " ", "\t", "\n", "[", "]", "{", "}", "&a", "*a", "!!str", '"', "'", "#", "x", "中", "<<"]
                )
                | st.text(max_size=8)
            )
            text = text[:pos] + snippet + text[pos:]
        else:
            lines = text.split("\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mangled())
def test_mangled_workflow_loads_or_raises_definition_error(text: str) -> None:
    try:
        wf = load_definition(text, "mangled.yaml")
    except DefinitionError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file == "mangled.yaml"
            assert p.line >= 1 and p.column >= 1
            assert p.message
    else:
        assert wf.initial_state in wf.states


def test_decimal_guard_compares_with_decimal_values() -> None:
    text = MINIMAL.replace("cause: {type: text}", "income: {type: decimal, required: true}").replace(
        "by: clerk}", "by: clerk, when: 'case.income < 612.5'}"
    )
    guard = load_definition(text).transitions["finish"].when
    assert guard is not None
    assert guard.evaluate({"income": Decimal("612.49")}) is True
    assert guard.evaluate({"income": Decimal("612.50")}) is False
