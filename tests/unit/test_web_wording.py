"""The web pages' Chinese wording of every refusal code and of every field problem.

The main refusals are raised through the engine on a real SQLite database, so
the facts worded are the facts the engine gives; the other codes are worded
from facts named as :data:`engine.CODES` documents them.
"""

from __future__ import annotations

import pickle
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from casework.web.wording import FIELD_WORDS, WORDS, field_problem, field_problems, word
from db import make_engine
from engine import (
    CODES,
    Casework,
    CaseworkError,
    Code,
    FieldProblem,
    FieldValueError,
    FixedClock,
    InvalidCaseData,
    WorkflowDef,
    load_definition_file,
)
from engine.fields import check_text, coerce_value
from engine.idnumber import validate_id_number
from tests.conftest import USERS
from tests.e2e.web.conftest import BUNDLED, PASSWORD, START, case_data

NOW = START
FALLBACK = "操作未完成，未作任何更改："


data = case_data  # the submit step's data, as the web tests post it


@pytest.fixture(scope="module")
def svc(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Casework]:
    path = tmp_path_factory.mktemp("wording") / "w.db"
    shutil.copy(sqlite_template, path)  # a migrated copy: no migration run here
    engine = make_engine(f"sqlite:///{path}")
    service = Casework(engine, FixedClock(NOW))
    service.load_workflow(load_definition_file(BUNDLED))
    for username, name, roles, scopes in USERS:
        service.add_user(username, name, roles, scopes)
        service.logins.set_password(username, PASSWORD)
    yield service
    engine.dispose()


@pytest.fixture(scope="module")
def wf(svc: Casework) -> WorkflowDef:
    return svc.workflow("poverty_archive")


def refused(call: Callable[[], object]) -> CaseworkError:
    with pytest.raises(CaseworkError) as info:
        call()
    return info.value


@pytest.fixture(scope="module")
def real(svc: Casework) -> dict[Code, CaseworkError]:
    """The main refusals, each raised by the engine."""
    out: dict[Code, CaseworkError] = {}

    def keep(call: Callable[[], object]) -> None:
        exc = refused(call)
        out[exc.code] = exc

    ref = svc.create_case("poverty_archive", "ye", data()).ref
    keep(lambda: svc.create_case("poverty_archive", "lin", data()))  # duplicate
    svc.fire(ref, "submit", "ye")
    keep(lambda: svc.fire(ref, "pass_review", "ye"))  # four_eyes
    keep(lambda: svc.fire(ref, "return", "wu"))  # comment_required
    keep(lambda: svc.fire(ref, "pass_review", "lin"))  # role_needed
    keep(lambda: svc.fire(ref, "grant", "su"))  # wrong_state
    keep(lambda: svc.fire(ref, "return", "wu", comment="材料不全", expected_version=0))  # conflict
    keep(lambda: svc.fire(ref, "pass_review", "chen"))  # scope_not_covered
    keep(lambda: svc.get_case("ZZ-2026-999999", "lin"))  # case_not_found
    bare = svc.create_case("poverty_archive", "lin", data(id_number="350602198501012344", cause=None)).ref
    keep(lambda: svc.fire(bare, "submit", "lin"))  # missing_fields
    short = svc.create_case("poverty_archive", "lin", data(id_number="350602198501012352", materials=["申请表"])).ref
    svc.fire(short, "submit", "lin")
    keep(lambda: svc.fire(short, "pass_review", "wu"))  # guard_failed
    keep(
        lambda: svc.create_case(
            "poverty_archive",
            "lin",
            data(
                id_number="350602198501012337",
                household_size="3.5",
                income_per_capita="abc",
                household_type="五保户",
                materials=["存折"],
            ),
        )
    )  # invalid_data
    keep(lambda: svc.logins.login("lin", "wrong-password", "192.0.2.1"))  # login_failed
    for _ in range(6):
        last = refused(lambda: svc.logins.login("ye", "wrong-password", "192.0.2.2"))
    out[last.code] = last  # login_locked
    keep(lambda: svc.logins.set_password("lin", "lin"))  # weak_password
    return out


