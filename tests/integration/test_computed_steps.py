"""Computed fields at steps, on SQLite and PostgreSQL (issue 12, item 1): the medical-aid subsidy is worked
out when the clerk submits, stored with its places, recorded in the step's event (old → new) so the trail
replays to the stored case, seen by the step's conditions, recomputed after a correction — and refused
wherever someone tries to type it (open, import, edit, step), with nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db import make_engine
from engine import Casework, load_definition_file
from engine.bulk import InvalidImport
from engine.errors import GuardFailed, InvalidCaseData

ROOT = Path(__file__).resolve().parents[2]
WF = "medical_aid"
ID = "350602198503120015"


@pytest.fixture
def svc(db_url: str) -> Iterator[Casework]:
    engine = make_engine(db_url)
    try:
        s = Casework(engine)
        s.load_workflow(load_definition_file(ROOT / "workflows" / "medical_aid.yaml"))
        s.add_user("lin", "林晓", ["clerk"], ["芗城区"])
        s.add_user("wu", "吴明辉", ["reviewer"], ["芗城区"])
        yield s
    finally:
        engine.dispose()


def application(self_paid: str, **extra: Any) -> dict[str, Any]:
    return {"applicant_name": "陈志强", "id_number": ID, "county": "芗城区", "self_paid": self_paid, **extra}


def state_of(svc: Casework, ref: str) -> tuple[Any, ...]:
    case = svc.get_case(ref)
    return case.state, case.version, dict(case.data), [e.changes for e in svc.history(ref)]


def test_submit_computes_the_subsidy_half_up_and_the_trail_replays_it(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", application("12345.65")).ref
    # computed as soon as the case holds the amount (opened), recorded with the opening values
    assert svc.get_case(ref).data["subsidy"] == "1234.57"  # banker's rounding gave 1234.56
    assert svc.history(ref)[0].changes["subsidy"] == [None, "1234.57"]
    case = svc.fire(ref, "submit", "lin")  # computed again at submit: the same amount, so no change
    assert case.data["subsidy"] == "1234.57"
    event = svc.history(ref)[-1]
    assert event.trigger == "submit" and "subsidy" not in (event.changes or {})
    assert svc.check().ok, svc.check()
    assert svc.verify_audit(ref).ok


def test_the_places_are_kept_whole_yuan_amounts_too(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", application("6000")).ref
    assert svc.fire(ref, "submit", "lin").data["subsidy"] == "500.00"
    assert svc.check().ok


def test_below_6000_the_step_is_refused_as_not_eligible_and_nothing_changes(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", application("5999.99")).ref
    before = state_of(svc, ref)
    with pytest.raises(GuardFailed, match="不足6000元"):
        svc.fire(ref, "submit", "lin")
    assert state_of(svc, ref) == before
    # the clerk is not offered a step that would be refused: the preview computes the subsidy too
    assert "submit" not in [a.trigger for a in svc.get_case(ref, "lin").actions or ()]
    ok = svc.create_case(WF, "lin", application("6000")).ref
    assert "submit" in [a.trigger for a in svc.get_case(ok, "lin").actions or ()]


def test_a_typed_subsidy_is_refused_on_every_path_and_changes_nothing(svc: Casework) -> None:
    message = (
        "subsidy: is computed from self_paid (table medical_whole) when the case is opened or edited, "
        "and at step submit; it cannot be typed"
    )
    with pytest.raises(InvalidCaseData) as info:
        svc.create_case(WF, "lin", application("12345.65", subsidy="99999"))
    assert message in str(info.value)
    with pytest.raises(InvalidImport):
        svc.import_cases(WF, "lin", [(2, application("12345.65", subsidy="1"))])
    assert svc.list_cases(workflow=WF) == []
    ref = svc.create_case(WF, "lin", application("12345.65")).ref
    before = state_of(svc, ref)
    with pytest.raises(InvalidCaseData, match=re.escape(message)):
        svc.update_case(ref, "lin", {"subsidy": "1"})
    with pytest.raises(InvalidCaseData, match=re.escape(message)):
        svc.fire(ref, "submit", "lin", data={"subsidy": "1"})
    assert state_of(svc, ref) == before


def test_a_correction_recomputes_at_the_next_submit(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", application("12345.65")).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "return", "wu", comment="发票金额有误")
    svc.update_case(ref, "lin", {"self_paid": "30000.01"})
    # the edit recomputes (at: edited) and records both changes in one event
    assert svc.get_case(ref).data["subsidy"] == "4500.00"
    assert svc.history(ref)[-1].changes == {"self_paid": ["12345.65", "30000.01"], "subsidy": ["1234.57", "4500.00"]}
    case = svc.fire(ref, "submit", "lin")
    assert case.data["subsidy"] == "4500.00"
    # data given with a step is an edit too: computed when edited, then at the step
    svc.fire(ref, "return", "wu", comment="发票金额有误")
    case = svc.fire(ref, "submit", "lin", data={"self_paid": "6000"})
    assert case.data["subsidy"] == "500.00"
    assert svc.history(ref)[-1].changes == {"self_paid": ["30000.01", "6000"], "subsidy": ["4500.00", "500.00"]}
    assert svc.check().ok


def test_a_bulk_submit_computes_each_case(svc: Casework) -> None:
    amounts = {"10000": "500.00", "10000.01": "1000.00", "80000.01": "16000.00", "400000": "50000.00"}
    refs = {svc.create_case(WF, "lin", application(a)).ref: want for a, want in amounts.items()}
    report = svc.fire_many(list(refs), "submit", "lin")
    assert sorted(report.fired) == sorted(refs) and report.refused == []
    assert {ref: svc.get_case(ref).data["subsidy"] for ref in refs} == refs
    assert svc.check().ok
