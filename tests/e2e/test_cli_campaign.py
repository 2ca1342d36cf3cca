"""``casework campaign`` as an operator types it: set, list, cancel, run; each refusal exits 1 and changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from db import make_engine
from engine import Casework, FixedClock
from tests.e2e.runner import ROOT, casework
from tests.integration.test_linked_cases import archive

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
WORKFLOWS = ROOT / "workflows"
USERS = [
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
    ("su", "苏文斌", ["approver"], ["*"]),
    ("zhao", "赵敏", ["organiser"], ["*"]),
    ("qian", "钱进", ["organiser"], ["芗城区"]),
]


def today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def office(url: str, archives: int = 0) -> list[str]:
    """The bundled workflows and users; ``archives`` filed archives, filed a month ago (their publicity run through)."""
    assert casework(url, "init").rc == 0
    for name in ("poverty_archive", "warmth", "golden_autumn", "legal_aid", "petition", "skills_reward", "medical_aid"):
        r = casework(url, "workflow", "load", str(WORKFLOWS / f"{name}.yaml"))
        assert r.rc == 0, r.err
    engine = make_engine(url)
    try:
        clock = FixedClock(dt.datetime.now(SHANGHAI) - dt.timedelta(days=40))
        svc = Casework(engine, clock)
        for user in USERS:
            svc.add_user(*user)
        return [archive(svc, i) for i in range(archives)]
    finally:
        engine.dispose()


@pytest.fixture
def url(db_url: str) -> Iterator[str]:
    yield db_url


def listed(url: str) -> list[dict[str, Any]]:
    r = casework(url, "campaign", "list", "--json")
    assert r.rc == 0, r.err
    rows: list[dict[str, Any]] = json.loads(r.out)
    return rows


def test_set_list_run_once(url: str) -> None:
    refs = office(url, 2)
    assert [(c["workflow"], c["status"]) for c in listed(url)] == [("warmth", "not set")]
    later = dt.date(today().year, 12, 31)  # same year as today, never before it
    r = casework(url, "campaign", "set", "warmth", "--on", later.isoformat(), "--as", "zhao")
    assert r.rc == 0, r.err
    assert r.out.startswith(f"春节送温暖 (warmth) {later.year}: set for {later.isoformat()} by zhao\n")
    r = casework(url, "campaign", "set", "warmth", "--on", today().isoformat(), "--as", "zhao")
    replaced = f"replacing {later.isoformat()} (set by zhao)" if later != today() else "(the same date as before)"
    assert r.rc == 0 and replaced in r.out, r.out
    (row,) = listed(url)
    assert (row["date"], row["status"], row["set_by"]) == (today().isoformat(), "pending", "zhao")
    # due today: the scheduler's pass runs it, once
    r = casework(url, "timers", "run-due", "--once")
    assert r.rc == 0, r.err
    assert f"job warmth:campaign {today().year} ({today().isoformat()}): 春节送温暖 {today().year}: opened 2" in r.out
    r = casework(url, "timers", "run-due", "--once")
    assert "warmth:campaign" not in r.out
    cases = json.loads(casework(url, "case", "list", "--workflow", "warmth", "--json").out)
    assert sorted(c["data"]["archive_ref"] for c in cases) == sorted(refs)
    (row,) = listed(url)
    assert (row["status"], row["opened"], row["skipped"]) == ("ran", 2, 0)
    table = casework(url, "campaign", "list").out
    assert "春节送温暖" in table and "ran" in table
    # the year's campaign ran: it cannot be set, cancelled or run again
    for args in (
        ["set", "warmth", "--on", today().isoformat()],
        ["cancel", "warmth", "--year", str(today().year)],
        ["run", "warmth"],
    ):
        r = casework(url, "campaign", *args, "--as", "zhao")
        assert r.rc == 1 and "already ran" in r.err, (args, r.err)
    assert listed(url) == [row]
    assert casework(url, "check").rc == 0


def test_refusals_change_nothing(url: str) -> None:
    office(url)
    on = (today() + dt.timedelta(days=10)).isoformat()
    cases = [
        (["set", "warmt", "--on", on, "--as", "zhao"], "did you mean 'warmth'?"),
        (["set", "golden_autumn", "--on", on, "--as", "zhao"], "declares no campaign"),
        (["set", "warmth", "--on", on, "--as", "lin"], "that needs role organiser"),
        (["set", "warmth", "--on", on, "--as", "qian"], "set by someone who covers them all"),
        (["set", "warmth", "--on", (today() - dt.timedelta(days=1)).isoformat(), "--as", "zhao"], "is before today"),
        (["cancel", "warmth", "--year", str(today().year), "--as", "zhao"], "no date is set"),
        (["run", "warmth", "--as", "zhao"], "no date is set"),
    ]
    for args, words in cases:
        r = casework(url, "campaign", *args)
        assert r.rc == 1 and words in r.err, (args, r.err)
        assert [c["status"] for c in listed(url)] == ["not set"], args
    r = casework(url, "campaign", "set", "warmth", "--on", on, "--as", "zhao", "--json")
    assert json.loads(r.out)["replaced"] is None
    r = casework(url, "campaign", "run", "warmth", "--as", "zhao")
    assert r.rc == 1 and "not yet due" in r.err, r.err
    r = casework(url, "campaign", "cancel", "warmth", "--year", on[:4], "--as", "zhao")
    assert r.rc == 0 and "cancelled by zhao" in r.out, r.err
    r = casework(url, "timers", "run-due", "--once")
    assert "warmth:campaign" not in r.out


def test_run_now_opens_the_cases_of_a_campaign_due_today(url: str) -> None:
    office(url, 1)
    assert casework(url, "campaign", "set", "warmth", "--on", today().isoformat(), "--as", "zhao").rc == 0
    r = casework(url, "campaign", "run", "warmth", "--as", "zhao")
    assert r.rc == 0 and "opened 1 warmth case" in r.out, r.err
    assert "warmth:campaign" not in casework(url, "timers", "run-due", "--once").out


def test_next_years_campaign_set_in_december_after_this_years_ran(url: str, tmp_path: Any) -> None:
    """送温暖 for a late-January Spring Festival starts in December: --year names the programme year."""
    refs = office(url, 2)
    year = today().year
    assert casework(url, "campaign", "set", "warmth", "--on", today().isoformat(), "--as", "zhao").rc == 0
    assert casework(url, "timers", "run-due", "--once").rc == 0
    december = dt.date(year, 12, 31)
    # the date's year is this year's, which ran: refused, and it says how to name next year's
    r = casework(url, "campaign", "set", "warmth", "--on", december.isoformat(), "--as", "zhao")
    assert r.rc == 1 and "already ran" in r.err, r.err
    # a date outside the programme year's window: refused with what would be right, nothing changed
    before = listed(url)
    r = casework(
        url, "campaign", "set", "warmth", "--on", december.isoformat(), "--year", str(year + 2), "--as", "zhao"
    )
    assert r.rc == 1, r.err
    assert f"a {year + 2} campaign's date is between {year + 1}-11-01 and {year + 2}-12-31" in r.err, r.err
    assert listed(url) == before
    # next year's rate differs, so the opened cases show which row of the table they were priced by
    source = (WORKFLOWS / "warmth.yaml").read_text(encoding="utf-8")
    rates = '      - {year: ">= 2016", per_person: 1000}\n'
    assert rates in source and "\nversion: 1\n" in source
    source = source.replace("\nversion: 1\n", "\nversion: 2\n").replace(
        rates,
        f'      - {{year: "[2016..{year}]", per_person: 1000}}\n      - {{year: ">= {year + 1}", per_person: 1200}}\n',
    )
    source = source[: source.index("\ntests:")] + "\n"  # its examples price 2027 at the bundled rate
    (tmp_path / "warmth.yaml").write_text(source, encoding="utf-8")
    (tmp_path / "templates").symlink_to(WORKFLOWS / "templates")
    r = casework(url, "workflow", "load", str(tmp_path / "warmth.yaml"))
    assert r.rc == 0, r.err
    r = casework(
        url, "campaign", "set", "warmth", "--on", december.isoformat(), "--year", str(year + 1), "--as", "zhao"
    )
    assert r.rc == 0, r.err
    assert r.out.startswith(f"春节送温暖 (warmth) {year + 1}: set for {december.isoformat()} by zhao\n"), r.out
    assert [(c["year"], c["date"], c["status"]) for c in listed(url)] == [
        (year, today().isoformat(), "ran"),
        (year + 1, december.isoformat(), "pending"),
    ]
    # on 31 December the scheduler runs next year's campaign: its cases are of next year
    engine = make_engine(url)
    try:
        clock = FixedClock(dt.datetime(year, 12, 31, 9, 0, tzinfo=SHANGHAI))
        done = Casework(engine, clock).run_due_schedules()
    finally:
        engine.dispose()
    ran = [(job, on) for job, on, _ in done if job.startswith("warmth:campaign")]
    assert ran == [(f"warmth:campaign {year + 1}", december.isoformat())], done
    cases = json.loads(casework(url, "case", "list", "--workflow", "warmth", "--json").out)
    opened = [c["data"] for c in cases if c["data"]["year"] == year + 1]
    assert sorted(d["archive_ref"] for d in opened) == sorted(refs)
    assert {d["per_person"] for d in opened} == {"1200.00"}
    assert sum(c["data"]["year"] == year for c in cases) == 2  # this year's untouched
    assert [(c["year"], c["status"], c["opened"]) for c in listed(url)] == [(year, "ran", 2), (year + 1, "ran", 2)]
    # cancel and list speak of the programme year
    r = casework(url, "campaign", "cancel", "warmth", "--year", str(year + 1), "--as", "zhao")
    assert r.rc == 1 and f"of {year + 1} already ran" in r.err, r.err
