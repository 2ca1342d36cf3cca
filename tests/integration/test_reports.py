"""The office's reports (``engine.reports``): each definition at its boundary, and SQLite = PostgreSQL.

One small office is built through the engine with a clock the test moves
(:func:`build_office`): archives on a version 2 (``filed`` final) and a
version 3 (``filed`` → ``exited``) of a small ``poverty_archive``, one
exiting exactly at 00:00 on 1 January 2026 in Shanghai and one a second
before; a grant programme with amounts of 0.10 and 1.005 yuan; a year-field
programme; petitions closed, void, overdue, paused and not yet due. Every
figure below is worked out by hand from that story.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from casework.export import sheet_json
from db import make_engine
from engine import Casework, FixedClock, InputError, RefusedError, WorkflowNotFound, load_definition
from engine.errors import Code
from engine.sheets import Sheet

SH = dt.timezone(dt.timedelta(hours=8))
#: "now" for every report of the office (a Friday)
NOW = dt.datetime(2026, 4, 10, 9, 0, tzinfo=SH)

_COUNTIES = "[芗城区, 龙文区, 漳浦县]"

ARCHIVE = """\
workflow: poverty_archive
version: VERSION
title: 困难职工建档立卡
timezone: Asia/Shanghai
ref_prefix: ZZ
roles: {clerk: 基层工会经办人, reviewer: 县级工会审核人}
fields:
  applicant_name: {type: text, label: 申请人姓名, required: true, pii: name, max: 40}
  household_type: {type: choice, label: 困难类型, choices: [低保户, 低保边缘户, 意外致困户]}
  county:         {type: choice, label: 所属县区, scope: true, choices: COUNTIES}
states:
  apply:     {label: 申请, initial: true}
  review:    {label: 审核, deadline: 5 working days}
  filed:     {label: 已建档FINAL}
EXITED  withdrawn: {label: 已撤回, final: true, void: true}
transitions:
  submit:   {label: 提交申请, from: apply, to: review, by: clerk}
  record:   {label: 录入系统, from: review, to: filed, by: reviewer}
  withdraw: {label: 撤回申请, from: [apply, review], to: withdrawn, by: clerk, comment: required}
EXIT"""


def archive_yaml(version: int) -> str:
    """Version 2: ``filed`` is final (no exit yet); version 3: ``filed`` → ``exited`` (解困脱困)."""
    v3 = version >= 3
    text = ARCHIVE.replace("VERSION", str(version)).replace("COUNTIES", _COUNTIES)
    text = text.replace("FINAL", "" if v3 else ", final: true")
    text = text.replace("EXITED", "  exited:    {label: 解困脱困, final: true}\n" if v3 else "")
    exit_step = "  exit:     {label: 解困脱困, from: filed, to: exited, by: reviewer, comment: required}\n"
    return text.replace("EXIT", exit_step if v3 else "")


GRANT = f"""\
workflow: grant_test
version: 1
title: 送温暖测试
timezone: Asia/Shanghai
ref_prefix: WT
roles: {{clerk: 基层工会经办人, reviewer: 县级工会审核人}}
fields:
  applicant_name: {{type: text, label: 申请人姓名, required: true, pii: name, max: 40}}
  county:         {{type: choice, label: 所属县区, scope: true, choices: {_COUNTIES}}}
  amount:         {{type: decimal, label: 慰问金（元）, min: 0, max: 100000}}
  people:         {{type: integer, label: 人数, min: 1, max: 20}}
states:
  apply:    {{label: 申请, initial: true}}
  approved: {{label: 已核定}}
  paid:     {{label: 已发放, final: true}}
  rejected: {{label: 不予补助, final: true, void: true}}
transitions:
  approve: {{label: 核定, from: apply, to: approved, by: reviewer}}
  pay:     {{label: 发放, from: approved, to: paid, by: clerk}}
  reject:  {{label: 不予补助, from: apply, to: rejected, by: reviewer, comment: required}}
