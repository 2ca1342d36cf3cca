"""Masking personal data for anywhere it may be seen by someone it is not for.

One implementation, used by every display of personal data: the audit
trail's display, and (later) public notices, emails and inbox messages.
Rules (issue 3, common practice for 公示):

* names keep the surname and the last character: 陈志强 → 陈*强; a two-character
  name keeps only the surname: 林晓 → 林*; compound surnames keep both
  characters: 欧阳志华 → 欧阳*华, 欧阳华 → 欧阳*;
* ID numbers keep the first 6 (the region) and last 4: 350602********1234,
  or are omitted entirely (per-workflow policy ``omit``);
* phone numbers keep the first 3 and last 4: 138****5678;
* anything else marked pii is fully starred.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "COMPOUND_SURNAMES",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "mask_value",
    "masked_applicant",
    "public_view",
]

COMPOUND_SURNAMES = frozenset(
    [
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "令狐",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "万俟",
        "闻人",
        "赫连",
        "澹台",
        "公冶",
        "宗政",
        "濮阳",
        "太叔",
        "申屠",
    ]
)


def mask_name(name: str) -> str:
    """陈志强 → 陈*强, 林晓 → 林*, 欧阳志华 → 欧阳*华, 欧阳华 → 欧阳*."""
    name = name.strip()
    if len(name) <= 1:
        return "*" if name else ""
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    rest = name[len(surname) :]
    if len(rest) <= 1:
        return surname + "*"
    return surname + "*" * (len(rest) - 1) + rest[-1]


def mask_id_number(value: str, policy: str = "partial") -> str:
    """``partial``: first 6 + 8 stars + last 4; ``omit``: an empty string."""
    if policy == "omit":
        return ""
    value = value.strip()
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """13812345678 → 138****5678."""
    value = value.strip()
    if len(value) < 7:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_value(kind: str | None, value: Any, *, id_policy: str = "partial") -> Any:
    """Mask ``value`` according to its ``pii`` kind; values without a kind pass through."""
    if kind is None or value is None:
        return value
    if not isinstance(value, str):
        return "***"
    if kind == "name":
        return mask_name(value)
    if kind == "id_number":
        return mask_id_number(value, id_policy)
    if kind == "phone":
        return mask_phone(value)
    return "*" * min(len(value), 6)


def masked_applicant(pii_fields: Mapping[str, str], data: Mapping[str, Any]) -> str:
    """The case's person as a list shows them: the first ``pii: name`` field, masked (陈*强); "" if none.

    A list is a screen others may glance at; the full name is for the case itself.
    """
    field = next((f for f, kind in pii_fields.items() if kind == "name"), None)
    value = data.get(field) if field else None
    return "" if value is None else str(mask_value("name", value))


def public_view(fields: Mapping[str, Any], data: Mapping[str, Any], *, id_policy: str = "partial") -> dict[str, Any]:
    """A case's data as anyone but its handlers may see it: every ``pii`` field masked.

    ``fields`` maps field names to objects with a ``pii`` attribute (the
    workflow's field definitions). Fields without a value appear as ``None``
    so templates can test them; an omitted ID number is ``""``.
    """
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        out[name] = mask_value(getattr(spec, "pii", None), data.get(name), id_policy=id_policy)
    return out
