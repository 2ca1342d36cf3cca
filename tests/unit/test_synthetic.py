"""Unit tests for casework.synthetic (seeded synthetic people and households)."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest

from casework.synthetic import ZHANGZHOU_COUNTIES, SyntheticPeople
from engine.idnumber import birth_date, gender, validate_id_number

TODAY = datetime.date(2024, 6, 15)

MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
HOUSEHOLD_KEYS = {
    "applicant_name",
    "id_number",
    "household_type",
    "county",
    "household_size",
    "income_per_capita",
    "cause",
    "materials",
    "phone",
}
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方")
HAN = re.compile(r"^[\u4e00-\u9fff]+$")


@pytest.fixture(scope="module")
def households() -> list[dict]:
    people = SyntheticPeople(seed=2024)
    return [people.household() for _ in range(10_000)]


# --- counties ----------------------------------------------------------------


def test_zhangzhou_counties_and_codes() -> None:
    assert ZHANGZHOU_COUNTIES == {
        "芗城区": "350602",
        "龙文区": "350603",
        "龙海区": "350604",
        "长泰区": "350605",
        "云霄县": "350622",
        "漳浦县": "350623",
        "诏安县": "350624",
        "东山县": "350626",
        "南靖县": "350627",
        "平和县": "350628",
        "华安县": "350629",
    }


def test_county_returns_every_county_eventually() -> None:
    people = SyntheticPeople(seed=1)
    seen = {people.county() for _ in range(2_000)}
    assert seen == set(ZHANGZHOU_COUNTIES)


# --- determinism -------------------------------------------------------------


def test_same_seed_gives_same_sequence() -> None:
    a, b = SyntheticPeople(seed=7), SyntheticPeople(seed=7)
    for _ in range(200):
        assert a.name() == b.name()
        assert a.id_number() == b.id_number()
        assert a.county() == b.county()
        assert a.household() == b.household()


def test_different_seeds_give_different_data() -> None:
    a, b = SyntheticPeople(seed=1), SyntheticPeople(seed=2)
    assert [a.household() for _ in range(20)] != [b.household() for _ in range(20)]


def test_default_seed_is_zero() -> None:
    assert SyntheticPeople().household() == SyntheticPeople(seed=0).household()


def test_households_are_independent_objects() -> None:
    people = SyntheticPeople(seed=3)
    first, second = people.household(), people.household()
    first["materials"].append("其他")
    assert second["materials"] != first["materials"]
    assert SyntheticPeople(seed=3).household()["materials"] != first["materials"]


# --- names -------------------------------------------------------------------


def test_names_are_chinese_and_mostly_three_characters() -> None:
    people = SyntheticPeople(seed=5)
    names = [people.name() for _ in range(10_000)]
    assert all(HAN.match(n) for n in names)
    assert all(2 <= len(n) <= 4 for n in names)
    two_char = sum(len(n) == 2 for n in names) / len(names)
    assert 0.15 < two_char < 0.35  # roughly a quarter


def test_compound_surnames_appear_rarely() -> None:
    people = SyntheticPeople(seed=11)
    names = [people.name() for _ in range(10_000)]
    compound = [n for n in names if n.startswith(COMPOUND_SURNAMES)]
    assert compound
    assert len(compound) < 300  # a low rate
    assert all(len(n) in (3, 4) for n in compound)


def test_names_are_varied() -> None:
    people = SyntheticPeople(seed=6)
    names = [people.name() for _ in range(10_000)]
    assert len({n[0] for n in names}) >= 40
    assert len(set(names)) > 5_000


# --- ID numbers --------------------------------------------------------------


def test_id_numbers_validate() -> None:
    people = SyntheticPeople(seed=8)
    for _ in range(10_000):
        number = people.id_number()
        assert validate_id_number(number, TODAY) == number
        assert number[:6] in ZHANGZHOU_COUNTIES.values()
        assert datetime.date(1950, 1, 1) <= birth_date(number) <= datetime.date(2004, 12, 31)


@pytest.mark.parametrize("county", sorted(ZHANGZHOU_COUNTIES))
def test_id_number_uses_county_code(county: str) -> None:
    people = SyntheticPeople(seed=9)
    for _ in range(50):
        number = people.id_number(county=county)
        assert number.startswith(ZHANGZHOU_COUNTIES[county])
        validate_id_number(number, TODAY)


def test_id_number_respects_born_between() -> None:
    people = SyntheticPeople(seed=10)
    start, end = datetime.date(1980, 2, 28), datetime.date(1980, 3, 1)
    births = {birth_date(people.id_number(born_between=(start, end))) for _ in range(300)}
    assert births == {start, datetime.date(1980, 2, 29), end}


def test_id_number_single_day_range() -> None:
    people = SyntheticPeople(seed=10)
    day = datetime.date(2000, 2, 29)
    assert birth_date(people.id_number(born_between=(day, day))) == day


def test_id_number_refuses_unknown_county() -> None:
    with pytest.raises(ValueError, match="not a Zhangzhou county-level division"):
        SyntheticPeople().id_number(county="思明区")


def test_id_number_refuses_empty_range() -> None:
    with pytest.raises(ValueError, match="born_between is empty"):
        SyntheticPeople().id_number(born_between=(datetime.date(2000, 1, 2), datetime.date(2000, 1, 1)))


def test_id_numbers_cover_both_genders() -> None:
    people = SyntheticPeople(seed=12)
    genders = [gender(people.id_number()) for _ in range(1_000)]
    assert 400 < genders.count("female") < 600


# --- households --------------------------------------------------------------


def test_household_keys(households: list[dict]) -> None:
    assert all(set(h) == HOUSEHOLD_KEYS for h in households)


def test_household_id_numbers_validate_and_match_county(households: list[dict]) -> None:
    for h in households:
        assert validate_id_number(h["id_number"], TODAY) == h["id_number"]
        assert h["id_number"][:6] == ZHANGZHOU_COUNTIES[h["county"]]


def test_household_field_values(households: list[dict]) -> None:
    for h in households:
        assert HAN.match(h["applicant_name"])
        assert h["household_type"] in ("低保户", "低保边缘户", "意外致困户")
        assert h["county"] in ZHANGZHOU_COUNTIES
        assert type(h["household_size"]) is int
        assert 1 <= h["household_size"] <= 6
        income = h["income_per_capita"]
        assert isinstance(income, str)
        assert re.fullmatch(r"\d{3,4}\.\d{2}", income), income
        assert Decimal("300") <= Decimal(income) <= Decimal("1200")
        assert isinstance(h["cause"], str)
        assert HAN.match(h["cause"])
        assert re.fullmatch(r"1[358]\d{9}", h["phone"]), h["phone"]


def test_household_values_are_varied(households: list[dict]) -> None:
    assert {h["household_type"] for h in households} == {"低保户", "低保边缘户", "意外致困户"}
    assert {h["household_size"] for h in households} == {1, 2, 3, 4, 5, 6}
    assert set(ZHANGZHOU_COUNTIES) == {h["county"] for h in households}
    assert {h["phone"][:2] for h in households} == {"13", "15", "18"}
    assert len({h["cause"] for h in households}) >= 8


def test_household_materials(households: list[dict]) -> None:
    complete = 0
    for h in households:
        materials = h["materials"]
        assert isinstance(materials, list)
        if materials == MATERIALS:
            complete += 1
        else:
            # Exactly one missing, the rest in the standard order.
            assert len(materials) == 3
            assert [m for m in MATERIALS if m in materials] == materials
    assert 0.8 < complete / len(households) < 0.98  # usually complete


def test_household_name_matches_id_gender(households: list[dict]) -> None:
    female_names = {h["applicant_name"] for h in households if gender(h["id_number"]) == "female"}
    male_names = {h["applicant_name"] for h in households if gender(h["id_number"]) == "male"}
    assert female_names and male_names
    # Given-name characters for the two genders come from mostly disjoint pools.
    female_chars = {c for n in female_names for c in n[-1]}
    male_chars = {c for n in male_names for c in n[-1]}
    assert len(female_chars & male_chars) < 15