MAIN = [
    Code.FOUR_EYES,
    Code.COMMENT_REQUIRED,
    Code.MISSING_FIELDS,
    Code.ROLE_NEEDED,
    Code.WRONG_STATE,
    Code.CONFLICT,
    Code.DUPLICATE,
    Code.INVALID_DATA,
    Code.GUARD_FAILED,
    Code.LOGIN_FAILED,
    Code.LOGIN_LOCKED,
    Code.WEAK_PASSWORD,
    Code.SCOPE_NOT_COVERED,
    Code.CASE_NOT_FOUND,
]

# a value for every fact a code documents, for the codes not raised above
SAMPLE: dict[str, Any] = {
    "case": "ZZ-2026-000123",
    "user": "lin",
    "workflow": "poverty_archive",
    "version": 3,
    "suggestion": "poverty_archive",
    "known": ["poverty_archive", "medical_aid"],
    "objection": 2,
    "notice": "GS-2026-0007",
    "message": 17,
    "outbox": 41,
    "problems": [
        {
            "field": "household_size",
            "message": "must be at most 20, got 25",
            "kind": "above_max",
            "params": {"max": "20", "value": "25"},
        }
    ],
    "field": "id_number",
    "existing_case": "ZZ-2026-000007",
    "existing_state": "review",
    "elsewhere": True,
    "rows": [3, 5],
    "invalid": 2,
    "total": 40,
    "fields": ["id_number"],
    "first_line": 2,
    "last_line": 101,
    "expected_version": 3,
    "found_version": 4,
    "detail": "version 4, expected 3",
    "next_version": 4,
    "state": "review",
    "state_label": "审核",
    "trigger": "pass_review",
    "sources": ["approve"],
    "possible": ["pass_review", "return"],
    "roles": ["clerk"],
    "needed": ["reviewer"],
    "scopes": ["龙文区"],
    "scope": "芗城区",
    "disabled_at": "2026-11-30T09:00:00+08:00",
    "earlier": "submit",
    "guard": "case.materials | length == 4",
    "explain": "materials 只选了 1 项，需要 4 项",
    "error": "income_per_capita is empty",
    "labels": {"id_number": "公民身份号码"},
    "editable": ["phone"],
    "corrections": ["correct"],
    "limit": "一年一次",
    "label": "每年一次",
    "key": ["id_number"],
    "period": "2026",
    "max": "1",
    "used": "1",
    "asked": "1",
    "left": "0",
    "linked_case": "ZZ-2025-000001",
    "linked_workflow": "poverty_archive",
    "linked_state": "exited",
    "allowed": ["filed"],
    "chain": ["ZZ-2026-000001 close", "ZZ-2026-000002 close"],
    "missing": ["fonts-noto-cjk"],
    "publicity_state": "publicise",
    "period_end": "2026-12-07",
    "date": "2026-11-01",
    "today": "2026-11-30",
    "status": "upheld",
    "resolved_by": "wu",
    "template": "notice",
    "install": ["fonts-noto-cjk", "libpango-1.0-0"],
    "year": 2027,
    "ran_at": "2026-12-20T09:00:00+08:00",
    "outcome": "opened 12 cases",
    "earliest": "2026-11-01",
    "latest": "2027-12-31",
    "previous_version": 2,
    "weakened": ["not_by of grant"],
    "accepted": [],
    "versions": [1, 2],
    "states": ["enter"],
    "why": {"enter": "the new version has no state enter"},
    "option": "--year",
    "value": "20x6",
    "locked": "user",
    "retry_after": 900,
    "min_length": 10,
    "token": "provincial-platform",
    "window": 60,
    "database": "casework.db",
    "linked_from": {"case": "ZZ-2026-000009", "workflow": "medical_aid", "trigger": "grant", "field": "archive"},
}


def sample(code: Code) -> dict[str, Any]:
    return {name: SAMPLE[name] for name in CODES[code].facts}


def assert_worded(text: str) -> None:
    assert text and not text.startswith(FALLBACK), text
    assert "…" not in text and "{" not in text and "}" not in text, text
    assert not re.search(r"\b(needs|must|expected|got|refused)\b", text), f"English left in: {text}"


def test_every_code_has_a_wording() -> None:
    assert set(WORDS) == set(Code)


@pytest.mark.parametrize("code", list(Code), ids=str)
def test_every_code_is_worded_from_its_documented_facts(code: Code, wf: WorkflowDef) -> None:
    exc = CaseworkError("the engine's words", code=code, **sample(code))
    assert_worded(word(exc))
    assert_worded(word(exc, wf))