programme:
  label: 送温暖
  amount: amount
  people: people
  granted: [approved, paid]
  paid: paid
"""

REWARD = f"""\
workflow: reward_test
version: 1
title: 技能奖励测试
timezone: Asia/Shanghai
ref_prefix: JN
roles: {{clerk: 基层工会经办人, reviewer: 县级工会审核人}}
fields:
  applicant_name: {{type: text, label: 申请人姓名, required: true, pii: name, max: 40}}
  county:         {{type: choice, label: 所属县区, scope: true, choices: {_COUNTIES}}}
  reward:         {{type: integer, label: 奖励金额（元）, min: 0, max: 100000}}
  award_year:     {{type: integer, label: 奖励年度, min: 2000, max: 2100}}
states:
  apply:   {{label: 申请, initial: true}}
  granted: {{label: 已发放, final: true}}
transitions:
  grant: {{label: 发放, from: apply, to: granted, by: reviewer}}
programme:
  label: 技能人才奖励
  amount: reward
  year: award_year
  granted: granted
  paid: granted
"""

PETITION = f"""\
workflow: petition
version: 1
title: 职工信访
timezone: Asia/Shanghai
ref_prefix: XF
roles: {{clerk: 基层工会经办人, reviewer: 县级工会审核人}}
fields:
  applicant_name: {{type: text, label: 信访人, required: true, pii: name, max: 40}}
  county:         {{type: choice, label: 所属县区, scope: true, choices: {_COUNTIES}}}
states:
  register: {{label: 登记, initial: true}}
  handle:   {{label: 办理, deadline: 2 working days}}
  closed:   {{label: 已办结, final: true}}
  dropped:  {{label: 不予受理, final: true, void: true}}
transitions:
  accept: {{label: 受理, from: register, to: handle, by: clerk}}
  close:  {{label: 办结, from: handle, to: closed, by: reviewer}}
  drop:   {{label: 不予受理, from: register, to: dropped, by: clerk, comment: required}}
"""


def at(text: str) -> dt.datetime:
    """A Shanghai wall-clock time: "2026-01-01 00:00:00"."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


