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
* anything else marked pii is fully starred;
* ID numbers, names and phone numbers are masked whatever the workflow
  says: a ``cn_id`` field is always ``pii: id_number``, and a text field
  without ``pii`` whose label or name says it holds a person's name or phone
  number is ``pii: name`` or ``pii: phone`` (:func:`implied_pii`);
* in free text (comments, objections) every run of digits shaped like an ID
  number — 18 characters (17 digits and a digit or X) or an old 15-digit
  one — is masked the same way when shown (:func:`mask_id_numbers`); what is
  stored is never changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "COMPOUND_SURNAMES",
    "implied_pii",
    "mask_id_number",
    "mask_id_numbers",
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


# What a field's label or name says it holds. Narrow on purpose: a person's name is 姓名 (surname + name)
# or 联系人 (the contact person) or a field called name / *_name; a phone is 电话, 手机, 联系方式 or a
# field called phone, mobile, tel. A match is masked (a false match only hides more, never less).
_PHONE_LABELS = ("电话", "手机", "联系方式")
_NAME_LABELS = ("姓名", "联系人")
_PHONE_NAME = re.compile(r"(?:^|_)(?:phone|mobile|tel|telephone|cellphone)(?:_|$)")
_PERSON_NAME = re.compile(r"(?:^|_)name$|^name_")


def implied_pii(name: str, type_: str, label: str | None, declared: str | None) -> str | None:
    """The ``pii`` kind a field is masked as: ``declared``, or what its type, label or name implies.

    ``cn_id`` fields are always ID numbers; a ``text`` field declared without
    ``pii`` is a ``phone`` or a ``name`` when its label or name says so
    (联系电话, 申请人姓名, ``phone``, ``applicant_name``). Anything else: ``declared``.
    """
    if declared is not None:
        return declared
    if type_ == "cn_id":
        return "id_number"
    if type_ != "text":
        return None
    text = label or ""
    if any(word in text for word in _PHONE_LABELS) or _PHONE_NAME.search(name):
        return "phone"
    if any(word in text for word in _NAME_LABELS) or _PERSON_NAME.search(name):
        return "name"
    return None


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


# an 18-character ID number (17 digits, then a digit or X) or an old 15-digit one, not inside a longer run
_ID_SHAPED = re.compile(r"(?<![0-9])(?:[0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9])")


def mask_id_numbers(text: str) -> str:
    """``text`` with every ID-number-shaped digit run masked as :func:`mask_id_number` masks one.

    For free text shown to people (a comment, an objection): a clerk may have
    typed an applicant's number into it. Longer or shorter digit runs (a phone,
    an amount, a bank card of 16 or 19 digits) are left as written.
    """
    return _ID_SHAPED.sub(lambda m: mask_id_number(m.group()), text)


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