@pytest.mark.parametrize("code", MAIN, ids=str)
def test_the_main_refusals_raised_by_the_engine_are_worded(
    code: Code, real: dict[Code, CaseworkError], wf: WorkflowDef
) -> None:
    exc = real[code]
    assert set(exc.facts) <= set(CODES[code].facts)  # the facts worded are the documented ones
    assert_worded(word(exc))
    assert_worded(word(exc, wf))


def test_steps_states_and_fields_are_named_by_their_labels(real: dict[Code, CaseworkError], wf: WorkflowDef) -> None:
    four = word(real[Code.FOUR_EYES], wf)
    assert "“提交申请”" in four and "“审核通过”" in four and "其他同事" in four
    assert "“退回补正”" in word(real[Code.COMMENT_REQUIRED], wf)
    assert "请填写意见" in word(real[Code.COMMENT_REQUIRED], wf)
    missing = word(real[Code.MISSING_FIELDS])  # labels come with the facts even without the workflow
    assert "致困原因" in missing and "cause" not in missing
    role = word(real[Code.ROLE_NEEDED], wf)
    assert "基层工会经办人" in role and "县级工会审核人" in role and "“审核通过”" in role
    wrong = word(real[Code.WRONG_STATE])  # the state's label is a fact
    assert "“审核”" in wrong
    wrong = word(real[Code.WRONG_STATE], wf)
    assert "“审批通过”" in wrong and "“审批”" in wrong and "“退回补正”" in wrong
    dup = word(real[Code.DUPLICATE], wf)
    assert "公民身份号码" in dup and real[Code.DUPLICATE].facts["existing_case"] in dup and "“申请”" in dup
    assert "刷新" in word(real[Code.CONFLICT])
    assert "“审核通过”" in word(real[Code.GUARD_FAILED], wf)
    assert re.search(r"请 1[56] 分钟后再试", word(real[Code.LOGIN_LOCKED]))
    assert "10 个字符" in word(real[Code.WEAK_PASSWORD])


def test_invalid_data_words_each_field_problem_in_chinese(real: dict[Code, CaseworkError], wf: WorkflowDef) -> None:
    text = word(real[Code.INVALID_DATA], wf)
    for expected in (
        "公民身份号码：校验位应为 6，不是 7",
        "家庭人口：应填写整数",
        "“五保户”不是可选项",
        "“存折”不是可选项",
        "应填写数字（如 612.50）",
    ):
        assert expected in text, text
    problems = field_problems(real[Code.INVALID_DATA])
    assert set(problems) == {"id_number", "household_size", "income_per_capita", "household_type", "materials"}
    assert problems["id_number"].startswith("校验位应为 6")
    assert field_problems(real[Code.CONFLICT]) == {}


def test_a_problem_of_an_unknown_kind_is_shown_with_the_engines_message() -> None:
    assert field_problem({"field": "x", "message": "is odd", "kind": "new_kind"}) == "is odd"
    assert field_problem({"field": "x", "message": "is odd"}) == "is odd"
    assert field_problem({"field": "x", "message": "is odd", "kind": "too_long", "params": {}}) == "is odd"


def test_a_field_problem_is_backward_compatible_and_says_its_kind_when_it_has_one() -> None:
    assert FieldProblem("cause", "is too long").to_json() == {"field": "cause", "message": "is too long"}
    typed = FieldProblem("cause", "is 9 characters long; at most 5 allowed", "too_long", {"length": 9, "max": 5})
    assert typed.to_json() == {
        "field": "cause",
        "message": "is 9 characters long; at most 5 allowed",
        "kind": "too_long",
        "params": {"length": 9, "max": 5},
    }
    assert str(typed) == "cause: is 9 characters long; at most 5 allowed"
    error = pickle.loads(pickle.dumps(FieldValueError("is 9 characters long", "too_long", length=9, max=5)))
    assert (str(error), error.kind, error.params) == ("is 9 characters long", "too_long", {"length": 9, "max": 5})
    assert FieldProblem.of("cause", error).to_json()["params"] == {"length": 9, "max": 5}


