"""End-to-end tests of the ``casework`` command, run as a user types it.

Every command runs as a user types it (``casework --db URL ...``), in this
process (:mod:`tests.e2e.runner`: the console script's own code, with its own
stdout, stderr and environment), on SQLite and on a real PostgreSQL server
(``db_url``). ``test_cli_process.py`` runs the real command in a subprocess
for what only a process can show (start-up, exit codes, signals).

What every test holds the command to:

* exact exit codes: 0 ok, 1 refused by the rules, 2 usage error, unusable
  input or workflow file;
* a refusal is exactly one line on stderr, ``error: ...``, saying what was
  wrong and what would be right, with nothing on stdout;
* no traceback, ever;
* a refused command changes nothing (``case list --json`` and
  ``case history REF --json`` are the same before and after).

Setting a scene (workflow, users, a case parked in some state) uses the
engine API; see ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from casework.demo import StoryClock
from db import make_engine
from engine import Casework, load_definition_file
from tests.e2e.conftest import BUNDLED, USERS, DemoRun, Seeded
from tests.e2e.runner import ROOT, Result, casework as run_command

WF = "poverty_archive"
WF_FILE = "workflows/poverty_archive.yaml"  # as typed, relative to the project root

# Valid resident ID numbers (GB 11643 check digits).
ID_1 = "350602198503120015"
ID_2 = "350603199001010028"
ID_3 = "35060219700505003X"
ID_1_BAD_CHECK = "350602198503120016"  # check digit should be 5

ALL_MATERIALS = "申请表,身份证,户口簿,收入证明"
REF_RE = re.compile(r"^ZZ-\d{4}-\d{6}$")
ISO_SHANGHAI = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


# --------------------------------------------------------------------- helpers


def casework(db_url: str, *args: str, timeout: float = 60, input: str | None = None, cwd: Path = ROOT) -> Result:
    """Run ``casework --db DB_URL ARGS...`` in this process (see :mod:`tests.e2e.runner`)."""
    return run_command(db_url, *args, input=input, cwd=cwd)


def run_all(db_url: str, *commands: Sequence[str]) -> list[Result]:
    """Run commands that change nothing, one after the other; results in the order given."""
    return [casework(db_url, *args) for args in commands]


def sets(**values: str) -> list[str]:
    """``--set FIELD=VALUE`` for each keyword, as typed."""
    return [arg for field, value in values.items() for arg in ("--set", f"{field}={value}")]


def ok(r: Result) -> str:
    """Assert success; return stdout."""
    assert r.rc == 0, f"expected exit 0, got {r.rc}\nstdout: {r.out}\nstderr: {r.err}"
    return r.out


def ok_json(r: Result) -> Any:
    return json.loads(ok(r))


def refused(r: Result, *needles: str, rc: int = 1) -> str:
    """Assert a refusal: exit ``rc``, ONE ``error:`` line holding every needle on stderr, and on stdout
    nothing — or, for a command given ``--json``, the refusal as data: ``{"error": {code, message, facts}}``."""
    assert r.rc == rc, f"expected exit {rc}, got {r.rc}\nstdout: {r.out}\nstderr: {r.err}"
    if r.out:
        assert json_refusal(r), f"a refusal printed on stdout: {r.out!r}"
    lines = r.err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{r.err}"
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def json_refusal(r: Result) -> dict[str, Any]:
    """The refusal a ``--json`` command printed on stdout: its code, message and facts."""
    doc = json.loads(r.out)
    assert list(doc) == ["error"] and set(doc["error"]) == {"code", "message", "facts"}, doc
    assert isinstance(doc["error"]["facts"], dict) and doc["error"]["code"], doc
    return dict(doc["error"])


def usage_error(r: Result, *needles: str) -> str:
    """Assert a command-line usage error (click's format): exit 2, the problem on stderr's last line."""
    assert r.rc == 2, f"expected exit 2, got {r.rc}\nstdout: {r.out}\nstderr: {r.err}"
    assert r.out == ""
    last = r.err.strip().splitlines()[-1]
    assert last.lower().startswith("error:"), r.err
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"
    return last


def snapshot(db_url: str, refs: Sequence[str]) -> list[Any]:
    """Everything a refusal must not touch: every case (as listed) and the given cases' trails."""
    results = run_all(db_url, ["case", "list", "--json"], *(["case", "history", ref, "--json"] for ref in refs))
    return [ok_json(r) for r in results]


def assert_iso_shanghai(value: str) -> None:
    assert ISO_SHANGHAI.match(value), value
    assert dt.datetime.fromisoformat(value).utcoffset() == dt.timedelta(hours=8)


def full_household(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "applicant_name": "王秀英",
        "id_number": ID_2,
        "county": "芗城区",
        "household_type": "低保户",
        "household_size": 3,
        "income_per_capita": "580",
        "cause": "失业",
        "materials": ["申请表", "身份证", "户口簿", "收入证明"],
    }
    data.update(overrides)
    return data


@contextlib.contextmanager
def a_month_back(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Seeded, StoryClock]]:
    """The usual scene (bundled workflow, usual users) set a month back, on a clock the command reads too.

    A publicity period (公示期) lasts 7 days from its list's publication and
    the command runs on the real clock, so a story that lives through one
    starts in the past: the clock is :class:`casework.demo.StoryClock` (the
    real time less a lag that only shrinks, as the demo's story runs), given
    to the engine API here and to every command this test runs (the clock
    its ``Casework`` would take by default). The test moves it forward with
    ``move_to``; nothing is ever stamped after the real time, and the trail's
    times stay in order.
    """
    clock = StoryClock(30)
    monkeypatch.setattr("engine.service.default_clock", lambda engine: clock)
    engine = make_engine(db_url)
    try:
        svc = Casework(engine, clock)
        svc.load_workflow(load_definition_file(BUNDLED))
        for username, name, roles, scopes in USERS:
            svc.add_user(username, name, roles, scopes)
        yield Seeded(db_url, svc), clock
    finally:
        engine.dispose()


