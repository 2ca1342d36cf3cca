"""Hostile case data typed at the ``casework`` command: ``case new``, ``case update`` and ``case fire``
with ``--set`` (and ``--data-file`` for the typed values ``--set`` cannot express).

Each refusal: exit 1, nothing on stdout, one ``error:`` line naming every bad field with what would be
right, no raw control character echoed, and nothing stored (no case, no event). SQL metacharacters
in a text field are stored verbatim and every table survives.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from engine.idnumber import check_digit
from tests.e2e.conftest import Seeded
from tests.e2e.test_cli import ID_1, ID_1_BAD_CHECK, casework, full_household, ok, ok_json, refused, run_all, sets

WF = "poverty_archive"
SQL_DROP = "'; DROP TABLE cases; --"


def _id_born(born: dt.date) -> str:
    first17 = f"350602{born:%Y%m%d}001"
    return first17 + check_digit(first17)


ID_1990 = _id_born(dt.date(1990, 1, 1))


def stored(seeded: Seeded) -> Any:
    """Every case as stored and the number of audit events."""
    with seeded.svc.engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
    return [c.to_json() for c in seeded.svc.list_cases()], events


def test_bad_values_are_refused_per_field_and_nothing_is_stored(seeded: Seeded, tmp_path: Path) -> None:
    url, svc = seeded.url, seeded.svc
    draft = svc.create_case(WF, "lin", full_household(id_number=ID_1)).ref
    future = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() + dt.timedelta(days=2)
    typed = tmp_path / "typed.json"
    typed.write_text(
        json.dumps(
            full_household(
                id_number=_id_born(dt.date(1980, 1, 1)),
                income_per_capita=612.5,
                cause=["因病"],
                household_size=4.5,
                materials={"申请表": True},
            ),
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    valid = {k: v for k, v in full_household().items() if k not in ("materials", "id_number")}
    base = [*sets(**{k: str(v) for k, v in valid.items()}), "--set", "materials=申请表,身份证,户口簿,收入证明"]
    new = ["case", "new", WF, "--as", "lin"]
    before = stored(seeded)

    checks: list[tuple[list[str], tuple[str, ...]]] = [
        # many bad fields at once: each named, each with what would be right
        ([*new, *base, *sets(applicant_name="陈" * 41, id_number=ID_1_BAD_CHECK, household_size="abc",
                             income_per_capita="1e3", household_type="低保", county=SQL_DROP,
                             materials="申请表,护照", countyy="芗城区")],
         ("error: invalid case data: ",
          "applicant_name: is 41 characters long; at most 40 allowed",
          "id_number: check digit should be 5, not 6",
          "household_size: expected a whole number such as 4, got 'abc'",
          "income_per_capita: expected a decimal number such as 612.50, got '1e3'",
          "household_type: '低保' is not one of 低保户, 低保边缘户, 意外致困户",
          f"county: {SQL_DROP!r} is not one of 芗城区, 龙文区",
          "materials: unknown item '护照'; items are 申请表, 身份证, 户口簿, 收入证明",
          "countyy: no such field in poverty_archive; did you mean 'county'?")),
        ([*new, *base, *sets(id_number="350602198502310013")],
         ("id_number: birth date 1985-02-31 in digits 7–14 is not a real date",)),
        ([*new, *base, *sets(id_number=ID_1990, applicant_name="\x1b[2J陈志强", phone="138\u202e0000",
                             cause="困" * 501)],
         ("applicant_name: contains a control character (U+001B) at position 1; remove it",
          "cause: is 501 characters long; at most 500 allowed",
          "phone: contains a control character (U+202E) at position 4; remove it")),
        # typed values only a data file can carry
        ([*new, "--data-file", str(typed)],
         ('income_per_capita: expected a decimal number, got a number (write it as text, e.g. "612.50"',
          "cause: expected text, got a list",
          "household_size: expected a whole number such as 4, got 4.5",
          "materials: expected a list of items from 申请表, 身份证, 户口簿, 收入证明")),
        # the same through update and fire
        (["case", "update", draft, "--as", "lin", *sets(household_size="4.5", income_per_capita="NaN",
                                                         household_type=SQL_DROP, id_number="350602850312001")],
         ("household_size: expected a whole number such as 4, got '4.5'",
          "income_per_capita: expected a decimal number such as 612.50, got 'NaN'",
          f"household_type: {SQL_DROP!r} is not one of",
          "id_number: ID number has 15 digits: 15-digit numbers are the pre-1999 form; enter the 18-digit number")),
        (["case", "update", draft, "--as", "lin", *sets(county="")],
         ("county: cannot be cleared: it decides who may see the case",)),
        (["case", "fire", draft, "submit", "--as", "lin",
          *sets(household_size="0", materials="[broken", id_number=_id_born(future))],
         ("household_size: must be at least 1, got 0", "materials: not a valid JSON list",
          f"id_number: birth date {future.isoformat()} is in the future; check digits 7–14")),
    ]  # fmt: skip

    results = run_all(url, *(cmd for cmd, _ in checks))
    for (cmd, needles), r in zip(checks, results, strict=True):
        try:
            line = refused(r, *needles)
        except AssertionError as exc:
            raise AssertionError(f"casework {' '.join(cmd)[:300]}: {exc}") from None
        assert not any(ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F or ch == "\u202e" for ch in line), repr(line)

    assert stored(seeded) == before
    assert svc.get_case(draft).state == "apply" and svc.get_case(draft).version == 1
    assert svc.verify_audit().ok


def test_sql_metacharacters_are_stored_verbatim_and_tables_survive(seeded: Seeded) -> None:
    url, svc = seeded.url, seeded.svc
    robert = "Robert'); DROP TABLE users;--"
    new = ok(
        casework(
            url, "case", "new", WF, "--as", "lin",
            *sets(applicant_name=SQL_DROP, id_number=ID_1, county="芗城区", cause=SQL_DROP),
        )
    ).strip()  # fmt: skip
    ok(casework(url, "case", "update", new, "--as", "lin", *sets(cause=robert, phone="1'; --")))
    ok(casework(url, "case", "fire", new, "withdraw", "--as", "lin", "--comment", "$$; TRUNCATE audit_events; $$"))
    shown, history = run_all(url, ["case", "show", new, "--json"], ["case", "history", new, "--json"])
    data = ok_json(shown)["data"]
    assert (data["applicant_name"], data["cause"], data["phone"]) == (SQL_DROP, robert, "1'; --")
    events = ok_json(history)
    assert [e["action"] for e in events] == ["created", "updated", "fired"]
    assert events[1]["changes"]["cause"] == [SQL_DROP, robert]
    assert events[2]["comment"] == "$$; TRUNCATE audit_events; $$"
    assert [c.ref for c in svc.list_cases()] == [new]
    assert svc.verify_audit().ok
    # the tables are all still there, with what they should hold
    with svc.engine.connect() as conn:
        for table, rows in [("cases", 1), ("audit_events", 3), ("users", 5), ("workflow_versions", 1)]:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == rows, table


def test_a_set_argument_without_equals_is_a_usage_error(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    ref = svc.create_case(WF, "lin", full_household(id_number=ID_1)).ref
    before = stored(sqlite_seeded)
    r = casework(url, "case", "update", ref, "--as", "lin", "--set", SQL_DROP)
    assert r.rc == 2 and r.out == "", r
    assert f"{SQL_DROP!r} should be FIELD=VALUE, e.g. household_size=4" in r.err.splitlines()[-1], r.err
    assert stored(sqlite_seeded) == before


def test_a_set_argument_without_a_field_name_lists_the_fields(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    ref = svc.create_case(WF, "lin", full_household(id_number=ID_1)).ref
    before = stored(sqlite_seeded)
    r = casework(url, "case", "update", ref, "--as", "lin", "--set", "=4")
    # refused as an unknown (empty) field name, listing the fields that exist
    refused(
        r,
        "invalid case data: : no such field in poverty_archive; known: applicant_name, cause, county, "
        "household_size, household_type, id_number, income_per_capita, materials, phone",
    )
    assert stored(sqlite_seeded) == before


def test_an_unknown_field_name_is_not_echoed_raw(sqlite_seeded: Seeded) -> None:
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    ref = svc.create_case(WF, "lin", full_household(id_number=ID_1)).ref
    r = casework(url, "case", "update", ref, "--as", "lin", "--set", "cau\x1b[2Jse=x")
    line = refused(r, "no such field in poverty_archive")
    assert "\x1b" not in line, repr(line)
