"""The data of a 芗城区 household as a clerk submits it, shared by the tests that open cases of the bundled workflow."""

from __future__ import annotations

from typing import Any

from engine.idnumber import check_digit

#: a valid 公民身份号码 for 芗城区 (350602…) and one whose check digit is wrong
GOOD_ID = "350602198501012336"
BAD_ID = "350602198501012337"


def case_data(**overrides: Any) -> dict[str, Any]:
    """Every field the submit step requires, for a 芗城区 household; ``overrides`` replace some."""
    data: dict[str, Any] = {
        "applicant_name": "王秀英",
        "id_number": GOOD_ID,
        "household_type": "低保户",
        "county": "芗城区",
        "household_size": 3,
        "income_per_capita": "650.00",
        "cause": "因病致困",
        "materials": ["申请表", "身份证", "户口簿", "收入证明"],
        "phone": "13800001111",
    }
    data.update(overrides)
    return data


def id_number(serial: int, area: str = "350602") -> str:
    """A valid 公民身份号码 of ``area`` (default 芗城区), one per ``serial``: another household of a test."""
    first17 = f"{area}19850101{serial:03d}"
    return first17 + check_digit(first17)