def after_period(period_end: str) -> dt.datetime:
    """09:00 (Shanghai) of the day after a publicity period's last day: the period is over."""
    day = dt.date.fromisoformat(period_end) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(9), dt.timezone(dt.timedelta(hours=8)))


BROKEN_WORKFLOW = """\
workflow: broken
version: 1
title: Broken
timezone: Asia/Shanghai
ref_prefix: BR
roles:
  clerk: Clerk
fields:
  name: {type: text, label: Name}
states:
  a: {label: A, initial: true}
  b: {label: B, final: true}
transitions:
  go:
    label: Go
    from: a
    to: nowhere
    by: clork
"""


# ------------------------------------------------------------------------ init


def test_init_is_idempotent_and_an_uninitialised_database_says_run_init(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()  # an empty SQLite file: no schema at all
    url = f"sqlite:///{path}"

    for r in run_all(
        url,
        ["case", "list", "--json"],
        ["user", "add", "lin", "--name", "林晓", "--role", "clerk", "--scope", "芗城区"],
    ):
        refused(r, f"the database {url} has no casework schema", "run 'casework init' first", rc=2)

    first = ok(casework(url, "init"))
    assert first.startswith("schema upgraded empty → "), first
    second = ok(casework(url, "init"))
    assert second.startswith("schema up to date (revision "), second
    assert ok_json(casework(url, "user", "list", "--json")) == []


# -------------------------------------------------------------------- workflow


def test_workflow_validate_good_and_broken_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'unused.db'}"  # validate needs no database
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN_WORKFLOW, encoding="utf-8")

    good, bad, load_bad = run_all(
        url,
        ["workflow", "validate", WF_FILE],
        ["workflow", "validate", str(broken)],
        ["workflow", "load", str(broken)],
    )

    assert ok(good).strip() == f"{WF_FILE}: ok (poverty_archive version 4: 9 states, 11 steps)"
    assert good.err == ""

    assert bad.rc == 2
    assert bad.out == ""
    *problems, summary = bad.err.strip().splitlines()
    assert summary == "1 of 1 file invalid"
    assert len(problems) >= 3, bad.err  # every problem at once, not just the first
    located = []
    for line in problems:
        m = PROBLEM_LINE.match(line)
        assert m, f"not FILE:LINE:COL: message: {line!r}"
        assert m["file"] == str(broken)
        located.append((int(m["line"]), int(m["col"]), m["msg"]))
    assert (17, 9, "unknown state 'nowhere'; known: a, b") in located
    assert (18, 9, "unknown role 'clork'; did you mean 'clerk'?") in located

    # loading it refuses with the same located problems, before the database is opened
    assert load_bad.rc == 2 and load_bad.out == ""
    assert load_bad.err.strip().splitlines() == problems
    assert not (tmp_path / "unused.db").exists()


