"""``casework case inbox``, run as a user types it, on SQLite and PostgreSQL.

The scene (cases in two counties and several states) is set through the
engine API; the command runs as a user types it (in this process).
"""

from __future__ import annotations

import re

from casework.synthetic import SyntheticPeople
from tests.e2e.conftest import Seeded
from tests.e2e.test_cli import assert_iso_shanghai, ok, ok_json, refused, run_all, usage_error

WF = "poverty_archive"
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def _case(seeded: Seeded, seed: int, county: str = "芗城区", clerk: str = "lin", name: str | None = None) -> str:
    data = SyntheticPeople(seed).household()
    data.update(county=county, materials=list(ALL_MATERIALS))
    if name:
        data["applicant_name"] = name
    return seeded.svc.create_case(WF, clerk, data).ref


def test_case_inbox_lists_what_waits_for_the_user_by_deadline(seeded: Seeded) -> None:
    svc = seeded.svc
    waiting = _case(seeded, 1, name="陈志强")  # apply: no deadline, listed after the dated one
    review = _case(seeded, 2, name="王秀英")
    svc.fire(review, "submit", "lin")
    elsewhere = _case(seeded, 3, "龙文区", "chen")
    svc.fire(elsewhere, "submit", "chen")
    url = seeded.url

    table, as_json, page2, wu, reviewer_json, nobody, bad_page, bad_size, not_a_number, no_user = run_all(
        url,
        # ye is clerk and reviewer of 芗城区: the case in apply waits for the clerk, the one in review for the
        # reviewer (a case waits for the work that moves it on, not for a withdrawal either may make)
        ["case", "inbox", "--as", "ye"],
        ["case", "inbox", "--as", "ye", "--json"],
        ["case", "inbox", "--as", "ye", "--per-page", "1", "--page", "2", "--json"],
        ["case", "inbox", "--as", "wu", "--workflow", WF],
        ["case", "inbox", "--as", "wu", "--per-page", "500", "--json"],
        ["case", "inbox", "--as", "su", "--page", "2"],
        ["case", "inbox", "--as", "lin", "--page", "0"],
        ["case", "inbox", "--as", "lin", "--per-page", "501"],
        ["case", "inbox", "--as", "lin", "--page", "two"],
        ["case", "inbox", "--as", "nobody"],
    )

    text = ok(table)
    for heading in ("ref", "state", "scope", "deadline", "time left", "applicant"):
        assert heading in text
    assert text.index(review) < text.index(waiting) and elsewhere not in text
    assert "陈*强" in text and "王*英" in text  # masked on a screen others may see
    assert "陈志强" not in text and "王秀英" not in text
    assert "5 working days left" in text and re.search(r"\d{4}-\d\d-\d\d 00:00", text)  # deadlines end at midnight
    assert "page 1: cases 1–2 waiting for ye" in text and "--page 2" not in text

    doc = ok_json(as_json)
    assert (doc["page"], doc["per_page"], doc["has_more"]) == (1, 50, False)
    assert [c["ref"] for c in doc["items"]] == [review, waiting]
    first = doc["items"][0]
    assert first["state"] == "review" and first["scope"] == "芗城区" and first["time_left"] == "5 working days left"
    assert_iso_shanghai(first["deadline"])
    assert doc["items"][1]["deadline"] is None

    second = ok_json(page2)
    assert [c["ref"] for c in second["items"]] == [waiting] and second["page"] == 2 and not second["has_more"]

    assert elsewhere in ok(wu) and review in ok(wu)  # the reviewer covers both counties
    assert {c["ref"] for c in ok_json(reviewer_json)["items"]} == {review, elsewhere}  # not the one in apply
    assert "nothing waiting for su" in ok(nobody)

    refused(bad_page, "page must be a whole number from 1 up, not 0", rc=2)
    refused(bad_size, "from 1 to 500, not 501", rc=2)
    usage_error(not_a_number, "'two' is not a valid integer")
    refused(no_user, "no user 'nobody'", rc=1)


def test_case_inbox_needs_a_user_and_a_known_workflow(seeded: Seeded) -> None:
    missing, unknown = run_all(
        seeded.url,
        ["case", "inbox"],
        ["case", "inbox", "--as", "lin", "--workflow", "poverty_archiv"],
    )
    usage_error(missing, "Missing option '--as'")
    refused(unknown, "no workflow 'poverty_archiv'", "did you mean", rc=1)
