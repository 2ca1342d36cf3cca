"""engine/errors.py: every code documented once, refusals as JSON, exit codes (no database).

The refusals the engine really raises, with their messages and the CLI's
wording of them, are tested in tests/integration/test_refusals.py.
"""

from __future__ import annotations

import importlib
import json

import pytest

from engine.errors import (
    CODES,
    AlreadyExists,
    CaseNotFound,
    CaseworkError,
    Code,
    CommentRequired,
    ConflictError,
    DefinitionError,
    DuplicateCase,
    FieldProblem,
    InputError,
    InvalidCaseData,
    MissingFields,
    Problem,
    RefusedError,
    TransitionRefused,
    UserNotFound,
    WorkflowNotFound,
)

# modules that define CaseworkError subclasses of their own
_MODULES = ("engine.errors", "engine.bulk", "engine.templates", "notifications.relay")


def _subclasses(cls: type[CaseworkError]) -> set[type[CaseworkError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_code_is_documented_once() -> None:
    assert set(CODES) == set(Code)
    assert len(CODES) == len(Code)
    for code, info in CODES.items():
        assert info.meaning.strip() and info.meaning.rstrip().endswith((".", ")")), code
        assert info.facts and all(isinstance(f, str) and f for f in info.facts), code
        assert len(set(info.facts)) == len(info.facts), code


def test_codes_are_their_own_lowercase_names() -> None:
    for code in Code:
        assert code.value == code.name.lower(), code  # stable names a program can branch on


def test_every_error_class_defaults_to_a_documented_code() -> None:
    for name in _MODULES:
        importlib.import_module(name)
    classes = _subclasses(CaseworkError) | {CaseworkError}
    assert {c.__name__ for c in classes} >= {"InvalidImport", "ImportClash", "CommentRequired", "NotRetryable"}
    for cls in classes:
        assert cls.default_code in CODES, cls
        if issubclass(cls, RefusedError):
            assert cls.exit_code == 1, cls  # refused by the rules, nothing changed
        elif issubclass(cls, InputError | DefinitionError):
            assert cls.exit_code == 2, cls  # unusable input


def _examples() -> list[CaseworkError]:
    return [
        CaseNotFound("ZZ-2026-000001"),
        UserNotFound("nobody"),
        WorkflowNotFound("poverty_archiv", suggestion="poverty_archive", known=["poverty_archive"]),
        WorkflowNotFound("nothing"),
        WorkflowNotFound("poverty_archive", 7),
        ConflictError("ZZ-2026-000001"),
        ConflictError("ZZ-2026-000001", "version 3, expected 2", expected_version=2, found_version=3),
        DuplicateCase("id_number", None, None),
        DuplicateCase("id_number", "ZZ-2026-000002", "review"),
        AlreadyExists("user 'lin' already exists", user="lin"),
        CommentRequired("return needs a comment saying why", ref="ZZ-2026-000001", state="review", trigger="return"),
        MissingFields("submit needs cause", ["cause"], labels={"cause": "致困原因"}, ref="ZZ-2026-000001"),
        TransitionRefused("refused"),
        InvalidCaseData([FieldProblem("household_size", "expected a whole number such as 4, got 'abc'")]),
        InputError("batch size 0 is out of range", option="batch", value=0),
        DefinitionError([Problem("w.yaml", 3, 5, "unknown state 'nowhere'")]),
    ]


@pytest.mark.parametrize("error", _examples(), ids=lambda e: type(e).__name__)
def test_to_json_is_json_and_drops_none_facts(error: CaseworkError) -> None:
    doc = error.to_json()
    assert list(doc) == ["code", "message", "facts"]
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
    assert doc["code"] == error.code.value and doc["message"] == error.message == str(error)
    assert None not in doc["facts"].values()
    assert set(doc["facts"]) <= set(CODES[error.code].facts), "a fact its code does not document"


def test_facts_given_as_none_are_left_out() -> None:
    assert ConflictError("ZZ-2026-000001").to_json()["facts"] == {"case": "ZZ-2026-000001"}
    assert DuplicateCase("id_number", None, None).facts == {"field": "id_number"}
    assert WorkflowNotFound("nothing").facts == {"workflow": "nothing"}  # no version, no suggestion, none known
    assert TransitionRefused("refused").facts == {}  # no case, state or trigger given
    full = ConflictError("ZZ-2026-000001", "version 3, expected 2", expected_version=2, found_version=3).facts
    assert full == {
        "case": "ZZ-2026-000001",
        "detail": "version 3, expected 2",
        "expected_version": 2,
        "found_version": 3,
    }


def test_to_json_is_a_copy() -> None:
    error = CaseNotFound("ZZ-2026-000001")
    error.to_json()["facts"]["case"] = "changed"
    assert error.facts == {"case": "ZZ-2026-000001"}