class Office:
    """The engine with a clock the story moves; refs by the test's own names."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.clock = FixedClock(at("2025-01-02 09:00:00"))
        self.svc = Casework(self.engine, self.clock)
        self.refs: dict[str, str] = {}

    def open(self, name: str, workflow: str, when: str, **data: Any) -> str:
        self.clock.set(at(when))
        data.setdefault("applicant_name", "陈志强")
        # the programmes' first step is the reviewer's: they open those cases
        opener = "wu" if workflow in ("grant_test", "reward_test") else "lin"
        self.refs[name] = self.svc.create_case(workflow, opener, data).ref
        return self.refs[name]

    def fire(self, name: str, trigger: str, when: str, actor: str = "wu") -> None:
        self.clock.set(at(when))
        comment = "依规办理" if trigger in ("exit", "withdraw", "drop", "reject") else None
        self.svc.fire(self.refs[name], trigger, actor, comment=comment)

    def file(self, name: str, when: str, county: str, kind: str) -> None:
        """Open an archive at ``when`` and file it the next day."""
        self.open(name, "poverty_archive", when, county=county, household_type=kind)
        day = at(when) + dt.timedelta(days=1)
        self.fire(name, "submit", day.strftime("%Y-%m-%d %H:%M:%S"), "lin")
        self.fire(name, "record", (day + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))

    def report(self, name: str, **options: Any) -> Sheet:
        self.clock.set(NOW)
        return self.svc.report(name, **options)


def build_office(url: str) -> Office:
    """The office's story, from January 2025 to April 2026 (times in Shanghai)."""
    o = Office(url)
    svc = o.svc
    svc.load_workflow(load_definition(archive_yaml(2), "poverty_archive_v2.yaml"))
    for text, file in ((GRANT, "grant.yaml"), (REWARD, "reward.yaml"), (PETITION, "petition.yaml")):
        svc.load_workflow(load_definition(text, file))
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    svc.add_user("wu", "吴明辉", ["reviewer"], ["*"])
    svc.add_user("chen", "陈建华", ["clerk"], ["芗城区"])
    # A: filed on version 2, where 已建档 is final; it stays there
    o.file("A", "2025-03-01 10:00:00", "芗城区", "低保户")
    o.clock.set(at("2025-04-01 09:00:00"))
    svc.load_workflow(load_definition(archive_yaml(3), "poverty_archive.yaml"))
    # B exits at the first instant of 2026 in Shanghai (16:00 on 31 December in UTC); C a second before it
    o.file("B", "2025-06-01 10:00:00", "芗城区", "低保边缘户")
    o.fire("B", "exit", "2026-01-01 00:00:00")
    o.file("C", "2025-06-02 10:00:00", "芗城区", "低保户")
    o.fire("C", "exit", "2025-12-31 23:59:59")
    o.file("D", "2025-07-01 10:00:00", "龙文区", "意外致困户")
    # G: withdrawn, never filed
    o.open("G", "poverty_archive", "2025-11-03 10:00:00", county="漳浦县", household_type="低保户")
    o.fire("G", "withdraw", "2025-11-04 10:00:00", "lin")
    # filed in 2026: E also exits in 2026; F and H stay; R waits in review past its deadline
    o.file("E", "2026-02-02 10:00:00", "芗城区", "低保户")
    o.fire("E", "exit", "2026-03-02 10:00:00")
    o.file("F", "2026-02-10 10:00:00", "龙文区", "低保户")
    o.file("H", "2026-03-02 10:00:00", "漳浦县", "低保边缘户")
    o.open("R", "poverty_archive", "2026-03-16 10:00:00", county="龙文区", household_type="低保户")
    o.fire("R", "submit", "2026-03-16 11:00:00", "lin")
    # the grant programme: three of 0.10 (two paid), one of 1.005 (half a fen: rounds up), one rejected,
    # one on each side of 1 January 2026 in Shanghai
    for name, when, amount, people in (
        ("W1", "2025-12-31 23:30:00", "0.10", 2),
        ("W2", "2026-01-01 00:10:00", "0.10", 3),
        ("W3", "2026-01-05 09:00:00", "0.10", 1),
        ("W4", "2026-01-06 09:00:00", "1.005", 4),
        ("W5", "2026-01-07 09:00:00", "500", 1),
    ):
        o.open(name, "grant_test", when, county="芗城区", amount=amount, people=people)
    for name in ("W1", "W2", "W3", "W4"):
        o.fire(name, "approve", "2026-01-08 09:00:00")
    for name in ("W1", "W2", "W3"):
        o.fire(name, "pay", "2026-01-09 09:00:00", "lin")
    o.fire("W5", "reject", "2026-01-09 10:00:00")
    # the reward: its year is the field's, not the year the case was opened
    o.open("J1", "reward_test", "2026-01-03 09:00:00", county="龙文区", reward=2000, award_year=2025)
    o.fire("J1", "grant", "2026-01-04 09:00:00")
    o.open("J2", "reward_test", "2026-01-03 10:00:00", county="龙文区", reward=1000, award_year=2026)
    o.fire("J2", "grant", "2026-01-04 10:00:00")
    # petitions: P1 closed, P2 dropped (void), P3 overdue, P4 past its deadline but paused, P5 not yet due,
    # P6 registered in 2025 and closed; 漳浦县's only petition is void
    for name, county, when in (
        ("P1", "芗城区", "2026-03-02 09:00:00"),
        ("P2", "芗城区", "2026-03-02 10:00:00"),
        ("P3", "芗城区", "2026-03-03 09:00:00"),
        ("P4", "龙文区", "2026-03-03 10:00:00"),
        ("P5", "龙文区", "2026-04-09 09:00:00"),
        ("P6", "龙文区", "2025-12-01 09:00:00"),
        ("P7", "漳浦县", "2026-03-04 09:00:00"),
    ):
        o.open(name, "petition", when, county=county)
    o.fire("P1", "accept", "2026-03-02 09:30:00", "lin")
    o.fire("P1", "close", "2026-03-03 09:30:00")
    o.fire("P2", "drop", "2026-03-02 10:30:00", "lin")
    o.fire("P3", "accept", "2026-03-03 09:30:00", "lin")
    o.fire("P4", "accept", "2026-03-03 10:30:00", "lin")
    o.clock.set(at("2026-03-04 10:00:00"))
    svc.pause(o.refs["P4"], "wu", "待申请人补充材料")
    o.fire("P5", "accept", "2026-04-09 09:30:00", "lin")
    o.fire("P6", "accept", "2025-12-01 09:30:00", "lin")
    o.fire("P6", "close", "2025-12-02 09:30:00")
    o.fire("P7", "drop", "2026-03-04 09:30:00", "lin")
    return o


