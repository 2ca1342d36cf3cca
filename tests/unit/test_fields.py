"""Typed case fields: engine.fields.coerce_value for every type, good and bad input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from engine.definition.model import FieldDef
from engine.fields import DEFAULT_MAX_TEXT, FIELD_TYPES, coerce_value, is_empty
from engine.idnumber import check_digit

TODAY = dt.date(2026, 11, 30)
ITEMS = ("申请表", "身份证", "户口簿", "收入证明")
COUNTIES = ("芗城区", "龙文区", "龙海区")


def field(type_: str, **options: Any) -> FieldDef:
    return FieldDef(name="f", type=type_, label="F", **options)


def coerce(f: FieldDef, raw: Any) -> Any:
    return coerce_value(f, raw, TODAY)


def refused(f: FieldDef, raw: Any) -> str:
    with pytest.raises(ValueError) as info:
        coerce(f, raw)
    return str(info.value)


def make_id(first17: str) -> str:
    return first17 + check_digit(first17)


GOOD_ID = make_id("35060219900101123")  # 漳州市芗城区, born 1990-01-01


def test_field_types_are_the_documented_eight() -> None:
    assert FIELD_TYPES == ("text", "integer", "decimal", "date", "choice", "checklist", "cn_id", "email")


# --- empty values ------------------------------------------------------------------


@pytest.mark.parametrize("type_", FIELD_TYPES)
@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_empty_input_clears_every_type(type_: str, raw: Any) -> None:
    f = field(type_, choices=COUNTIES, items=ITEMS)
    assert coerce(f, raw) is None


@pytest.mark.parametrize(
    ("value", "empty"), [(None, True), ("", True), ([], True), ("x", False), (0, False), ([""], False)]
)
def test_is_empty(value: Any, empty: bool) -> None:
    assert is_empty(value) is empty


# --- text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("陈志强", "陈志强"),
        ("  陈志强 ", "陈志强"),
        ("第一行\n第二行", "第一行\n第二行"),
        ("e\u0301", "\u00e9"),  # NFC: e + combining acute → é
        ("'; DROP TABLE cases; --", "'; DROP TABLE cases; --"),
        ("Robert'); DROP TABLE students;--", "Robert'); DROP TABLE students;--"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("{{ 7*7 }} {% raw %}", "{{ 7*7 }} {% raw %}"),
        ("100% ${HOME} `id`", "100% ${HOME} `id`"),
    ],
)
def test_text_is_stored_verbatim_after_trim_and_nfc(raw: str, stored: str) -> None:
    assert coerce(field("text"), raw) == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a\x00b", "contains a control character (U+0000) at position 2; remove it"),
        ("ab\x1b[31m", "contains a control character (U+001B) at position 3; remove it"),
        ("a\x07", "contains a control character (U+0007) at position 2; remove it"),
        ("a\x7f", "contains a control character (U+007F) at position 2; remove it"),
        ("a\x0bb", "contains a control character (U+000B) at position 2; remove it"),
        ("陈\u200b志强", "contains a control character (U+200B) at position 2; remove it"),
        ("abc\u202e", "contains a control character (U+202E) at position 4; remove it"),
        ("a\u2028b", "contains a control character (U+2028) at position 2; remove it"),
        ("a\u2066b", "contains a control character (U+2066) at position 2; remove it"),
        ("a\tb", "contains a tab (U+0009) at position 2; use spaces"),  # one text policy: no tabs
    ],
)
def test_text_refuses_control_characters(raw: str, message: str) -> None:
    assert refused(field("text"), raw) == message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("a\x9b31mb", "contains a control character (U+009B) at position 2; remove it"),
        ("a\x85b", "contains a control character (U+0085) at position 2; remove it"),
        ("\x80", "contains a control character (U+0080) at position 1; remove it"),
        ("ab\x9f", "contains a control character (U+009F) at position 3; remove it"),
    ],
)
def test_text_refuses_c1_control_characters(raw: str, message: str) -> None:
    assert refused(field("text"), raw) == message


@pytest.mark.parametrize("raw", ["caf\xe9", "\xa0x", "\u00a9 2026"])
def test_text_accepts_latin1_letters_and_symbols_after_c1(raw: str) -> None:
    assert coerce(field("text"), raw) == raw.strip()


def test_text_default_maximum() -> None:
    assert coerce(field("text"), "字" * DEFAULT_MAX_TEXT) == "字" * DEFAULT_MAX_TEXT
    assert refused(field("text"), "字" * (DEFAULT_MAX_TEXT + 1)) == "is 501 characters long; at most 500 allowed"


def test_text_declared_bounds() -> None:
    f = field("text", min=2, max=40)
    assert coerce(f, "x" * 40) == "x" * 40
    assert refused(f, "x" * 41) == "is 41 characters long; at most 40 allowed"
    assert refused(f, "x") == "is 1 characters long; at least 2 needed"
    # the length is counted after trimming
    assert coerce(f, "  " + "x" * 40 + "  ") == "x" * 40


def test_text_over_long_input_is_refused_quickly() -> None:
    assert refused(field("text"), "x" * 1_000_000) == "is 1000000 characters long; at most 500 allowed"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(5, "a number"), (1.5, "a number"), (True, "true/false"), (["a"], "a list"), ({"a": 1}, "an object")],
)
def test_text_refuses_non_text(raw: Any, kind: str) -> None:
    assert refused(field("text"), raw) == f"expected text, got {kind}"


# --- integer ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "stored"), [(4, 4), ("4", 4), (" 7 ", 7), ("+3", 3), ("-2", -2), ("0", 0), ("007", 7)])
def test_integer_good(raw: Any, stored: int) -> None:
    assert coerce(field("integer"), raw) == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("4.5", "expected a whole number such as 4, got '4.5'"),
        ("1e3", "expected a whole number such as 4, got '1e3'"),
        ("四", "expected a whole number such as 4, got '四'"),
        ("１２", "expected a whole number such as 4, got '１２'"),
        ("1; DROP TABLE cases", "expected a whole number such as 4, got '1; DROP TABLE cases'"),
        ("9" * 17, f"expected a whole number such as 4, got '{'9' * 17}'"),
        (4.0, "4.0 has a decimal point; write 4"),
        (12.0, "12.0 has a decimal point; write 12"),
        (4.5, "expected a whole number such as 4, got 4.5"),
        (True, "expected a whole number such as 4, got true/false"),
        ([4], "expected a whole number such as 4, got a list"),
        (10**16, "10000000000000000 is out of range"),
        ("9999999999999999", "9999999999999999 is out of range"),
    ],
)
def test_integer_bad(raw: Any, message: str) -> None:
    assert refused(field("integer"), raw) == message


@pytest.mark.parametrize("raw", [1e20, 1e300])
def test_integer_huge_whole_float_does_not_suggest_an_out_of_range_number(raw: float) -> None:
    message = refused(field("integer"), raw)
    assert str(int(raw)) not in message
    assert len(message) < 80


def test_integer_bounds() -> None:
    f = field("integer", min=1, max=20)
    assert coerce(f, "1") == 1
    assert coerce(f, 20) == 20
    assert refused(f, "0") == "must be at least 1, got 0"
    assert refused(f, 21) == "must be at most 20, got 21"


# --- decimal ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("612.50", "612.5"),
        ("612.5", "612.5"),
        ("612", "612"),
        (612, "612"),
        ("00612.50", "612.5"),
        ("0.000", "0"),
        ("100", "100"),
        ("1000.00", "1000"),
        ("-5.50", "-5.5"),
        ("+7", "7"),
        ("0.000001", "0.000001"),
        (Decimal("612.50"), "612.5"),
        ("123456789012345.123456", "123456789012345.123456"),
    ],
)
def test_decimal_canonical_form(raw: Any, stored: str) -> None:
    assert coerce(field("decimal"), raw) == stored


@pytest.mark.parametrize("raw", ["-0", "-0.00", "+0", "-000.000000", 0])
def test_decimal_negative_zero_is_canonical(raw: str) -> None:
    assert coerce(field("decimal"), raw) == "0"


@pytest.mark.parametrize("raw", [612.5, 0.1, 1e3, float("nan")])
def test_decimal_refuses_float(raw: float) -> None:
    assert refused(field("decimal"), raw) == (
        'expected a decimal number, got a number (write it as text, e.g. "612.50", so no cents are lost)'
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1e3", "expected a decimal number such as 612.50, got '1e3'"),
        ("612.", "expected a decimal number such as 612.50, got '612.'"),
        (".5", "expected a decimal number such as 612.50, got '.5'"),
        ("NaN", "expected a decimal number such as 612.50, got 'NaN'"),
        ("Infinity", "expected a decimal number such as 612.50, got 'Infinity'"),
        ("1,000.00", "expected a decimal number such as 612.50, got '1,000.00'"),
        ("¥612", "expected a decimal number such as 612.50, got '¥612'"),
        ("1.0000001", "expected a decimal number such as 612.50, got '1.0000001'"),
        ("1234567890123456", "expected a decimal number such as 612.50, got '1234567890123456'"),
        (True, "expected a decimal number, got true/false"),
        (["1"], "expected a decimal number, got a list"),
    ],
)
def test_decimal_bad(raw: Any, message: str) -> None:
    assert refused(field("decimal"), raw) == message


def test_decimal_bounds() -> None:
    f = field("decimal", min=0, max=100000)
    assert coerce(f, "0") == "0"
    assert coerce(f, "100000.000") == "100000"
    assert refused(f, "-0.01") == "must be at least 0, got -0.01"
    assert refused(f, "100000.01") == "must be at most 100000, got 100000.01"


def test_decimal_float_bounds_are_exact() -> None:
    f = field("decimal", min=0.1, max=0.3)
    assert coerce(f, "0.1") == "0.1"
    assert coerce(f, "0.3") == "0.3"
    assert refused(f, "0.30001") == "must be at most 0.3, got 0.30001"


# --- date ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("2026-02-28", "2026-02-28"),
        ("2024-02-29", "2024-02-29"),
        (" 2026-01-05 ", "2026-01-05"),
        (dt.date(2026, 1, 1), "2026-01-01"),
    ],
)
def test_date_good(raw: Any, stored: str) -> None:
    assert coerce(field("date"), raw) == stored


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2026-02-31", "2026-02-31 is not a real date"),
        ("2025-02-29", "2025-02-29 is not a real date"),
        ("2026-13-01", "2026-13-01 is not a real date"),
        ("26-1-1", "expected a date as YYYY-MM-DD, got '26-1-1'"),
        ("2026/01/01", "expected a date as YYYY-MM-DD, got '2026/01/01'"),
        ("2026年1月1日", "expected a date as YYYY-MM-DD, got '2026年1月1日'"),
        ("20260101", "expected a date as YYYY-MM-DD, got '20260101'"),
        (20260101, "expected a date as YYYY-MM-DD, got 20260101"),
        ("2026-01-01T00:00", "expected a date as YYYY-MM-DD, got '2026-01-01T00:00'"),
    ],
)
def test_date_bad(raw: Any, message: str) -> None:
    assert refused(field("date"), raw) == message


def test_date_from_datetime_keeps_only_the_date() -> None:
    assert coerce(field("date"), dt.datetime(2026, 1, 1, 5, 0)) == "2026-01-01"
    assert dt.date.fromisoformat(coerce(field("date"), dt.datetime(2026, 2, 28, 5, 0))) == dt.date(2026, 2, 28)


def test_date_with_full_width_digits_says_the_format() -> None:
    assert refused(field("date"), "２０２６-01-01") == "expected a date as YYYY-MM-DD, got '２０２６-01-01'"


# --- choice ----------------------------------------------------------------------------


def test_choice_good() -> None:
    f = field("choice", choices=COUNTIES)
    assert coerce(f, "芗城区") == "芗城区"
    assert coerce(f, " 龙文区 ") == "龙文区"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("厦门市", "'厦门市' is not one of 芗城区, 龙文区, 龙海区"),
        ("芗城", "'芗城' is not one of 芗城区, 龙文区, 龙海区"),
        ("'; DROP TABLE cases; --", '"\'; DROP TABLE cases; --" is not one of 芗城区, 龙文区, 龙海区'),
        (1, "expected one of 芗城区, 龙文区, 龙海区, got a number"),
        (["芗城区"], "expected one of 芗城区, 龙文区, 龙海区, got a list"),
    ],
)
def test_choice_bad(raw: Any, message: str) -> None:
    assert refused(field("choice", choices=COUNTIES), raw) == message


# --- checklist --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "户口簿,申请表",
        "户口簿，申请表",
        "户口簿、申请表",
        " 户口簿 , 申请表 ,",
        '["户口簿", "申请表"]',
        json.dumps(["户口簿", "申请表", "户口簿"], ensure_ascii=False),
        ["户口簿", "申请表"],
        ["申请表", "户口簿", "申请表"],
    ],
)
def test_checklist_is_normalised_to_item_order(raw: Any) -> None:
    assert coerce(field("checklist", items=ITEMS), raw) == ["申请表", "户口簿"]


def test_checklist_all_items_in_declared_order() -> None:
    f = field("checklist", items=ITEMS)
    assert coerce(f, "收入证明,户口簿,身份证,申请表") == list(ITEMS)


def test_checklist_empty_list() -> None:
    f = field("checklist", items=ITEMS)
    assert coerce(f, []) == []
    assert coerce(f, "[]") == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("结婚证", "unknown item '结婚证'; items are 申请表, 身份证, 户口簿, 收入证明"),
        ("结婚证,离婚证", "unknown items '结婚证', '离婚证'; items are 申请表, 身份证, 户口簿, 收入证明"),
        ('["申请表", 1]', "expected a list of items from 申请表, 身份证, 户口簿, 收入证明"),
        ('{"a": 1}', "unknown item '{\"a\": 1}'; items are 申请表, 身份证, 户口簿, 收入证明"),
        ("[申请表", "not a valid JSON list: Expecting value: line 1 column 2 (char 1)"),
        ({"申请表": True}, "expected a list of items from 申请表, 身份证, 户口簿, 收入证明"),
        (5, "expected a list of items from 申请表, 身份证, 户口簿, 收入证明"),
    ],
)
def test_checklist_bad(raw: Any, message: str) -> None:
    assert refused(field("checklist", items=ITEMS), raw) == message


# --- cn_id ------------------------------------------------------------------------------


def test_cn_id_good() -> None:
    f = field("cn_id")
    assert coerce(f, GOOD_ID) == GOOD_ID
    assert coerce(f, f"  {GOOD_ID}  ") == GOOD_ID
    assert coerce(f, "11010519491231002x") == "11010519491231002X"


def test_cn_id_born_today_is_accepted() -> None:
    number = make_id("35060220261130123")
    assert coerce(field("cn_id"), number) == number


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            GOOD_ID[:-1] + ("0" if GOOD_ID[-1] != "0" else "1"),
            f"check digit should be {GOOD_ID[-1]}, not {'0' if GOOD_ID[-1] != '0' else '1'}: the last character "
            "does not match the first 17 digits, so one of them may be mistyped",
        ),
        (make_id("35060219900231123"), "birth date 1990-02-31 in digits 7–14 is not a real date"),
        (make_id("35060220270101123"), "birth date 2027-01-01 is in the future; check digits 7–14"),
        (make_id("35060220261201123"), "birth date 2026-12-01 is in the future; check digits 7–14"),
        (
            "350602900101123",
            "ID number has 15 digits: 15-digit numbers are the pre-1999 form; enter the 18-digit number",
        ),
        ("3506021990010112", "ID number has 16 characters; it should have 18"),
        (make_id("35060219900101123") + "0", "ID number has 19 characters; it should have 18"),
        (
            "35O60219900101123X",
            "character 3 'O' is not a digit; the first 17 characters must be digits 0-9",
        ),
        (
            make_id("99060219900101123"),
            "first two digits 99 are not a valid province code; they must be a province code such as 35 (Fujian)",
        ),
        (35060219900101123, "an ID number must be written as text (18 characters)"),
    ],
)
def test_cn_id_bad(raw: Any, message: str) -> None:
    assert refused(field("cn_id"), raw) == message


# --- every type: nothing but ValueError ----------------------------------------------------

_ODD_INPUTS: list[Any] = [
    0,
    -1,
    1.5,
    float("inf"),
    True,
    False,
    "x",
    "\x00",
    "[",
    "[]",
    "[null]",
    '["a"]',
    "9" * 5000,
    "-",
    [],
    [None],
    {},
    {"a": 1},
    (1, 2),
    b"bytes",
    object(),
    Decimal("NaN"),
    dt.datetime(2026, 1, 1),
]


@pytest.mark.parametrize("type_", FIELD_TYPES)
@pytest.mark.parametrize("raw", _ODD_INPUTS, ids=[repr(x)[:20] for x in _ODD_INPUTS])
def test_odd_input_gives_value_or_value_error(type_: str, raw: Any) -> None:
    f = field(type_, choices=COUNTIES, items=ITEMS)
    try:
        coerce(f, raw)
    except ValueError as exc:
        assert str(exc)
