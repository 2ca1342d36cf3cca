"""Masking personal data: names, ID numbers, phone numbers, other pii."""

from __future__ import annotations

import pytest

from engine.masking import COMPOUND_SURNAMES, mask_id_number, mask_name, mask_phone, mask_value

ID = "35060219900101123X"


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("陈志强", "陈*强"),
        ("林晓", "林*"),
        ("欧阳志华", "欧阳*华"),
        ("欧阳华", "欧阳*"),
        ("司马相如", "司马*如"),
        ("诸葛孔明", "诸葛*明"),
        ("王小明明", "王**明"),
        ("阿卜杜热合曼", "阿****曼"),
        ("欧阳", "欧*"),
        ("陈", "*"),
        ("", ""),
        ("  陈志强  ", "陈*强"),
    ],
)
def test_mask_name(name: str, masked: str) -> None:
    assert mask_name(name) == masked


def test_mask_name_never_shows_the_given_name_of_two_character_names() -> None:
    assert "晓" not in mask_name("林晓")
    assert "华" not in mask_name("欧阳华")


def test_compound_surnames_are_two_characters() -> None:
    assert "欧阳" in COMPOUND_SURNAMES
    assert all(len(s) == 2 for s in COMPOUND_SURNAMES)


def test_mask_id_number_partial() -> None:
    masked = mask_id_number(ID)
    assert masked == "350602********123X"
    assert len(masked) == 18
    assert masked[:6] == ID[:6]
    assert masked[6:14] == "*" * 8
    assert masked[-4:] == ID[-4:]
    assert "19900101" not in masked


def test_mask_id_number_trims() -> None:
    assert mask_id_number(f" {ID} ") == "350602********123X"


def test_mask_id_number_omit() -> None:
    assert mask_id_number(ID, "omit") == ""


def test_mask_short_id_number_is_fully_starred() -> None:
    assert mask_id_number("123456789") == "*********"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        (" 13812345678 ", "138****5678"),
        ("0596-2345678", "059*****5678"),
        ("123456", "******"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("name", "陈志强", "陈*强"),
        ("name", "欧阳华", "欧阳*"),
        ("id_number", ID, "350602********123X"),
        ("phone", "13812345678", "138****5678"),
        ("address", "福建省漳州市芗城区胜利路1号", "******"),
        ("other", "ab", "**"),
        ("name", 5, "***"),
        ("name", None, None),
        (None, "陈志强", "陈志强"),
        (None, 5, 5),
    ],
)
def test_mask_value(kind: str | None, value: object, masked: object) -> None:
    assert mask_value(kind, value) == masked


def test_mask_value_id_policy_omit() -> None:
    assert mask_value("id_number", ID, id_policy="omit") == ""
    assert mask_value("id_number", ID, id_policy="partial") == "350602********123X"
    # the ID policy only applies to ID numbers
    assert mask_value("name", "陈志强", id_policy="omit") == "陈*强"


def test_a_list_shows_the_first_name_field_masked_and_nothing_else() -> None:
    from engine.masking import masked_applicant

    pii = {"id_number": "id_number", "applicant_name": "name", "spouse_name": "name"}
    assert masked_applicant(pii, {"applicant_name": "陈志强", "spouse_name": "林晓", "id_number": "x"}) == "陈*强"
    assert masked_applicant(pii, {"id_number": "350602198503120015"}) == ""  # no name given yet
    # a field merely called *_name is not personal data unless the workflow says so
    assert masked_applicant({}, {"household_name": "陈家"}) == ""
