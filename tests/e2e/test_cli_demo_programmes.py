"""The demo runs every programme on its archives, and the office's reports show what it did.

One demo run (SQLite, in a folder of its own) is shared by the module (a copy of
the process's one run, which other modules' tests of the demo share too); the
reports are read back through the command as a supervisor types them
(``--format json``). A second run on a copy shows the demo runs again on its
own database: the yearly review and 送温暖 run once a year, so the second
run says they already ran and goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from casework.demo import EXITS, PROLOGUE_PER_COUNTY, programme_year
from tests.e2e.conftest import DemoRun
from tests.e2e.runner import Result, casework

YEAR = programme_year()
# the programmes that pay money (or, legal aid, give services free of charge: the fees waived);
# 信访 (petition) has no amount and is reported by the petitions report
MONEY = {"warmth", "golden_autumn", "medical_aid", "legal_aid", "skills_reward"}


class Demo:
    """The demo's database and what the command printed."""

    def __init__(self, folder: Path, run: Result) -> None:
        self.folder = folder
        self.path = folder / "demo.db"
        self.url = f"sqlite:///{self.path}"
        self.run = run

    def json(self, *args: str) -> Any:
        r = casework(self.url, *args)
        assert r.rc == 0, r.out + r.err
        return json.loads(r.out)


def run_demo(folder: Path) -> Result:
    r = casework(f"sqlite:///{folder / 'demo.db'}", "demo", cwd=folder)
    assert r.rc == 0, r.out + r.err
    return r


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The process's one demo run (tests/e2e/conftest.py), on a copy of its database for this module."""
    assert demo_run.result.rc == 0, demo_run.result.out + demo_run.result.err
    folder = tmp_path_factory.mktemp("demo")
    demo_run.copy(folder)
    return Demo(folder, demo_run.result)


def total(report: dict[str, Any], **where: Any) -> dict[str, Any]:
    rows: list[dict[str, Any]] = [r for r in report["rows"] if all(r.get(k) == v for k, v in where.items())]
    (row,) = rows
    return row


def test_the_exit_rate_of_the_year_has_a_denominator_and_exits(demo: Demo) -> None:
    report = demo.json("report", "exit-rate", "--year", str(YEAR), "--format", "json")
    row = total(report, county="合计")
    on_file, exited = PROLOGUE_PER_COUNTY * len(EXITS), sum(EXITS.values())
    assert (row["on_file"], row["exited"]) == (on_file, exited)
    assert Decimal(row["rate"]) == (Decimal(exited) / on_file).quantize(Decimal("0.0001"))
    assert row["met"] == "是" and report["target"] == "0.30"
    # one county falls short of the 30 % target
    assert total(report, county="龙海区")["met"] == "否"
    # the last month's archives were filed during the year: counted apart, not in the rate
    assert row["new"] > 0


def test_the_programmes_report_lists_the_five_money_programmes(demo: Demo) -> None:
    report = demo.json("report", "programmes", "--year", str(YEAR), "--format", "json")
    assert set(report["programmes"]) == MONEY
    for label in report["programmes"].values():
        rows = [r for r in report["rows"] if r["programme"] == label and r["county"] != "合计"]
        assert rows and all(r["year"] == YEAR for r in rows), label
        assert sum(Decimal(r["granted"]) for r in rows) > 0, label
        assert sum(Decimal(r["paid"]) for r in rows) > 0, label
    warmth = total(report, programme=report["programmes"]["warmth"], county="合计")
    # 1,000 yuan per person from 2016: the amount is the people counted, in thousands
    assert Decimal(warmth["granted"]) == warmth["people"] * 1000 and warmth["people"] >= warmth["granted_cases"]
    skills = [r for r in report["rows"] if r["programme"] == report["programmes"]["skills_reward"]]
    assert sum(r["cases"] for r in skills if r["county"] != "合计") == 3  # the refused one is counted as applied


def test_the_petitions_report_has_closed_and_overdue(demo: Demo) -> None:
    row = total(demo.json("report", "petitions", "--format", "json"), county="合计")
    assert row["closed"] > 0 and row["overdue"] > 0
    assert row["registered"] == row["closed"] + row["open"] + row["void"]
    overdue = demo.json("report", "overdue", "--format", "json")
    assert any(r["workflow"] == "职工信访" and r["cases"] > 0 for r in overdue["rows"])


def test_the_warmth_campaign_opened_a_case_per_filed_household(demo: Demo) -> None:
    cases = demo.json("case", "list", "--workflow", "warmth", "--json")
    kept = PROLOGUE_PER_COUNTY * len(EXITS) - sum(EXITS.values())
    assert len(cases) == kept  # the households that exited in January are not condoled
    assert {c["state"] for c in cases} == {"paid"} and {c["created_by"] for c in cases} == {"system"}
    assert {c["data"]["year"] for c in cases} == {YEAR}
    (campaign,) = demo.json("campaign", "list", "--json")
    assert (campaign["workflow"], campaign["year"], campaign["status"]) == ("warmth", YEAR, "ran")


def test_the_demo_prints_the_refusals_and_the_reports(demo: Demo) -> None:
    out = demo.run.out
    assert "NOT refused" not in out and "audit verify: intact" in out
    # medical aid below 6,000 and a 2-year contract refused at submit; the second 金秋助学 grant by the limit
    assert out.count("(guard_failed)") == 2 and "(limit_reached)" in out
    for args in ("archives", f"exit-rate --year {YEAR}", f"programmes --year {YEAR}", "petitions", "overdue"):
        assert f"casework report {args}" in out
    assert "解困脱困率" in out and "帮扶项目统计" in out and "职工信访：办理情况" in out
    assert out.index(f"casework report exit-rate --year {YEAR}") < out.index("audit verify: intact")


def test_check_and_audit_verify_are_clean_and_nothing_is_in_the_future(demo: Demo) -> None:
    for args in (("check",), ("audit", "verify")):
        r = casework(demo.url, *args)
        assert r.rc == 0, r.out + r.err
    conn = sqlite3.connect(demo.path)
    try:
        (last,) = conn.execute("SELECT max(at) FROM audit_events").fetchone()
        (first,) = conn.execute("SELECT min(at) FROM audit_events").fetchone()
    finally:
        conn.close()
    assert dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC) <= dt.datetime.now(dt.UTC)
    assert dt.datetime.fromisoformat(first).year == YEAR - 1  # the prologue, in the year before


def test_a_second_run_on_the_same_database_works(demo: Demo, tmp_path: Path) -> None:
    shutil.copy(demo.path, tmp_path / "demo.db")
    again = Demo(tmp_path, run_demo(tmp_path))
    out = again.run.out
    assert "NOT refused" not in out and "audit verify: intact" in out
    # the yearly review and 送温暖 run once a year: said, and the story goes on
    assert f"the yearly review of {YEAR}" in out and f"送温暖 {YEAR} already ran" in out
    for args in (("check",), ("audit", "verify")):
        r = casework(again.url, *args)
        assert r.rc == 0, r.out + r.err
    row = total(again.json("report", "exit-rate", "--year", str(YEAR), "--format", "json"), county="合计")
    # this run's archives were on file on 1 January too; its review had already run
    assert (row["on_file"], row["exited"]) == (2 * PROLOGUE_PER_COUNTY * len(EXITS), sum(EXITS.values()))
    assert len(again.json("case", "list", "--workflow", "warmth", "--json")) == len(
        demo.json("case", "list", "--workflow", "warmth", "--json")
    )
