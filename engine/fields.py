"""Typed case fields: turning user input into stored values, with clear messages.

Values arrive as strings (``--set FIELD=VALUE``) or as JSON values (data
files). Each is coerced to its stored form or refused with a message for the
clerk. Stored forms are JSON-friendly and exact:

============  =====================================  =======================
type          accepted input                         stored as
============  =====================================  =======================
text          string (see :func:`check_text`)         str
integer       int, or digits                         int
decimal       int/str like "612.50" (no float)       str, canonical ("612.5")
date          "YYYY-MM-DD"                           str "YYYY-MM-DD"
choice        one of ``choices``                     str
checklist     list, or "a,b" / "a，b"                list in ``items`` order
cn_id         18-character ID number (GB 11643)      str, with uppercase X
============  =====================================  =======================

Every free text casework keeps — a text field, a comment, a reason, an
objection, a user's name — passes one policy, :func:`check_text`: letters,
marks, numbers, punctuation, symbols (¥, ℃, ％) and spaces; a line break
only where the text may run to several lines (a comment, an objection, a
text field longer than :data:`MULTILINE_ABOVE` characters, such as
``cause``). Control and invisible formatting characters (ESC, ZWSP, BOM,
bidi overrides, tag characters), private-use, unassigned and surrogate code
points are refused with the character and its position, so nothing stored
can rewrite a terminal or hide text from the person reading it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engine.errors import FieldValueError
from engine.idnumber import validate_id_number

if TYPE_CHECKING:
    from engine.definition.model import FieldDef

__all__ = [
    "DEFAULT_MAX_TEXT",
    "EMAIL",
    "FIELD_TYPES",
    "MULTILINE_ABOVE",
    "check_text",
    "coerce_value",
    "is_empty",
    "is_multiline",
    "shown",
]

FIELD_TYPES = ("text", "integer", "decimal", "date", "choice", "checklist", "cn_id", "email")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
DEFAULT_MAX_TEXT = 500
#: a text field whose ``max`` is above this (or unset) may hold line breaks; shorter ones are one line
MULTILINE_ABOVE = 200
_MAX_INT = 10**15
# what each refused Unicode category is called in a message
_REFUSED = {
    "Cc": "a control character",
    "Cf": "a control character",  # format controls: ZWSP, BOM, bidi overrides, tag characters
    "Zl": "a control character",  # U+2028 LINE SEPARATOR
    "Zp": "a control character",  # U+2029 PARAGRAPH SEPARATOR
    "Co": "a private-use character",
    "Cs": "a lone surrogate",
    "Cn": "an unassigned character",
}


def shown(value: Any, limit: int = 40) -> str:
    """``value`` as an error message may quote it: ``repr`` (so control characters are escaped), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_text(value: str, *, multiline: bool) -> str:
    """``value`` as casework keeps free text, or ``ValueError`` naming the first character refused.

    Surrounding whitespace is stripped, CRLF becomes LF and the text is NFC
    normalised; then every character must be a letter, mark, number,
    punctuation, symbol or space (Unicode categories L*, M*, N*, P*, S*,
    Zs), or a line break (LF) if ``multiline``. A tab, a bare CR, ESC, ZWSP,
    U+FEFF, bidi and tag characters, private-use and unassigned code points
    are refused: the message gives the character as U+XXXX and its position
    (counted from 1 in the stripped text).
    """
    value = unicodedata.normalize("NFC", value.strip().replace("\r\n", "\n"))
    if value.isprintable():  # only L, M, N, P, S and the ASCII space: the common case, at C speed
        return value
    for position, ch in enumerate(value, start=1):
        category = unicodedata.category(ch)
        if category[0] in "LMNPS" or category == "Zs" or (ch == "\n" and multiline):
            continue
        code = f"U+{ord(ch):04X}"
        if ch == "\n":
            raise FieldValueError(
                f"contains a line break ({code}) at position {position}; this field is one line",
                "line_break",
                position=position,
            )
        if ch == "\t":
            raise FieldValueError(
                f"contains a tab ({code}) at position {position}; use spaces", "tab", position=position
            )
        what = _REFUSED.get(category, "a character that is not text")
        raise FieldValueError(
            f"contains {what} ({code}) at position {position}; remove it", "bad_character", code=code, position=position
        )
    return value  # spaces other than U+0020 (U+3000, NBSP) or allowed line breaks


def is_multiline(field: FieldDef) -> bool:
    """True if the text field may hold line breaks: its ``max`` is above :data:`MULTILINE_ABOVE` (or unset)."""
    return field.max is None or field.max > MULTILINE_ABOVE


def is_empty(value: Any) -> bool:
    """True for a value that counts as "not filled in"."""
    return value is None or value == "" or value == []


def coerce_value(field: FieldDef, raw: Any, today: dt.date) -> Any:
    """Return the stored form of ``raw`` for ``field``, or raise ``ValueError``.

    ``None`` or an empty string clears the field (stored as ``None``).
    """
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    kind = field.type
    if kind == "text":
        return _text(field, raw)
    if kind == "integer":
        return _integer(field, raw)
    if kind == "decimal":
        return _decimal(field, raw)
    if kind == "date":
        return _date(raw)
    if kind == "choice":
        return _choice(field, raw)
    if kind == "checklist":
        return _checklist(field, raw)
    if kind == "email":
        if not isinstance(raw, str) or len(raw.strip()) > 254 or not EMAIL.match(raw.strip()):
            raise FieldValueError(f"expected an email address such as lin@example.org, got {shown(raw)}", "not_email")
        return raw.strip()
    if kind == "cn_id":
        if not isinstance(raw, str):
            raise FieldValueError("an ID number must be written as text (18 characters)", "id_not_text")
        return validate_id_number(raw, today)
    raise ValueError(f"unknown field type {kind!r}")  # pragma: no cover - schema prevents it


