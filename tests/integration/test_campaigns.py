"""Campaigns on a date a supervisor sets (``campaign:``) and fields linked to another workflow's case (``link:``).

Both backends, real databases: the warmth campaign opens one case per filed archive once, however many
schedulers run and after downtime; link fields are checked and filled on every path that sets them, and
again at a step that requires them.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from db import make_engine
from engine import Casework, FixedClock, load_definition_file
from engine.errors import Code, RefusedError
from tests.conftest import ROOT, SHANGHAI
from tests.integration.test_linked_cases import archive

WORKFLOWS = ROOT / "workflows"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture
def office(svc: Casework) -> Casework:
    """The bundled archive, warmth and golden_autumn loaded, an organiser covering every county."""
    for name in ("warmth", "golden_autumn"):
        svc.load_workflow(load_definition_file(WORKFLOWS / f"{name}.yaml"))
    svc.add_user("zhao", "赵敏", ["organiser"], ["*"])
    svc.add_user("qian", "钱进", ["organiser"], ["芗城区"])
    return svc


def filed(svc: Casework, n: int, county: str = "芗城区", clerk: str = "lin", seed: int = 0) -> list[str]:
    return [archive(svc, seed + i, county=county, clerk=clerk) for i in range(n)]


def refused(call: Any, code: Code) -> RefusedError:
    with pytest.raises(RefusedError) as info:
        call()
    assert info.value.code == code, info.value
    return info.value


def warmth_cases(svc: Casework) -> list[Any]:
    return svc.list_cases(workflow="warmth")


# ----------------------------------------------------------------- the campaign


def test_a_campaign_runs_once_on_its_date_and_never_twice(office: Casework) -> None:
    refs = filed(office, 3)
    clock = office.clock
    assert isinstance(clock, FixedClock)
    today = clock.now().astimezone(SHANGHAI).date()
    on = today + dt.timedelta(days=3)
    view, replaced = office.set_campaign("warmth", on, "zhao")
    assert (view.status, view.year, view.set_by, replaced) == ("pending", on.year, "zhao", None)
    # before the date: nothing
    assert not [j for j in office.run_due_schedules() if "campaign" in j[0]]
    assert warmth_cases(office) == []
    clock.set(dt.datetime.combine(on, dt.time(0, 1), SHANGHAI))
    runs = [j for j in office.run_due_schedules() if "campaign" in j[0]]
    assert runs == [
        (f"warmth:campaign {on.year}", on.isoformat(), f"春节送温暖 {on.year}: opened 3 warmth cases, skipped 0")
    ]
    cases = warmth_cases(office)
    assert sorted(c.data["archive_ref"] for c in cases) == sorted(refs)
    for c in cases:
        source = office.get_case(c.data["archive_ref"]).data
        assert c.data["year"] == on.year and c.data["county"] == source["county"]
        assert c.data["household_size"] == source["household_size"]
        assert c.data["amount"] == f"{1000 * source['household_size']}.00"
    # the next pass, and a second scheduler later: nothing more
    assert not [j for j in office.run_due_schedules() if "campaign" in j[0]]
    assert len(warmth_cases(office)) == 3
    refused(lambda: office.set_campaign("warmth", on + dt.timedelta(days=1), "zhao"), Code.CAMPAIGN_RAN)
    refused(lambda: office.cancel_campaign("warmth", on.year, "zhao"), Code.CAMPAIGN_RAN)
    assert office.check().ok


def test_after_downtime_the_campaign_runs_on_the_first_pass_after_its_date(office: Casework) -> None:
    filed(office, 2)
    clock = office.clock
    assert isinstance(clock, FixedClock)
    on = clock.now().astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    office.set_campaign("warmth", on, "zhao")
    clock.set(dt.datetime.combine(on + dt.timedelta(days=9), dt.time(15), SHANGHAI))  # nine days down
    runs = [j for j in office.run_due_schedules() if "campaign" in j[0]]
    assert len(runs) == 1 and "opened 2 warmth cases" in runs[0][2]
    assert len(warmth_cases(office)) == 2


def test_two_schedulers_at_the_same_moment_open_each_case_once(office: Casework, db_url: str) -> None:
    filed(office, 4)
    clock = office.clock
    assert isinstance(clock, FixedClock)
    on = clock.now().astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    office.set_campaign("warmth", on, "zhao")
    moment = dt.datetime.combine(on, dt.time(0, 0, 30), SHANGHAI)
    engines = [make_engine(db_url) for _ in range(2)]
    outcomes: list[list[tuple[str, str, str]]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def scheduler(engine: Any) -> None:
        try:
            service = Casework(engine, FixedClock(moment))
            start.wait()
            outcomes.append([j for j in service.run_due_schedules() if "campaign" in j[0]])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    try:
        for _ in range(5):  # several rounds: the later ones find it ran
            threads = [threading.Thread(target=scheduler, args=(e,)) for e in engines]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    finally:
        for e in engines:
            e.dispose()
    assert errors == []
    ran = [o for run in outcomes for o in run]
    assert len(ran) == 1 and "opened 4 warmth cases" in ran[0][2]
    assert len(warmth_cases(office)) == 4
    (view,) = office.campaigns()
    assert (view.status, view.opened) == ("ran", 4)


def test_a_reached_archive_that_already_has_a_case_that_year_is_skipped(office: Casework) -> None:
    refs = filed(office, 2)
    clock = office.clock
    assert isinstance(clock, FixedClock)
    on = clock.now().astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    # a clerk opened one by hand for this year already
    office.create_case("warmth", "lin", {"archive_ref": refs[0], "year": on.year})
    office.set_campaign("warmth", on, "zhao")
    clock.set(dt.datetime.combine(on, dt.time(9), SHANGHAI))
    runs = [j for j in office.run_due_schedules() if "campaign" in j[0]]
    assert runs[0][2].endswith("opened 1 warmth case, skipped 1 (1 already had one this year)")
    assert sorted(c.data["archive_ref"] for c in warmth_cases(office)) == sorted(refs)


def test_setting_the_date_is_refused_unless_allowed(office: Casework) -> None:
    clock = office.clock
    today = clock.now().astimezone(SHANGHAI).date()
    refused(lambda: office.set_campaign("warmt", today, "zhao"), Code.WORKFLOW_NOT_FOUND)
    refused(lambda: office.set_campaign("golden_autumn", today, "zhao"), Code.NO_CAMPAIGN)
    refused(lambda: office.set_campaign("warmth", today, "lin"), Code.ROLE_NEEDED)
    refused(lambda: office.set_campaign("warmth", today, "qian"), Code.SCOPE_NOT_COVERED)
    refused(lambda: office.set_campaign("warmth", today - dt.timedelta(days=1), "zhao"), Code.CAMPAIGN_BACKDATED)
    refused(lambda: office.cancel_campaign("warmth", today.year, "zhao"), Code.CAMPAIGN_NOT_SET)
    assert [v.status for v in office.campaigns()] == ["not set"]
    first, _ = office.set_campaign("warmth", today + dt.timedelta(days=5), "zhao")
    second, replaced = office.set_campaign("warmth", today + dt.timedelta(days=6), "zhao")
    assert replaced is not None and replaced.date == first.date and second.date == today + dt.timedelta(days=6)
    cancelled = office.cancel_campaign("warmth", second.year or 0, "zhao")
    assert (cancelled.status, cancelled.cancelled_by) == ("cancelled", "zhao")
    assert not [j for j in office.run_due_schedules() if "campaign" in j[0]]


# ----------------------------------------------------------------- link fields


def test_a_link_is_checked_and_filled_on_every_path(office: Casework) -> None:
    (ref,) = filed(office, 1)
    source = office.get_case(ref).data
    case = office.create_case(
        "golden_autumn", "lin", {"archive_ref": ref, "student_name": "张小明", "level": "本科", "school": "厦门大学"}
    )
    assert {k: case.data[k] for k in ("applicant_name", "id_number", "county")} == {
        k: source[k] for k in ("applicant_name", "id_number", "county")
    }
    history = office.history(case.ref)
    assert "applicant_name" in history[0].to_json()["changes"]
    # typing a filled field while the link is set is refused, and changes nothing
    before = office.get_case(case.ref).to_json()
    # (golden_autumn's apply lets the clerk change the student's data only)
    refused(lambda: office.update_case(case.ref, "lin", {"applicant_name": "别人"}), Code.NOT_EDITABLE)
    error = refused(
        lambda: office.create_case("golden_autumn", "lin", {"archive_ref": ref, "applicant_name": "别人"}),
        Code.INVALID_DATA,
    )
    assert "applicant_name: is filled from the poverty_archive case in archive_ref" in error.message
    # an unknown reference, a case of another workflow
    refused(lambda: office.update_case(case.ref, "lin", {"archive_ref": "ZZ-2026-999999"}), Code.LINKED_CASE_NOT_FOUND)
    refused(lambda: office.update_case(case.ref, "lin", {"archive_ref": case.ref}), Code.LINKED_CASE_NOT_FOUND)
    assert office.get_case(case.ref).to_json() == before
    # another filed archive: the link moves and the household's data follows, in one event
    (other,) = filed(office, 1, seed=7)
    moved = office.update_case(case.ref, "lin", {"archive_ref": other})
    assert moved.data["applicant_name"] == office.get_case(other).data["applicant_name"]
    assert office.check().ok


def test_a_linked_archive_outside_the_clerks_county_is_refused(office: Casework) -> None:
    (ref,) = filed(office, 1, county="龙文区", clerk="chen")
    error = refused(
        lambda: office.create_case("golden_autumn", "lin", {"archive_ref": ref, "student_name": "张小明"}),
        Code.LINKED_CASE_NOT_FOUND,
    )
    # the same answer as for a reference nobody has: neither its county nor that it exists is said
    nobody = refused(
        lambda: office.create_case("golden_autumn", "lin", {"archive_ref": "ZZ-2020-999999", "student_name": "张小明"}),
        Code.LINKED_CASE_NOT_FOUND,
    )
    assert error.message == nobody.message.replace("ZZ-2020-999999", ref)
    assert "龙文区" not in error.message and "filed" not in error.message
    assert office.list_cases(workflow="golden_autumn") == []


def test_an_archive_that_exited_after_the_visit_blocks_the_grant(office: Casework) -> None:
    (ref,) = filed(office, 1)
    case = office.create_case("warmth", "lin", {"archive_ref": ref, "year": 2027})
    office.fire(case.ref, "visit", "lin", data={"visit_note": "已走访，家中三人"})
    office.fire(ref, "exit", "wu", comment="收入稳定，解困脱困")
    before = office.get_case(case.ref).to_json()
    error = refused(lambda: office.fire(case.ref, "grant", "su"), Code.LINKED_CASE_STATE)
    assert error.message == (
        f"archive_ref: {ref} is 解困脱困 (exited); 春节送温暖 is only for 困难职工建档立卡 cases in 已建档 (filed)"
    )
    assert office.get_case(case.ref).to_json() == before
    # and a new case for it is refused from the start
    refused(lambda: office.create_case("warmth", "lin", {"archive_ref": ref, "year": 2027}), Code.LINKED_CASE_STATE)


def test_an_import_reports_each_row_whose_link_is_refused(office: Casework) -> None:
    refs = filed(office, 2)
    office.fire(refs[1], "exit", "wu", comment="脱困")
    rows = [
        (2, {"archive_ref": refs[0], "student_name": "甲", "level": "本科"}),
        (3, {"archive_ref": refs[1], "student_name": "乙", "level": "本科"}),
        (4, {"archive_ref": "ZZ-2026-999999", "student_name": "丙", "level": "本科"}),
    ]
    report = office.import_cases("golden_autumn", "lin", rows, skip_invalid=True)
    assert len(report.imported) == 1
    assert [p.line for p in report.skipped] == [3, 4]
    assert "解困脱困 (exited)" in report.skipped[0].problems[0]


def test_a_campaign_skips_archives_whose_case_the_rules_refuse(office: Casework) -> None:
    refs = filed(office, 2)
    clock = office.clock
    assert isinstance(clock, FixedClock)
    on = clock.now().astimezone(SHANGHAI).date() + dt.timedelta(days=1)
    office.set_campaign("warmth", on, "zhao")
    clock.set(dt.datetime.combine(on, dt.time(9), SHANGHAI))
    office.fire(refs[0], "exit", "wu", comment="脱困")  # no longer filed: not reached at all
    runs = [j for j in office.run_due_schedules() if "campaign" in j[0]]
    assert "opened 1 warmth case" in runs[0][2]
