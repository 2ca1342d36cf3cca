"""Hostile case data through every write path: create_case, update_case and fire(data=...).

Every bad value must be refused with InvalidCaseData naming the field and saying what would be
right, and nothing may be stored: no case, no audit event, no reference number used up, the
case (if any) exactly as before. SQL metacharacters in a free-text field are data: stored
verbatim, and every table is still there afterwards.

One module-scoped database per backend; each test takes its own snapshot, so the order of
tests does not matter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, text

from db import make_engine
from engine import CaseNotFound, Casework, FixedClock, InvalidCaseData, RefusedError, load_definition_file
from engine.idnumber import check_digit
from tests.conftest import BUNDLED, USERS
from tests.integration.race_support import (
    POSTGRES,
    SQLITE,
    START,
    Households,
    audit_count,
    module_database,
)

WF = "poverty_archive"
SQL_DROP = "'; DROP TABLE cases; --"
TABLES = [
    "workflow_versions",
    "users",
    "cases",
    "case_keys",
    "audit_events",
    "ref_counters",
    "outbox",
    "objections",
    "timers",
]


@dataclass
class Db:
    engine: Engine
    svc: Casework
    backend: str
    people: Households = field(default_factory=lambda: Households(seed=61))
    parked: str | None = None

    def apply_case(self) -> str:
        """A case in apply, shared by the refusal tests (each checks it is unchanged by its refusal)."""
        if self.parked is None:
            self.parked = self.svc.create_case(WF, "lin", self.people()).ref
        return self.parked


@pytest.fixture(scope="module", params=[SQLITE, POSTGRES])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    with module_database(request, tmp_path_factory, request.param, "hostile") as url:
        engine = make_engine(url)
        try:
            svc = Casework(engine, FixedClock(START))  # today is 2026-11-30 in Shanghai
            svc.load_workflow(load_definition_file(BUNDLED))
            for username, name, roles, scopes in USERS:
                svc.add_user(username, name, roles, scopes)
            yield Db(engine, svc, request.param)
        finally:
            engine.dispose()


def everything(db: Db) -> dict[str, Any]:
    """What a refusal must leave alone: every case as stored, the event count, the ref counter."""
    with db.engine.connect() as conn:
        counters = sorted(tuple(r) for r in conn.execute(text("SELECT prefix, year, last FROM ref_counters")))
    return {
        "cases": [c.to_json() for c in db.svc.list_cases()],
        "events": audit_count(db.engine),
        "counters": counters,
    }


# (field, value, what the message must say) — every value is refused
HOSTILE: list[Any] = [
    # resident ID numbers
    ("id_number", "350602198503120016", "check digit should be 5, not 6"),
    ("id_number", "350602198502310013", "birth date 1985-02-31 in digits 7–14 is not a real date"),
    ("id_number", "350602202612010012", "birth date 2026-12-01 is in the future"),  # tomorrow
    ("id_number", "350602850312001", "15-digit numbers are the pre-1999 form; enter the 18-digit number"),
    ("id_number", "35060219850312001", "has 17 characters; it should have 18"),
    ("id_number", "３50602198503120015", "full-width digit; type half-width digits 0-9"),
    ("id_number", "990602198503120015", "not a valid province code"),
    ("id_number", "350602189912310015", "before 1900-01-01"),
    ("id_number", 350602198503120015, "must be written as text"),
    ("id_number", SQL_DROP, "has 23 characters; it should have 18"),
    # text: length, control characters, wrong types
    ("applicant_name", "陈" * 41, "is 41 characters long; at most 40 allowed"),
    ("cause", "困" * 501, "is 501 characters long; at most 500 allowed"),
    ("cause", "x" * 1_000_000, "is 1000000 characters long; at most 500 allowed"),
    ("phone", "1" * 21, "is 21 characters long; at most 20 allowed"),
    ("applicant_name", "陈\x00志强", "contains a control character (U+0000) at position 2; remove it"),
    ("applicant_name", "\x1b[2J陈志强", "contains a control character (U+001B) at position 1; remove it"),
    ("applicant_name", "陈志\u202e强", "contains a control character (U+202E) at position 3; remove it"),
    ("applicant_name", "陈\u200b志强", "contains a control character (U+200B) at position 2; remove it"),
    ("cause", "因病\x7f致困", "contains a control character (U+007F) at position 3; remove it"),
    ("cause", "因病\x85致困", "contains a control character (U+0085) at position 3; remove it"),
    ("cause", "因病\x08致困", "contains a control character (U+0008) at position 3; remove it"),
    ("applicant_name", ["陈志强"], "expected text, got a list"),
    ("applicant_name", 42, "expected text, got a number"),
    ("cause", {"text": "因病"}, "expected text, got an object"),
    ("cause", True, "expected text, got true/false"),
    # integer
    ("household_size", "abc", "expected a whole number such as 4, got 'abc'"),
    ("household_size", "4.5", "expected a whole number such as 4, got '4.5'"),
    ("household_size", "1e3", "expected a whole number such as 4, got '1e3'"),
    ("household_size", "٣", "expected a whole number such as 4"),
    ("household_size", 4.0, "4.0 has a decimal point; write 4"),
    ("household_size", 4.5, "expected a whole number such as 4, got 4.5"),
    ("household_size", True, "expected a whole number such as 4, got true/false"),
    ("household_size", 0, "must be at least 1, got 0"),
    ("household_size", "21", "must be at most 20, got 21"),
    ("household_size", 10**20, "is out of range"),
    ("household_size", SQL_DROP, "expected a whole number such as 4"),
    # decimal
    ("income_per_capita", 612.5, 'write it as text, e.g. "612.50", so no cents are lost'),
    ("income_per_capita", "NaN", "expected a decimal number such as 612.50, got 'NaN'"),
    ("income_per_capita", "Infinity", "expected a decimal number such as 612.50, got 'Infinity'"),
    ("income_per_capita", "6.125e2", "expected a decimal number such as 612.50"),
    ("income_per_capita", "1.1234567", "expected a decimal number such as 612.50"),
    ("income_per_capita", "-0.01", "must be at least 0, got -0.01"),
    ("income_per_capita", "100000.01", "must be at most 100000, got 100000.01"),
    ("income_per_capita", ["612.50"], "expected a decimal number, got a list"),
    # choice
    ("household_type", "低保", "'低保' is not one of 低保户, 低保边缘户, 意外致困户"),
    ("household_type", 1, "expected one of 低保户, 低保边缘户, 意外致困户, got a number"),
    ("county", SQL_DROP, f"{SQL_DROP!r} is not one of 芗城区, 龙文区"),
    ("county", "芗城", "'芗城' is not one of 芗城区"),
    ("county", ["芗城区"], "expected one of 芗城区"),
    # checklist
    ("materials", "申请表,护照", "unknown item '护照'; items are 申请表, 身份证, 户口簿, 收入证明"),
    ("materials", "[broken", "not a valid JSON list"),
    ("materials", "[1, 2]", "expected a list of items from 申请表, 身份证, 户口簿, 收入证明"),
    ("materials", {"申请表": True}, "expected a list of items from 申请表"),
    ("materials", [SQL_DROP], f"unknown item {SQL_DROP!r}"),
    # fields that do not exist
    ("countyy", "芗城区", "no such field in poverty_archive; did you mean 'county'?"),
    ("__class__", "x", "no such field in poverty_archive"),
    (SQL_DROP, "x", "no such field in poverty_archive"),
]

HOSTILE_IDS = [f"{i:02d}-{f if f != SQL_DROP else 'sqlfield'}" for i, (f, _, _) in enumerate(HOSTILE)]


def _refused(exc: InvalidCaseData, name: str, needle: str) -> None:
    assert [p.field for p in exc.problems] == [name], exc.problems
    assert needle in exc.problems[0].message, f"{needle!r} not in {exc.problems[0].message!r}"
    assert str(exc) == f"invalid case data: {name}: {exc.problems[0].message}"
    assert len(str(exc)) < 400, "the message should not echo a huge value"


@pytest.mark.parametrize(("name", "value", "needle"), HOSTILE, ids=HOSTILE_IDS)
def test_create_refuses_and_stores_nothing(db: Db, name: str, value: Any, needle: str) -> None:
    before = everything(db)
    data = db.people()
    data[name] = value
    with pytest.raises(InvalidCaseData) as info:
        db.svc.create_case(WF, "lin", data)
    _refused(info.value, name, needle)
    assert everything(db) == before


@pytest.mark.parametrize(("name", "value", "needle"), HOSTILE, ids=HOSTILE_IDS)
def test_update_refuses_and_changes_nothing(db: Db, name: str, value: Any, needle: str) -> None:
    ref = db.apply_case()
    before = everything(db)
    history = [h.to_json() for h in db.svc.history(ref)]
    with pytest.raises(InvalidCaseData) as info:
        db.svc.update_case(ref, "lin", {name: value})
    _refused(info.value, name, needle)
    assert everything(db) == before
    assert [h.to_json() for h in db.svc.history(ref)] == history


@pytest.mark.parametrize(("name", "value", "needle"), HOSTILE, ids=HOSTILE_IDS)
def test_fire_with_data_refuses_and_changes_nothing(db: Db, name: str, value: Any, needle: str) -> None:
    ref = db.apply_case()
    before = everything(db)
    with pytest.raises(InvalidCaseData) as info:
        db.svc.fire(ref, "submit", "lin", data={name: value})
    _refused(info.value, name, needle)
    assert everything(db) == before
    assert db.svc.get_case(ref).state == "apply"


def test_every_bad_field_is_listed_at_once(db: Db) -> None:
    before = everything(db)
    data = db.people(
        id_number="350602198502310013",
        applicant_name="陈\x00志强",
        household_size="abc",
        income_per_capita=612.5,
        household_type="低保",
        county=SQL_DROP,
        materials="申请表,护照",
        countyy="芗城区",
    )
    with pytest.raises(InvalidCaseData) as info:
        db.svc.create_case(WF, "lin", data)
    # in the order given (the household's own keys first, then the extra one)
    assert [p.field for p in info.value.problems] == [
        "applicant_name",
        "id_number",
        "household_type",
        "county",
        "household_size",
        "income_per_capita",
        "materials",
        "countyy",
    ]
    assert everything(db) == before


def test_refusals_use_up_no_reference_number(db: Db) -> None:
    first = db.svc.create_case(WF, "lin", db.people()).ref
    for name, value, _ in HOSTILE[:5]:
        with pytest.raises(InvalidCaseData):
            db.svc.create_case(WF, "lin", db.people(**{name: value}))
    second = db.svc.create_case(WF, "lin", db.people()).ref
    number = int(first.rsplit("-", 1)[1])
    assert second == f"{first.rsplit('-', 1)[0]}-{number + 1:06d}"


SQL_TEXTS = [
    SQL_DROP,
    "Robert'); DROP TABLE users;--",
    '" OR ""="',
    "%' OR '1'='1",
    "$$; TRUNCATE audit_events; $$",
    "\\'; DELETE FROM audit_events; --",
    "/* */ UNION SELECT * FROM users --",
    "{{ 7 * 7 }} {% raw %}",
]


@pytest.mark.parametrize("nasty", SQL_TEXTS)
def test_sql_metacharacters_in_text_are_stored_verbatim(db: Db, nasty: str) -> None:
    counts = {t: _rows(db.engine, t) for t in ("users", "workflow_versions")}
    events = audit_count(db.engine)
    ref = db.svc.create_case(WF, "lin", db.people(cause=nasty, applicant_name=nasty[:40])).ref
    db.svc.update_case(ref, "lin", {"cause": nasty + " 补充"})  # the clerk's to change, before submitting
    db.svc.fire(ref, "submit", "lin", data={"phone": nasty[:20]})
    stored = db.svc.get_case(ref).data
    assert (stored["applicant_name"], stored["phone"], stored["cause"]) == (nasty[:40], nasty[:20], nasty + " 补充")
    with db.engine.connect() as conn:
        raw = conn.execute(text("SELECT data FROM cases WHERE ref = :ref"), {"ref": ref}).scalar_one()
    assert (raw if isinstance(raw, dict) else json.loads(raw))["cause"] == nasty + " 补充"
    history = db.svc.history(ref)
    assert [h.action for h in history] == ["created", "updated", "fired"]
    assert history[1].changes == {"cause": [nasty, nasty + " 补充"]}
    assert audit_count(db.engine) == events + 3
    # every table survived and nothing else moved
    for table in TABLES:
        _rows(db.engine, table)
    assert {t: _rows(db.engine, t) for t in counts} == counts
    assert db.svc.verify_audit(ref).ok
    # and as a reference or a user name it is just a name that does not exist
    with pytest.raises(CaseNotFound):
        db.svc.get_case(nasty)
    with pytest.raises(RefusedError, match="no user"):
        db.svc.fire(ref, "pass_review", nasty)


def _rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_valid_edge_values_are_accepted(db: Db) -> None:
    """The refusals above are not over-eager: the edges of what is right are stored, normalised."""
    today_born = "350602" + dt.date(2026, 11, 30).strftime("%Y%m%d") + "001"
    data = db.people(
        id_number=" " + today_born + check_digit(today_born).lower() + " ",
        applicant_name="陈" * 40,
        cause="困" * 500,
        household_size="20",
        income_per_capita="100000.000000",
        materials="收入证明，申请表、身份证",
    )
    view = db.svc.create_case(WF, "lin", data)
    assert view.data["id_number"] == today_born + check_digit(today_born).upper()
    assert view.data["household_size"] == 20
    assert view.data["income_per_capita"] == "100000"
    assert view.data["materials"] == ["申请表", "身份证", "收入证明"]


def test_clearing_the_scope_field_is_refused(db: Db) -> None:
    ref = db.apply_case()
    before = everything(db)
    for value in ("", "   ", None):
        with pytest.raises(InvalidCaseData) as info:
            db.svc.update_case(ref, "lin", {"county": value})
        assert [p.field for p in info.value.problems] == ["county"]
        assert "cannot be cleared: it decides who may see the case" in str(info.value)
    assert everything(db) == before


def test_comment_and_objection_text_are_checked_too(db: Db) -> None:
    ref = db.apply_case()
    before = everything(db)
    for comment, needle in [
        ("撤回\x00", "contains a control character (U+0000) at position 3"),
        ("长" * 2001, "at most 2000"),
    ]:
        with pytest.raises(InvalidCaseData) as info:
            db.svc.fire(ref, "withdraw", "lin", comment=comment)
        assert [p.field for p in info.value.problems] == ["comment"] and needle in str(info.value)
    for objection, channel, problem, needle in [
        ("有异议\x00", "电话", "text", "contains a control character (U+0000) at position 4"),
        ("异" * 2001, "电话", "text", "at most 2000"),
        ("有异议", "微信", "channel", "'微信' is not one of 电话, 来信, 来访"),
    ]:
        with pytest.raises(InvalidCaseData) as info:
            db.svc.add_objection(ref, "wu", objection, channel=channel)
        assert [p.field for p in info.value.problems] == [problem] and needle in str(info.value)
    assert everything(db) == before


# ------------------------------------------------ once defects (found by these tests, then fixed)


def test_unknown_field_names_are_not_echoed_raw(db: Db) -> None:
    ref = db.apply_case()
    with pytest.raises(InvalidCaseData) as info:
        db.svc.update_case(ref, "lin", {"cau\x1b[2Jse": "x"})
    assert "\x1b" not in str(info.value), repr(str(info.value))


@pytest.mark.parametrize("name", ["county", "household_type", "household_size", "income_per_capita"])
def test_refusal_messages_stay_short_for_huge_values(db: Db, name: str) -> None:
    with pytest.raises(InvalidCaseData) as info:
        db.svc.create_case(WF, "lin", db.people(**{name: "9" * 100_000}))
    assert [p.field for p in info.value.problems] == [name]
    assert len(str(info.value)) < 1000, len(str(info.value))


def test_carriage_return_in_a_name_is_refused(db: Db) -> None:
    before = everything(db)
    with pytest.raises(InvalidCaseData) as info:
        db.svc.create_case(WF, "lin", db.people(applicant_name="陈志强\r李四"))
    assert [p.field for p in info.value.problems] == ["applicant_name"]
    assert everything(db) == before


@pytest.mark.parametrize("where", ["ref", "actor", "workflow"])
def test_nul_in_a_reference_or_name_is_a_typed_refusal(db: Db, where: str, request: pytest.FixtureRequest) -> None:
    """A NUL byte in what names a case, a user or a workflow is refused like any unknown name (the API
    is reachable from more than the CLI, whose arguments cannot hold NUL)."""
    ref = db.apply_case()
    before = everything(db)
    with pytest.raises(RefusedError):
        if where == "ref":
            db.svc.fire(ref + "\x00", "submit", "lin")
        elif where == "actor":
            db.svc.fire(ref, "submit", "lin\x00")
        else:
            db.svc.create_case(WF + "\x00", "lin", db.people())
    assert everything(db) == before
