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
