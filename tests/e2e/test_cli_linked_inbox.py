"""Issue 12 at the command line: an annual review's exit exits its archive; the inbox is work that moves a case on.

The scene is set through the engine on a clock a few weeks back (so the
archives can go through their 7-day publicity); the commands then run as a
user types them, in this process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from casework.synthetic import SyntheticPeople
from db import make_engine
from engine import Casework, FixedClock, load_definition_file
from tests.e2e.conftest import BUNDLED, ROOT, USERS
from tests.e2e.runner import casework
from tests.e2e.test_cli import json_refusal, ok, ok_json, refused
from tests.integration.test_publicity_period import ALL_MATERIALS, through_publicity

FILE_IT = [("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "wu"), ("grant", "su"), ("record", "lin")]


@dataclass
class Scene:
    url: str
    svc: Casework
    refs: dict[str, str]


def _archive(svc: Casework, seed: int, until: str) -> str:
    data = SyntheticPeople(seed).household()
    data.update(county="芗城区", materials=list(ALL_MATERIALS))
    ref = svc.create_case("poverty_archive", "lin", data).ref
    for trigger, actor in FILE_IT:
        if svc.get_case(ref).state == until:
            break
        through_publicity(svc, ref)
        svc.fire(ref, trigger, actor)
    assert svc.get_case(ref).state == until
    return ref


def _review(svc: Casework, archive: str) -> str:
    ref = svc.create_case("annual_review", "lin", {"archive_ref": archive, "county": "芗城区"}).ref
    svc.fire(ref, "report", "lin", data={"finding": "家庭收入已稳定", "income_per_capita": "3000"})
    return ref


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """Archives of 芗城区 in apply, review, publicity, approve, enter and filed; reviews of two of them in confirm."""
    engine = make_engine(db_url)
    try:
        svc = Casework(engine, FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=40)))
        svc.load_workflow(load_definition_file(BUNDLED))
        svc.load_workflow(load_definition_file(ROOT / "workflows" / "annual_review.yaml"))
        for username, name, roles, scopes in USERS:
            svc.add_user(username, name, roles, scopes)
        refs = {
            state: _archive(svc, i, state)
            for i, state in enumerate(["apply", "review", "publicise", "approve", "enter", "filed"])
        }
        refs["early"] = _archive(svc, 10, "enter")  # its review's exit will be refused: not filed yet
        refs["fh"] = _review(svc, refs["filed"])
        refs["fh_early"] = _review(svc, refs["early"])
        yield Scene(db_url, svc, refs)
    finally:
        engine.dispose()


def test_a_clerk_and_a_reviewer_no_longer_get_the_same_inbox(scene: Scene) -> None:
    """Issue 12 item 6: withdraw, allowed to both, put every open archive in both inboxes."""
    refs = scene.refs
    lin = {c["ref"] for c in ok_json(casework(scene.url, "case", "inbox", "--as", "lin", "--json"))["items"]}
    wu = {c["ref"] for c in ok_json(casework(scene.url, "case", "inbox", "--as", "wu", "--json"))["items"]}
    assert lin != wu and not lin & wu
    assert lin == {refs["apply"], refs["enter"], refs["early"]}  # submit, record: the clerk's work
    # pass_review, end_publicity and the reviews' confirmation: the reviewer's
    assert wu == {refs["review"], refs["publicise"], refs["fh"], refs["fh_early"]}
    assert refs["filed"] not in lin | wu  # a filed archive waits for no one (exit is inbox: false)
    su = {c["ref"] for c in ok_json(casework(scene.url, "case", "inbox", "--as", "su", "--json"))["items"]}
    assert su == {refs["approve"]}  # grant; reject alone would not have put anything here


def test_an_annual_review_exit_exits_the_archive_at_the_command_line(scene: Scene) -> None:
    refs = scene.refs
    ok(casework(scene.url, "case", "fire", refs["fh"], "exit", "--as", "wu", "--comment", "家庭收入稳定，解困脱困"))
    archive = ok_json(casework(scene.url, "case", "show", refs["filed"], "--json"))
    assert archive["state"] == "exited"
    history = ok_json(casework(scene.url, "case", "history", refs["filed"], "--json"))
    last = history[-1]
    assert (last["trigger"], last["actor"], last["to_state"]) == ("exit", "wu", "exited")
    assert last["comment"] == f"家庭收入稳定，解困脱困 — by annual_review {refs['fh']} exit"
    assert ok_json(casework(scene.url, "case", "show", refs["fh"], "--json"))["state"] == "exited"
    ok(casework(scene.url, "check"))


def test_a_refused_archive_exit_refuses_the_review_exit_too(scene: Scene) -> None:
    refs = scene.refs
    before = [ok(casework(scene.url, "case", "history", r, "--json")) for r in (refs["fh_early"], refs["early"])]
    r = casework(scene.url, "case", "fire", refs["fh_early"], "exit", "--as", "wu", "--comment", "脱困")
    refused(r, refs["fh_early"], refs["early"], "neither was done", "applies only from filed")
    as_json = casework(scene.url, "case", "fire", refs["fh_early"], "exit", "--as", "wu", "--comment", "x", "--json")
    refused(as_json)
    error = json_refusal(as_json)
    assert error["code"] == "wrong_state" and error["facts"]["case"] == refs["early"]
    assert error["facts"]["linked_from"]["case"] == refs["fh_early"]
    after = [ok(casework(scene.url, "case", "history", r, "--json")) for r in (refs["fh_early"], refs["early"])]
    assert after == before
    ok(casework(scene.url, "check"))