def _text(field: FieldDef, raw: Any) -> str:
    if not isinstance(raw, str):
        raise FieldValueError(f"expected text, got {_kind(raw)}", "not_text")
    # a line break is text where a field may run to several lines (a cause), but a bare CR would
    # let a terminal overwrite what was printed before it: CRLF becomes LF, a lone CR is refused
    value = check_text(raw, multiline=is_multiline(field))
    limit = int(field.max) if field.max is not None else DEFAULT_MAX_TEXT
    if len(value) > limit:
        raise FieldValueError(
            f"is {len(value)} characters long; at most {limit} allowed", "too_long", length=len(value), max=limit
        )
    if field.min is not None and len(value) < field.min:
        raise FieldValueError(
            f"is {len(value)} characters long; at least {int(field.min)} needed",
            "too_short",
            length=len(value),
            min=int(field.min),
        )
    return value


def _integer(field: FieldDef, raw: Any) -> int:
    if isinstance(raw, float):
        if raw.is_integer() and abs(raw) <= _MAX_INT:
            raise FieldValueError(f"{raw} has a decimal point; write {int(raw)}", "not_integer", suggestion=int(raw))
        raise FieldValueError(f"expected a whole number such as 4, got {raw}", "not_integer")
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise FieldValueError(f"expected a whole number such as 4, got {_kind(raw)}", "not_integer")
    if isinstance(raw, str):
        text = raw.strip()
        if not re.fullmatch(r"[-+]?[0-9]{1,16}", text):
            raise FieldValueError(f"expected a whole number such as 4, got {shown(raw)}", "not_integer")
        raw = int(text)
    if abs(raw) > _MAX_INT:
        raise FieldValueError(f"{raw} is out of range", "out_of_range")
    _bounds(field, raw)
    return int(raw)


def _decimal(field: FieldDef, raw: Any) -> str:
    if isinstance(raw, (bool, float)) or not isinstance(raw, (int, str, Decimal)):
        hint = ' (write it as text, e.g. "612.50", so no cents are lost)' if isinstance(raw, float) else ""
        raise FieldValueError(f"expected a decimal number, got {_kind(raw)}{hint}", "not_decimal")
    text = str(raw).strip()
    if not re.fullmatch(r"[-+]?[0-9]{1,15}(\.[0-9]{1,6})?", text):
        raise FieldValueError(f"expected a decimal number such as 612.50, got {shown(raw)}", "not_decimal")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - regex above prevents it
        raise ValueError(f"expected a decimal number, got {shown(raw)}") from exc
    _bounds(field, value)
    normal = value.normalize()
    if normal == 0:
        return "0"  # not "-0"
    return format(normal, "f")


def _date(raw: Any) -> str:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", raw.strip()):
        raise FieldValueError(f"expected a date as YYYY-MM-DD, got {shown(raw)}", "not_date")
    try:
        return dt.date.fromisoformat(raw.strip()).isoformat()
    except ValueError as exc:  # matched YYYY-MM-DD, so the value is short enough to quote
        raise FieldValueError(f"{raw.strip()} is not a real date", "not_real_date", value=raw.strip()) from exc


def _choice(field: FieldDef, raw: Any) -> str:
    if not isinstance(raw, str):
        raise FieldValueError(
            f"expected one of {', '.join(field.choices)}, got {_kind(raw)}", "not_a_choice", choices=list(field.choices)
        )
    value = raw.strip()
    if value not in field.choices:
        raise FieldValueError(
            f"{shown(value)} is not one of {', '.join(field.choices)}",
            "not_a_choice",
            value=value,
            choices=list(field.choices),
        )
    return value


def _checklist(field: FieldDef, raw: Any) -> list[str]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise FieldValueError(f"not a valid JSON list: {exc}", "not_a_list", items=list(field.items)) from exc
        else:
            raw = [p.strip() for p in re.split(r"[,，、]", text) if p.strip()]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise FieldValueError(
            f"expected a list of items from {', '.join(field.items)}", "not_a_list", items=list(field.items)
        )
    unknown = [x for x in raw if x not in field.items]
    if unknown:
        raise FieldValueError(
            f"unknown item{'s' if len(unknown) > 1 else ''} {', '.join(map(shown, unknown[:5]))}; "
            f"items are {', '.join(field.items)}",
            "not_an_item",
            unknown=unknown[:5],
            items=list(field.items),
        )
    chosen = set(raw)
    return [item for item in field.items if item in chosen]


def _bounds(field: FieldDef, value: int | Decimal) -> None:
    if field.min is not None and value < Decimal(str(field.min)):
        raise FieldValueError(
            f"must be at least {field.min}, got {value}", "below_min", min=str(field.min), value=str(value)
        )
    if field.max is not None and value > Decimal(str(field.max)):
        raise FieldValueError(
            f"must be at most {field.max}, got {value}", "above_max", max=str(field.max), value=str(value)
        )


def _kind(raw: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        str: "text",
    }.get(type(raw), type(raw).__name__)