@pytest.fixture
def office(db_url: str) -> Iterator[Office]:
    o = build_office(db_url)
    yield o
    o.engine.dispose()


def by(sheet: Sheet, key: str = "county") -> dict[str, dict[str, Any]]:
    return {str(row[key]): dict(row) for row in sheet.rows}


# ------------------------------------------------------------------ archives


def test_archives_counts_each_state_county_and_type_now_and_v2_filed_counts_as_filed(office: Office) -> None:
    sheet = office.report("archives")
    rows = {(r["state"], r["county"]): r for r in sheet.rows}
    # A (version 2, filed final) and D, F, H (version 3) are 已建档: by the state's name, whatever the version
    assert rows[("已建档", "芗城区")]["kind_0"] == 1  # A, 低保户
    assert rows[("已建档", "龙文区")]["total"] == 2  # D, F
    assert rows[("已建档", "漳浦县")]["total"] == 1  # H
    assert rows[("已建档", "小计")]["total"] == 4
    assert rows[("解困脱困", "芗城区")]["total"] == 3  # B, C, E
    assert rows[("解困脱困", "芗城区")]["kind_1"] == 1  # B was 低保边缘户
    assert rows[("审核", "龙文区")]["total"] == 1  # R
    assert rows[("已撤回", "漳浦县")]["total"] == 1  # G
    assert rows[("合计", "")]["total"] == 9
    assert [c.title for c in sheet.columns] == ["状态", "县区", "低保户", "低保边缘户", "意外致困户", "合计"]


def test_archives_as_of_a_date_counts_that_days_events_and_not_the_next_instants(office: Office) -> None:
    # the end of 31 December 2025: C exited at 23:59:59 (counted); B's exit at 00:00 on 1 January is the next day
    day = {(r["state"], r["county"]): r["total"] for r in office.report("archives", as_of=dt.date(2025, 12, 31)).rows}
    assert day[("已建档", "芗城区")] == 2  # A, B
    assert day[("解困脱困", "芗城区")] == 1  # C
    assert day[("已撤回", "漳浦县")] == 1  # G
    assert ("审核", "龙文区") not in day  # R was opened in 2026
    assert day[("合计", "")] == 5  # A B C D G: the archives opened by then
    # an instant: events at or before it. 00:00 on 1 January takes B's exit in
    instant = office.report("archives", as_of=at("2026-01-01 00:00:00"))
    rows = {(r["state"], r["county"]): r["total"] for r in instant.rows}
    assert rows[("已建档", "芗城区")] == 1 and rows[("解困脱困", "芗城区")] == 2
    # a second before it, B is still on file
    before = office.report("archives", as_of=at("2025-12-31 23:59:59"))
    assert {(r["state"], r["county"]): r["total"] for r in before.rows}[("已建档", "芗城区")] == 2
    # before R's submit, it was in 申请; after, in 审核
    early = office.report("archives", as_of=at("2026-03-16 10:30:00"))
    late = office.report("archives", as_of=at("2026-03-16 11:00:00"))
    assert ("申请", "龙文区") in {(r["state"], r["county"]) for r in early.rows}
    assert ("审核", "龙文区") in {(r["state"], r["county"]) for r in late.rows}
    # before the first archive: nothing but the total
    assert [r["total"] for r in office.report("archives", as_of=dt.date(2025, 2, 28)).rows] == [0]


