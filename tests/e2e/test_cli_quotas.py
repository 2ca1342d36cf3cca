"""Limits across cases at the command line: the refusal's words, its ``--json`` code, and nothing changed.

Uses tests/fixtures/workflows/valid/medical_limit.yaml (at most 50,000 yuan per ID number per year).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from db import make_engine
from engine import Casework
from engine.idnumber import check_digit
from tests.e2e.runner import casework
from tests.e2e.test_cli import ok, ok_json, refused

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "workflows" / "valid" / "medical_limit.yaml"
WF = "medical_limit"
FIRST17 = "35060219800102001"
PERSON = FIRST17 + check_digit(FIRST17)


@pytest.fixture
def office(db_url: str) -> Iterator[tuple[str, list[str]]]:
    """The workflow loaded by the command, two users, and three cases of one person in review."""
    ok(casework(db_url, "workflow", "load", str(FIXTURE)))
    engine = make_engine(db_url)
    try:
        svc = Casework(engine)
        svc.add_user("lin", "林晓", ["clerk"], ["芗城区"])
        svc.add_user("su", "苏文斌", ["approver"], ["*"])
        refs = []
        for amount in ("30000", "30000", "20000"):
            data = {"applicant_name": "陈志强", "id_number": PERSON, "county": "芗城区", "amount": amount}
            ref = svc.create_case(WF, "lin", data).ref
            svc.fire(ref, "submit", "lin")
            refs.append(ref)
        yield db_url, refs
    finally:
        engine.dispose()


def test_the_second_grant_is_refused_saying_how_much_is_left(office: tuple[str, list[str]]) -> None:
    url, (first, second, third) = office
    year = str(dt.datetime.now(ZoneInfo("Asia/Shanghai")).year)  # the command's clock is the system's
    ok(casework(url, "case", "fire", first, "grant", "--as", "su"))
    before = ok(casework(url, "case", "history", second, "--json"))
    line = refused(
        casework(url, "case", "fire", second, "grant", "--as", "su"),
        f"error: grant refused: 医疗互助年度补助上限 allows at most 50000 per id_number (身份证号码) in {year}; "
        "30000.00 is already counted on other cases, so at most 20000.00 is left and this case asks 30000.00",
    )
    assert PERSON not in line
    r = casework(url, "case", "fire", second, "grant", "--as", "su", "--json")
    assert r.rc == 1
    error = json.loads(r.out)["error"]
    assert error["code"] == "limit_reached"
    assert error["facts"] == {
        "case": second,
        "state": "review",
        "trigger": "grant",
        "limit": "yearly_subsidy",
        "label": "医疗互助年度补助上限",
        "key": "id_number",
        "period": year,
        "max": "50000",
        "used": "30000",
        "asked": "30000",
        "left": "20000",
    }
    assert PERSON not in r.out and PERSON not in r.err
    assert ok(casework(url, "case", "history", second, "--json")) == before  # nothing changed
    # what is left, exactly, passes; then nothing is left for the third
    assert (
        ok_json(casework(url, "case", "fire", second, "grant", "--as", "su", "--set", "amount=20000", "--json"))[
            "state"
        ]
        == "granted"
    )
    report = casework(url, "case", "fire-many", "grant", third, "--as", "su", "--json", "--quiet")
    assert report.rc == 1
    [row] = json.loads(report.out)["refused"]
    assert row["ref"] == third and row["code"] == "limit_reached" and row["facts"]["left"] == "0"
    ok(casework(url, "check"))
