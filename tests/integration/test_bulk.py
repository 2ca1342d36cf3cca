"""Bulk paths: importing archives, and one step on many cases — same rules, batched writes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, CaseKey, OutboxMessage, Timer
from engine import Casework, InputError, PermissionDenied
from engine.bulk import InvalidImport
from tests.integration.test_service import ALL_MATERIALS

WF = "poverty_archive"


def rows(n: int, seed: int = 11, county: str = "芗城区") -> list[tuple[int, dict[str, Any]]]:
    people = SyntheticPeople(seed)
    out = []
    for i in range(n):
        data = people.household()
        data.update(county=county, materials=list(ALL_MATERIALS))
        out.append((i + 2, data))  # line 1 is the header
    return out


def count(svc: Casework, table: Any, *where: Any) -> int:
    with svc.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_import_opens_one_audited_case_per_row_in_file_order(svc: Casework) -> None:
    given = rows(25)
    report = svc.import_cases(WF, "lin", given, batch=10)
    assert len(report.imported) == 25 and report.skipped == []
    assert report.imported == [f"ZZ-2026-{n:06d}" for n in range(1, 26)]
    for ref, (_line, data) in zip(report.imported, given, strict=True):
        case = svc.get_case(ref)
        assert case.state == "apply" and case.data["id_number"] == data["id_number"]
    assert count(svc, AuditEvent) == 25
    assert count(svc, CaseKey) == 25
    assert svc.verify_audit().ok
    # the next single case continues the numbering
    assert svc.create_case(WF, "lin", rows(1, seed=99)[0][1]).ref == "ZZ-2026-000026"


def test_a_file_with_a_bad_row_imports_nothing_and_names_the_line(svc: Casework) -> None:
    given = rows(5)
    given[2][1]["id_number"] = given[2][1]["id_number"][:-1] + ("0" if given[2][1]["id_number"][-1] != "0" else "1")
    given[4][1]["household_size"] = "many"
    with pytest.raises(InvalidImport) as caught:
        svc.import_cases(WF, "lin", given)
    assert [p.line for p in caught.value.problems] == [4, 6]
    text = str(caught.value)
    assert "line 4: id_number" in text and "line 6: household_size" in text
    # refusals are data: the code and each bad row, for any shell to word (the CLI adds --skip-invalid)
    assert caught.value.code == "invalid_import"
    assert caught.value.facts["invalid"] == 2 and caught.value.facts["total"] == 5
    assert [r["line"] for r in caught.value.facts["rows"]] == [4, 6]
    assert "--" not in text
    assert count(svc, Case) == 0 and count(svc, AuditEvent) == 0 and count(svc, CaseKey) == 0
    # the reference counter was not touched either
    assert svc.create_case(WF, "lin", rows(1, seed=99)[0][1]).ref == "ZZ-2026-000001"


def test_skip_invalid_imports_the_valid_rows_and_reports_the_rest(svc: Casework) -> None:
    given = rows(4)
    given[1][1]["county"] = "龙文区"  # lin covers 芗城区 only
    given[3][1]["id_number"] = given[0][1]["id_number"]  # the same household twice in one file
    report = svc.import_cases(WF, "lin", given, skip_invalid=True)
    assert len(report.imported) == 2
    assert [(p.line, p.problems[0].split(":")[0]) for p in report.skipped] == [(3, "county"), (5, "id_number")]
    assert "line 2" in report.skipped[1].problems[0]
    assert count(svc, Case) == 2


def test_an_id_number_already_filed_is_a_bad_row(svc: Casework) -> None:
    first = rows(1)[0][1]
    ref = svc.create_case(WF, "lin", first).ref
    with pytest.raises(InvalidImport) as caught:
        svc.import_cases(WF, "lin", [(2, dict(first))])
    assert ref in str(caught.value)
    assert count(svc, Case) == 1


def test_only_an_opener_may_import_and_batch_size_is_checked(svc: Casework) -> None:
    with pytest.raises(PermissionDenied, match="may not open"):
        svc.import_cases(WF, "su", rows(2))
    with pytest.raises(InputError, match="1 to 10000"):
        svc.import_cases(WF, "lin", rows(2), batch=0)
    assert count(svc, Case) == 0


def test_fire_many_writes_what_single_steps_write(svc: Casework) -> None:
    bulk = svc.import_cases(WF, "lin", rows(6)).imported
    single = svc.import_cases(WF, "lin", rows(2, seed=12)).imported
    report = svc.fire_many(bulk, "submit", "lin", batch=4)
    assert report.fired == bulk and report.refused == []
    for ref in single:
        svc.fire(ref, "submit", "lin")
    with svc.engine.connect() as conn:
        ids = dict(conn.execute(select(Case.ref, Case.id)).all())
    per_case = {
        ref: (
            count(svc, Timer, Timer.case_id == ids[ref]),
            count(svc, OutboxMessage, OutboxMessage.case_id == ids[ref]),
            count(svc, AuditEvent, AuditEvent.case_id == ids[ref]),
        )
        for ref in bulk + single
    }
    assert len(set(per_case.values())) == 1, per_case  # bulk and single wrote the same rows
    assert per_case[bulk[0]][0] > 0 and per_case[bulk[0]][1] > 0
    assert all(svc.get_case(r).state == "review" for r in bulk)
    assert svc.verify_audit().ok


def test_fire_many_refuses_case_by_case_and_fires_the_rest(svc: Casework) -> None:
    refs = svc.import_cases(WF, "lin", rows(3)).imported
    other = svc.import_cases(WF, "chen", rows(1, seed=13, county="龙文区")).imported
    svc.fire(refs[0], "submit", "lin")
    before = svc.get_case(refs[0]).version
    report = svc.fire_many([*refs, *other, "ZZ-2026-999999", refs[1]], "submit", "lin")
    assert report.fired == refs[1:]
    reasons = {r.ref: r for r in report.refused}
    assert set(reasons) == {refs[0], other[0], "ZZ-2026-999999"}
    assert "applies only from apply" in reasons[refs[0]].reason
    assert reasons[refs[0]].code == "wrong_state" and "pass_review" in reasons[refs[0]].facts["possible"]
    assert "covers 芗城区, not 龙文区" in reasons[other[0]].reason
    assert reasons[other[0]].code == "scope_not_covered" and reasons[other[0]].facts["scope"] == "龙文区"
    assert "no case" in reasons["ZZ-2026-999999"].reason and reasons["ZZ-2026-999999"].code == "case_not_found"
    assert svc.get_case(refs[0]).version == before
    assert svc.get_case(other[0]).state == "apply"


def test_fire_many_keeps_four_eyes(svc: Casework) -> None:
    refs = svc.import_cases(WF, "ye", rows(2)).imported
    svc.fire_many(refs, "submit", "ye")
    report = svc.fire_many(refs, "pass_review", "ye")  # ye submitted them: someone else must review
    assert report.fired == [] and len(report.refused) == 2
    assert all(svc.get_case(r).state == "review" for r in refs)
    assert svc.fire_many(refs, "pass_review", "wu").fired == refs


def test_hostile_rows_in_an_import_file_are_refused_per_field_and_nothing_is_stored(svc: Casework) -> None:
    given = rows(6)
    given[0][1]["applicant_name"] = "陈志强\x1b[2J"  # a terminal escape
    given[1][1]["cause"] = "因病" * 400  # 800 characters; the field allows 500
    given[2][1]["household_size"] = "4; DROP TABLE cases; --"
    given[3][1]["id_number"] = "350602850312001"  # the 15-digit pre-1999 form
    given[4][1]["materials"] = ["申请表", {"$ne": 1}]  # not a list of text
    given[5][1]["cause"] = "'); DELETE FROM audit_events; --"  # text: stored as written, harmlessly
    with pytest.raises(InvalidImport) as caught:
        svc.import_cases(WF, "lin", given)
    by_line = {p.line: p.problems for p in caught.value.problems}
    assert sorted(by_line) == [2, 3, 4, 5, 6]
    assert by_line[2][0].startswith("applicant_name: contains a control character (U+001B)")
    assert by_line[3][0] == "cause: is 800 characters long; at most 500 allowed"
    assert by_line[4][0].startswith("household_size: expected a whole number such as 4")
    assert by_line[5][0].startswith("id_number: ID number has 15 digits")
    assert by_line[6][0].startswith("materials: expected a list of items")
    assert "\x1b" not in str(caught.value)
    assert count(svc, Case) == 0 and count(svc, AuditEvent) == 0
    report = svc.import_cases(WF, "lin", given, skip_invalid=True)
    (ref,) = report.imported
    assert svc.get_case(ref).data["cause"] == "'); DELETE FROM audit_events; --"
    assert count(svc, AuditEvent) == 1 and svc.verify_audit().ok
