"""The bundled programme workflows through the command (issue 13, item 1), each rule on both sides of its
boundary; every refusal exits 1 and changes nothing. Scenes (filed archives, cases through publicity) are set
with the engine's API on a clock in the past, as tests/e2e/conftest.py allows; what is tested is typed.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from db import make_engine
from engine import Casework, CaseworkError, FixedClock
from tests.e2e.runner import ROOT, casework
from tests.e2e.test_cli_campaign import SHANGHAI, office
from tests.integration.test_publicity_period import through_publicity

ID_A = "350602198001011230"
ID_B = "350602199001011235"


def new(url: str, workflow: str, actor: str, **data: Any) -> str:
    sets = [x for k, v in data.items() for x in ("--set", f"{k}={v}")]
    r = casework(url, "case", "new", workflow, "--as", actor, *sets, "--json")
    assert r.rc == 0, r.err
    return str(json.loads(r.out)["ref"])


def fire(url: str, ref: str, trigger: str, actor: str, *extra: str) -> Any:
    return casework(url, "case", "fire", ref, trigger, "--as", actor, *extra)


def shown(url: str, ref: str) -> dict[str, Any]:
    r = casework(url, "case", "show", ref, "--json")
    assert r.rc == 0, r.err
    data: dict[str, Any] = json.loads(r.out)
    return data


def unchanged(url: str, ref: str, result: Any, words: str, before: dict[str, Any]) -> None:
    assert result.rc == 1 and words in result.err, result.err
    assert shown(url, ref) == before


def add_user(url: str, name: str, roles: list[str], scope: str) -> None:
    args = [x for r in roles for x in ("--role", r)]
    assert casework(url, "user", "add", name, "--name", name, *args, "--scope", scope).rc == 0


# ----------------------------------------------------------------- 送温暖


def test_warmth_amounts_by_year_four_eyes_once_a_year_and_the_archive_still_filed(db_url: str) -> None:
    a, b = office(db_url, 2)
    add_user(db_url, "hu", ["clerk", "approver"], "芗城区")
    size = shown(db_url, a)["data"]["household_size"]
    # the seed's rates: 500 per person until 2015 (the office's reading), 1,000 from 2016
    for year, per in ((2014, 500), (2015, 500), (2016, 1000), (2027, 1000)):
        ref = new(db_url, "warmth", "lin", archive_ref=a, year=year)
        data = shown(db_url, ref)["data"]
        assert (data["per_person"], data["amount"]) == (f"{per}.00", f"{per * size}.00"), year
        assert data["applicant_name"] == shown(db_url, a)["data"]["applicant_name"]
        assert casework(db_url, "case", "fire", ref, "void", "--as", "lin", "--comment", "测试").rc == 0
    # typed amount and a typed filled field are refused, nothing is opened
    count = len(json.loads(casework(db_url, "case", "list", "--workflow", "warmth", "--json").out))
    for extra in (["--set", "amount=1"], ["--set", "county=芗城区"], ["--set", "year=2013"]):
        r = casework(db_url, "case", "new", "warmth", "--as", "lin", "--set", f"archive_ref={a}", *extra)
        assert r.rc == 1, (extra, r.err)
    r = casework(
        db_url, "case", "new", "warmth", "--as", "lin", "--set", "archive_ref=ZZ-2026-999999", "--set", "year=2027"
    )
    assert r.rc == 1 and "no poverty_archive case ZZ-2026-999999" in r.err
    assert len(json.loads(casework(db_url, "case", "list", "--workflow", "warmth", "--json").out)) == count
    # visit → approve (four-eyes) → pay → paid
    ref = new(db_url, "warmth", "hu", archive_ref=a, year=2026)
    before = shown(db_url, ref)
    unchanged(db_url, ref, fire(db_url, ref, "visit", "hu"), "visit_note", before)
    assert fire(db_url, ref, "visit", "hu", "--set", "visit_note=已走访").rc == 0
    before = shown(db_url, ref)
    unchanged(db_url, ref, fire(db_url, ref, "grant", "hu"), "four-eyes", before)
    assert fire(db_url, ref, "grant", "su").rc == 0
    assert fire(db_url, ref, "record_payment", "lin").rc == 0
    assert shown(db_url, ref)["state"] == "paid"
    # once a year per household: a second case of 2026 for the same archive is refused at the visit
    twice = new(db_url, "warmth", "lin", archive_ref=a, year=2026)
    before = shown(db_url, twice)
    unchanged(
        db_url, twice, fire(db_url, twice, "visit", "lin", "--set", "visit_note=又走访"), "每户每年慰问一次", before
    )
    other_year = new(db_url, "warmth", "lin", archive_ref=a, year=2025)
    assert fire(db_url, other_year, "visit", "lin", "--set", "visit_note=已走访").rc == 0
    # an archive that exited after the visit blocks the grant
    late = new(db_url, "warmth", "lin", archive_ref=b, year=2026)
    assert fire(db_url, late, "visit", "lin", "--set", "visit_note=已走访").rc == 0
    assert casework(db_url, "case", "fire", b, "exit", "--as", "wu", "--comment", "脱困").rc == 0
    before = shown(db_url, late)
    unchanged(db_url, late, fire(db_url, late, "grant", "su"), f"{b} is 解困脱困 (exited)", before)
    assert fire(db_url, late, "void", "su", "--comment", "已脱困").rc == 0
    assert casework(db_url, "check").rc == 0


# ----------------------------------------------------------------- 金秋助学


def test_golden_autumn_grants_by_level_and_once_per_student_a_year(db_url: str) -> None:
    (a,) = office(db_url, 1)
    for level, grant in (("研究生", "5000.00"), ("本科", "4000.00"), ("专科（高职）", "3000.00")):
        ref = new(db_url, "golden_autumn", "lin", archive_ref=a, student_name="林小华", level=level)
        assert shown(db_url, ref)["data"]["grant"] == grant
    engine = make_engine(db_url)
    refs = []
    try:
        svc = Casework(engine, FixedClock(dt.datetime.now(SHANGHAI) - dt.timedelta(days=20)))
        for _ in range(2):
            ref = svc.create_case(
                "golden_autumn",
                "lin",
                {
                    "archive_ref": a,
                    "student_name": "林小华",
                    "student_id_number": ID_A,
                    "school": "厦门大学",
                    "level": "本科",
                    "admission_year": 2026,
                },
            ).ref
            svc.fire(ref, "submit", "lin")
            svc.fire(ref, "pass_review", "wu")
            through_publicity(svc, ref)
            svc.fire(ref, "end_publicity", "wu")
            refs.append(ref)
    finally:
        engine.dispose()
    assert fire(db_url, refs[0], "grant", "su").rc == 0
    before = shown(db_url, refs[1])
    unchanged(db_url, refs[1], fire(db_url, refs[1], "grant", "su"), "每名学生每年资助一次", before)
    # the 公示名单 masks the student's name and ID number
    html = casework(
        db_url, "notice", "show", json.loads(casework(db_url, "notice", "list", "--json").out)[0]["number"]
    ).out
    assert "金秋助学公示名单" in html and ID_A not in html and "林小华" not in html


def test_golden_autumn_counts_a_student_once_per_admission_year_across_new_year(db_url: str) -> None:
    """Granted on 28 December and on 4 January: the same admission year, so the second is one too many."""
    (a,) = office(db_url, 1)
    year = dt.datetime.now(SHANGHAI).year + 1
    engine = make_engine(db_url)
    try:
        clock = FixedClock(dt.datetime(year, 12, 1, 10, tzinfo=SHANGHAI))
        svc = Casework(engine, clock)
        refs = []
        for admitted in (year, year, year - 1):
            data = {"archive_ref": a, "student_name": "林小华", "student_id_number": ID_A, "school": "厦门大学",
                    "level": "本科", "admission_year": admitted}  # fmt: skip
            ref = svc.create_case("golden_autumn", "lin", data).ref
            svc.fire(ref, "submit", "lin")
            svc.fire(ref, "pass_review", "wu")
            through_publicity(svc, ref)
            svc.fire(ref, "end_publicity", "wu")
            refs.append(ref)
        clock.set(dt.datetime(year, 12, 28, 10, tzinfo=SHANGHAI))
        svc.fire(refs[0], "grant", "su")
        clock.set(dt.datetime(year + 1, 1, 4, 10, tzinfo=SHANGHAI))
        before = svc.get_case(refs[1]).to_json()
        with pytest.raises(CaseworkError) as refused:
            svc.fire(refs[1], "grant", "su")
        assert refused.value.code == "limit_reached"
        assert svc.get_case(refs[1]).to_json() == before
        # another admission year is another grant
        assert svc.fire(refs[2], "grant", "su").state == "pay"
    finally:
        engine.dispose()


# ----------------------------------------------------------------- 医疗互助 v2


def test_medical_aid_version_2_loads_over_a_loaded_version_1(db_url: str, tmp_path: Any) -> None:
    assert casework(db_url, "init").rc == 0
    # version 1 as released with issue 12 (before programme:), kept as a fixture
    v1 = (ROOT / "tests" / "fixtures" / "workflows" / "medical_aid_v1.yaml").read_text(encoding="utf-8")
    assert "version: 1\n" in v1
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "templates").symlink_to(ROOT / "workflows" / "templates")
    (folder / "medical_aid.yaml").write_text(v1, encoding="utf-8")
    assert casework(db_url, "workflow", "load", str(folder / "medical_aid.yaml")).rc == 0
    r = casework(db_url, "workflow", "load", str(ROOT / "workflows" / "medical_aid.yaml"))
    assert r.rc == 0, r.err
    versions = json.loads(casework(db_url, "workflow", "list", "--json").out)
    assert sorted(v["version"] for v in versions if v["workflow"] == "medical_aid") == [1, 2]


# ----------------------------------------------------------------- 法律援助


def test_legal_aid_records_fees_waived_and_amount_recovered_at_close(db_url: str) -> None:
    (a,) = office(db_url, 1)
    add_user(db_url, "fang", ["coordinator"], "*")
    # without an archive: typed; with one: it must be filed, and fills the applicant
    plain = new(
        db_url,
        "legal_aid",
        "lin",
        applicant_name="陈志强",
        id_number=ID_B,
        county="芗城区",
        matter_type="追索劳动报酬",
        facts="拖欠工资三个月",
    )
    linked = new(db_url, "legal_aid", "lin", archive_ref=a, matter_type="工伤赔偿", facts="工伤未获赔偿")
    assert shown(db_url, linked)["data"]["id_number"] == shown(db_url, a)["data"]["id_number"]
    for ref in (plain, linked):
        assert fire(db_url, ref, "accept", "wu").rc == 0
        before = shown(db_url, ref)
        unchanged(db_url, ref, fire(db_url, ref, "assign_lawyer", "fang"), "lawyer", before)
        assert (
            fire(db_url, ref, "assign_lawyer", "fang", "--set", "lawyer=黄律师", "--set", "law_firm=闽南律师事务所").rc
            == 0
        )
    before = shown(db_url, plain)
    r = fire(db_url, plain, "close", "lin", "--set", "outcome=调解", "--set", "fees_waived=3000")
    unchanged(db_url, plain, r, "amount_recovered", before)
    r = fire(
        db_url, plain, "close", "lin", "--set", "outcome=调解", "--set", "fees_waived=-1", "--set", "amount_recovered=0"
    )
    unchanged(db_url, plain, r, "fees_waived", before)
    r = fire(
        db_url, plain, "close", "lin", "--set", "outcome=调解", "--set", "fees_waived=0", "--set", "amount_recovered=0"
    )
    assert r.rc == 0, r.err
    r = fire(
        db_url,
        linked,
        "close",
        "lin",
        "--set",
        "outcome=仲裁裁决",
        "--set",
        "fees_waived=3000.50",
        "--set",
        "amount_recovered=52000",
    )
    assert r.rc == 0 and shown(db_url, linked)["state"] == "closed"
    assert shown(db_url, linked)["data"]["fees_waived"] in ("3000.5", "3000.50")


# ----------------------------------------------------------------- 信访


def test_petition_deadlines_and_its_way_to_closed(db_url: str) -> None:
    (a,) = office(db_url, 1)
    add_user(db_url, "he", ["handler"], "芗城区")
    described = json.loads(casework(db_url, "workflow", "show", "petition", "--json").out)
    assert described["states"]["register"]["deadline"] == "15 days"
    assert described["states"]["handle"]["deadline"] == "60 days"
    assert described["states"]["not_accepted"].get("void") is None and described["states"]["withdrawn"]["void"]
    data = {
        "petitioner_name": "王某",
        "county": "芗城区",
        "channel": "来访",
        "persons": 3,
        "matter": "劳动报酬",
        "content": "企业拖欠工资",
    }
    ref = new(db_url, "petition", "lin", archive_ref=a, **data)
    r = casework(
        db_url,
        "case",
        "new",
        "petition",
        "--as",
        "lin",
        "--set",
        "archive_ref=ZZ-2026-999999",
        *[x for k, v in data.items() for x in ("--set", f"{k}={v}")],
    )
    assert r.rc == 1 and "no poverty_archive case" in r.err
    assert shown(db_url, ref)["deadline"] is not None
    assert fire(db_url, ref, "accept", "lin").rc == 0
    assert fire(db_url, ref, "handled", "he", "--set", "handling_result=已协调企业补发").rc == 0
    assert fire(db_url, ref, "answer", "wu", "--set", "reply_text=已书面答复").rc == 0
    before = shown(db_url, ref)
    unchanged(db_url, ref, fire(db_url, ref, "close", "lin"), "revisit_result", before)
    assert fire(db_url, ref, "close", "lin", "--set", "revisit_result=已回访", "--set", "satisfaction=满意").rc == 0
    assert shown(db_url, ref)["state"] == "closed"
    other = new(db_url, "petition", "lin", **data)
    before = shown(db_url, other)
    unchanged(db_url, other, fire(db_url, other, "decline", "lin"), "comment", before)
    assert fire(db_url, other, "decline", "lin", "--comment", "不属于工会受理范围，已告知").rc == 0


def test_petition_extended_once_and_a_send_back_is_no_new_60_days(db_url: str) -> None:
    """信访条例 art. 33: 60 days, extendable once by at most 30 with approval; a second extension is refused."""
    office(db_url)
    add_user(db_url, "he", ["handler"], "芗城区")
    add_user(db_url, "zhou", ["supervisor"], "芗城区")
    data = {"petitioner_name": "王某", "county": "芗城区", "channel": "来信", "persons": 1}
    data |= {"matter": "工伤", "content": "工伤认定迟迟未办"}
    ref = new(db_url, "petition", "lin", **data)
    assert fire(db_url, ref, "accept", "lin").rc == 0
    described = json.loads(casework(db_url, "workflow", "show", "petition", "--json").out)
    assert described["states"]["handle_extended"]["deadline"] == "30 days"
    before = shown(db_url, ref)
    unchanged(db_url, ref, fire(db_url, ref, "extend", "zhou"), "comment", before)  # the approval is recorded
    unchanged(db_url, ref, fire(db_url, ref, "extend", "he", "--comment", "申请延期"), "extend", before)
    assert fire(db_url, ref, "extend", "zhou", "--comment", "经批准延期30日，已告知信访人").rc == 0
    extended = shown(db_url, ref)
    assert extended["state"] == "handle_extended"
    # 30 days from now (a deadline on a public holiday moves to the next working day), not 60
    days = (dt.date.fromisoformat(extended["deadline"][:10]) - dt.datetime.now(SHANGHAI).date()).days
    assert 30 <= days <= 40, extended["deadline"]
    # a second extension: refused, nothing changed
    unchanged(db_url, ref, fire(db_url, ref, "extend", "zhou", "--comment", "再次延期"), "extend", extended)
    # handled, then sent back: re-handling is not a fresh 60-day handle, and cannot be extended again
    assert fire(db_url, ref, "handled", "he", "--set", "handling_result=已督促认定").rc == 0
    assert fire(db_url, ref, "redo", "zhou", "--comment", "办理不到位").rc == 0
    again = shown(db_url, ref)
    assert again["state"] == "rehandle"
    unchanged(db_url, ref, fire(db_url, ref, "extend", "zhou", "--comment", "再次延期"), "extend", again)


# ----------------------------------------------------------------- 技能奖励


def test_skills_reward_conditions_amounts_and_once_per_person_and_level(db_url: str) -> None:
    office(db_url)
    base = {
        "applicant_name": "郑师傅",
        "id_number": ID_A,
        "county": "芗城区",
        "employer": "漳州机床厂",
        "certificate_no": "GJ-001",
        "reward_year": 2026,
    }

    def apply(**extra: Any) -> str:
        return new(db_url, "skills_reward", "lin", **{**base, **extra})

    assert shown(db_url, apply(level="高级技师", certified_year=2026, contract_years=3))["data"]["reward"] == "2000.00"
    assert shown(db_url, apply(level="技师", certified_year=2026, contract_years=3))["data"]["reward"] == "1000.00"
    for bad in ({"contract_years": 2, "certified_year": 2026}, {"contract_years": 5, "certified_year": 2025}):
        ref = apply(level="技师", **bad)
        before = shown(db_url, ref)
        unchanged(db_url, ref, fire(db_url, ref, "submit", "lin"), "劳动合同期限不少于3年", before)
    granted = []
    for level in ("技师", "技师", "高级技师"):
        ref = apply(level=level, certified_year=2026, contract_years=3)
        assert fire(db_url, ref, "submit", "lin").rc == 0
        assert fire(db_url, ref, "pass_review", "wu").rc == 0
        granted.append(ref)
    assert fire(db_url, granted[0], "grant", "su").rc == 0
    before = shown(db_url, granted[1])
    unchanged(db_url, granted[1], fire(db_url, granted[1], "grant", "su"), "每人每个等级奖励一次", before)
    assert fire(db_url, granted[2], "grant", "su").rc == 0  # the other level: its own reward
    assert casework(db_url, "check").rc == 0
