"""``case list``'s filters and search, as an operator types them (issue 13, item 3).

``--county`` (repeatable), ``--household-type`` and ``--search`` narrow the
list in SQL, together with ``--workflow``, ``--state``, ``--limit`` and what
the user of ``--as`` may see (their counties). A search matches a reference
(whole or part, ignoring case) or the applicant's name — and a name only
among the cases the user may see, so a clerk of 芗城区 searching the name of a
龙文区 applicant gets exactly what a search for a name nobody has gets. An
unknown workflow, county or household type is an error with a "did you
mean", never an empty list; ``notice list --workflow`` too.

The scene, on both backends: the archive and the medical-aid workflows, the
usual users (lin: clerk of 芗城区, chen: clerk of 龙文区, su: approver of all),
and four cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from engine import load_definition_file
from tests.e2e.conftest import ROOT, Seeded
from tests.e2e.test_cli import ID_1, ID_2, ID_3, casework, full_household, ok, ok_json, refused, usage_error

MEDICAL = ROOT / "workflows" / "medical_aid.yaml"


class Scene(NamedTuple):
    url: str
    xc_poor: str  # 芗城区, 低保户, 王秀英, in 申请
    lw_edge: str  # 龙文区, 低保边缘户, 欧阳志华
    xc_accident: str  # 芗城区, 意外致困户, 陈志强, in 审核
    medical: str  # medical_aid, 芗城区, 林小华


@pytest.fixture
def scene(seeded: Seeded) -> Iterator[Scene]:
    svc = seeded.svc
    svc.load_workflow(load_definition_file(MEDICAL))
    xc_poor = svc.create_case("poverty_archive", "lin", full_household(id_number=ID_2)).ref
    lw_edge = svc.create_case(
        "poverty_archive",
        "chen",
        full_household(applicant_name="欧阳志华", id_number=ID_3, county="龙文区", household_type="低保边缘户"),
    ).ref
    xc_accident = svc.create_case(
        "poverty_archive",
        "lin",
        full_household(applicant_name="陈志强", id_number=ID_1, household_type="意外致困户", cause="工伤"),
    ).ref
    svc.fire(xc_accident, "submit", "lin")
    medical = svc.create_case(
        "medical_aid",
        "lin",
        {"applicant_name": "林小华", "id_number": "350602198001011230", "county": "芗城区", "self_paid": "6000"},
    ).ref
    yield Scene(seeded.url, xc_poor, lw_edge, xc_accident, medical)


def refs(url: str, *args: str) -> list[str]:
    """The references ``case list ARGS --json`` lists, in order."""
    return [c["ref"] for c in ok_json(casework(url, "case", "list", *args, "--json"))]


def access(url: str, action: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = ok_json(casework(url, "audit", "access", "--action", action, "--json"))
    return entries


# ---------------------------------------------------------------------------------------------- filters


def test_county_filter_one_or_several(scene: Scene) -> None:
    url = scene.url
    assert refs(url, "--county", "龙文区") == [scene.lw_edge]
    assert refs(url, "--county", "芗城区") == [scene.xc_poor, scene.xc_accident, scene.medical]
    assert refs(url, "--county", "芗城区", "--county", "龙文区") == [
        scene.xc_poor,
        scene.lw_edge,
        scene.xc_accident,
        scene.medical,
    ]
    # with the other filters: AND
    assert refs(url, "--county", "芗城区", "--workflow", "poverty_archive") == [scene.xc_poor, scene.xc_accident]
    assert refs(url, "--county", "芗城区", "--state", "review") == [scene.xc_accident]
    assert refs(url, "--county", "芗城区", "--limit", "1") == [scene.xc_poor]
    # a county no case is in yet is a county: an empty list, no error
    assert refs(url, "--county", "东山县") == []


def test_county_filter_within_what_the_user_may_see(scene: Scene) -> None:
    url = scene.url
    assert refs(url, "--as", "lin", "--county", "芗城区") == [scene.xc_poor, scene.xc_accident, scene.medical]
    assert refs(url, "--as", "su", "--county", "龙文区") == [scene.lw_edge]  # su covers every county
    # a county the user does not cover is refused, saying so (it reveals nothing about any case)
    r = casework(url, "case", "list", "--as", "lin", "--county", "龙文区")
    refused(r, "lin covers 芗城区, not 龙文区", "list 芗城区 or ask a colleague who covers 龙文区", rc=1)


def test_household_type_filter(scene: Scene) -> None:
    url = scene.url
    assert refs(url, "--household-type", "低保边缘户") == [scene.lw_edge]
    assert refs(url, "--household-type", "意外致困户", "--state", "review") == [scene.xc_accident]
    assert refs(url, "--household-type", "低保边缘户", "--county", "芗城区") == []
    assert refs(url, "--household-type", "低保户", "--as", "chen") == []  # chen's county has none
    # medical-aid cases have no household type, so none is of one
    assert scene.medical not in refs(url, "--household-type", "低保户")


def test_unknown_county_and_household_type_are_errors_with_a_did_you_mean(sqlite_seeded: Seeded) -> None:
    url = sqlite_seeded.url
    county = casework(url, "case", "list", "--county", "芗城")
    refused(county, "no county '芗城'", "did you mean '芗城区'?", rc=2)
    kind = casework(url, "case", "list", "--household-type", "低保")
    refused(kind, "no household type '低保'", "did you mean '低保户'?", rc=2)
    # as JSON too: the refusal as data, its suggestion a fact
    as_json = casework(url, "case", "list", "--county", "龙文", "--json")
    assert as_json.rc == 2
    error = ok_json(as_json._replace(rc=0))["error"]
    assert error["code"] == "invalid_input" and error["facts"]["suggestion"] == "龙文区"
    sqlite_seeded.svc.load_workflow(load_definition_file(MEDICAL))
    none = casework(url, "case", "list", "--workflow", "medical_aid", "--household-type", "低保户")
    refused(none, "medical_aid has no household type", "list without a household type", rc=2)


# ----------------------------------------------------------------------------------------------- search


def test_search_by_reference_whole_or_part_ignoring_case(scene: Scene) -> None:
    url = scene.url
    assert refs(url, "--search", scene.lw_edge) == [scene.lw_edge]
    assert refs(url, "--search", scene.lw_edge.lower()) == [scene.lw_edge]
    assert refs(url, "--search", scene.lw_edge[-6:]) == [scene.lw_edge]  # 000002
    assert refs(url, "--search", "zz-") == [scene.xc_poor, scene.lw_edge, scene.xc_accident]
    assert refs(url, "--search", "yl-") == [scene.medical]
    assert refs(url, "--search", f"  {scene.medical}  ") == [scene.medical]  # as pasted
    assert refs(url, "--search", "ZZ-1999") == []


def test_search_by_the_applicants_name(scene: Scene) -> None:
    url = scene.url
    assert refs(url, "--search", "欧阳志华") == [scene.lw_edge]
    assert refs(url, "--search", "欧阳") == [scene.lw_edge]  # part of a name
    assert refs(url, "--search", "林小华") == [scene.medical]  # the medical-aid applicant's field too
    assert refs(url, "--search", "志") == [scene.lw_edge, scene.xc_accident]
    # only the applicant's name: not the cause, not the ID number
    assert refs(url, "--search", "工伤") == []
    assert refs(url, "--search", ID_3[:10]) == []
    # LIKE's wildcards are matched as themselves
    assert refs(url, "--search", "%") == []
    assert refs(url, "--search", "_") == []
    # with the other filters
    assert refs(url, "--search", "志", "--state", "review") == [scene.xc_accident]
    assert refs(url, "--search", "志", "--county", "龙文区") == [scene.lw_edge]
    assert refs(url, "--search", "志", "--limit", "1") == [scene.lw_edge]
    # the table shows the match with the name masked
    table = ok(casework(url, "case", "list", "--search", "欧阳志华"))
    assert scene.lw_edge in table and "欧阳*华" in table and "欧阳志华" not in table and "1 case" in table


def test_a_name_the_user_may_not_see_finds_nothing_and_gives_no_hint(scene: Scene) -> None:
    """A clerk of 芗城区 searching a 龙文区 applicant's name gets what a name nobody has gets: no count, no ref."""
    url = scene.url
    assert refs(url, "--as", "chen", "--search", "欧阳志华") == [scene.lw_edge]  # chen covers 龙文区
    assert refs(url, "--as", "lin", "--search", "欧阳") == []
    assert refs(url, "--as", "lin", "--search", scene.lw_edge) == []  # nor by its reference
    assert refs(url, "--as", "lin", "--search", "志") == [scene.xc_accident]  # only 芗城区's 陈志强
    for fmt in ([], ["--json"], ["--format", "csv"]):
        known = casework(url, "case", "list", "--as", "lin", "--search", "欧阳志华", *fmt)
        nobody = casework(url, "case", "list", "--as", "lin", "--search", "欧阳无名", *fmt)
        assert known.rc == nobody.rc == 0
        assert known.out == nobody.out and known.err == nobody.err == ""
    assert "0 cases" in ok(casework(url, "case", "list", "--as", "lin", "--search", "欧阳志华"))


