"""The medical-aid workflow through the command, as an operator types it (issue 12, item 1): the subsidy is
computed at submit and shown with its two decimals; typing it is refused with exit 1, one line saying it is
computed, and nothing changed; a workflow file whose tests fail does not validate, each failure located.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.e2e.runner import ROOT, casework

MEDICAL = ROOT / "workflows" / "medical_aid.yaml"
APPLICANT = ["--set", "applicant_name=陈志强", "--set", "id_number=350602198503120015", "--set", "county=芗城区"]


def setup(url: str) -> None:
    r = casework(url, "init")
    assert r.rc == 0, r.err
    r = casework(url, "workflow", "load", str(MEDICAL))
    assert r.rc == 0, r.err
    for args in (
        ["lin", "--name", "林晓", "--role", "clerk", "--scope", "芗城区"],
        ["wu", "--name", "吴明辉", "--role", "reviewer", "--scope", "芗城区"],
    ):
        r = casework(url, "user", "add", *args)
        assert r.rc == 0, r.err


def new_case(url: str, self_paid: str) -> str:
    r = casework(url, "case", "new", "medical_aid", "--as", "lin", *APPLICANT, "--set", f"self_paid={self_paid}")
    assert r.rc == 0, r.err
    ref = r.out.split()[0] if not r.out.startswith("{") else json.loads(r.out)["ref"]
    return ref.strip()


def shown(url: str, ref: str) -> dict[str, Any]:
    r = casework(url, "case", "show", ref, "--json")
    assert r.rc == 0, r.err
    data: dict[str, Any] = json.loads(r.out)
    return data


def test_the_subsidy_is_computed_at_submit_and_shown_with_two_decimals(db_url: str) -> None:
    setup(db_url)
    ref = new_case(db_url, "12345.65")
    # the command contract: computed when the case is opened, a string with two decimals
    assert shown(db_url, ref)["data"]["subsidy"] == "1234.57"
    r = casework(db_url, "case", "fire", ref, "submit", "--as", "lin")
    assert r.rc == 0, r.err
    assert shown(db_url, ref)["data"]["subsidy"] == "1234.57"  # half up, not banker's 1234.56
    other = new_case(db_url, "6000")
    assert casework(db_url, "case", "fire", other, "submit", "--as", "lin").rc == 0
    assert shown(db_url, other)["data"]["subsidy"] == "500.00"
    table = casework(db_url, "case", "show", ref).out
    assert "补助金额（元）" in table and "1234.57" in table
    history = json.loads(casework(db_url, "case", "history", ref, "--json").out)
    assert history[0]["changes"]["subsidy"] == [None, "1234.57"]
    r = casework(db_url, "check")
    assert r.rc == 0, r.out + r.err
    r = casework(db_url, "workflow", "show", "medical_aid")
    assert (
        "computed from self_paid (table medical_whole) when the case is opened or edited, and at step submit" in r.out
    )
    # the 公示名单 lists the computed subsidy (and not the medical costs)
    assert casework(db_url, "case", "fire", ref, "pass_review", "--as", "wu").rc == 0
    r = casework(db_url, "notice", "publish", "medical_aid", "--scope", "芗城区", "--json")
    assert r.rc == 0, r.err
    notices = json.loads(casework(db_url, "notice", "list", "--json").out)
    html = casework(db_url, "notice", "show", notices[0]["number"]).out
    assert "职工医疗互助补助公示名单" in html and "<td>1234.57</td>" in html and "12345.65" not in html


def test_a_typed_subsidy_is_refused_and_changes_nothing(db_url: str) -> None:
    setup(db_url)
    r = casework(db_url, "case", "new", "medical_aid", "--as", "lin", *APPLICANT, "--set", "subsidy=1")
    assert (r.rc, r.out) == (1, ""), r.err
    lines = r.err.strip().splitlines()
    assert lines == [
        "error: invalid case data: subsidy: is computed from self_paid (table medical_whole) when the case is "
        "opened or edited, and at step submit; it cannot be typed"
    ]
    assert json.loads(casework(db_url, "case", "list", "--json").out) == []
    ref = new_case(db_url, "12345.65")
    before = [shown(db_url, ref)["data"], casework(db_url, "case", "history", ref, "--json").out]
    for args in (
        ["case", "update", ref, "--as", "lin", "--set", "subsidy=1"],
        ["case", "fire", ref, "submit", "--as", "lin", "--set", "subsidy=1"],
    ):
        r = casework(db_url, *args)
        assert r.rc == 1 and "subsidy: is computed from self_paid" in r.err, (args, r.err)
    assert [shown(db_url, ref)["data"], casework(db_url, "case", "history", ref, "--json").out] == before


def test_below_6000_submit_is_refused_as_not_eligible(db_url: str) -> None:
    setup(db_url)
    ref = new_case(db_url, "5999.99")
    r = casework(db_url, "case", "fire", ref, "submit", "--as", "lin")
    assert r.rc == 1 and "个人自付医疗费用不足6000元" in r.err, r.err
    assert shown(db_url, ref)["state"] == "apply"


def test_validate_locates_each_failing_test(tmp_path: Path) -> None:
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows" / "templates" / "medical_aid", folder / "templates" / "medical_aid")
    text = MEDICAL.read_text(encoding="utf-8")
    changed = folder / "medical_aid.yaml"
    changed.write_text(text.replace("      table: medical_whole\n", "      table: medical_banded\n"), encoding="utf-8")
    assert casework(None, "workflow", "validate", str(MEDICAL)).rc == 0
    r = casework(None, "workflow", "validate", str(changed))
    assert r.rc == 2
    lines = [line for line in r.err.splitlines() if "fails" in line]
    # the banded reading differs from the whole one above 10,000 and at the half-up example
    assert len(lines) == 6
    line = next(i + 1 for i, n in enumerate(text.splitlines()) if "name: 四舍五入" in n)
    assert lines[-1] == (
        f"{changed}:{line}:5: test '四舍五入' fails: subsidy expected 1234.57, got 734.57 (given self_paid=12345.65)"
    )