def test_archives_as_of_today_is_now_and_a_later_date_is_refused(office: Office) -> None:
    today = office.report("archives", as_of=NOW.date())
    assert today.rows == office.report("archives").rows
    with pytest.raises(InputError, match="after today"):
        office.report("archives", as_of=NOW.date() + dt.timedelta(days=1))


# ------------------------------------------------------------------ exit rate


def test_exit_rate_counts_archives_on_file_at_new_year_in_shanghai(office: Office) -> None:
    sheet = office.report("exit-rate", year=2026)
    rows = by(sheet)
    # 芗城区: A (v2) and B (exited at 00:00 on 1 January: on file when the year began) — C left a second earlier
    assert rows["芗城区"] | {} == {
        "county": "芗城区",
        "on_file": 2,
        "exited": 1,
        "rate": Decimal("0.5000"),
        "target": Decimal("0.30"),
        "met": "是",
        "new": 1,  # E: filed and exited in 2026, not in the rate
        "new_exited": 1,
    }
    assert (rows["龙文区"]["on_file"], rows["龙文区"]["exited"], rows["龙文区"]["met"]) == (1, 0, "否")
    assert rows["龙文区"]["new"] == 1  # F
    # 漳浦县: nothing on file when the year began (G withdrawn, H filed in March) — no rate, no division
    assert (rows["漳浦县"]["on_file"], rows["漳浦县"]["rate"], rows["漳浦县"]["met"]) == (0, "—", "—")
    total = rows["合计"]
    assert (total["on_file"], total["exited"], total["rate"], total["met"]) == (3, 1, Decimal("0.3333"), "是")
    assert (total["new"], total["new_exited"]) == (3, 1)


def test_exit_rate_of_2025_has_nothing_on_file_at_its_start(office: Office) -> None:
    rows = by(office.report("exit-rate", year=2025))
    # every archive was filed during 2025: none in the denominator; C filed and exited within it
    assert rows["合计"]["on_file"] == 0 and rows["合计"]["rate"] == "—" and rows["合计"]["met"] == "—"
    assert (rows["芗城区"]["new"], rows["芗城区"]["new_exited"]) == (3, 1)  # A, B, C; C exited
    assert "漳浦县" not in rows  # G was never filed


def test_exit_rate_needs_a_real_year(office: Office) -> None:
    for year, hint in ((26, "did you mean 2026"), (12026, "did you mean 2026"), (1999, "from 2000 to 2026")):
        with pytest.raises(InputError, match=hint) as refused:
            office.report("exit-rate", year=year)
        assert refused.value.exit_code == 2
    with pytest.raises(InputError, match="--year"):
        office.report("exit-rate")


# ------------------------------------------------------------------ programmes