def test_workflow_load_list_show(db_url: str, tmp_path: Path) -> None:
    r = casework(db_url, "workflow", "load", WF_FILE)
    assert re.fullmatch(r"loaded poverty_archive version 4 \([0-9a-f]{12}\)\n", ok(r)), r.out
    r = casework(db_url, "workflow", "load", WF_FILE)
    assert ok(r).strip() == "poverty_archive version 4 already loaded with this content; nothing changed"

    changed = tmp_path / "changed.yaml"
    shutil.copytree(BUNDLED.parent / "templates" / BUNDLED.stem, tmp_path / "templates" / "changed")
    changed.write_text(
        BUNDLED.read_text(encoding="utf-8").replace("title: 困难职工建档立卡", "title: 困难职工建档立卡（修订）"),
        encoding="utf-8",
    )
    refused(
        casework(db_url, "workflow", "load", str(changed)),
        "poverty_archive version 4 is already loaded with different content",
        "set 'version: 5' in the changed file",
    )

    listed, shown, diagram = run_all(
        db_url,
        ["workflow", "list", "--json"],
        ["workflow", "show", WF, "--json"],
        ["workflow", "show", WF, "--diagram"],
    )

    # the refused load changed nothing: still one version, the bundled one
    infos = ok_json(listed)
    assert isinstance(infos, list) and len(infos) == 1
    info = infos[0]
    assert set(info) == {"workflow", "version", "title", "source_hash", "loaded_at", "cases", "latest"}
    assert info["workflow"] == WF and info["version"] == 4 and info["title"] == "困难职工建档立卡"
    assert info["cases"] == 0 and info["latest"] is True
    assert re.fullmatch(r"[0-9a-f]{64}", info["source_hash"])
    assert_iso_shanghai(info["loaded_at"])

    desc = ok_json(shown)
    assert desc["workflow"] == WF and desc["version"] == 4
    assert desc["source_hash"] == info["source_hash"]
    assert set(desc["roles"]) == {"clerk", "reviewer", "approver", "supervisor"}
    assert list(desc["states"]) == [
        "apply",
        "review",
        "publicise",
        "approve",
        "enter",
        "filed",
        "exited",
        "rejected",
        "withdrawn",
    ]
    assert desc["fields"]["id_number"]["type"] == "cn_id"
    assert desc["transitions"]["submit"]["from"] == ["apply"] and desc["transitions"]["submit"]["to"] == "review"

    text = ok(diagram)
    assert text.startswith("stateDiagram-v2\n")
    assert "apply --> review: submit" in text
    assert "[*] --> apply" in text and "filed --> exited: exit" in text and "exited --> [*]" in text


# ------------------------------------------------------------------------ users


