"""Unit tests for engine.idnumber (GB 11643-1999 resident ID numbers)."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from engine.idnumber import birth_date, check_digit, gender, validate_id_number

TODAY = datetime.date(2024, 6, 15)


def make_id(first17: str) -> str:
    """Complete 17 digits with their correct check character."""
    return first17 + check_digit(first17)


def with_wrong_check(number: str) -> tuple[str, str]:
    """Return the number with a wrong check character, and that character."""
    wrong = "3" if number[-1] != "3" else "4"
    return number[:-1] + wrong, wrong


# --- check_digit -------------------------------------------------------------


def test_check_digit_public_example_is_x() -> None:
    assert check_digit("11010519491231002") == "X"


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        # Worked by hand: sum(weight * digit) % 11 -> "10X98765432".
        ("00000000000000000", "1"),
        ("10000000000000000", "5"),  # 7 * 1 = 7 -> "10X98765432"[7]
        ("00000000000000001", "X"),  # 2 * 1 = 2 -> "10X98765432"[2]
        ("00000000000000010", "8"),  # 4 * 1 = 4 -> "10X98765432"[4]
        ("00000000000000030", "0"),  # 4 * 3 = 12, 12 % 11 = 1 -> "10X98765432"[1]
    ],
)
def test_check_digit_hand_worked(first17: str, expected: str) -> None:
    assert check_digit(first17) == expected


def test_check_digit_covers_all_eleven_characters() -> None:
    seen = {check_digit(f"3506021985010112{d}") for d in "0123456789"}
    seen |= {check_digit(f"350602198501011{d}0") for d in "0123456789"}
    assert seen == set("0123456789X")


@pytest.mark.parametrize("bad", ["", "1234", "1101051949123100", "110105194912310021", "1101051949123100a"])
def test_check_digit_refuses_anything_but_17_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="17 digits"):
        check_digit(bad)


def test_check_digit_refuses_full_width_digits() -> None:
    with pytest.raises(ValueError):
        check_digit("１１０１０５１９４９１２３１００２")


# --- valid numbers -----------------------------------------------------------


def test_public_example_is_valid() -> None:
    assert validate_id_number("11010519491231002X", TODAY) == "11010519491231002X"


@pytest.mark.parametrize(
    "first17",
    [
        "35060219850101123",  # 芗城区, Zhangzhou
        "35062919991231001",  # 华安县
        "44030620000229456",  # leap day
        "65010219000101000",  # earliest accepted birth date
        "83000019800808888",  # residence permit, Taiwan resident
        "81000019700101001",  # residence permit, Hong Kong resident
    ],
)
def test_known_valid_numbers(first17: str) -> None:
    number = make_id(first17)
    assert validate_id_number(number, TODAY) == number


def test_lowercase_x_is_normalised() -> None:
    assert validate_id_number("11010519491231002x", TODAY) == "11010519491231002X"


def test_surrounding_whitespace_is_stripped() -> None:
    assert validate_id_number(" \t11010519491231002x\n", TODAY) == "11010519491231002X"


def test_birth_date_equal_to_today_is_valid() -> None:
    number = make_id("350602" + TODAY.strftime("%Y%m%d") + "001")
    assert validate_id_number(number, TODAY) == number


def test_birth_date_tomorrow_is_refused() -> None:
    tomorrow = TODAY + datetime.timedelta(days=1)
    number = make_id("350602" + tomorrow.strftime("%Y%m%d") + "001")
    with pytest.raises(ValueError, match=f"birth date {tomorrow.isoformat()} is in the future"):
        validate_id_number(number, TODAY)


def test_today_may_be_a_datetime() -> None:
    number = make_id("350602" + TODAY.strftime("%Y%m%d") + "001")
    now = datetime.datetime.combine(TODAY, datetime.time(23, 59))
    assert validate_id_number(number, now) == number


# --- refusals ----------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 350602198501011234, 3.5, b"11010519491231002X"])
def test_refuses_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="ID number"):
        validate_id_number(value, TODAY)  # type: ignore[arg-type]


def test_none_is_reported_as_missing() -> None:
    with pytest.raises(ValueError, match="missing"):
        validate_id_number(None, TODAY)  # type: ignore[arg-type]


def test_integer_is_refused_as_not_text() -> None:
    with pytest.raises(ValueError, match="must be entered as text"):
        validate_id_number(350602198501011234, TODAY)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["", "   ", "\t\n"])
def test_refuses_empty(value: str) -> None:
    with pytest.raises(ValueError, match="ID number is empty"):
        validate_id_number(value, TODAY)


def test_refuses_15_digit_old_form() -> None:
    with pytest.raises(
        ValueError,
        match="15-digit numbers are the pre-1999 form; enter the 18-digit number",
    ):
        validate_id_number("350602850101123", TODAY)


@pytest.mark.parametrize(
    ("value", "length"),
    [
        ("3506021985010112", 16),
        ("35060219850101123", 17),
        ("3506021985010112345", 19),
        ("35060a850101123", 15),  # 15 characters but not all digits
        ("1", 1),
    ],
)
def test_refuses_wrong_length(value: str, length: int) -> None:
    noun = "character" if length == 1 else "characters"
    with pytest.raises(ValueError, match=f"ID number has {length} {noun}; it should have 18"):
        validate_id_number(value, TODAY)


def test_refuses_letter_in_first_17() -> None:
    with pytest.raises(ValueError, match=r"character 7 'I' is not a digit; the first 17"):
        validate_id_number("350602I98501011234", TODAY)


def test_refuses_x_before_the_last_position() -> None:
    with pytest.raises(ValueError, match="character 17 'X' is not a digit"):
        validate_id_number("3506021985010112X4", TODAY)


def test_refuses_internal_space() -> None:
    with pytest.raises(ValueError, match="character 7 is a space"):
        validate_id_number("350602 985010112X4", TODAY)


def test_refuses_full_width_digit() -> None:
    with pytest.raises(ValueError, match="full-width digit; type half-width digits 0-9"):
        validate_id_number("３50602198501011234", TODAY)


@pytest.mark.parametrize("last", ["Y", "-", "*", "Ｘ"])
def test_refuses_bad_last_character(last: str) -> None:
    with pytest.raises(ValueError, match="must be a digit 0-9 or X"):
        validate_id_number("35060219850101123" + last, TODAY)


@pytest.mark.parametrize("province", ["00", "10", "16", "20", "24", "38", "47", "55", "66", "72", "84", "90", "99"])
def test_refuses_unknown_province_code(province: str) -> None:
    number = make_id(province + "060219850101123")
    with pytest.raises(ValueError, match=f"first two digits {province} are not a valid province code"):
        validate_id_number(number, TODAY)


@pytest.mark.parametrize(
    "province",
    [
        "11", "12", "13", "14", "15", "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65", "71", "81", "82", "83", "91",
    ],
)  # fmt: skip
def test_accepts_every_documented_province_code(province: str) -> None:
    number = make_id(province + "010219850101123")
    assert validate_id_number(number, TODAY) == number


@pytest.mark.parametrize(
    ("birth", "shown"),
    [
        ("19850231", "1985-02-31"),
        ("19851301", "1985-13-01"),
        ("19850001", "1985-00-01"),
        ("19850100", "1985-01-00"),
        ("19230229", "1923-02-29"),  # not a leap year
        ("00000000", "0000-00-00"),
    ],
)
def test_refuses_birth_date_that_is_not_real(birth: str, shown: str) -> None:
    number = make_id("350602" + birth + "123")
    with pytest.raises(ValueError, match=f"birth date {shown} in digits 7–14 is not a real date"):
        validate_id_number(number, TODAY)


def test_refuses_birth_date_before_1900() -> None:
    number = make_id("35060218991231123")
    with pytest.raises(ValueError, match="birth date 1899-12-31 is before 1900-01-01"):
        validate_id_number(number, TODAY)


def test_refuses_birth_date_in_future() -> None:
    number = make_id("35060220310501123")
    with pytest.raises(ValueError, match="birth date 2031-05-01 is in the future"):
        validate_id_number(number, TODAY)


def test_refuses_wrong_check_digit() -> None:
    first17 = "35060219850101123"
    right = check_digit(first17)
    number, wrong = with_wrong_check(first17 + right)
    with pytest.raises(ValueError, match=f"check digit should be {right}, not {wrong}"):
        validate_id_number(number, TODAY)


def test_refuses_wrong_check_digit_public_example() -> None:
    with pytest.raises(ValueError, match="check digit should be X, not 3"):
        validate_id_number("110105194912310023", TODAY)


def test_refuses_single_transposition() -> None:
    # MOD 11-2 catches swapping two adjacent different digits.
    with pytest.raises(ValueError, match="check digit should be"):
        validate_id_number("11010519491231020X", TODAY)


def test_messages_are_distinct_per_case() -> None:
    cases = [
        "",
        "350602850101123",
        "35060219850101123",
        "350602I98501011234",
        "35060219850101123Y",
        make_id("99060219850101123"),
        make_id("35060219850231123"),
        make_id("35060218991231123"),
        make_id("35060220310501123"),
        "110105194912310023",
    ]
    messages = []
    for value in cases:
        with pytest.raises(ValueError) as excinfo:
            validate_id_number(value, TODAY)
        messages.append(str(excinfo.value))
    assert len(set(messages)) == len(cases)


# --- birth_date and gender ---------------------------------------------------


def test_birth_date_of_public_example() -> None:
    assert birth_date("11010519491231002X") == datetime.date(1949, 12, 31)


def test_birth_date_accepts_lowercase_x_and_whitespace() -> None:
    assert birth_date(" 11010519491231002x ") == datetime.date(1949, 12, 31)


def test_gender_of_public_example_is_female() -> None:
    # 17th digit 2 is even.
    assert gender("11010519491231002X") == "female"


@pytest.mark.parametrize(("digit", "expected"), [(d, "male" if d % 2 else "female") for d in range(10)])
def test_gender_follows_parity_of_17th_digit(digit: int, expected: str) -> None:
    assert gender(make_id(f"3506021985010112{digit}")) == expected


@pytest.mark.parametrize("func", [birth_date, gender])
def test_birth_date_and_gender_refuse_invalid_numbers(func: Callable[[str], object]) -> None:
    with pytest.raises(ValueError, match="check digit should be"):
        func("110105194912310023")