def _kind(call: Callable[[], object]) -> tuple[str, dict[str, Any]]:
    with pytest.raises(FieldValueError) as info:
        call()
    assert isinstance(info.value, ValueError)  # every caller catching ValueError still catches it
    return info.value.kind, info.value.params


@pytest.mark.parametrize(
    ("name", "raw", "kind", "params"),
    [
        ("household_size", "3.5", "not_integer", {}),
        ("household_size", 3.0, "not_integer", {"suggestion": 3}),
        ("household_size", "0", "below_min", {"min": "1", "value": "0"}),
        ("household_size", "99", "above_max", {"max": "20", "value": "99"}),
        ("income_per_capita", "abc", "not_decimal", {}),
        ("income_per_capita", "-1", "below_min", {"min": "0", "value": "-1"}),
        ("applicant_name", "林" * 41, "too_long", {"length": 41, "max": 40}),
        (
            "household_type",
            "五保户",
            "not_a_choice",
            {"value": "五保户", "choices": ["低保户", "低保边缘户", "意外致困户"]},
        ),
        (
            "materials",
            "申请表,存折",
            "not_an_item",
            {"unknown": ["存折"], "items": ["申请表", "身份证", "户口簿", "收入证明"]},
        ),
        ("id_number", "35060219850101233", "id_length", {"length": 17}),
        ("id_number", "350602198501012337", "id_check_digit", {"expected": "6", "found": "7"}),
        ("id_number", "350602198502302336", "id_birth_date", {"born": "1985-02-30"}),
        ("id_number", "350602203001012336", "id_birth_future", {"born": "2030-01-01"}),
        ("id_number", "990602198501012336", "id_province", {"province": "99"}),
        ("id_number", "350602198501012A36", "id_character", {"position": 16, "character": "A"}),
        ("id_number", "350602198501012", "id_old_form", {}),
    ],
)
def test_the_validators_say_what_kind_of_problem_it_is(
    name: str, raw: Any, kind: str, params: dict[str, Any], wf: WorkflowDef
) -> None:
    field = wf.fields[name]
    got_kind, got_params = _kind(lambda: coerce_value(field, raw, NOW.date()))
    assert got_kind == kind
    assert {k: got_params[k] for k in params} == params
    assert kind in FIELD_WORDS
    chinese = field_problem({"field": name, "message": "x", "kind": got_kind, "params": got_params})
    assert chinese != "x" and "{" not in chinese


def test_a_date_and_text_problems_have_kinds_too(wf: WorkflowDef) -> None:
    date_fields = [f for f in wf.fields.values() if f.type == "date"]
    if date_fields:
        assert _kind(lambda: coerce_value(date_fields[0], "30/11/2026", NOW.date()))[0] == "not_date"
        assert _kind(lambda: coerce_value(date_fields[0], "2026-02-30", NOW.date()))[0] == "not_real_date"
    assert _kind(lambda: check_text("a\tb", multiline=False)) == ("tab", {"position": 2})
    assert _kind(lambda: check_text("a\u200bb", multiline=False))[0] == "bad_character"
    assert _kind(lambda: validate_id_number("3506０2198501012336", NOW.date())) == (
        "id_character",
        {"position": 5, "character": "０", "full_width": True, "space": False},
    )
    assert field_problem(
        {"kind": "id_character", "params": {"position": 5, "character": "０", "full_width": True}}
    ) == ("第 5 位是全角数字，请改用半角数字 0-9")


def test_problems_of_a_refused_case_carry_their_kind_through_the_engine(svc: Casework) -> None:
    with pytest.raises(InvalidCaseData) as info:
        svc.create_case("poverty_archive", "lin", data(id_number="350602198501012337", household_size="25"))
    kinds = {p["field"]: p.get("kind") for p in info.value.facts["problems"]}
    assert kinds == {"id_number": "id_check_digit", "household_size": "above_max"}
    assert field_problems(info.value) == {
        "id_number": "校验位应为 6，不是 7：前 17 位中可能有输错的数字，请核对",
        "household_size": "不能大于 20（填写的是 25）",
    }


def test_every_kind_of_access_log_entry_is_named_in_chinese() -> None:
    from casework.web.pages.admin import ACTIONS
    from engine.limits import ACCESS_ACTIONS

    assert set(ACTIONS) == set(ACCESS_ACTIONS)
    assert all(not label.isascii() for label in ACTIONS.values())
