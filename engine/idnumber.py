"""Validation of Chinese resident identity numbers (GB 11643-1999).

An 18-character resident ID number (公民身份号码) is laid out as::

    AAAAAA YYYYMMDD SSS C
    |      |        |   '-- check character, ISO 7064 MOD 11-2 ('0'-'9' or 'X')
    |      |        '------ sequence code; its last digit (17th overall) is odd
    |      |                for men and even for women
    |      '--------------- date of birth
    '---------------------- administrative division code of the place of
                            registration (first two digits: province)

The functions here check a number typed in by a clerk and, when it is wrong,
raise :class:`ValueError` with a message that says what is wrong and what
would be right, so it can be shown to the clerk as it is.

Example:
    >>> import datetime
    >>> validate_id_number(" 11010519491231002x ", datetime.date(2024, 1, 1))
    '11010519491231002X'
"""

from __future__ import annotations

import datetime
import operator

from engine.errors import FieldValueError

__all__ = ["birth_date", "check_digit", "gender", "validate_id_number"]

#: Expected length of a current (post-1999) resident ID number.
_LENGTH = 18

#: Length of the pre-1999 form, which has no century and no check digit.
_OLD_LENGTH = 15

#: ISO 7064 MOD 11-2 weights for positions 1-17: ``2 ** (17 - i) % 11``.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

#: Check character for each value of ``sum(weights * digits) % 11``.
_CHECK_CHARS = "10X98765432"

#: ``ord("0")`` times the sum of the weights, to turn ASCII codes into digits.
_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)

_DIGITS = frozenset("0123456789")

#: Valid first two digits: province-level division codes from GB/T 2260
#: (11-15 North, 21-23 North-east, 31-37 East, 41-46 Central-South,
#: 50-54 South-west, 61-65 North-west), 71 Taiwan, 81 Hong Kong and 82 Macao
#: (also used by residence permits for their residents), 83 residence permits
#: for Taiwan residents, and 91, the historical GB/T 2260 code for "abroad"
#: found on some older numbers.
_PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71",
        "81", "82", "83",
        "91",
    }
)  # fmt: skip

_EARLIEST_BIRTH = datetime.date(1900, 1, 1)


def check_digit(first17: str) -> str:
    """Compute the ISO 7064 MOD 11-2 check character of an ID number.

    Args:
        first17: The first 17 characters of the ID number, all ASCII digits.

    Returns:
        The check character, ``'0'``-``'9'`` or ``'X'``.

    Raises:
        ValueError: If ``first17`` is not exactly 17 ASCII digits.

    Example:
        >>> check_digit("11010519491231002")
        'X'
    """
    if not isinstance(first17, str) or len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"check_digit needs exactly 17 digits 0-9, got {first17!r}")
    # Weighted sum of the digits, computed on the ASCII codes (fast: this runs
    # once per record when generating synthetic data) minus the weighted codes
    # of '0'.
    total = sum(map(operator.mul, first17.encode("ascii"), _WEIGHTS)) - _ZERO_OFFSET
    return _CHECK_CHARS[total % 11]


def _describe_char(position: int, char: str) -> str:
    """Describe a character that is not a digit, for a clerk."""
    if "\uff10" <= char <= "\uff19":
        return f"character {position} {char!r} is a full-width digit; type half-width digits 0-9"
    if char.isspace():
        return f"character {position} is a space; remove spaces inside the number"
    return f"character {position} {char!r} is not a digit"


def _parse_birth_date(number: str) -> datetime.date:
    """Read digits 7-14 as a date, refusing impossible or pre-1900 dates."""
    year, month, day = number[6:10], number[10:12], number[12:14]
    try:
        born = datetime.date(int(year), int(month), int(day))
    except ValueError:
        raise FieldValueError(
            f"birth date {year}-{month}-{day} in digits 7–14 is not a real date",
            "id_birth_date",
            born=f"{year}-{month}-{day}",
        ) from None
    if born < _EARLIEST_BIRTH:
        raise FieldValueError(
            f"birth date {born.isoformat()} is before 1900-01-01; check digits 7–14",
            "id_birth_early",
            born=born.isoformat(),
        )
    return born


