"""Refusals are data: a stable code, JSON-ready facts, and a message in plain words that names no CLI flag.

A set of real refusals is produced through the engine's API on SQLite and
PostgreSQL — a step without its comment, empty required fields, an unknown
case, user and workflow, a stale version, a second open case for one
household, an invalid import file, the four-eyes rule and the rest — and
each is held to the contract of engine/errors.py: its message says what was
wrong without naming a command or a flag (a web page or an API client shows
it too), its ``to_json()`` is JSON, its facts are the documented ones
(``CODES``, ``docs/refusals.md``). The CLI's wording of the same refusals
(casework/cli/wording.py) is where the flags and commands come in.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from casework.cli.wording import word
from engine import CODES, Casework, CaseworkError, Code, load_definition_file
from tests.conftest import BUNDLED
from tests.integration.test_service import file_through, household

WF = "poverty_archive"
MISSING = "ZZ-2026-999999"


def _refused(call: Callable[[], object]) -> CaseworkError:
    try:
        call()
    except CaseworkError as exc:
        return exc
    raise AssertionError("the call was not refused")


def _edited_workflow(tmp_path: Path) -> Path:
    """The bundled workflow, same name and version, another title: a different source for a loaded version."""
    folder = tmp_path / "workflows"
    shutil.copytree(BUNDLED.parent / "templates", folder / "templates")
    path = folder / BUNDLED.name
    text = BUNDLED.read_text(encoding="utf-8")
    title = next(line for line in text.splitlines() if line.startswith("title:"))
    path.write_text(text.replace(title, title + "（修订）", 1), encoding="utf-8")
    return path


@pytest.fixture
def refusals(svc: Casework, tmp_path: Path) -> dict[str, tuple[Code, CaseworkError]]:
    """name → (the code expected, the refusal the API raised)."""
    # in review, submitted by ye (clerk + reviewer), one document short
    review = svc.create_case(WF, "ye", household(seed=1, materials=["申请表", "身份证", "户口簿"])).ref
    svc.fire(review, "submit", "ye")
    draft = svc.create_case(WF, "lin", {"applicant_name": "李娜", "county": "芗城区"}).ref
    public = svc.create_case(WF, "lin", household(seed=2)).ref
    file_through(svc, public, "publicise")
    withdrawn = svc.create_case(WF, "lin", household(seed=3)).ref
    svc.fire(withdrawn, "withdraw", "lin", comment="申请人撤回")
    paused = svc.create_case(WF, "lin", household(seed=4)).ref
    svc.fire(paused, "submit", "lin")
    svc.pause(paused, "wu", "等待补充材料")
    edited = load_definition_file(_edited_workflow(tmp_path))

    calls: dict[str, tuple[Code, Callable[[], object]]] = {
        "fire without a comment": (Code.COMMENT_REQUIRED, lambda: svc.fire(review, "return", "wu")),
        "missing fields": (Code.MISSING_FIELDS, lambda: svc.fire(draft, "submit", "lin")),
        "unknown case": (Code.CASE_NOT_FOUND, lambda: svc.fire(MISSING, "submit", "lin")),
        "unknown case read": (Code.CASE_NOT_FOUND, lambda: svc.get_case(MISSING)),
        "unknown user": (Code.USER_NOT_FOUND, lambda: svc.fire(draft, "submit", "nobody")),
        "unknown workflow, near name": (
            Code.WORKFLOW_NOT_FOUND,
            lambda: svc.create_case("poverty_archiv", "lin", household(seed=5)),
        ),
        "unknown workflow": (Code.WORKFLOW_NOT_FOUND, lambda: svc.create_case("zzz", "lin", household(seed=5))),
        "stale version, update": (
            Code.CONFLICT,
            lambda: svc.update_case(draft, "lin", {"household_size": 3}, expected_version=9),
        ),
        "stale version, step": (
            Code.CONFLICT,
            lambda: svc.fire(review, "reject", "wu", comment="不符合条件", expected_version=1),
        ),
        "same household again": (Code.DUPLICATE, lambda: svc.create_case(WF, "lin", household(seed=1))),
        "invalid import": (
            Code.INVALID_IMPORT,
            lambda: svc.import_cases(WF, "lin", [(2, household(seed=6)), (3, household(seed=7, household_size="abc"))]),
        ),
        "wrong role": (Code.ROLE_NEEDED, lambda: svc.fire(review, "pass_review", "lin")),
        "wrong county": (Code.SCOPE_NOT_COVERED, lambda: svc.fire(review, "pass_review", "chen")),
        "four eyes": (Code.FOUR_EYES, lambda: svc.fire(review, "pass_review", "ye")),
        "guard": (Code.GUARD_FAILED, lambda: svc.fire(review, "pass_review", "wu")),
        "unknown step": (Code.UNKNOWN_STEP, lambda: svc.fire(review, "pas_review", "wu")),
        "step from another state": (Code.WRONG_STATE, lambda: svc.fire(review, "grant", "su")),
        "acting as system": (Code.SYSTEM_RESERVED, lambda: svc.fire(review, "end_publicity", "system")),
        "invalid data": (
            Code.INVALID_DATA,
            lambda: svc.update_case(draft, "lin", {"household_size": "abc", "househld_size": 3}),
        ),
        "user exists": (Code.USER_EXISTS, lambda: svc.add_user("lin", "林晓", ["clerk"], ["*"])),
        "invalid user": (Code.INVALID_USER, lambda: svc.add_user("x y", "", ["clerk"], [])),
        "version exists": (Code.VERSION_EXISTS, lambda: svc.load_workflow(edited)),
        "final state": (Code.FINAL_STATE, lambda: svc.update_case(withdrawn, "lin", {"household_size": 2})),
        "objection outside publicity": (
            Code.NOT_IN_PUBLICITY,
            lambda: svc.add_objection(review, "lin", "群众来电反映情况"),
        ),
        "objection without text": (Code.OBJECTION_TEXT_REQUIRED, lambda: svc.add_objection(public, "lin", "  ")),
        "pause without a deadline": (Code.NO_DEADLINE, lambda: svc.pause(draft, "lin", "等待补充材料")),
        "pause twice": (Code.ALREADY_PAUSED, lambda: svc.pause(paused, "wu", "等待补充材料")),
        "resume, not paused": (Code.NOT_PAUSED, lambda: svc.resume(review, "wu")),
        "batch out of range": (Code.INVALID_INPUT, lambda: svc.fire_many([review], "pass_review", "wu", batch=0)),
    }
    return {name: (code, _refused(call)) for name, (code, call) in calls.items()}


def test_each_refusal_has_the_code_expected(refusals: dict[str, tuple[Code, CaseworkError]]) -> None:
    assert {name: exc.code for name, (_, exc) in refusals.items()} == {name: c for name, (c, _) in refusals.items()}


def test_engine_messages_name_no_cli_flag_or_command(refusals: dict[str, tuple[Code, CaseworkError]]) -> None:
    naming = {
        name: exc.message
        for name, (_, exc) in refusals.items()
        if "--" in exc.message or "casework " in exc.message.lower()
    }
    assert naming == {}
    assert all(exc.message.strip() for _, exc in refusals.values())


def test_to_json_is_json_without_none_facts(refusals: dict[str, tuple[Code, CaseworkError]]) -> None:
    for name, (code, exc) in refusals.items():
        doc = exc.to_json()
        assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc, name  # plain JSON types only
        assert doc == {"code": code.value, "message": exc.message, "facts": doc["facts"]}, name
        assert None not in doc["facts"].values(), (name, doc["facts"])


def test_every_fact_of_a_refusal_is_documented_for_its_code(refusals: dict[str, tuple[Code, CaseworkError]]) -> None:
    undocumented = {
        name: sorted(set(exc.facts) - set(CODES[exc.code].facts))
        for name, (_, exc) in refusals.items()
        if set(exc.facts) - set(CODES[exc.code].facts)
    }
    assert undocumented == {}


# what the CLI adds to the engine's message: the flag or command that helps
CLI_HINTS: dict[Code, Callable[[dict[str, Any]], str]] = {
    Code.COMMENT_REQUIRED: lambda facts: '--comment "..."',
    Code.MISSING_FIELDS: lambda facts: "--set FIELD=VALUE",
    Code.CASE_NOT_FOUND: lambda facts: "'casework case list'",
    Code.USER_NOT_FOUND: lambda facts: "'casework user add'",
    Code.WORKFLOW_NOT_FOUND: lambda facts: "'casework workflow load FILE'",
    Code.CONFLICT: lambda facts: f"'casework case show {facts['case']}'",
    Code.SYSTEM_RESERVED: lambda facts: "--as USERNAME",
    Code.INVALID_IMPORT: lambda facts: "--skip-invalid",
    Code.USER_EXISTS: lambda facts: "'casework user list'",
    Code.OBJECTION_TEXT_REQUIRED: lambda facts: '--text "..."',
    Code.INVALID_USER: lambda facts: "--name",
}


def test_the_cli_words_the_same_refusals_with_the_flag_or_command_that_helps(
    refusals: dict[str, tuple[Code, CaseworkError]],
) -> None:
    for name, (code, exc) in refusals.items():
        worded = word(str(exc.code), exc.message, exc.facts)
        assert "\n" not in worded or code is Code.INVALID_IMPORT, (name, worded)
        if code in CLI_HINTS:
            assert CLI_HINTS[code](exc.facts) in worded, (name, worded)
        else:
            assert worded.startswith(exc.message), (name, worded)  # nothing to add: the engine's words come first
    # the engine's own message comes first where the CLI only adds a hint
    for name in ("fire without a comment", "missing fields", "unknown case", "unknown user", "unknown workflow"):
        _, exc = refusals[name]
        assert word(str(exc.code), exc.message, exc.facts).startswith(exc.message), name
