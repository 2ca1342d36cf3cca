"""Typed case fields: turning user input into stored values, with clear messages.

Values arrive as strings (``--set FIELD=VALUE``) or as JSON values (data
files). Each is coerced to its stored form or refused with a message for the
clerk. Stored forms are JSON-friendly and exact:

============  =====================================  =======================
type          accepted input                         stored as
============  =====================================  =======================
text          string (no control characters)         str
integer       int, or digits                         int
decimal       int/str like "612.50" (no float)       str, canonical ("612.5")
date          "YYYY-MM-DD"                           str "YYYY-MM-DD"
choice        one of ``choices``                     str
checklist     list, or "a,b" / "a，b"                list in ``items`` order
cn_id         18-character ID number (GB 11643)      str, with uppercase X
============  =====================================  =======================
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from engine.idnumber import validate_id_number

if TYPE_CHECKING:
    from engine.definition.model import FieldDef

__all__ = ["DEFAULT_MAX_TEXT", "EMAIL", "FIELD_TYPES", "coerce_value", "is_empty", "shown"]

FIELD_TYPES = ("text", "integer", "decimal", "date", "choice", "checklist", "cn_id", "email")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
DEFAULT_MAX_TEXT = 500
_MAX_INT = 10**15
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def shown(value: Any, limit: int = 40) -> str:
    """``value`` as an error message may quote it: ``repr`` (so control characters are escaped), cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
            raise ValueError(f"expected an email address such as lin@example.org, got {shown(raw)}")
        return raw.strip()
    if kind == "cn_id":
        if not isinstance(raw, str):
            raise ValueError("an ID number must be written as text (18 characters)")
        return validate_id_number(raw, today)
    raise ValueError(f"unknown field type {kind!r}")  # pragma: no cover - schema prevents it


def _text(field: FieldDef, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected text, got {_kind(raw)}")
    # a line break is text (a cause may run to several lines), but a bare CR would let a terminal
    # overwrite what was printed before it: CRLF becomes LF, a lone CR is refused below
    value = unicodedata.normalize("NFC", raw.strip().replace("\r\n", "\n"))
    bad = _CONTROL.search(value)
    if bad:
        raise ValueError(
            f"contains a control character (U+{ord(bad.group()):04X}) at position {bad.start() + 1}; remove it"
        )
    limit = int(field.max) if field.max is not None else DEFAULT_MAX_TEXT
    if len(value) > limit:
        raise ValueError(f"is {len(value)} characters long; at most {limit} allowed")
    if field.min is not None and len(value) < field.min:
        raise ValueError(f"is {len(value)} characters long; at least {int(field.min)} needed")
    return value


def _integer(field: FieldDef, raw: Any) -> int:
    if isinstance(raw, float):
        if raw.is_integer() and abs(raw) <= _MAX_INT:
            raise ValueError(f"{raw} has a decimal point; write {int(raw)}")
        raise ValueError(f"expected a whole number such as 4, got {raw}")
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise ValueError(f"expected a whole number such as 4, got {_kind(raw)}")
    if isinstance(raw, str):
        text = raw.strip()
        if not re.fullmatch(r"[-+]?[0-9]{1,16}", text):
            raise ValueError(f"expected a whole number such as 4, got {shown(raw)}")
        raw = int(text)
    if abs(raw) > _MAX_INT:
        raise ValueError(f"{raw} is out of range")
    _bounds(field, raw)
    return int(raw)


def _decimal(field: FieldDef, raw: Any) -> str:
    if isinstance(raw, (bool, float)) or not isinstance(raw, (int, str, Decimal)):
        hint = ' (write it as text, e.g. "612.50", so no cents are lost)' if isinstance(raw, float) else ""
        raise ValueError(f"expected a decimal number, got {_kind(raw)}{hint}")
    text = str(raw).strip()
    if not re.fullmatch(r"[-+]?[0-9]{1,15}(\.[0-9]{1,6})?", text):
        raise ValueError(f"expected a decimal number such as 612.50, got {shown(raw)}")
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
        raise ValueError(f"expected a date as YYYY-MM-DD, got {shown(raw)}")
    try:
        return dt.date.fromisoformat(raw.strip()).isoformat()
    except ValueError as exc:
        raise ValueError(f"{raw.strip()} is not a real date") from exc  # matched YYYY-MM-DD: short


def _choice(field: FieldDef, raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"expected one of {', '.join(field.choices)}, got {_kind(raw)}")
    value = raw.strip()
    if value not in field.choices:
        raise ValueError(f"{shown(value)} is not one of {', '.join(field.choices)}")
    return value


def _checklist(field: FieldDef, raw: Any) -> list[str]:
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a valid JSON list: {exc}") from exc
        else:
            raw = [p.strip() for p in re.split(r"[,，、]", text) if p.strip()]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise ValueError(f"expected a list of items from {', '.join(field.items)}")
    unknown = [x for x in raw if x not in field.items]
    if unknown:
        raise ValueError(
            f"unknown item{'s' if len(unknown) > 1 else ''} {', '.join(map(shown, unknown[:5]))}; "
            f"items are {', '.join(field.items)}"
        )
    chosen = set(raw)
    return [item for item in field.items if item in chosen]


def _bounds(field: FieldDef, value: int | Decimal) -> None:
    if field.min is not None and value < Decimal(str(field.min)):
        raise ValueError(f"must be at least {field.min}, got {value}")
    if field.max is not None and value > Decimal(str(field.max)):
        raise ValueError(f"must be at most {field.max}, got {value}")


def _kind(raw: Any) -> str:
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
        str: "text",
    }.get(type(raw), type(raw).__name__)
