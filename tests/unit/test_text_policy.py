"""One text policy for every free text casework keeps, and how stored text is shown.

:func:`engine.fields.check_text` decides for case text fields, comments,
reasons, objections and user names alike: letters, marks, numbers,
punctuation, symbols and spaces; a line break only where the text may run to
several lines. Everything else is refused with the field, the character as
U+XXXX and its position. On the way out, :func:`casework.cli.output.visible`
escapes what could steer a terminal, and :func:`engine.masking.mask_id_numbers`
masks ID-number-shaped digits in comments and objections. Also here: a
workflow YAML integer too long for Python is a located problem, not a
traceback.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from casework.cli.output import short, visible
from engine.definition.loader import ParseFailed, parse_yaml
from engine.definition.model import FieldDef
from engine.errors import InputError, InvalidCaseData
from engine.fields import check_text, coerce_value
from engine.masking import mask_id_numbers
from engine.rules import clean_comment, clean_text
from engine.users import check_new_user

TODAY = dt.date(2026, 11, 30)
NAME = FieldDef(name="applicant_name", type="text", label="申请人姓名", max=40)  # one line
CAUSE = FieldDef(name="cause", type="text", label="致困原因", max=500)  # several lines


def refused(f: FieldDef, raw: Any) -> str:
    with pytest.raises(ValueError) as info:
        coerce_value(f, raw, TODAY)
    return str(info.value)


# what the issue found accepted, and what each field now says about it
HIDDEN = [
    ("\ufeff王五", "contains a control character (U+FEFF) at position 1; remove it"),
    ("王\U000e0041五", "contains a control character (U+E0041) at position 2; remove it"),
    ("王\ue000五", "contains a private-use character (U+E000) at position 2; remove it"),
    ("王\U000f0000五", "contains a private-use character (U+F0000) at position 2; remove it"),
    ("王\u2028五", "contains a control character (U+2028) at position 2; remove it"),
    ("王\u2029五", "contains a control character (U+2029) at position 2; remove it"),
    ("王\u00ad五", "contains a control character (U+00AD) at position 2; remove it"),
    ("王\u200b五", "contains a control character (U+200B) at position 2; remove it"),
    ("王\u202e五", "contains a control character (U+202E) at position 2; remove it"),
    ("王\x1c五", "contains a control character (U+001C) at position 2; remove it"),
    ("王\x1e五", "contains a control character (U+001E) at position 2; remove it"),
    ("王\x1b[31m五", "contains a control character (U+001B) at position 2; remove it"),
    ("王\r五", "contains a control character (U+000D) at position 2; remove it"),
    ("王\t五", "contains a tab (U+0009) at position 2; use spaces"),
    ("王\u0378五", "contains an unassigned character (U+0378) at position 2; remove it"),
]


@pytest.mark.parametrize(("raw", "message"), HIDDEN)
def test_a_text_field_refuses_what_is_not_text_naming_the_character_and_position(raw: str, message: str) -> None:
    assert refused(NAME, raw) == message
    assert refused(CAUSE, raw) == message


@pytest.mark.parametrize(("raw", "message"), HIDDEN)
def test_comments_and_objections_follow_the_same_policy(raw: str, message: str) -> None:
    with pytest.raises(InvalidCaseData) as info:
        clean_comment(f"同意。{raw}")
    # the problem's kind and params (for a shell's own wording) come beside the field and message
    assert [(p["field"], p["message"]) for p in info.value.facts["problems"]] == [("comment", _shifted(message, 3))]
    with pytest.raises(InvalidCaseData) as info:
        clean_text("text", raw)
    assert [(p.field, p.message) for p in info.value.problems] == [("text", message)]


def _shifted(message: str, by: int) -> str:
    head, _, tail = message.partition("at position ")
    number, _, rest = tail.partition(";")
    return f"{head}at position {int(number) + by};{rest}"


def test_a_line_break_only_where_the_text_may_run_to_several_lines() -> None:
    assert refused(NAME, "王\n五") == "contains a line break (U+000A) at position 2; this field is one line"
    assert coerce_value(CAUSE, "因病致困\r\n住院三个月", TODAY) == "因病致困\n住院三个月"
    assert clean_comment("材料齐全\n同意") == "材料齐全\n同意"
    # a field without a max is long (500 by default), so it may run to several lines too
    assert coerce_value(FieldDef(name="note", type="text", label="备注"), "一\n二", TODAY) == "一\n二"


@pytest.mark.parametrize(
    "text",
    [
        "欧阳志华",
        "阿卜杜拉·买买提",  # U+00B7 middle dot in a Uyghur name
        "Zoë O'Brien-Smith",
        "月收入 612.50 元，¥612.5，体温 38.5℃，残疾等级 50％",
        "e\u0301",  # a combining mark (NFC makes é)
        "第一\u3000第二",  # the ideographic space
        "①②③ ⅣⅤ ２０２６年",
        "邮编 363000 <script>alert(1)</script> {{ 7*7 }}",
        "困难 😊",  # an emoji is a symbol
    ],
)
def test_letters_marks_numbers_punctuation_symbols_and_spaces_are_kept(text: str) -> None:
    import unicodedata

    assert check_text(text, multiline=False) == unicodedata.normalize("NFC", text)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("林\t晓", "contains a tab (U+0009) at position 2; use spaces"),
        ("林\n晓", "contains a line break (U+000A) at position 2; this field is one line"),
        ("林\x1b[2J晓", "contains a control character (U+001B) at position 2; remove it"),
        ("\ufeff林晓", "contains a control character (U+FEFF) at position 1; remove it"),
        ("林\u200b晓", "contains a control character (U+200B) at position 2; remove it"),
        ("林" * 201, "is 201 characters long; at most 200"),
    ],
)
def test_a_users_name_is_one_line_of_text(name: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        check_new_user("lin", name, ["clerk"], ["芗城区"], None)
    assert info.value.facts["problems"] == [{"field": "name", "message": message}]


def test_a_users_name_keeps_its_letters_and_spaces() -> None:
    assert check_new_user("ou", " 欧阳 志华 ", ["clerk"], ["芗城区"], None)[1] == "欧阳 志华"


# ----------------------------------------------------------------- showing stored text


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("同意", "同意"),
        (
            "同意\n  3  2026-11-30T09:00:00+08:00  su (approver)  grant",
            "同意\\n  3  2026-11-30T09:00:00+08:00  su (approver)  grant",
        ),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("a\u200bb\u2028c\ufeff", "a\\u200bb\\u2028c\\ufeff"),
        ("a\U000e0041b", "a\\U000e0041b"),
        ("第一\u3000第二 ¥5", "第一\u3000第二 ¥5"),
    ],
)
def test_visible_escapes_what_could_steer_a_terminal(stored: str, shown: str) -> None:
    assert visible(stored) == shown
    assert "\n" not in visible(stored) and "\x1b" not in visible(stored)


def test_a_value_in_the_history_is_one_line() -> None:
    assert short("一\n二") == "一\\n二"
    assert short(["a\nb", "c"]) == "[a\\nb, c]"
    assert short(None) == "∅"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("申请人身份证350602198503120015，已核", "申请人身份证350602********0015，已核"),
        ("号码35060219700505003X有误", "号码350602********003X有误"),
        ("ID350602198503120015", "ID350602********0015"),
        ("旧证350602850312001", "旧证350602*****2001"),
        ("两人：350602198503120015、350603199001010028", "两人：350602********0015、350603********0028"),
        # not an ID number's shape: a phone, an amount, a 16- or 19-digit card, a date
        ("电话13812345678，月收入612.50", "电话13812345678，月收入612.50"),
        ("卡号6222021234567890 和 6222021234567890123", "卡号6222021234567890 和 6222021234567890123"),
        ("2026-11-30", "2026-11-30"),
    ],
)
def test_id_number_shaped_digits_in_free_text_are_masked(text: str, masked: str) -> None:
    assert mask_id_numbers(text) == masked


# ----------------------------------------------------------------- a workflow's numbers


@pytest.mark.parametrize("digits", [31, 4301, 50_000])
def test_a_workflow_integer_too_long_is_a_located_problem(digits: int) -> None:
    text = "workflow: w\nfields:\n  size: {type: integer, max: " + "9" * digits + "}\n"
    with pytest.raises(ParseFailed) as info:
        parse_yaml(text, "w.yaml")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.column) == ("w.yaml", 3, 30)
    assert problem.message == f"a number of {digits:,} digits is too long (at most 30); quote it if it is meant as text"


def test_a_workflow_integer_of_thirty_digits_is_still_a_number() -> None:
    assert parse_yaml("n: " + "9" * 30)["n"] == int("9" * 30)
