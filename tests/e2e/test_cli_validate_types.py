"""``casework workflow validate`` (issue 12, items 2 and 7b): type-checked guards, every problem in one run.

Run in-process through the real command line (tests/e2e/runner.py); validate
needs no database.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.runner import ROOT, casework
from tests.unit.test_validate_one_pass import EXAMPLE

GUARDED = """\
workflow: fees
version: 1
title: Fees
roles:
  clerk: Clerk
fields:
  cost: {type: decimal, min: 0}
  self_paid: {type: decimal, min: 0}
states:
  draft: {initial: true}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk, require: [self_paid], when: "GUARD"}
"""


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _unused_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'unused.db'}"


def test_validate_reports_the_schema_reference_and_state_problems_in_one_run(tmp_path: Path) -> None:
    path = _file(tmp_path, "example.yaml", EXAMPLE)
    r = casework(_unused_db(tmp_path), "workflow", "validate", path)
    assert r.rc == 2 and r.out == "", r
    assert r.err.strip().splitlines() == [
        f"{path}:9:15: states.draft.deadline: '5 workin days' is not a duration; "
        "write e.g. '5 working days', '7 days' or '48 hours'",
        f"{path}:10:37: unknown transition 'auto_clse'; did you mean 'auto_close'?",
        f"{path}:15:30: unknown state 'archived'; known: done, draft",
        "1 of 1 file invalid",
    ]
    # load refuses with the same problems, before a database is opened
    loaded = casework(_unused_db(tmp_path), "workflow", "load", path)
    assert loaded.rc == 2 and loaded.err.strip().splitlines() == r.err.strip().splitlines()[:-1]
    assert not (tmp_path / "unused.db").exists()


def test_validate_refuses_a_guard_that_mixes_a_decimal_with_a_float(tmp_path: Path) -> None:
    path = _file(tmp_path, "fees.yaml", GUARDED.replace("GUARD", "case.self_paid * (case.cost | float) > 5"))
    r = casework(_unused_db(tmp_path), "workflow", "validate", path)
    assert r.rc == 2, r
    [problem, summary] = r.err.strip().splitlines()
    assert problem.startswith(f"{path}:13:74: when: 'case.self_paid * (case.cost | float) > 5' cannot run with ")
    assert "TypeError: unsupported operand type(s) for *: 'decimal.Decimal' and 'float'" in problem
    assert "leave out '| float'" in problem
    assert summary == "1 of 1 file invalid"


def test_validate_refuses_a_guard_on_a_field_that_may_be_empty_and_accepts_it_required(tmp_path: Path) -> None:
    # the guard: before, it validated and then failed at run time with TypeError: Decimal and float
    text = GUARDED.replace("GUARD", "case.self_paid * 0.10 > case.cost")
    path = _file(tmp_path, "fees.yaml", text)
    r = casework(_unused_db(tmp_path), "workflow", "validate", path)
    assert r.rc == 2, r
    assert "cannot run when case.cost is empty" in r.err and "add cost to the step's 'require:'" in r.err, r.err

    fixed = _file(tmp_path, "fixed.yaml", text.replace("require: [self_paid]", "require: [self_paid, cost]"))
    ok = casework(_unused_db(tmp_path), "workflow", "validate", fixed)
    assert ok.rc == 0 and ok.err == "", ok
    assert ok.out.strip() == f"{fixed}: ok (fees version 1: 2 states, 1 steps)"


def test_the_bundled_workflows_validate(tmp_path: Path) -> None:
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "workflows").glob("*.yaml"))
    r = casework(_unused_db(tmp_path), "workflow", "validate", *files)
    assert r.rc == 0 and r.err == "", r
    assert len(r.out.strip().splitlines()) == len(files)