def test_user_add_and_list(wf_db: Seeded) -> None:
    url = wf_db.url
    r = casework(
        url, "user", "add", "ye", "--name", "叶志远",
        "--role", "clerk", "--role", "reviewer", "--scope", "芗城区", "--scope", "龙文区",
    )  # fmt: skip
    assert ok(r).strip() == "added ye (叶志远): roles clerk, reviewer; scopes 芗城区, 龙文区"
    assert r.err == ""

    dup, system = run_all(
        url,
        ["user", "add", "ye", "--name", "叶志远", "--role", "clerk", "--scope", "芗城区"],
        ["user", "add", "system", "--name", "系统", "--role", "clerk", "--scope", "*"],
    )
    refused(dup, "user 'ye' already exists", "casework user list")
    refused(system, "'system' is reserved", "choose another username", rc=2)

    users = ok_json(casework(url, "user", "list", "--json"))
    assert isinstance(users, list) and len(users) == 1  # no 'system', no second 'ye'
    (ye,) = users
    assert set(ye) == {"username", "name", "email", "roles", "scopes", "created_at", "disabled_at"}
    assert ye["email"] is None and ye["disabled_at"] is None
    assert ye["username"] == "ye" and ye["name"] == "叶志远"
    assert ye["roles"] == ["clerk", "reviewer"]
    assert ye["scopes"] == ["芗城区", "龙文区"]
    assert_iso_shanghai(ye["created_at"])


# ------------------------------------------------------------------ happy path