def test_a_search_is_in_the_access_log_with_what_it_found(scene: Scene) -> None:
    url = scene.url
    ok(casework(url, "case", "list", "--as", "chen", "--search", "欧阳志华"))
    ok(casework(url, "case", "list", "--as", "lin", "--search", "欧阳志华", "--json"))
    ok(casework(url, "case", "list", "--search", "工伤"))
    searched = access(url, "search_cases")
    assert [(e["actor"], e["detail"]) for e in searched] == [
        ("chen", {"filters": {"search": "欧阳志华"}, "refs": [scene.lw_edge]}),
        (None, {"filters": {"search": "工伤"}, "refs": []}),
    ]
    (listed,) = access(url, "list_cases")  # --json is logged as list_cases, as before, with its search
    assert listed["actor"] == "lin" and listed["detail"] == {"filters": {"search": "欧阳志华"}, "refs": []}
    # a table without a search shows masked names only: not logged (as before)
    ok(casework(url, "case", "list", "--county", "芗城区"))
    assert len(access(url, "search_cases")) == 2


def test_an_id_number_typed_as_a_search_is_masked_in_the_access_log(scene: Scene) -> None:
    ok(casework(scene.url, "case", "list", "--search", ID_3))
    (entry,) = access(scene.url, "search_cases")
    assert entry["detail"]["filters"]["search"] == "350602********003X"


