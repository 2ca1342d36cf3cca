"""Refusals as a user sees them in a real browser: each is shown in Chinese, and nothing changes.

Wrong county (404, not the case's data), four-eyes, a step without its
required comment, the login lockout, a form with a forged token (CSRF) and a
stale page's edit (conflict). Each test checks the page AND the database.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import GOOD_ID, PASSWORD, Site
from tests.e2e.web.test_browser_flow import login, open_case_page, posting, shot, step_form, take_step

pytestmark = pytest.mark.browser


def test_a_clerk_of_another_county_gets_the_not_found_page_without_the_cases_data(
    site: Site, browser_page: Page
) -> None:
    page = browser_page
    ref = site.open_case("lin")
    login(page, "chen")  # 龙文区
    response = page.goto(f"/cases/{ref}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("未找到")
    shot(page, "14-not-found.png")
    html = page.content()
    for secret in ("王秀英", GOOD_ID, "13800001111", "650.00", "因病致困"):
        assert secret not in html, f"the 404 page shows {secret!r}"
    # and the one who may see it does
    page.context.clear_cookies()
    login(page, "lin")
    open_case_page(page, ref)
    expect(page.locator("#data")).to_contain_text("王秀英")


def test_the_same_person_cannot_submit_and_pass_a_case(site: Site, browser_page: Page) -> None:
    page = browser_page
    ref = site.open_case("ye")
    login(page, "ye")  # clerk and reviewer of 芗城区
    open_case_page(page, ref)
    take_step(page, "提交申请")
    expect(page.locator("#state")).to_have_text("审核")
    # the page offers ye no 审核通过 (the engine lists only the steps ye may take)...
    expect(step_form(page, "审核通过")).to_have_count(0)
    expect(step_form(page, "退回补正")).to_have_count(1)
    # ...and a forged one (another step's form re-aimed at pass_review, as a script could post) is refused
    form = step_form(page, "退回补正")
    form.evaluate(f"f => {{ f.action = '/cases/{ref}/steps/pass_review'; f.noValidate = true; }}")
    with posting(page, "/steps/pass_review") as posted:
        form.get_by_role("button", name="退回补正").click()
    assert posted.value.status == 403
    refusal = page.locator("p.refusal[role=alert]")
    expect(refusal).to_contain_text("双人审核")
    # in the words of the page: the steps by their labels, not their names in the YAML
    why = "the step is named by its id: the case page should word the refusal with the case's workflow"
    expect(refusal, why).to_contain_text("审核通过")
    expect(refusal, why).not_to_contain_text("pass_review")
    expect(page.locator("#state")).to_have_text("审核")
    assert site.svc.get_case(ref).state == "review"


def test_a_bulk_step_lists_the_case_the_same_person_may_not_pass(site: Site, browser_page: Page) -> None:
    page = browser_page
    mine = site.open_case("ye")
    site.svc.fire(mine, "submit", "ye")
    theirs = site.open_case("lin", id_number="350602198501012344")
    site.svc.fire(theirs, "submit", "lin")
    login(page, "ye")
    for ref in (mine, theirs):
        page.locator(f'#inbox tr[data-ref="{ref}"] input[name="refs"]').check()
    bulk = page.locator("#bulk")
    bulk.locator('select[name="trigger"]').select_option(label="审核通过")
    with page.expect_navigation():
        bulk.get_by_role("button", name="批量办理").click()
    expect(page.locator(f'#done li[data-ref="{theirs}"]')).to_have_count(1)
    refused = page.locator(f'#refused li[data-ref="{mine}"]')
    expect(refused).to_contain_text("双人审核")
    expect(refused).to_contain_text("审核通过")
    expect(refused).not_to_contain_text("pass_review")
    shot(page, "12-bulk-refused.png")
    assert (site.svc.get_case(mine).state, site.svc.get_case(theirs).state) == ("review", "publicise")


def test_a_step_that_needs_a_comment_is_refused_without_one(site: Site, browser_page: Page) -> None:
    page = browser_page
    ref = site.open_case("lin")
    site.svc.fire(ref, "submit", "lin")
    version = site.svc.get_case(ref).version
    login(page, "wu")
    open_case_page(page, ref)
    form = step_form(page, "退回补正")
    comment = form.locator('textarea[name="comment"]')
    button = form.get_by_role("button", name="退回补正")
    if comment.get_attribute("required") is not None:
        # the browser does not send it...
        button.click()
        assert comment.evaluate("el => el.validity.valueMissing")
        expect(page).to_have_url(re.compile(rf"/cases/{ref}$"))
        form.evaluate("f => { f.noValidate = true; }")
    # ...and the server refuses it all the same
    with posting(page, "/steps/return") as posted:
        button.click()
    assert 400 <= posted.value.status < 500
    expect(page.locator("p.refusal[role=alert]")).to_contain_text("必须填写意见")
    expect(page.locator("#state")).to_have_text("审核")
    case = site.svc.get_case(ref)
    assert (case.state, case.version) == ("review", version)


def test_five_wrong_passwords_lock_the_login(site: Site, browser_page: Page) -> None:
    page = browser_page
    page.goto("/login")
    for attempt in range(5):
        page.get_by_label("用户名").fill("lin")
        page.get_by_label("密码", exact=True).fill(f"wrong-{attempt}")
        with posting(page, "/login") as posted:
            page.get_by_role("button", name="登录").click()
        assert posted.value.status == 401
        expect(page.locator("p.refusal[role=alert]")).to_contain_text("用户名或密码错误")
    page.get_by_label("用户名").fill("lin")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    with posting(page, "/login") as posted:
        page.get_by_role("button", name="登录").click()
    assert posted.value.status == 429
    assert int(posted.value.headers["retry-after"]) > 0
    expect(page.locator("p.refusal[role=alert]")).to_contain_text("登录失败次数过多")
    expect(page.locator("header .who")).to_have_count(0)  # not logged in
    shot(page, "10-login-locked.png")
    # the lock is lin's: a colleague at the same desk (the same address) still logs in
    login(page, "chen")
    page.context.clear_cookies()
    # once the lock has passed, the right password opens a session again
    site.clock.advance(minutes=16)
    login(page, "lin")


def test_a_form_with_a_forged_token_is_rejected_and_changes_nothing(site: Site, browser_page: Page) -> None:
    page = browser_page
    ref = site.open_case("lin")
    before = site.svc.get_case(ref)
    login(page, "lin")
    open_case_page(page, ref)
    edit = page.locator("#edit")
    edit.locator('[name="phone"]').fill("13900002222")
    edit.locator('input[name="csrf_token"]').evaluate("el => { el.value = 'forged' + el.value.slice(6); }")
    with posting(page, f"/cases/{ref}/edit") as posted:
        edit.locator('button[type="submit"]').click()
    assert posted.value.status == 403
    expect(page.locator("h1")).to_have_text("请求被拒绝")
    shot(page, "13-csrf-rejected.png")
    # a request without any token (another site's form posting with the user's cookie) fares no better
    answer = page.request.post(f"/cases/{ref}/steps/submit", form={"version": str(before.version)}, max_redirects=0)
    assert answer.status == 403
    after = site.svc.get_case(ref)
    assert (after.state, after.version, after.data["phone"]) == (before.state, before.version, before.data["phone"])


def test_an_edit_from_a_stale_page_is_refused_as_a_conflict(site: Site, browser_page: Page) -> None:
    first = browser_page
    ref = site.open_case("lin")
    login(first, "lin")
    open_case_page(first, ref)
    second = first.context.new_page()  # a second tab, same session
    open_case_page(second, ref)

    first.locator('#edit [name="phone"]').fill("13900002222")
    with first.expect_navigation():
        first.locator('#edit button[type="submit"]').click()
    expect(first.locator(".refusal")).to_have_count(0)
    assert site.svc.get_case(ref).data["phone"] == "13900002222"

    second.locator('#edit [name="phone"]').fill("13700003333")
    with posting(second, f"/cases/{ref}/edit") as posted:
        second.locator('#edit button[type="submit"]').click()
    assert posted.value.status == 409
    expect(second.locator("p.refusal[role=alert]")).to_contain_text("已被他人修改")
    shot(second, "11-conflict.png")
    assert site.svc.get_case(ref).data["phone"] == "13900002222"