def test_full_happy_path_each_step_by_the_right_user(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Open, fill in, submit, review; publish the county's 公示名单; after its period, end publicity, approve,
    record: every step a command, by the user whose job it is (a month back, and forward to now)."""
    with a_month_back(db_url, monkeypatch) as (seeded, clock):
        url = seeded.url
        new = ["case", "new", WF, "--as", "lin", *sets(applicant_name="陈志强", id_number=ID_1, county="芗城区")]
        ref = ok(casework(url, *new)).strip()
        assert REF_RE.match(ref), ref

        more = sets(
            household_type="低保户",
            household_size="3",
            income_per_capita="612.50",
            cause="因病致困",
            materials=ALL_MATERIALS,
            phone="13812345678",
        )
        r = casework(url, "case", "update", ref, "--as", "lin", *more)
        assert ok(r).strip() == f"{ref}: updated (version 2)"

        for trigger, actor, to in [("submit", "lin", "review (审核)"), ("pass_review", "wu", "publicise (公示)")]:
            assert ok(casework(url, "case", "fire", ref, trigger, "--as", actor)).strip() == f"{ref}: {trigger} → {to}"

        # publicity starts with the county's published list, and lasts its period
        published = ok_json(casework(url, "notice", "publish", WF, "--scope", "芗城区", "--json"))
        assert published["cases"] == [ref] and published["kind"] == "list"
        period_end = published["period_end"]
        r = casework(url, "case", "fire", ref, "end_publicity", "--as", "wu")
        refused(r, f"公示期至 {period_end} 止，期满前不能公示期满（end_publicity）")
        clock.move_to(after_period(period_end))
        r = casework(url, "case", "fire", ref, "end_publicity", "--as", "wu")
        assert ok(r).strip() == f"{ref}: end_publicity → approve (审批)"

        # what the approver may do now
        view = ok_json(casework(url, "case", "show", ref, "--as", "su", "--json"))
        assert view["state"] == "approve"
        actions = view["actions"]
        assert isinstance(actions, list) and actions
        for a in actions:
            assert set(a) == {"trigger", "label", "to", "comment_required"}
        by_trigger = {a["trigger"]: a for a in actions}
        assert by_trigger["grant"] == {
            "trigger": "grant",
            "label": "审批通过",
            "to": "enter",
            "comment_required": False,
        }
        assert by_trigger["reject"]["to"] == "rejected" and by_trigger["reject"]["comment_required"] is True
        assert "record" not in by_trigger

        for trigger, actor, to in [("grant", "su", "enter (录入)"), ("record", "lin", "filed (已建档)")]:
            assert ok(casework(url, "case", "fire", ref, trigger, "--as", actor)).strip() == f"{ref}: {trigger} → {to}"

        shown, history, verify = run_all(
            url, ["case", "show", ref, "--json"], ["case", "history", ref, "--json"], ["audit", "verify"]
        )

        case = ok_json(shown)
        assert {"ref", "workflow", "workflow_version", "state", "data", "created_at", "updated_at"} <= set(case)
        assert "actions" not in case  # only with --as
        assert case["ref"] == ref and case["workflow"] == WF
        assert case["workflow_version"] == load_definition_file(BUNDLED).version  # the bundled file's
        assert case["state"] == "filed" and case["final"] is False  # since version 3: an annual review may exit it
        assert case["data"] == {
            "applicant_name": "陈志强",
            "id_number": ID_1,
            "county": "芗城区",
            "household_type": "低保户",
            "household_size": 3,
            "income_per_capita": "612.5",
            "cause": "因病致困",
            "materials": ["申请表", "身份证", "户口簿", "收入证明"],
            "phone": "13812345678",
        }
        assert_iso_shanghai(case["created_at"])
        assert_iso_shanghai(case["updated_at"])
        assert case["created_at"] <= case["updated_at"]

        events = ok_json(history)
        assert isinstance(events, list)
        keys = {
            "seq",
            "at",
            "actor",
            "role",
            "action",
            "trigger",
            "from_state",
            "to_state",
            "comment",
            "changes",
            "hash",
            "origin",
        }
        for e in events:
            assert set(e) == keys
            assert_iso_shanghai(e["at"])
            assert re.fullmatch(r"[0-9a-f]{64}", e["hash"])
            assert set(e["origin"]) >= {"os_user", "host"}  # where the event was written from
        assert [e["seq"] for e in events] == list(range(1, 9))
        assert [(e["action"], e["trigger"], e["actor"], e["role"], e["from_state"], e["to_state"]) for e in events] == [
            ("created", None, "lin", "clerk", None, "apply"),
            ("updated", None, "lin", "clerk", "apply", "apply"),
            ("fired", "submit", "lin", "clerk", "apply", "review"),
            ("fired", "pass_review", "wu", "reviewer", "review", "publicise"),
            ("publicised", None, "system", None, "publicise", "publicise"),
            ("fired", "end_publicity", "wu", "reviewer", "publicise", "approve"),
            ("fired", "grant", "su", "approver", "approve", "enter"),
            ("fired", "record", "lin", "clerk", "enter", "filed"),
        ]
        assert len({e["hash"] for e in events}) == 8
        times = [dt.datetime.fromisoformat(e["at"]) for e in events]
        assert times == sorted(times) and times[-1] <= dt.datetime.now(dt.UTC)  # in order, none in the future
        # the list it was on, and its period: publicity ended only after the period's last day
        notice = events[4]["changes"]
        assert notice["notice"] == [None, published["number"]]
        assert notice["notice_sha256"] == [None, published["sha256"]]
        assert notice["period"] == [None, [published["period_start"], period_end]]
        assert times[5] >= after_period(period_end) - dt.timedelta(hours=9)  # 24:00 of its last day
        # personal data is masked in the trail, never shown in full
        created, updated = events[0]["changes"], events[1]["changes"]
        assert created["applicant_name"] == [None, "陈*强"]
        assert created["id_number"] == [None, "350602" + "*" * 8 + "0015"]
        assert created["county"] == [None, "芗城区"]
        assert updated["phone"] == [None, "138****5678"]
        assert updated["household_size"] == [None, 3]
        for secret in ("陈志强", ID_1, "13812345678"):
            assert secret not in history.out

        # (no audit key in this test's environment: the command says the heads are not authenticated)
        assert ok(verify).startswith("audit trail intact: 8 events in 1 case")


# -------------------------------------------------------------------- refusals


def test_refusals_say_what_is_wrong_and_change_nothing(seeded: Seeded, tmp_path: Path) -> None:
    url, svc = seeded.url, seeded.svc
    # A: in review, submitted by ye (clerk + reviewer), one document short
    a = svc.create_case(WF, "ye", full_household(id_number=ID_2, materials=["申请表", "身份证", "户口簿"])).ref
    svc.fire(a, "submit", "ye")
    # B: a draft with only a name and a county
    b = svc.create_case(WF, "lin", {"applicant_name": "李娜", "county": "芗城区"}).ref
    float_money = tmp_path / "money.json"
    float_money.write_text('{"income_per_capita": 612.5}', encoding="utf-8")

    before = snapshot(url, [a, b])

    checks: list[tuple[list[str], tuple[str, ...]]] = [
        # wrong role
        (["case", "fire", a, "pass_review", "--as", "lin"],
         ("lin (clerk) may not pass_review case " + a, "needs role reviewer")),
        # wrong county (scope)
        (["case", "fire", a, "pass_review", "--as", "chen"],
         ("chen covers 龙文区, not 芗城区", a, "ask a colleague who covers it")),
        # four-eyes: ye holds reviewer too, but submitted this one
        (["case", "fire", a, "pass_review", "--as", "ye"],
         ("ye fired submit on case " + a, "someone else must pass_review it", "four-eyes")),
        # comment required
        (["case", "fire", a, "return", "--as", "wu"], ("return needs a comment", '--comment "..."')),
        # guard: the materials are incomplete
        (["case", "fire", a, "pass_review", "--as", "wu"],
         ("pass_review refused", "'case.materials | length == 4'", "not met")),
        # unknown trigger, with a suggestion
        (["case", "fire", a, "pas_review", "--as", "wu"], ("no step 'pas_review'", "did you mean 'pass_review'")),
        # a real step, but not from here
        (["case", "fire", a, "grant", "--as", "su"],
         (f"case {a} is in review", "grant applies only from approve",
          "Possible from review: pass_review, return, reject, withdraw")),
        # unknown case
        (["case", "fire", "ZZ-2026-999999", "submit", "--as", "lin"],
         ("no case 'ZZ-2026-999999'", "casework case list")),
        # unknown user
        (["case", "fire", a, "pass_review", "--as", "nobody"], ("no user 'nobody'", "casework user add")),
        # the scheduler's identity is not for people
        (["case", "fire", a, "end_publicity", "--as", "system"], ("'system'", "--as USERNAME")),
        # the same household again
        (["case", "new", WF, "--as", "lin", *sets(applicant_name="王秀英", id_number=ID_2, county="芗城区")],
         (f"id_number is already on case {a} (state review)", "continue that case, or withdraw it first")),
        # submit with required fields empty: each is named
        (["case", "fire", b, "submit", "--as", "lin"],
         ("submit needs", "id_number", "household_type", "household_size", "income_per_capita", "cause",
          "--set FIELD=VALUE")),
        # invalid data, from a file and from --set: every problem at once
        (["case", "update", b, "--as", "lin", "--data-file", str(float_money),
          "--set", f"id_number={ID_1_BAD_CHECK}", "--set", "household_size=abc", "--set", "househld_size=3"],
         ("invalid case data",
          'income_per_capita: expected a decimal number, got a number (write it as text, e.g. "612.50"',
          "id_number: check digit should be 5, not 6",
          "household_size: expected a whole number such as 4, got 'abc'",
          "househld_size: no such field in poverty_archive; did you mean 'household_size'?")),
    ]  # fmt: skip

    results = run_all(url, *(cmd for cmd, _ in checks))
    for (cmd, needles), r in zip(checks, results, strict=True):
        try:
            refused(r, *needles)
        except AssertionError as exc:
            raise AssertionError(f"casework {' '.join(cmd)}: {exc}") from None

    after = snapshot(url, [a, b])
    assert after == before


def test_with_json_a_refusal_is_data_on_stdout_and_one_line_on_stderr(seeded: Seeded) -> None:
    url, svc = seeded.url, seeded.svc
    # in review, submitted by ye (clerk + reviewer): the four-eyes rule keeps ye from reviewing it
    a = svc.create_case(WF, "ye", full_household(id_number=ID_2)).ref
    svc.fire(a, "submit", "ye")
    missing = "ZZ-2026-999999"
    before = snapshot(url, [a])

    checks: list[tuple[list[str], str, dict[str, Any], str]] = [
        (["case", "fire", a, "return", "--as", "wu", "--json"],
         "comment_required", {"case": a, "state": "review", "trigger": "return"}, '--comment "..."'),
        (["case", "fire", missing, "submit", "--as", "lin", "--json"],
         "case_not_found", {"case": missing}, "'casework case list'"),
        (["case", "fire", a, "pass_review", "--as", "ye", "--json"],
         "four_eyes", {"case": a, "state": "review", "trigger": "pass_review", "user": "ye", "earlier": "submit"},
         "someone else must pass_review it"),
    ]  # fmt: skip
    for (args, code, facts, hint), r in zip(checks, run_all(url, *(c[0] for c in checks)), strict=True):
        where = f"casework {' '.join(args)}: {r}"
        assert r.rc == 1, where
        doc = json.loads(r.out)
        assert doc == {"error": {"code": code, "message": doc["error"]["message"], "facts": facts}}, where
        message = doc["error"]["message"]
        # stdout carries the engine's own words (no flag, no command); stderr the CLI's, on one line
        assert message and "--" not in message and "casework " not in message, where
        (line,) = r.err.splitlines()
        assert line.startswith(f"error: {message}") and hint in line, where
    assert snapshot(url, [a]) == before


def test_usage_errors_exit_2_and_change_nothing(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    # rejected while parsing the command line, before the database is opened: one backend is enough
    url, svc = sqlite_seeded.url, sqlite_seeded.svc
    ref = svc.create_case(WF, "lin", {"applicant_name": "李娜", "county": "芗城区"}).ref
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"household_size": 4,', encoding="utf-8")
    before = (svc.get_case(ref).to_json(), [e.to_json() for e in svc.history(ref)])

    no_equals, bad_file, no_actor = run_all(
        url,
        ["case", "update", ref, "--as", "lin", "--set", "household_size"],
        ["case", "update", ref, "--as", "lin", "--data-file", str(bad_json)],
        ["case", "fire", ref, "submit"],
    )
    usage_error(no_equals, "--set", "'household_size' should be FIELD=VALUE, e.g. household_size=4")
    refused(bad_file, str(bad_json), "not valid UTF-8 JSON", "line 1", rc=2)
    usage_error(no_actor, "Missing option '--as'")

    assert (svc.get_case(ref).to_json(), [e.to_json() for e in svc.history(ref)]) == before


# ------------------------------------------------------------ data file, lists


def test_data_file_with_typed_values_and_scoped_lists(seeded: Seeded, tmp_path: Path) -> None:
    url, svc = seeded.url, seeded.svc
    in_review = svc.create_case(WF, "lin", full_household(id_number=ID_2)).ref
    svc.fire(in_review, "submit", "lin")
    draft = svc.create_case(WF, "lin", {"applicant_name": "李娜", "county": "芗城区"}).ref

    data_file = tmp_path / "household.json"
    data_file.write_text(
        json.dumps(
            {
                "applicant_name": "欧阳志华",
                "id_number": ID_3,
                "county": "龙文区",
                "household_type": "低保边缘户",
                "household_size": 4,
                "income_per_capita": "612.50",
                "materials": ["身份证", "申请表"],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    view = ok_json(
        casework(url, "case", "new", WF, "--as", "chen", "--data-file", str(data_file), "--set", "cause=工伤", "--json")
    )
    ref = view["ref"]
    assert REF_RE.match(ref)
    assert view["state"] == "apply" and view["scope"] == "龙文区"
    assert view["data"] == {
        "applicant_name": "欧阳志华",
        "id_number": ID_3,
        "county": "龙文区",
        "household_type": "低保边缘户",
        "household_size": 4,
        "income_per_capita": "612.5",
        "materials": ["申请表", "身份证"],  # kept in the workflow's item order
        "cause": "工伤",
    }

    chen_sees, lin_in_review, all_in_apply = run_all(
        url,
        ["case", "list", "--as", "chen", "--json"],
        ["case", "list", "--as", "lin", "--state", "review", "--json"],
        ["case", "list", "--state", "apply", "--json"],
    )
    assert [c["ref"] for c in ok_json(chen_sees)] == [ref]  # only 龙文区
    assert [(c["ref"], c["state"]) for c in ok_json(lin_in_review)] == [(in_review, "review")]
    assert [(c["ref"], c["scope"]) for c in ok_json(all_in_apply)] == [(draft, "芗城区"), (ref, "龙文区")]


# ------------------------------------------------------------------------ demo


def test_demo_runs_on_sqlite(demo_run: DemoRun, tmp_path: Path) -> None:
    """One run, on a new database in a folder of its own, shared with the other tests of the demo
    (a second run on the same database: tests/e2e/test_cli_demo_programmes.py)."""
    out = ok(demo_run.result)
    assert demo_run.seconds < 60, f"demo took {demo_run.seconds:.1f} s"
    assert "audit verify: intact" in out
    assert "NOT refused" not in out
    m = re.search(r"(\d+) events in (\d+) cases", out)
    assert m and int(m[2]) > 0, out[-500:]
    url = f"sqlite:///{demo_run.copy(tmp_path)}"
    assert ok(casework(url, "audit", "verify")).startswith("audit trail intact")
    notices = sorted(p.suffix for p in (demo_run.folder / "demo-output").iterdir())  # its notices: ./demo-output
    assert notices and notices.count(".html") == notices.count(".pdf")  # each list notice as HTML and PDF
    # it ends by saying how to log in to the pages and where the API is
    assert "demo-password-2026" in out and "/api/v1/docs" in out and "casework token create" in out


# ------------------------------------------------------ product problems found by these tests


def test_case_show_prints_values_with_brackets_as_typed(sqlite_seeded: Seeded) -> None:
    data = full_household(cause="收入[/]不足 [bold]x")
    ref = sqlite_seeded.svc.create_case(WF, "lin", data).ref
    out = ok(casework(sqlite_seeded.url, "case", "show", ref))
    assert "收入[/]不足 [bold]x" in out


def test_case_list_unknown_state_is_an_error(sqlite_seeded: Seeded) -> None:
    r = casework(sqlite_seeded.url, "case", "list", "--state", "revew", "--json")
    refused(r, "revew", "did you mean 'review'", rc=2)


def test_user_add_refuses_an_empty_scope(sqlite_seeded: Seeded) -> None:
    r = casework(sqlite_seeded.url, "user", "add", "zhao", "--name", "赵敏", "--role", "clerk", "--scope", "")
    refused(r, "--scope", rc=2)
    assert "zhao" not in [u.username for u in sqlite_seeded.svc.users()]


def test_integer_given_as_json_float_names_the_value(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    f = tmp_path / "f.json"
    f.write_text('{"applicant_name": "张伟", "county": "芗城区", "household_size": 4.0}', encoding="utf-8")
    r = casework(sqlite_seeded.url, "case", "new", WF, "--as", "lin", "--data-file", str(f))
    refused(r, "household_size", "4.0")