def test_programmes_sum_exact_cents_by_year_in_shanghai(office: Office) -> None:
    sheet = office.report("programmes")
    rows = {(r["programme"], r["year"], r["county"]): r for r in sheet.rows}
    # W1 was opened at 23:30 on 31 December 2025 in Shanghai: 2025; W2 ten minutes past midnight: 2026
    w2025 = rows[("送温暖", 2025, "芗城区")]
    assert (w2025["cases"], w2025["granted_cases"], w2025["people"]) == (1, 1, 2)
    assert (w2025["granted"], w2025["paid"]) == (Decimal("0.10"), Decimal("0.10"))
    w2026 = rows[("送温暖", 2026, "芗城区")]
    # W2 + W3 + W4 granted (0.10 + 0.10 + 1.005 → 1.01 half up); W5 rejected: counted as a case, not granted
    assert (w2026["cases"], w2026["granted_cases"], w2026["people"]) == (4, 3, 8)
    assert w2026["granted"] == Decimal("1.21")
    assert w2026["paid"] == Decimal("0.20")  # W2, W3: paid ⊂ granted
    assert str(w2026["granted"]) == "1.21" and isinstance(w2026["granted"], Decimal)
    # the reward's year is its field: J1 opened in 2026 for 2025; no people field: one person a case
    assert rows[("技能人才奖励", 2025, "龙文区")]["granted"] == Decimal("2000.00")
    assert rows[("技能人才奖励", 2026, "龙文区")]["people"] == 1
    only = office.report("programmes", year=2026)
    assert {(r["programme"], r["year"]) for r in only.rows} == {("送温暖", 2026), ("技能人才奖励", 2026)}


def test_three_times_ten_fen_is_thirty_fen(office: Office) -> None:
    o = office
    for i in range(3):
        o.open(f"X{i}", "grant_test", "2026-04-01 09:00:00", county="龙文区", amount="0.10", people=1)
        o.fire(f"X{i}", "approve", "2026-04-01 10:00:00")
    row = next(
        r for r in o.report("programmes", year=2026).rows if r["programme"] == "送温暖" and r["county"] == "龙文区"
    )
    assert row["granted"] == Decimal("0.30") and str(row["granted"]) == "0.30"


def test_programmes_take_next_year_for_a_year_field_and_refuse_a_wrong_year(office: Office) -> None:
    o = office
    o.open("J3", "reward_test", "2026-04-01 09:00:00", county="芗城区", reward=500, award_year=2027)
    o.fire("J3", "grant", "2026-04-01 10:00:00")
    ahead = o.report("programmes", year=2027)
    assert [(r["programme"], r["year"], r["granted"]) for r in ahead.rows] == [
        ("技能人才奖励", 2027, Decimal("500.00"))
    ]
    for year in (2028, 26, 12026):
        with pytest.raises(InputError, match="from 2000 to 2027"):
            o.report("programmes", year=year)


# ------------------------------------------------------------------ petitions


def test_petitions_closed_void_open_overdue_and_the_rate(office: Office) -> None:
    rows = by(office.report("petitions"))
    # 芗城区: P1 closed, P2 dropped (void), P3 open and overdue → 1 ÷ (3 − 1)
    assert rows["芗城区"] == {
        "county": "芗城区",
        "registered": 3,
        "closed": 1,
        "void": 1,
        "rate": Decimal("0.5000"),
        "open": 1,
        "overdue": 1,
    }
    # 龙文区: P4 paused past its deadline (not overdue), P5 not yet due, P6 closed (in 2025)
    assert (rows["龙文区"]["open"], rows["龙文区"]["overdue"], rows["龙文区"]["closed"]) == (2, 0, 1)
    # 漳浦县: its only petition was not taken up — no rate
    assert (rows["漳浦县"]["registered"], rows["漳浦县"]["rate"]) == (1, "—")
    assert rows["合计"]["rate"] == Decimal("0.4000")  # 2 ÷ (7 − 2)
    in_2025 = by(office.report("petitions", year=2025))
    assert list(in_2025) == ["龙文区", "合计"] and in_2025["合计"]["rate"] == Decimal("1.0000")


def test_petitions_need_the_petition_workflow(db_url: str) -> None:
    svc = Casework(make_engine(db_url), FixedClock(NOW))
    svc.load_workflow(load_definition(GRANT, "grant.yaml"))
    with pytest.raises(WorkflowNotFound, match="petition"):
        svc.report("petitions")
    # no archive workflow either; programmes still runs
    assert svc.report("programmes").rows == []
    svc.engine.dispose()


