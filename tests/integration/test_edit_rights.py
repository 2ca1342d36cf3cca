"""What was decided stays decided (issue 11, section C), on real SQLite and PostgreSQL databases.

Each reproduction of the issue — a reviewer changing the applicant in 审核 and passing the review, an
approver changing the household size in 审批 and granting, a clerk renaming the applicant in 录入, a
cashier raising an approved subsidy and paying it — is refused now, by an edit and by data given with
a step alike, and the refusal changes nothing (version, data, trail). Whoever entered or changed the
data before a step may not take the four-eyes step that checks it. A correction step sends the case
back, and the review and the publicity happen again on the corrected data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db import Case
from engine import Casework, CommentRequired, PermissionDenied, SameActorForbidden, load_definition_file
from engine.access import four_eyes_facts
from engine.errors import Code, InvalidTransition
from tests.conftest import ROOT
from tests.integration.race_support import audit_count
from tests.integration.test_service import file_through, household, stored

WF = "poverty_archive"
SUBSIDY = ROOT / "tests" / "fixtures" / "workflows" / "valid" / "subsidy_payment.yaml"


def untouched(svc: Casework, ref: str) -> dict[str, Any]:
    """What a refusal must leave as it was: the case (version, state, data), its trail, and all events."""
    return {**stored(svc, ref), "events": audit_count(svc.engine)}


def fired_by(svc: Casework, ref: str) -> dict[str, list[str]]:
    with svc.engine.connect() as conn:
        return dict(conn.execute(select(Case.__table__.c.fired_by).where(Case.__table__.c.ref == ref)).scalar_one())


def refused_edit(call: Any) -> PermissionDenied:
    with pytest.raises(PermissionDenied) as info:
        call()
    assert info.value.code is Code.NOT_EDITABLE, info.value
    return info.value


# --- the reproductions, on the bundled archive -------------------------------------------


def test_a_reviewer_may_not_change_the_applicant_in_review_nor_pass_it_with_changed_data(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    svc.fire(ref, "submit", "lin")
    before = untouched(svc, ref)
    other = household(seed=7)
    changed = {
        "id_number": other["id_number"],
        "applicant_name": other["applicant_name"],
        "income_per_capita": "99.50",
    }
    exc = refused_edit(lambda: svc.update_case(ref, "wu", changed))
    assert exc.facts["fields"] == ["applicant_name", "id_number", "income_per_capita"]
    assert exc.facts["corrections"] == ["return"]
    assert "send the case back with return (reviewer, comment required) to apply (申请)" in exc.message
    assert untouched(svc, ref) == before
    # the same change given with the step is the same edit
    exc = refused_edit(lambda: svc.fire(ref, "pass_review", "wu", data=changed))
    assert exc.facts["trigger"] == "pass_review"
    # holding the clerk role as well does not open review's data
    refused_edit(lambda: svc.update_case(ref, "ye", {"applicant_name": other["applicant_name"]}))
    assert untouched(svc, ref) == before
    # the review passes on the data as submitted
    assert svc.fire(ref, "pass_review", "wu").data["id_number"] == before["case"]["data"]["id_number"]


def test_an_approver_may_not_change_the_household_size_in_approve(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household(household_size=3)).ref
    file_through(svc, ref, "approve")
    before = untouched(svc, ref)
    exc = refused_edit(lambda: svc.update_case(ref, "su", {"household_size": 6}))
    assert exc.facts["corrections"] == ["correct"]
    assert "send the case back with correct (reviewer or approver, comment required) to apply (申请)" in exc.message
    refused_edit(lambda: svc.fire(ref, "grant", "su", data={"household_size": 6}))
    assert untouched(svc, ref) == before
    assert svc.fire(ref, "grant", "su").data["household_size"] == 3


def test_a_clerk_may_not_rename_the_applicant_in_enter(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household(applicant_name="陈志强")).ref
    file_through(svc, ref, "enter")
    before = untouched(svc, ref)
    exc = refused_edit(lambda: svc.update_case(ref, "lin", {"applicant_name": "陈志刚"}))
    assert exc.message.startswith(
        f"lin (clerk) may not change applicant_name (申请人姓名) of case {ref} in enter (录入): nothing may be "
        "changed there; to correct it, send the case back with correct (reviewer or approver, comment required)"
    )
    refused_edit(lambda: svc.fire(ref, "record", "lin", data={"applicant_name": "陈志刚"}))
    assert untouched(svc, ref) == before
    assert svc.fire(ref, "record", "lin").data["applicant_name"] == "陈志强"


def test_data_is_still_the_clerks_in_apply_by_an_edit_or_with_the_step(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household(household_size=2)).ref
    assert svc.update_case(ref, "lin", {"household_size": 3}).version == 2
    view = svc.fire(ref, "submit", "lin", data={"cause": "因病致困，补充说明"})
    assert (view.state, view.data["cause"]) == ("review", "因病致困，补充说明")
    # a reviewer acts in apply (withdraw) but the workflow gives its data to the clerk only
    svc.fire(ref, "return", "wu", comment="请补充收入证明")
    refused_edit(lambda: svc.update_case(ref, "wu", {"household_size": 4}))


def test_whoever_entered_or_changed_the_data_may_not_review_it(svc: Casework) -> None:
    # ye (clerk and reviewer) changed data that lin then submitted: ye may not pass that review
    ref = svc.create_case(WF, "lin", household(seed=1)).ref
    svc.update_case(ref, "ye", {"cause": "家庭成员重病"})
    svc.fire(ref, "submit", "lin")
    before = untouched(svc, ref)
    with pytest.raises(SameActorForbidden) as info:
        svc.fire(ref, "pass_review", "ye")
    assert info.value.code is Code.FOUR_EYES and info.value.facts["earlier"] == "submit"
    assert str(info.value) == (
        f"ye entered or changed the data of case {ref} before submit, so someone else must pass_review it "
        "(four-eyes rule)"
    )
    assert untouched(svc, ref) == before
    assert "pass_review" not in [a.trigger for a in svc.get_case(ref, "ye").actions or ()]
    svc.fire(ref, "pass_review", "wu")
    # opening the case is entering its data
    opened = svc.create_case(WF, "ye", household(seed=2)).ref
    svc.fire(opened, "submit", "lin")
    with pytest.raises(SameActorForbidden, match="ye entered or changed the data of case"):
        svc.fire(opened, "pass_review", "ye")
    # and the trail proves what the row keeps
    for case in (ref, opened):
        assert four_eyes_facts(svc.history(case)) == fired_by(svc, case)


def test_a_correction_sends_the_case_back_and_review_and_publicity_happen_again(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household(seed=3, household_size=3)).ref
    file_through(svc, ref, "approve")
    before = untouched(svc, ref)
    with pytest.raises(PermissionDenied):
        svc.fire(ref, "correct", "lin", comment="户籍人口有误")  # the clerk cannot reopen a decision
    with pytest.raises(CommentRequired):
        svc.fire(ref, "correct", "su")
    assert untouched(svc, ref) == before
    view = svc.fire(ref, "correct", "su", comment="户口簿显示家庭人口为4人，退回更正")
    assert (view.state, view.version) == ("apply", before["case"]["version"] + 1)
    corrected = household(seed=11)["id_number"]
    svc.update_case(ref, "lin", {"household_size": 4, "id_number": corrected})
    with pytest.raises(InvalidTransition):
        svc.fire(ref, "grant", "su")  # what was granted before is not granted now: the steps are taken again
    file_through(svc, ref, "enter")
    case = svc.get_case(ref)
    assert (case.data["household_size"], case.data["id_number"]) == (4, corrected)
    steps = [h.trigger for h in svc.history(ref) if h.action == "fired"]
    assert steps.count("pass_review") == 2 and steps.count("end_publicity") == 2
    assert steps[-4:] == ["submit", "pass_review", "end_publicity", "grant"]
    assert four_eyes_facts(svc.history(ref)) == fired_by(svc, ref)


# --- a workflow that declares edits in later states: a subsidy paid by a cashier -----------------


@pytest.fixture
def subsidy(svc: Casework) -> Casework:
    svc.load_workflow(load_definition_file(Path(SUBSIDY)))
    svc.add_user("qian", "钱会计", ["cashier"], ["*"])
    return svc


def _granted(svc: Casework, amount: str, reviewer: str = "wu") -> str:
    ref = svc.create_case("subsidy_payment", "lin", {"applicant_name": "陈志强", "county": "芗城区"}).ref
    svc.fire(ref, "submit", "lin")
    svc.update_case(ref, reviewer, {"materials": ["申请表", "收入证明"]})  # declared: review's to tick
    svc.fire(ref, "pass_review", "wu")
    svc.update_case(ref, "su", {"amount": amount})  # declared: the approver sets the amount
    svc.fire(ref, "grant", "su")
    return ref


def test_a_cashier_may_not_raise_an_approved_subsidy(subsidy: Casework) -> None:
    svc = subsidy
    ref = _granted(svc, "6750")
    before = untouched(svc, ref)
    exc = refused_edit(lambda: svc.update_case(ref, "qian", {"amount": "50000"}))
    assert exc.facts["editable"] == ["voucher"] and exc.facts["corrections"] == ["reconsider"]
    assert "in pay (发放), where they may change only voucher" in exc.message
    assert "send the case back with reconsider (approver or cashier, comment required) to approve (审批)" in exc.message
    refused_edit(lambda: svc.fire(ref, "pay_out", "qian", data={"amount": "50000", "voucher": "FK-0001"}))
    assert untouched(svc, ref) == before
    view = svc.fire(ref, "pay_out", "qian", data={"voucher": "FK-0001"})  # what the cashier may record
    assert (view.state, view.data["amount"], view.data["voucher"]) == ("paid", "6750", "FK-0001")
    assert four_eyes_facts(svc.history(ref)) == fired_by(svc, ref)


def test_a_declared_change_counts_for_the_four_eyes_step_after_it(subsidy: Casework) -> None:
    # xu (approver and reviewer) ticks the materials in review; wu passes the review; xu may not grant it
    svc = subsidy
    ref = svc.create_case("subsidy_payment", "lin", {"applicant_name": "陈志强", "county": "芗城区"}).ref
    svc.fire(ref, "submit", "lin")
    svc.update_case(ref, "xu", {"materials": ["申请表", "收入证明"]})
    svc.fire(ref, "pass_review", "wu")
    svc.update_case(ref, "su", {"amount": "3000"})
    before = untouched(svc, ref)
    with pytest.raises(SameActorForbidden, match=f"xu entered or changed the data of case {ref} before pass_review"):
        svc.fire(ref, "grant", "xu")
    assert untouched(svc, ref) == before
    # the approver who set the amount in approval may grant it (the change came after the review) ...
    svc.fire(ref, "grant", "su")
    # ... and a reviewer who ticked the materials in review may pass that review (see the unit tests)
    assert four_eyes_facts(svc.history(ref)) == fired_by(svc, ref)