def test_an_empty_or_overlong_search_is_refused(sqlite_seeded: Seeded) -> None:
    url = sqlite_seeded.url
    refused(casework(url, "case", "list", "--search", "  "), "search for a reference or a name", rc=2)
    refused(casework(url, "case", "list", "--search", "x" * 101), "of 1 to 100 characters", rc=2)


def test_overdue_to_do_list_takes_the_filters_too(scene: Scene) -> None:
    url = scene.url
    # nothing is overdue yet: the filters are checked all the same
    assert refs(url, "--overdue", "--as", "wu", "--county", "芗城区", "--search", "陈") == []
    refused(casework(url, "case", "list", "--overdue", "--as", "wu", "--county", "芗城"), "did you mean", rc=2)


# -------------------------------------------------------------------------------------- unknown workflow


def test_an_unknown_workflow_is_an_error_with_a_did_you_mean_never_an_empty_list(scene: Scene) -> None:
    url = scene.url
    r = casework(url, "case", "list", "--workflow", "medical")
    line = refused(r, "no workflow 'medical'", "did you mean 'medical_aid'?", rc=1)
    assert "casework workflow list" in line
    as_json = casework(url, "case", "list", "--workflow", "medical", "--json")
    assert as_json.rc == 1
    error = ok_json(as_json._replace(rc=0))["error"]
    assert error["code"] == "workflow_not_found" and error["facts"]["suggestion"] == "medical_aid"
    # before any filter is looked at, and in every format
    for args in (["--state", "review"], ["--county", "芗城区"], ["--format", "csv"], ["--search", "林"]):
        refused(casework(url, "case", "list", "--workflow", "medical", *args), "did you mean 'medical_aid'?")
    assert refs(url, "--workflow", "medical_aid") == [scene.medical]


def test_other_commands_taking_a_workflow_name_refuse_an_unknown_one(scene: Scene) -> None:
    url = scene.url
    notices = casework(url, "notice", "list", "--workflow", "medical")
    refused(notices, "no workflow 'medical'", "did you mean 'medical_aid'?", rc=1)
    inbox = casework(url, "case", "inbox", "--as", "lin", "--workflow", "medical")
    refused(inbox, "no workflow 'medical'", "did you mean 'medical_aid'?", rc=1)
    publish = casework(url, "notice", "publish", "medical", "--scope", "芗城区")
    refused(publish, "no workflow 'medical'", "did you mean 'medical_aid'?", rc=1)
    opened = casework(url, "case", "new", "medical", "--as", "lin")
    refused(opened, "no workflow 'medical'", "did you mean 'medical_aid'?", rc=1)
    assert ok_json(casework(url, "notice", "list", "--workflow", "medical_aid", "--json")) == []


# ---------------------------------------------------------------------------------------------- formats


def test_json_is_the_same_as_format_json_and_they_cannot_disagree(scene: Scene) -> None:
    url = scene.url
    old = casework(url, "case", "list", "--as", "lin", "--json")
    new = casework(url, "case", "list", "--as", "lin", "--format", "json")
    assert ok(old) == ok(new)
    both = casework(url, "case", "list", "--json", "--format", "json")
    assert ok(both) == ok(casework(url, "case", "list", "--json"))
    usage_error(casework(url, "case", "list", "--json", "--format", "csv"), "--json and --format csv disagree")
