"""Limits across cases, the rule alone (engine.quotas): the arithmetic at its edges, periods, refusals' words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from engine.definition import load_definition, load_definition_file
from engine.errors import CODES, Code, DefinitionError, MissingFields
from engine.idnumber import check_digit
from engine.quotas import Claim, LimitReached, claims, hash_key, judge, period_of

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "workflows" / "valid" / "medical_limit.yaml"
WF = load_definition_file(FIXTURE)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 6, 1, 10, 0, tzinfo=SHANGHAI)
SUBSIDY, GRANTS = WF.limits


def id_number(serial: int = 1) -> str:
    first17 = f"350602198001{serial % 28 + 1:02d}{serial % 1000:03d}"
    return first17 + check_digit(first17)


def data(amount: str = "30000", who: int = 1) -> dict[str, object]:
    return {"applicant_name": "陈志强", "id_number": id_number(who), "county": "芗城区", "amount": amount}


def claim_of(limit: int, amount: str = "30000", when: dt.datetime = NOW) -> Claim:
    return claims(WF, 7, "YL-2026-000007", "review", "grant", data(amount), when)[limit]


# ------------------------------------------------------------------ the arithmetic


@pytest.mark.parametrize(
    ("used", "amount", "passes"),
    [
        ("20000", "30000", True),  # exactly at the max
        ("20000.01", "30000", False),  # 0.01 over
        ("20000", "30000.01", False),
        ("0", "50000", True),
        ("0", "50000.01", False),
        ("50000", "0", True),  # nothing asked, nothing over
        ("49999.99", "0.01", True),
    ],
)
def test_a_sum_limit_lets_through_exactly_up_to_its_max(used: str, amount: str, passes: bool) -> None:
    refusal = judge(claim_of(0, amount), Decimal(used))
    assert (refusal is None) is passes


def test_the_refusal_says_how_much_is_left_and_never_the_id_number() -> None:
    refusal = judge(claim_of(0, "30000"), Decimal("30000"))
    assert isinstance(refusal, LimitReached)
    assert refusal.code is Code.LIMIT_REACHED
    assert refusal.message == (
        "grant refused: 医疗互助年度补助上限 allows at most 50000 per id_number (身份证号码) in 2026; "
        "30000.00 is already counted on other cases, so at most 20000.00 is left and this case asks 30000.00"
    )
    assert refusal.facts == {
        "case": "YL-2026-000007",
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
    assert set(refusal.facts) <= set(CODES[Code.LIMIT_REACHED].facts)
    assert id_number(1) not in refusal.message and id_number(1) not in str(refusal.to_json())


def test_left_is_never_below_zero() -> None:
    refusal = judge(claim_of(0, "1"), Decimal("60000"))  # counted before the limit was lowered
    assert refusal is not None and refusal.facts["left"] == "0"
    assert "at most 0.00 is left" in refusal.message


def test_cents_are_kept_exactly() -> None:
    refusal = judge(claim_of(0, "0.30"), Decimal("49999.71"))  # 0.1 + 0.2 style sums stay exact
    assert refusal is not None and refusal.facts["left"] == "0.29" and refusal.facts["asked"] == "0.3"
    assert judge(claim_of(0, "0.29"), Decimal("49999.71")) is None


def test_a_count_limit_counts_one_per_case() -> None:
    claim = claim_of(1)
    assert claim.amount == 1
    assert judge(claim, Decimal(2)) is None  # the third grant
    refusal = judge(claim, Decimal(3))  # a fourth
    assert refusal is not None
    assert refusal.message == (
        "grant refused: 年度批准次数 allows at most 3 cases per id_number (身份证号码) in 2026; "
        "3 already count, so no more may be counted"
    )
    assert refusal.facts["left"] == "0" and refusal.facts["asked"] == "1"


def test_a_negative_amount_counts_as_nothing() -> None:
    # a stored field with min: 0 cannot hold one (checked at load, below); a computed field might
    assert claim_of(0, "-100").amount == 0


# ------------------------------------------------------------------ periods


def test_new_years_eve_and_new_years_day_in_shanghai_count_in_different_years() -> None:
    eve = dt.datetime(2026, 12, 31, 23, 59, tzinfo=SHANGHAI)
    new_year = dt.datetime(2027, 1, 1, 0, 0, tzinfo=SHANGHAI)
    assert period_of(SUBSIDY, eve, WF.timezone) == "2026"
    assert period_of(SUBSIDY, new_year, WF.timezone) == "2027"
    # the same instants in UTC: both still on 31 December there; the workflow's time zone decides
    assert eve.astimezone(dt.UTC).year == new_year.astimezone(dt.UTC).year == 2026
    assert period_of(SUBSIDY, new_year.astimezone(dt.UTC), WF.timezone) == "2027"
    assert claim_of(0, when=eve).slot.period == "2026" and claim_of(0, when=new_year).slot.period == "2027"
    assert claim_of(0, when=eve).slot.key_hash == claim_of(0, when=new_year).slot.key_hash


def test_a_limit_over_all_time_has_one_period() -> None:
    lim = SUBSIDY.__class__(**{**SUBSIDY.__dict__, "period": "all"})
    assert period_of(lim, NOW, WF.timezone) == period_of(lim, NOW.replace(year=2031), WF.timezone) == "all"


# ------------------------------------------------------------------ claims


def test_the_key_is_stored_as_its_sha256_only() -> None:
    claim = claim_of(0)
    assert claim.slot.key_hash == hash_key(id_number(1)) and len(claim.slot.key_hash) == 64
    assert id_number(1) not in repr(claim.slot)
    assert claim_of(0).slot == claim_of(0).slot
    other = claims(WF, 8, "YL-2026-000008", "review", "grant", data(who=2), NOW)[0]
    assert other.slot.key_hash != claim.slot.key_hash


def test_only_the_limit_steps_claim() -> None:
    assert claims(WF, 7, "YL-2026-000007", "apply", "submit", data(), NOW) == []
    assert [c.limit.name for c in claims(WF, 7, "YL-2026-000007", "review", "grant", data(), NOW)] == [
        "yearly_subsidy",
        "yearly_grants",
    ]


def test_a_case_without_its_key_or_amount_is_refused_not_let_through() -> None:
    for field in ("id_number", "amount"):
        values = {k: v for k, v in data().items() if k != field}
        with pytest.raises(MissingFields) as info:
            claims(WF, 7, "YL-2026-000007", "review", "grant", values, NOW)
        assert info.value.missing == [field]
        assert "医疗互助年度补助上限 counts amount (补助金额（元）) per id_number" in info.value.message


# ------------------------------------------------------------------ load-time checks


def _bad(old: str, new: str) -> list[str]:
    text = FIXTURE.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(DefinitionError) as info:
        load_definition(text.replace(old, new, 1), "w.yaml")
    return [p.message for p in info.value.problems]


def test_a_limit_whose_step_leads_out_of_its_states_is_refused_at_load() -> None:
    problems = _bad(
        "states: [granted, paid]\n    at: grant\n    max: 50000", "states: [paid]\n    at: grant\n    max: 50000"
    )
    assert problems == [
        "grant leads to granted, which is not among the limit's states; a case the limit lets through must "
        "count: add granted to states"
    ]


def test_a_count_limit_needs_a_whole_max_and_a_sum_limit_a_field_that_cannot_be_negative() -> None:
    assert _bad("max: 3", "max: 2.5") == ["a limit without sum counts cases: max must be a whole number (not 2.5)"]
    assert _bad("min: 0, max: 100000", "max: 100000") == [
        "field 'amount' may be negative; a limit sums amounts: give it min: 0"
    ]