# ------------------------------------------------------------------ overdue


def test_overdue_by_county_and_step_oldest_first(office: Office) -> None:
    sheet = office.report("overdue")
    assert [(r["workflow"], r["county"], r["state"], r["cases"]) for r in sheet.rows] == [
        ("职工信访", "芗城区", "办理（handle）", 1),  # P3: due at the end of 2026-03-05
        ("困难职工建档立卡", "龙文区", "审核（review）", 1),  # R: due 2026-03-23
        ("合计", "", "", 2),
    ]
    assert sheet.rows[0]["oldest"] == "2026-03-06 00:00"  # two working days: the end of 5 March
    assert [r["cases"] for r in office.report("overdue", county="漳浦县").rows] == [0]


# ------------------------------------------------------------------ filters and refusals


def test_county_and_user_scopes_filter_every_report(office: Office) -> None:
    only = by(office.report("exit-rate", year=2026, county="龙文区"))
    assert list(only) == ["龙文区", "合计"] and only["合计"]["on_file"] == 1
    mine = by(office.report("petitions", actor="chen"))  # chen covers 芗城区 only
    assert list(mine) == ["芗城区", "合计"]
    with pytest.raises(RefusedError, match="chen covers 芗城区, not 龙文区") as refused:
        office.report("petitions", actor="chen", county="龙文区")
    assert refused.value.code is Code.SCOPE_NOT_COVERED
    with pytest.raises(InputError, match="did you mean '芗城区'"):
        office.report("archives", county="芗城")


def test_unknown_report_and_misplaced_options_are_refused(office: Office) -> None:
    with pytest.raises(InputError, match="did you mean 'exit-rate'"):
        office.report("exit_rate", year=2026)
    with pytest.raises(InputError, match="archives report only"):
        office.report("petitions", as_of=dt.date(2026, 1, 1))
    with pytest.raises(InputError, match="no year"):
        office.report("overdue", year=2026)


# ------------------------------------------------------------------ both backends alike


@pytest.fixture
def both_backends(sqlite_template: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A fresh SQLite file and a fresh PostgreSQL database, side by side."""
    import shutil

    server = request.getfixturevalue("pg_server")
    if server is None:
        if os.environ.get("CASEWORK_PG_BINDIR"):
            pytest.fail("CASEWORK_PG_BINDIR is set but no PostgreSQL server could be found")
        pytest.skip("PostgreSQL unavailable")
    path = tmp_path / "parity.db"
    shutil.copy(sqlite_template, path)
    name = f"parity{os.getpid()}"
    url = server.create_database(name, template="casework_template")
    yield f"sqlite:///{path}", url
    server.drop_database(name)


ASKED: tuple[tuple[str, dict[str, Any]], ...] = (
    ("archives", {}),
    ("archives", {"as_of": dt.date(2025, 12, 31)}),
    ("archives", {"as_of": at("2026-01-01 00:00:00")}),
    ("exit-rate", {"year": 2026}),
    ("exit-rate", {"year": 2025}),
    ("exit-rate", {"year": 2026, "county": "漳浦县"}),
    ("programmes", {}),
    ("programmes", {"year": 2025}),
    ("petitions", {}),
    ("petitions", {"year": 2026, "actor": "chen"}),
    ("overdue", {}),
)


@pytest.mark.postgres
def test_every_report_is_the_same_on_sqlite_and_postgresql(both_backends: tuple[str, str]) -> None:
    sqlite, postgres = (build_office(url) for url in both_backends)
    try:
        for name, options in ASKED:
            one, other = sqlite.report(name, **options), postgres.report(name, **options)
            assert sheet_json(one) == sheet_json(other), (name, options)
            assert one.rows == other.rows  # the values themselves: Decimal for Decimal, int for int
            assert len(one.rows) > 1 or name == "overdue", (name, options)
    finally:
        sqlite.engine.dispose()
        postgres.engine.dispose()
