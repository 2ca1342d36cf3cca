"""Edit rights through the command, as a user types it: ``case update`` and ``case fire --set`` outside
the states where the workflow lets that user change those fields are refused with exit 1, one line on
stderr naming the fields and the correction step, and nothing changes (issue 11, section C).
"""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Seeded
from tests.e2e.runner import casework

WF = "poverty_archive"
ID_1 = "350602198503120015"
ID_2 = "350603199001010028"


def household() -> dict[str, Any]:
    return {
        "applicant_name": "陈志强",
        "id_number": ID_1,
        "household_type": "低保户",
        "county": "芗城区",
        "household_size": 3,
        "income_per_capita": "612.50",
        "cause": "因病致困",
        "materials": ["申请表", "身份证", "户口簿", "收入证明"],
    }


def snapshot(url: str, ref: str) -> list[Any]:
    return [
        json.loads(casework(url, "case", "show", ref, "--json").out),
        json.loads(casework(url, "case", "history", ref, "--json").out),
    ]


def test_changing_data_after_submission_is_refused_and_changes_nothing(seeded: Seeded) -> None:
    url, svc = seeded.url, seeded.svc
    ref = svc.create_case(WF, "lin", household()).ref
    svc.fire(ref, "submit", "lin")
    before = snapshot(url, ref)
    attempts = [
        ["case", "update", ref, "--as", "wu", "--set", f"id_number={ID_2}", "--set", "income_per_capita=99"],
        ["case", "fire", ref, "pass_review", "--as", "wu", "--set", f"id_number={ID_2}"],
    ]
    for args in attempts:
        r = casework(url, *args)
        assert (r.rc, r.out) == (1, ""), (args, r.out, r.err)
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: wu (reviewer) may not change id_number (公民身份号码)")
        assert "send the case back with return (reviewer, comment required) to apply (申请)" in lines[0]
        assert "Traceback" not in r.err
    r = casework(url, "case", "update", ref, "--as", "wu", "--set", "household_size=4", "--json")
    assert r.rc == 1
    refusal = json.loads(r.out)["error"]
    assert refusal["code"] == "not_editable"
    assert refusal["facts"]["fields"] == ["household_size"] and refusal["facts"]["corrections"] == ["return"]
    assert snapshot(url, ref) == before


def test_the_clerk_changes_data_after_a_return(seeded: Seeded) -> None:
    url, svc = seeded.url, seeded.svc
    ref = svc.create_case(WF, "lin", household()).ref
    svc.fire(ref, "submit", "lin")
    r = casework(url, "case", "fire", ref, "return", "--as", "wu", "--comment", "身份证号码有误，请更正")
    assert r.rc == 0, r.err
    r = casework(url, "case", "update", ref, "--as", "lin", "--set", f"id_number={ID_2}")
    assert r.rc == 0, r.err
    assert svc.get_case(ref).data["id_number"] == ID_2
