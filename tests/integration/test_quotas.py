"""Limits across cases on real databases: one person's cases counted together, per year, under concurrency.

The workflow is tests/fixtures/workflows/valid/medical_limit.yaml: at most 50,000 yuan of granted
subsidy and at most 3 grants per ID number per calendar year (Asia/Shanghai), counted over the cases
granted or paid. Every refusal is checked to have changed nothing: the case's state, version and
trail, and the ledger (``limit_counts``).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from db import current_revision, head_revision, make_engine, upgrade
from db.schema import limit_counts as _counts
from engine import Casework, FixedClock, load_definition_file
from engine.errors import Code
from engine.idnumber import check_digit
from engine.quotas import LimitReached, hash_key
from tests.integration.race_support import audit_count, case_id, postgres_only
from tests.integration.test_interleavings import Gates, wait_for_lock_wait

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "workflows" / "valid" / "medical_limit.yaml"
WF = "medical_limit"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI)


def id_number(serial: int) -> str:
    first17 = f"350602198001{serial % 28 + 1:02d}{serial % 1000:03d}"
    return first17 + check_digit(first17)


PERSON = id_number(1)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def svc(engine: Engine, clock: FixedClock) -> Casework:
    service = Casework(engine, clock)
    service.load_workflow(load_definition_file(FIXTURE))
    service.add_user("lin", "林晓", ["clerk"], ["芗城区"])
    service.add_user("su", "苏文斌", ["approver"], ["*"])
    service.add_user("xu", "许慧敏", ["approver"], ["*"])
    return service


def in_review(svc: Casework, amount: str, person: str = PERSON) -> str:
    """A case of ``person`` asking ``amount``, submitted (waiting for the approver's grant)."""
    data = {"applicant_name": "陈志强", "id_number": person, "county": "芗城区", "amount": amount}
    ref = svc.create_case(WF, "lin", data).ref
    svc.fire(ref, "submit", "lin")
    return ref


def ledger(engine: Engine) -> list[tuple[str, str, str, str]]:
    """(limit, key hash, period, amount) of every row, in the order written."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_counts.c.limit_name, _counts.c.key_hash, _counts.c.period, _counts.c.amount).order_by(_counts.c.id)
        ).all()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def state_and_version(svc: Casework, ref: str) -> tuple[str, int]:
    case = svc.get_case(ref)
    return case.state, case.version


# ------------------------------------------------------------------ one person, several cases


def test_a_second_case_of_one_id_number_is_refused_with_what_is_left_and_nothing_changes(
    svc: Casework, engine: Engine
) -> None:
    first, second = in_review(svc, "30000"), in_review(svc, "30000.00")
    assert svc.fire(first, "grant", "su").state == "granted"
    before = state_and_version(svc, second), audit_count(engine, case_id(engine, second)), ledger(engine)
    with pytest.raises(LimitReached) as info:
        svc.fire(second, "grant", "su")
    refusal = info.value
    assert refusal.code is Code.LIMIT_REACHED
    assert refusal.message == (
        "grant refused: 医疗互助年度补助上限 allows at most 50000 per id_number (身份证号码) in 2026; "
        "30000.00 is already counted on other cases, so at most 20000.00 is left and this case asks 30000.00"
    )
    assert refusal.facts == {
        "case": second,
        "state": "review",
        "trigger": "grant",
        "limit": "yearly_subsidy",
        "label": "医疗互助年度补助上限",
        "key": "id_number",
        "period": "2026",
        "max": "50000",
        "used": "30000",
        "asked": "30000",
        "left": "20000",
    }
    after = state_and_version(svc, second), audit_count(engine, case_id(engine, second)), ledger(engine)
    assert after == before  # nothing changed: state, version, trail, ledger
    # the amount may be lowered to what is left, exactly, and then it passes
    assert svc.fire(second, "grant", "su", data={"amount": "20000"}).state == "granted"
    sums = [(lim, amount) for lim, _, _, amount in ledger(engine)]
    assert sums == [
        ("yearly_subsidy", "30000"),
        ("yearly_grants", "1"),
        ("yearly_subsidy", "20000"),
        ("yearly_grants", "1"),
    ]


def test_the_ledger_holds_the_key_hashed_never_the_id_number(svc: Casework, engine: Engine) -> None:
    svc.fire(in_review(svc, "100"), "grant", "su")
    rows = ledger(engine)
    assert {key for _, key, _, _ in rows} == {hash_key(PERSON)}
    with engine.connect() as conn:
        dumped = " ".join(str(r) for r in conn.execute(select(_counts)).all())
    assert PERSON not in dumped and PERSON[:17] not in dumped


def test_another_person_is_not_counted(svc: Casework) -> None:
    svc.fire(in_review(svc, "50000"), "grant", "su")
    assert svc.fire(in_review(svc, "50000", id_number(2)), "grant", "su").state == "granted"
    with pytest.raises(LimitReached):
        svc.fire(in_review(svc, "0.01"), "grant", "su")


def test_a_rejected_withdrawn_or_reconsidered_case_stops_counting(svc: Casework, engine: Engine) -> None:
    granted = in_review(svc, "50000")
    svc.fire(granted, "grant", "su")
    waiting = in_review(svc, "30000")
    with pytest.raises(LimitReached):
        svc.fire(waiting, "grant", "su")
    svc.fire(granted, "withdraw", "lin")  # withdrawn after the grant: it no longer counts
    assert svc.fire(waiting, "grant", "su").state == "granted"
    # sent back for reconsideration: it stops counting, and granting it again replaces what it counted
    svc.fire(waiting, "reconsider", "su", comment="金额需复核")
    third = in_review(svc, "45000")
    assert svc.fire(third, "grant", "xu").state == "granted"
    with pytest.raises(LimitReached) as info:
        svc.fire(waiting, "grant", "su")
    assert info.value.facts["used"] == "45000" and info.value.facts["left"] == "5000"
    assert svc.fire(waiting, "grant", "su", data={"amount": "5000"}).state == "granted"
    rows = [(lim, amount) for lim, _, _, amount in ledger(engine) if lim == "yearly_subsidy"]
    assert sorted(a for _, a in rows) == ["45000", "5000", "50000"]  # one row per case: the withdrawn one, kept
    with engine.connect() as conn:
        per_case = conn.execute(
            select(_counts.c.case_id, func.count()).group_by(_counts.c.case_id, _counts.c.limit_name)
        ).all()
    assert all(n == 1 for _, n in per_case)
    # a rejected case never counts: it was never granted
    rejected = in_review(svc, "50000")
    svc.fire(rejected, "reject", "su", comment="材料不全")
    svc.fire(third, "pay", "su")  # paid still counts
    with pytest.raises(LimitReached) as info:
        svc.fire(in_review(svc, "0.01"), "grant", "su")
    assert info.value.facts["used"] == "50000"


def test_new_years_eve_and_new_years_day_count_in_different_years(svc: Casework, clock: FixedClock) -> None:
    clock.set(dt.datetime(2026, 12, 31, 23, 59, tzinfo=SHANGHAI))
    svc.fire(in_review(svc, "50000"), "grant", "su")
    late = in_review(svc, "1")
    with pytest.raises(LimitReached) as info:
        svc.fire(late, "grant", "su")
    assert info.value.facts["period"] == "2026"
    clock.set(dt.datetime(2027, 1, 1, 0, 0, tzinfo=SHANGHAI))  # 2026-12-31 16:00 UTC: Shanghai's year decides
    assert svc.fire(late, "grant", "su").state == "granted"
    assert svc.fire(in_review(svc, "49999"), "grant", "su").state == "granted"


def test_a_count_limit_counts_grants(svc: Casework) -> None:
    for _ in range(3):
        svc.fire(in_review(svc, "100"), "grant", "su")
    with pytest.raises(LimitReached) as info:
        svc.fire(in_review(svc, "100"), "grant", "su")
    assert info.value.facts["limit"] == "yearly_grants"
    assert info.value.facts["used"] == "3" and info.value.facts["left"] == "0"


def test_fire_many_counts_the_cases_of_one_batch_together(svc: Casework, engine: Engine) -> None:
    refs = [in_review(svc, "20000") for _ in range(3)] + [in_review(svc, "20000", id_number(2))]
    report = svc.fire_many(refs, "grant", "su")
    assert report.fired == [refs[0], refs[1], refs[3]]
    [refused] = report.refused
    assert refused.ref == refs[2] and refused.code == "limit_reached"
    assert refused.facts["used"] == "40000" and refused.facts["left"] == "10000"
    assert svc.get_case(refs[2]).state == "review"
    assert len([r for r in ledger(engine) if r[0] == "yearly_subsidy"]) == 3
    # in batches of one, the same
    more = in_review(svc, "10000.01")
    again = svc.fire_many([more], "grant", "su", batch=1)
    assert again.fired == [] and again.refused[0].facts["left"] == "10000"


# ------------------------------------------------------------------ concurrency


@postgres_only()
def test_two_concurrent_grants_for_one_person_serialize_and_the_second_is_refused(
    svc: Casework, engine: Engine
) -> None:
    """The first grant pauses after reading what is used (at its first write); the second must wait for it."""
    first, second = in_review(svc, "30000"), in_review(svc, "30000")
    gates = Gates(engine)
    outcome: dict[str, Any] = {}
    try:
        gate, run = gates.pause(lambda: svc.fire(first, "grant", "su"))
        other = threading.Thread(target=_fire_into, args=(svc, second, "xu", outcome), daemon=True)
        other.start()
        assert wait_for_lock_wait(engine) == 1  # waiting on the advisory lock of (limit, person, 2026)
        gate.open()
        assert run.result().state == "granted"
        other.join(30)
    finally:
        gates.close()
    assert isinstance(outcome.get("error"), LimitReached), outcome
    assert outcome["error"].facts["used"] == "30000"
    assert svc.get_case(second).state == "review"


def _fire_into(svc: Casework, ref: str, user: str, outcome: dict[str, Any]) -> None:
    try:
        outcome["view"] = svc.fire(ref, "grant", user)
    except Exception as exc:  # the test inspects what it was
        outcome["error"] = exc


def _race(barrier: threading.Barrier, svc: Casework, ref: str, user: str, outcome: dict[str, Any]) -> None:
    barrier.wait(10)  # both start their step together
    _fire_into(svc, ref, user, outcome)


def test_concurrent_grants_for_one_person_never_both_pass(svc: Casework, engine: Engine, db_url: str) -> None:
    """Two threads on their own connections grant 30,000 each under a 50,000 limit, 10 people: one wins each."""
    engines = [make_engine(db_url), make_engine(db_url)]
    services = [Casework(e, FixedClock(START)) for e in engines]
    try:
        for round_ in range(10):
            person = id_number(100 + round_)
            refs = [in_review(svc, "30000", person), in_review(svc, "30000", person)]
            barrier = threading.Barrier(2)
            outcomes: list[dict[str, Any]] = [{}, {}]

            threads = [
                threading.Thread(target=_race, args=(barrier, services[i], refs[i], ("su", "xu")[i], outcomes[i]))
                for i in range(2)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            passed = [o for o in outcomes if "view" in o]
            failed = [o["error"] for o in outcomes if "error" in o]
            assert len(passed) == 1 and len(failed) == 1, outcomes
            assert isinstance(failed[0], LimitReached) and failed[0].facts["used"] == "30000"
            assert sorted(svc.get_case(r).state for r in refs) == ["granted", "review"]
    finally:
        for e in engines:
            e.dispose()
    amounts = [a for lim, _, _, a in ledger(engine) if lim == "yearly_subsidy"]
    assert amounts == ["30000"] * 10


# ------------------------------------------------------------------ the schema


def test_upgrading_a_database_from_0006_adds_an_empty_ledger(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        upgrade(engine, "0006")
        with engine.connect() as conn:
            assert not conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'limit_counts'")).scalar_one()
        before, after = upgrade(engine)
        assert (before, after) == ("0006", head_revision()) and current_revision(engine) == head_revision()
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(_counts)).scalar_one() == 0
    finally:
        engine.dispose()


# ------------------------------------------------------------------ casework check


def test_check_names_a_ledger_row_its_trail_does_not_account_for(svc: Casework, engine: Engine) -> None:
    refs = [in_review(svc, "100") for _ in range(3)]
    for ref in refs:
        svc.fire(ref, "grant", "su")
    report = svc.check()
    assert report.ok and "limits" not in report.counts
    ids = [case_id(engine, ref) for ref in refs]
    with engine.begin() as conn:  # behind the engine's back
        conn.execute(_counts.update().where(_counts.c.case_id == ids[0]).values(event_seq=1))  # its "created"
        conn.execute(_counts.update().where(_counts.c.case_id == ids[1]).values(event_seq=99))
        conn.execute(_counts.update().where(_counts.c.case_id == ids[2]).values(period="2025"))
    report = svc.check()
    assert not report.ok and report.counts["limits"] == 6  # two limits, three cases
    found = {(v.ref, v.detail) for v in report.violations if v.check == "limits"}
    assert (
        refs[0],
        "counts toward limit yearly_subsidy by event 1, which is not a step the limit is checked at",
    ) in found
    assert (refs[1], "counts toward limit yearly_grants by event 99, which its trail does not have") in found
    assert (refs[2], "counts toward limit yearly_subsidy in 2025, but event 3 is of another year") in found