def validate_id_number(value: str, today: datetime.date) -> str:
    """Validate a resident ID number and return it normalised.

    Surrounding whitespace is removed and a lowercase ``'x'`` check
    character is turned into ``'X'``. Nothing else is changed.

    Args:
        value: The ID number as entered.
        today: The current date; a birth date after it is refused, a birth
            date equal to it is accepted.

    Returns:
        The normalised 18-character ID number.

    Raises:
        ValueError: If the number is not valid. The message, meant for a
            clerk, says what is wrong and what would be right: missing or
            not text, the 15-digit pre-1999 form, wrong length, a
            non-digit character, an unknown province code, a birth date that
            is not a real date, before 1900-01-01 or in the future, or a
            wrong check digit.
    """
    if value is None:
        raise FieldValueError("ID number is missing; enter the 18-character resident ID number", "required")
    if not isinstance(value, str):
        raise FieldValueError(
            f"ID number must be entered as text of 18 characters, not as a {type(value).__name__} value", "id_not_text"
        )
    number = value.strip()
    if not number:
        raise FieldValueError("ID number is empty; enter the 18-character resident ID number", "required")
    if len(number) == _OLD_LENGTH and _DIGITS.issuperset(number):
        raise FieldValueError(
            "ID number has 15 digits: 15-digit numbers are the pre-1999 form; enter the 18-digit number", "id_old_form"
        )
    if len(number) != _LENGTH:
        noun = "character" if len(number) == 1 else "characters"
        raise FieldValueError(
            f"ID number has {len(number)} {noun}; it should have {_LENGTH}", "id_length", length=len(number)
        )
    if number[-1] == "x":
        number = number[:-1] + "X"

    for position, char in enumerate(number[:17], start=1):
        if char not in _DIGITS:
            raise FieldValueError(
                f"{_describe_char(position, char)}; the first 17 characters must be digits 0-9",
                "id_character",
                position=position,
                character=char,
                full_width="\uff10" <= char <= "\uff19",
                space=char.isspace(),
            )
    last = number[17]
    if last not in _DIGITS and last != "X":
        raise FieldValueError(
            f"last character {last!r} is not allowed; it must be a digit 0-9 or X", "id_last_character", character=last
        )

    province = number[:2]
    if province not in _PROVINCE_CODES:
        raise FieldValueError(
            f"first two digits {province} are not a valid province code; "
            "they must be a province code such as 35 (Fujian)",
            "id_province",
            province=province,
        )

    born = _parse_birth_date(number)
    if isinstance(today, datetime.datetime):
        today = today.date()
    if born > today:
        raise FieldValueError(
            f"birth date {born.isoformat()} is in the future; check digits 7–14",
            "id_birth_future",
            born=born.isoformat(),
        )

    expected = check_digit(number[:17])
    if last != expected:
        raise FieldValueError(
            f"check digit should be {expected}, not {last}: the last character does not "
            "match the first 17 digits, so one of them may be mistyped",
            "id_check_digit",
            expected=expected,
            found=last,
        )
    return number


def birth_date(value: str) -> datetime.date:
    """Return the date of birth encoded in an ID number.

    Args:
        value: A valid ID number (surrounding whitespace and a lowercase
            ``'x'`` are accepted).

    Returns:
        The date of birth from digits 7-14.

    Raises:
        ValueError: If the number is not valid (a birth date in the future
            is not checked here, as no current date is given).
    """
    number = validate_id_number(value, datetime.date.max)
    return _parse_birth_date(number)


def gender(value: str) -> str:
    """Return the gender encoded in an ID number.

    Args:
        value: A valid ID number (surrounding whitespace and a lowercase
            ``'x'`` are accepted).

    Returns:
        ``"male"`` if the 17th digit is odd, ``"female"`` if it is even.

    Raises:
        ValueError: If the number is not valid (a birth date in the future
            is not checked here, as no current date is given).
    """
    number = validate_id_number(value, datetime.date.max)
    return "male" if int(number[16]) % 2 else "female"
