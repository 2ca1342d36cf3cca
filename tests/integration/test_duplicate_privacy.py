"""A household filed in one county, tried again in another: the refusal keeps the other county's case to itself.

An ID number is ``unique: open`` across the whole workflow, so a clerk of 龙文区
who types the ID number of a household 芗城区 has filed is refused — rightly.
What the refusal may say depends on who reads it: to someone who covers the
holding case's county it names that case (its reference and state: "continue
that case"); to anyone else it says only that the household is filed in
another county and whom to ask — no reference, no state, no county, neither in
the message nor in the facts (which ``--json`` prints). The same holds on each
path that claims a unique value: opening a case, editing one, importing a file.
Both backends.
"""

from __future__ import annotations

from typing import Any

import pytest

from casework.synthetic import SyntheticPeople
from engine import Casework, DuplicateCase
from engine.bulk import InvalidImport
from tests.integration.test_service import ALL_MATERIALS

WF = "poverty_archive"


def household(seed: int, county: str) -> dict[str, Any]:
    data = SyntheticPeople(seed).household()
    data.update(county=county, materials=list(ALL_MATERIALS))
    return data


@pytest.fixture
def filed(svc: Casework) -> tuple[str, dict[str, Any]]:
    """A 芗城区 case (opened by lin, submitted, so in review) and its data."""
    data = household(1, "芗城区")
    ref = svc.create_case(WF, "lin", data).ref
    svc.fire(ref, "submit", "lin")
    return ref, data


def _says_nothing_of(exc: DuplicateCase, ref: str) -> None:
    text = str(exc)
    for secret in (ref, "ZZ-", "芗城区", "review", "审核"):
        assert secret not in text, f"{secret!r} leaked: {text}"
        assert secret not in repr(exc.facts), f"{secret!r} leaked in the facts: {exc.facts}"


def test_a_clerk_of_another_county_is_told_only_that_it_is_filed_elsewhere(
    svc: Casework, filed: tuple[str, dict[str, Any]]
) -> None:
    ref, data = filed
    twin = {**data, "county": "龙文区", "applicant_name": "林某"}
    with pytest.raises(DuplicateCase) as info:
        svc.create_case(WF, "chen", twin)
    exc = info.value
    assert str(exc) == (
        "a household with this id_number is already filed in another county (a household is filed once); "
        "ask the county union office or your supervisor"
    )
    assert exc.code == "duplicate"
    assert exc.facts == {"field": "id_number", "elsewhere": True}
    assert exc.to_json()["facts"] == {"field": "id_number", "elsewhere": True}
    assert (exc.existing_ref, exc.existing_state) == (None, None)
    _says_nothing_of(exc, ref)
    assert [c.ref for c in svc.list_cases()] == [ref]  # nothing opened


@pytest.mark.parametrize(
    ("user", "scopes", "county"),
    [
        ("lin", None, "芗城区"),
        ("ye", None, "芗城区"),
        ("zhao", ["龙文区", "芗城区"], "龙文区"),
        ("qian", ["*"], "龙文区"),
    ],
    ids=["same-county", "same-county-two-roles", "both-counties", "every-county"],
)
def test_someone_who_covers_the_holding_case_is_told_which_case_it_is(
    svc: Casework, filed: tuple[str, dict[str, Any]], user: str, scopes: list[str] | None, county: str
) -> None:
    ref, data = filed
    if scopes is not None:  # a clerk of both counties, or of every county, opening it in 龙文区
        svc.add_user(user, "赵钱", ["clerk"], scopes)
    with pytest.raises(DuplicateCase) as info:
        svc.create_case(WF, user, {**data, "county": county})
    exc = info.value
    assert exc.facts == {"field": "id_number", "existing_case": ref, "existing_state": "review"}
    assert f"id_number is already on case {ref} (state review)" in str(exc)


def test_an_edit_to_another_countys_id_number_is_refused_without_naming_it(
    svc: Casework, filed: tuple[str, dict[str, Any]]
) -> None:
    ref, data = filed
    own = svc.create_case(WF, "chen", household(3, "龙文区")).ref
    with pytest.raises(DuplicateCase) as info:
        svc.update_case(own, "chen", {"id_number": data["id_number"]})
    assert info.value.facts == {"field": "id_number", "elsewhere": True}
    _says_nothing_of(info.value, ref)
    assert svc.get_case(own).data["id_number"] == household(3, "龙文区")["id_number"]


def test_an_import_row_with_another_countys_id_number_is_reported_without_naming_it(
    svc: Casework, filed: tuple[str, dict[str, Any]]
) -> None:
    ref, data = filed
    rows = [(2, household(4, "龙文区")), (3, {**data, "county": "龙文区"}), (4, household(5, "龙文区"))]
    with pytest.raises(InvalidImport) as info:
        svc.import_cases(WF, "chen", rows)
    (problem,) = info.value.problems
    assert problem.line == 3
    assert problem.problems == (
        "id_number: a household with this id_number is already filed in another county (a household is filed "
        "once); ask the county union office or your supervisor",
    )
    for secret in (ref, "芗城区", "review"):
        assert secret not in str(info.value) and secret not in repr(info.value.facts)
    # skipping it, the others go in; the report says the same
    report = svc.import_cases(WF, "chen", rows, skip_invalid=True)
    assert len(report.imported) == 2 and [p.line for p in report.skipped] == [3]
    assert ref not in repr(report.to_json())


def test_an_import_by_someone_who_covers_it_names_the_case(svc: Casework, filed: tuple[str, dict[str, Any]]) -> None:
    ref, data = filed
    with pytest.raises(InvalidImport) as info:
        svc.import_cases(WF, "lin", [(2, dict(data))])
    assert info.value.problems[0].problems == (f"id_number: already on case {ref} (review)",)
