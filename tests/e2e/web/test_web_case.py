"""The case page over HTTP: what a viewer sees of a case, the steps they take from it, and the refusals.

Every scene is set through the engine (``site.svc``) as the CLI would set it,
then the page is asked over HTTP as the user logged in; what the page says is
compared with what the engine (and ``casework case history``) says.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from engine.masking import mask_id_number, mask_name, mask_phone
from notifications.notices import publish_list
from tests.e2e.runner import casework
from tests.e2e.web.conftest import GOOD_ID, Site, WebClient

NAME, PHONE = "王秀英", "13800001111"
#: a second valid 芗城区 ID number (a household is filed once)
OTHER_ID = "350602199002021232"


def section(html: str, ident: str) -> str:
    """The text of ``<section id="ident">`` … ``</section>`` in a page."""
    found = re.search(rf'<section id="{ident}"[^>]*>(.*?)</section>', html, re.DOTALL)
    assert found, f"no section #{ident}"
    return found.group(1)


def state_label(html: str) -> str:
    found = re.search(r'<span id="state"[^>]*>([^<]*)</span>', html)
    assert found, "no #state"
    return found.group(1)


def form_version(html: str, action: str) -> str:
    """The hidden ``version`` of the form posting to ``action``."""
    found = re.search(rf'<form[^>]*action="{re.escape(action)}"[^>]*>(.*?)</form>', html, re.DOTALL)
    assert found, f"no form for {action}"
    version = re.search(r'name="version" value="(\d+)"', found.group(1))
    assert version
    return version.group(1)


def submitted(site: Site, actor: str = "lin", **overrides: Any) -> str:
    """A 芗城区 case opened and submitted by ``actor``: waiting for review (审核)."""
    ref = site.open_case(actor, **overrides)
    site.svc.fire(ref, "submit", actor)
    return ref


def in_publicity(site: Site) -> str:
    """A case passed by wu and on a published 公示名单 (公示)."""
    ref = submitted(site)
    site.svc.fire(ref, "pass_review", "wu")
    assert publish_list(site.svc, "poverty_archive", "芗城区") is not None
    return ref


def test_a_clerk_sees_the_case_with_its_data_timeline_and_diagram_and_the_read_is_logged(
    web: WebClient, site: Site
) -> None:
    ref = site.open_case("lin")
    web.login("lin")
    page = web.get(f"/cases/{ref}")
    assert page.status_code == 200
    html = page.text
    assert f"<h1>{ref}</h1>" in html
    assert state_label(html) == "申请"
    data = section(html, "data")
    for label, value in (
        ("申请人姓名", NAME),
        ("公民身份号码", GOOD_ID),
        ("联系电话", PHONE),
        ("申报材料", "申请表、身份证"),
    ):
        assert label in data and value in data
    timeline = section(html, "timeline")
    assert '<ol class="timeline">' in timeline
    assert timeline.count("<li ") == 1 and "新建案件" in timeline and "林晓" in timeline
    assert 'src="/workflows/poverty_archive/v4/diagram.svg?current=apply"' in html
    # the steps lin may take now: submit (提交申请) and withdraw (撤回申请), each its own form
    actions = section(html, "actions")
    assert f'action="/cases/{ref}/steps/submit"' in actions and ">提交申请</button>" in actions
    assert f'action="/cases/{ref}/steps/withdraw"' in actions
    assert '<form id="edit" method="post"' in html
    # the full data was shown: the access log says who saw which case
    reads = site.svc.access_log(action="read_case")
    assert [(e.actor, e.detail["refs"]) for e in reads] == [("lin", [ref])]


def test_a_clerk_of_another_county_gets_404_and_nothing_of_the_case(web: WebClient, site: Site) -> None:
    ref = site.open_case("lin")
    web.login("chen")
    page = web.get(f"/cases/{ref}")
    assert page.status_code == 404
    for personal in (NAME, mask_name(NAME), GOOD_ID, PHONE, "芗城区", "申请"):
        assert personal not in page.text.split("<main>")[1]
    # the same answer as for a case that does not exist
    assert web.get("/cases/ZZ-2026-999999").status_code == 404
    assert site.svc.access_log(action="read_case") == []
    # and nothing can be done to it from chen's session
    token = web.form_token()
    response = web.post(f"/cases/{ref}/steps/withdraw", {"comment": "不办了", "version": "1"}, token=token)
    assert response.status_code == 404 and NAME not in response.text
    assert site.svc.get_case(ref).state == "apply"


def test_the_reviewer_passes_the_case_and_the_timeline_shows_the_step(web: WebClient, site: Site) -> None:
    ref = submitted(site)
    web.login("wu")
    html = web.get(f"/cases/{ref}").text
    assert state_label(html) == "审核"
    assert ">审核通过</button>" in section(html, "actions")
    version = form_version(html, f"/cases/{ref}/steps/pass_review")
    response = web.post(f"/cases/{ref}/steps/pass_review", {"comment": "材料齐全", "version": version})
    assert response.status_code == 303
    assert response.headers["location"] == f"/cases/{ref}"
    assert site.svc.get_case(ref).state == "publicise"
    html = web.get(f"/cases/{ref}").text
    assert state_label(html) == "公示"
    last = section(html, "timeline").split("<li ")[-1]
    assert "审核通过" in last and "审核 → 公示" in last and "吴明辉" in last and "材料齐全" in last


def test_four_eyes_refuses_the_submitter_in_chinese_and_changes_nothing(web: WebClient, site: Site) -> None:
    ref = submitted(site, "ye")  # ye is clerk and reviewer of 芗城区
    before = site.svc.get_case(ref)
    web.login("ye")
    html = web.get(f"/cases/{ref}").text
    # the engine lists no 审核通过 for ye; a form posted anyway (an old page, another tab) is refused
    assert "/steps/pass_review" not in section(html, "actions")
    response = web.post(f"/cases/{ref}/steps/pass_review", {"comment": "", "version": str(before.version)})
    assert response.status_code == 403
    assert '<p class="refusal" role="alert">' in response.text and "双人审核" in response.text
    assert state_label(response.text) == "审核"
    assert site.svc.get_case(ref).version == before.version


def test_return_without_a_comment_is_refused_with_422_and_changes_nothing(web: WebClient, site: Site) -> None:
    ref = submitted(site)
    before = site.svc.get_case(ref)
    web.login("wu")
    html = web.get(f"/cases/{ref}").text
    form = re.search(rf'action="/cases/{ref}/steps/return".*?</form>', html, re.DOTALL)
    assert form and "意见（必填）" in form.group(0) and ">退回补正</button>" in form.group(0)
    response = web.post(f"/cases/{ref}/steps/return", {"comment": "  ", "version": str(before.version)})
    assert response.status_code == 422
    assert "必须填写意见" in response.text and state_label(response.text) == "审核"
    assert site.svc.get_case(ref).version == before.version


def test_an_edit_from_a_stale_page_is_a_409_conflict_and_overwrites_nothing(web: WebClient, site: Site) -> None:
    ref = site.open_case("lin")
    web.login("lin")
    html = web.get(f"/cases/{ref}").text
    version = form_version(html, f"/cases/{ref}/edit")
    # someone else changes the phone number after lin's page was shown
    site.svc.update_case(ref, "ye", {"phone": "13900002222"})
    response = web.post(f"/cases/{ref}/edit", {"version": version, "phone": "13700003333", "household_size": "4"})
    assert response.status_code == 409
    assert "已被他人修改，您的修改未保存" in response.text
    data = site.svc.get_case(ref).data
    assert data["phone"] == "13900002222" and data["household_size"] == 3
    # the form shown again holds the case as it is now, at its new version: nothing typed over the old one
    edit = re.search(r'<form id="edit".*?</form>', response.text, re.DOTALL)
    assert edit and 'value="13900002222"' in edit.group(0) and "13700003333" not in edit.group(0)
    assert form_version(response.text, f"/cases/{ref}/edit") == str(site.svc.get_case(ref).version)


def test_an_edit_with_the_current_version_saves_typed_values_in_their_types(web: WebClient, site: Site) -> None:
    ref = site.open_case("lin", materials=["申请表"])
    web.login("lin")
    html = web.get(f"/cases/{ref}").text
    form = {
        "version": form_version(html, f"/cases/{ref}/edit"),
        "fields": "household_size,income_per_capita,materials",
        "household_size": "5",
        "income_per_capita": "512.50",
        "materials": ["申请表", "户口簿"],
    }
    assert web.post(f"/cases/{ref}/edit", form).status_code == 303
    data = site.svc.get_case(ref).data
    assert data["household_size"] == 5 and data["income_per_capita"] == "512.5"
    assert data["materials"] == ["申请表", "户口簿"]
    # a wrong value is the engine's refusal, field by field, with what was typed kept
    html = web.get(f"/cases/{ref}").text
    form = {"version": form_version(html, f"/cases/{ref}/edit"), "fields": "household_size", "household_size": "五"}
    response = web.post(f"/cases/{ref}/edit", form)
    assert response.status_code == 422
    assert "家庭人口" in response.text and 'value="五"' in response.text
    assert site.svc.get_case(ref).data["household_size"] == 5


def test_an_objection_is_recorded_and_resolved_from_the_case_page(web: WebClient, site: Site) -> None:
    ref = in_publicity(site)
    web.login("wu")
    html = web.get(f"/cases/{ref}").text
    assert state_label(html) == "公示"
    notices = section(html, "notices")
    assert re.search(r'<a href="/notices/ZZGS-\d{4}-\d{6}">', notices)
    # an objection without text is refused in place
    response = web.post(f"/cases/{ref}/objections", {"text": "", "channel": "电话"})
    assert response.status_code == 422 and '<p class="refusal" role="alert">' in response.text
    assert site.svc.objections(ref) == []
    response = web.post(
        f"/cases/{ref}/objections", {"text": f"群众反映其收入不实（身份证 {GOOD_ID}）", "channel": "来信"}
    )
    assert response.status_code == 303
    (objection,) = site.svc.objections(ref)
    html = web.get(f"/cases/{ref}").text
    listed = section(html, "objections")
    assert "群众反映其收入不实" in listed and "待处理" in listed and "来信" in listed
    assert GOOD_ID not in listed and mask_id_number(GOOD_ID) in listed
    action = f"/cases/{ref}/objections/{objection.id}/resolve"
    assert f'action="{action}"' in listed and ">处理异议</button>" in listed
    # resolving needs a comment
    response = web.post(action, {"outcome": "dismissed", "comment": ""})
    assert response.status_code == 422
    assert site.svc.objections(ref)[0].status == "open"
    response = web.post(action, {"outcome": "dismissed", "comment": "经核实收入属实"})
    assert response.status_code == 303
    assert site.svc.objections(ref)[0].status == "dismissed"
    html = web.get(f"/cases/{ref}").text
    assert "异议不成立" in section(html, "objections") and "经核实收入属实" in section(html, "objections")
    timeline = section(html, "timeline")
    assert "登记异议" in timeline and "异议不成立" in timeline
    assert state_label(html) == "公示"


def test_an_upheld_objection_sends_the_case_back_to_review(web: WebClient, site: Site) -> None:
    ref = in_publicity(site)
    objection = site.svc.add_objection(ref, "wu", "邻居反映家中有车", "电话")
    web.login("wu")
    web.get(f"/cases/{ref}")
    response = web.post(f"/cases/{ref}/objections/{objection.id}/resolve", {"outcome": "upheld", "comment": "核实有车"})
    assert response.status_code == 303
    assert site.svc.get_case(ref).state == "review"
    assert "异议成立" in section(web.get(f"/cases/{ref}").text, "timeline")


def test_a_form_without_the_csrf_token_is_refused_with_403_and_changes_nothing(web: WebClient, site: Site) -> None:
    ref = submitted(site)
    before = site.svc.get_case(ref)
    web.login("wu")
    html = web.get(f"/cases/{ref}").text
    version = form_version(html, f"/cases/{ref}/steps/pass_review")
    for token in ("", "forged-token"):
        response = web.post(f"/cases/{ref}/steps/pass_review", {"comment": "好", "version": version}, token=token)
        assert response.status_code == 403
        response = web.post(f"/cases/{ref}/edit", {"version": version, "phone": "1"}, token=token)
        assert response.status_code == 403
    after = site.svc.get_case(ref)
    assert (after.state, after.version, after.data) == (before.state, before.version, before.data)


def test_what_the_cli_masks_for_a_viewer_is_masked_on_the_page(web: WebClient, site: Site) -> None:
    ref = site.open_case("lin")
    site.svc.update_case(ref, "lin", {"phone": "13912345678", "applicant_name": "欧阳志华"})
    site.svc.fire(ref, "submit", "lin", comment=f"身份证号 {GOOD_ID} 已核对")
    web.login("wu")
    html = web.get(f"/cases/{ref}").text
    # `case show` shows the full data to whoever may see the case; so does the page (and logs it)
    data = section(html, "data")
    assert "欧阳志华" in data and GOOD_ID in data and "13912345678" in data
    # `case history` masks the trail: every value it prints is on the page as it prints it, and no full value
    result = casework(site.url, "case", "history", ref, "--as", "wu", "--json")
    assert result.rc == 0, result.err
    trail = json.loads(result.out)
    timeline = section(html, "timeline")
    for event in trail:
        if event["comment"]:
            assert event["comment"] in timeline
        for old, new in event["changes"].values():
            for value in (old, new):
                if isinstance(value, str):
                    assert value in timeline
    for full in ("欧阳志华", NAME, GOOD_ID, PHONE, "13912345678"):
        assert full not in timeline
    for masked in (mask_name("欧阳志华"), mask_phone("13912345678"), mask_id_number(GOOD_ID)):
        assert masked in timeline


def test_a_clerk_pauses_and_resumes_the_deadline_clock(web: WebClient, site: Site) -> None:
    ref = submitted(site)
    web.login("wu")
    html = web.get(f"/cases/{ref}").text
    assert "剩余 5 个工作日" in section(html, "deadline")
    response = web.post(f"/cases/{ref}/pause", {"reason": ""})
    assert response.status_code == 422 and not site.svc.get_case(ref).paused
    assert web.post(f"/cases/{ref}/pause", {"reason": "缺收入证明"}).status_code == 303
    html = web.get(f"/cases/{ref}").text
    assert site.svc.get_case(ref).paused and "已暂停" in section(html, "deadline")
    assert web.post(f"/cases/{ref}/resume", {"comment": "已补交"}).status_code == 303
    assert not site.svc.get_case(ref).paused
    timeline = section(web.get(f"/cases/{ref}").text, "timeline")
    assert "暂停计时（补正）" in timeline and "恢复计时" in timeline


@pytest.mark.parametrize("path", ["/cases/new", "/cases/import"])
def test_the_new_case_and_import_paths_are_not_taken_for_a_reference(web: WebClient, path: str) -> None:
    web.login("lin")
    assert "没有编号为" not in web.get(path).text


def test_the_page_lists_the_case_s_own_pending_timers_read_per_case(web: WebClient, site: Site) -> None:
    ref = submitted(site)
    other = submitted(site, id_number=OTHER_ID, applicant_name="李建国")
    mine = site.svc.case_timers(ref)
    # the per-case read gives what filtering every pending timer would, and nothing of the other case
    assert [t.id for t in mine] == [t.id for t in site.svc.timers() if t.case_ref == ref]
    assert {t.kind for t in mine} == {"remind", "escalate"} and other not in {t.case_ref for t in mine}
    web.login("wu")
    clock = section(web.get(f"/cases/{ref}").text, "deadline")
    assert "到期提醒" in clock and "超期督办" in clock
    # a clerk of another county may not read them either
    from engine import CaseworkError

    with pytest.raises(CaseworkError):
        site.svc.case_timers(ref, "chen")
