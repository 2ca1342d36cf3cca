"""The whole way of a case in a real browser: Chromium (the distribution's) driven by Playwright.

A clerk opens a 困难职工建档立卡 case with a wrong ID number and sees why,
corrects it and submits; a reviewer finds it in the inbox and passes it; the
公示名单 is published; an objection is registered and dismissed; the period
ends (the timer sweep stands for the scheduler); the approver grants; the clerk
enters it; the case page's timeline shows every step and who took it. The
screenshots of the main pages are kept in ``artifacts/screenshots/`` (CI keeps
them), and two of them are the docs' pictures.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import BAD_ID, GOOD_ID, PASSWORD, ROOT, SCREENSHOTS, WEB_USERS, Site

pytestmark = pytest.mark.browser

NAMES = {username: name for username, name, _roles, _scopes in WEB_USERS}


# ----------------------------------------------------------------------------- helpers


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """A PNG of the page in artifacts/screenshots/ (the viewport is 1280 wide)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page, type="png")


def posting(page: Page, path: str) -> Any:
    """Wait for the answer to the POST to a URL ending in ``path`` (``with posting(...) as posted:``)."""
    return page.expect_response(lambda r: r.request.method == "POST" and r.url.split("?")[0].endswith(path))


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    """Log in through the form; waits until the header names the user."""
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()
    expect(page.locator("header .who .me")).to_contain_text(f"（{username}）")


def logout(page: Page) -> None:
    page.get_by_role("button", name="退出登录").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def step_form(page: Page, label: str) -> Any:
    """The form of the step labelled ``label`` in the case page's actions."""
    button = page.get_by_role("button", name=label, exact=True)
    return page.locator("#actions form").filter(has=button)


def take_step(page: Page, label: str, comment: str | None = None) -> None:
    """Press the step's button (with a comment when given) and wait for the case page again."""
    form = step_form(page, label)
    expect(form).to_have_count(1)
    if comment is not None:
        form.locator('textarea[name="comment"]').fill(comment)
    with page.expect_navigation():
        form.get_by_role("button", name=label, exact=True).click()
    expect(page.locator(".refusal")).to_have_count(0)


def fill_new_case(page: Page, id_number: str) -> None:
    """Fill the new-case form of poverty_archive with a 芗城区 household."""
    page.get_by_label("申请人姓名").fill("王秀英")
    page.get_by_label("公民身份号码").fill(id_number)
    page.get_by_label("困难类型").select_option("低保户")
    page.get_by_label("所属县区").select_option("芗城区")
    page.get_by_label("家庭人口").fill("3")
    page.get_by_label("家庭月人均收入（元）").fill("650.00")
    page.get_by_label("致困原因").fill("因病致困")
    for item in ("申请表", "身份证", "户口簿", "收入证明"):
        page.locator(f'input[type="checkbox"][name="materials"][value="{item}"]').check()
    page.get_by_label("联系电话").fill("13800001111")


def open_case_page(page: Page, ref: str) -> None:
    page.goto(f"/cases/{ref}")
    expect(page.locator("h1")).to_contain_text(ref)


def state_of(page: Page) -> str:
    return str(page.locator("#state").inner_text()).strip()


# ----------------------------------------------------------------------------- the flow


def test_a_case_goes_all_the_way_in_the_browser(site: Site, browser_page: Page) -> None:
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())  # a data-confirm step asks first: the user says yes
    # what the browser complains of: a script error, or something the Content-Security-Policy blocked
    complaints: list[str] = []
    page.on("console", lambda msg: complaints.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: complaints.append(str(exc)))
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
    # a few other cases wait for review, so the inbox is not a single row
    for i in range(3):
        ref = site.open_case(
            "ye", applicant_name=f"张{'一二三'[i]}", id_number=_valid_id(f"350602197001{i + 1:02d}123")
        )
        site.svc.fire(ref, "submit", "ye")

    # the clerk opens the case: a wrong ID number is caught as typed, and by the server
    page.goto("/login")
    shot(page, "01-login.png")
    login(page, "lin")
    page.get_by_role("navigation").get_by_role("link", name="新建案件").click()
    page.get_by_role("link", name="困难职工建档立卡").click()
    expect(page).to_have_url(re.compile(r"/cases/new\?workflow=poverty_archive"))
    fill_new_case(page, BAD_ID)
    check = page.locator("#field-id_number-check")
    expect(check).to_contain_text("校验位")  # app.js, as it is typed
    shot(page, "03-new-case-id-typed.png")
    before = len(site.svc.list_cases(workflow="poverty_archive"))
    page.get_by_role("button", name="保存").click()
    # the browser does not send a form whose ID number its check refused (a control with a custom validity)
    assert page.get_by_label("公民身份号码").evaluate("el => el.validationMessage").startswith("身份证号码")
    expect(page).to_have_url(re.compile(r"/cases/new\?workflow=poverty_archive$"))
    assert len(site.svc.list_cases(workflow="poverty_archive")) == before
    # without the browser's check (an old browser, a script turned off) the server refuses it too
    page.locator('form[action="/cases/new"]').evaluate("form => { form.noValidate = true; }")
    with posting(page, "/cases/new") as posted:
        page.get_by_role("button", name="保存").click()
    assert posted.value.status == 422
    problem = page.locator('.field-problem[data-field="id_number"]')
    expect(problem).not_to_be_empty()
    expect(problem).to_contain_text("校验位")
    assert len(site.svc.list_cases(workflow="poverty_archive")) == before
    shot(page, "03-new-case-id-server.png")

    # corrected, saved, submitted
    page.get_by_label("公民身份号码").fill(GOOD_ID)
    expect(check).to_be_empty()
    with page.expect_navigation(url=re.compile(r"/cases/[A-Z]+-")):
        page.get_by_role("button", name="保存").click()
    ref = page.url.rsplit("/", 1)[-1]
    expect(page.locator("h1")).to_contain_text(ref)
    assert site.svc.get_case(ref).state == "apply"
    take_step(page, "提交申请")
    expect(page.locator("#state")).to_have_text("审核")
    logout(page)

    # the reviewer finds it in the inbox and passes it
    login(page, "wu")
    row = page.locator(f'#inbox tr[data-ref="{ref}"]')
    expect(row).to_have_count(1)
    shot(page, "02-inbox.png")
    shot(page, "web-inbox.png", full_page=False)  # the docs' picture (docs/images/): one screen
    row.get_by_role("link", name=ref).click()
    expect(page.locator("h1")).to_contain_text(ref)
    take_step(page, "审核通过", "材料齐全，情况属实")
    expect(page.locator("#state")).to_have_text("公示")

    # the 公示名单 of 芗城区 is published: the case's publicity begins
    page.goto("/notices")
    publish = page.locator('form[action="/notices/publish"]')
    _choose(publish.locator('[name="workflow"]'), "poverty_archive")
    _choose(publish.locator('[name="scope"]'), "芗城区")
    with page.expect_navigation():
        publish.get_by_role("button", name="发布公示").click()
    expect(page.locator(".refusal")).to_have_count(0)
    [notice] = site.svc.notices("poverty_archive")
    expect(page.locator("main")).to_contain_text(notice.number)
    shot(page, "05-notices.png")

    # an objection is registered, then dismissed
    open_case_page(page, ref)
    add = page.locator(f'form[action="/cases/{ref}/objections"]')
    add.locator('[name="text"]').fill("邻居反映其家庭收入高于申报数")
    _choose(add.locator('[name="channel"]'), "电话")
    with page.expect_navigation():
        add.get_by_role("button", name="登记异议").click()
    expect(page.locator("#objections")).to_contain_text("邻居反映")
    [objection] = site.svc.objections(ref)
    resolve = page.locator(f'form[action="/cases/{ref}/objections/{objection.id}/resolve"]')
    resolve.locator('[name="outcome"]').select_option(label="异议不成立")
    resolve.locator('[name="comment"]').fill("经入户核实，收入情况与申报一致")
    with page.expect_navigation():
        resolve.get_by_role("button", name="处理异议").click()
    expect(page.locator(".refusal")).to_have_count(0)
    assert [o.status for o in site.svc.objections(ref)] == ["dismissed"]
    logout(page)

    # the period passes; the scheduler's sweep ends the publicity
    site.clock.advance(days=8)
    site.svc.sweep()
    assert site.svc.get_case(ref).state == "approve"

    # the approver grants
    login(page, "su")
    open_case_page(page, ref)
    expect(page.locator("#state")).to_have_text("审批")
    expect(page.locator("#timeline ol.timeline li")).not_to_have_count(0)
    shot(page, "04-case.png")
    # the docs' picture (docs/images/): one screen from the steps down (the steps, objections, notice, timeline)
    page.locator("#actions").evaluate("el => el.scrollIntoView({block: 'start'})")
    shot(page, "web-case.png", full_page=False)
    take_step(page, "审批通过")
    expect(page.locator("#state")).to_have_text("录入")
    logout(page)

    # the clerk enters it
    login(page, "lin")
    open_case_page(page, ref)
    take_step(page, "录入系统")
    expect(page.locator("#state")).to_have_text("已建档")
    shot(page, "06-case-filed.png")

    # the timeline names every step and who took it, in order
    items = [str(t) for t in page.locator("#timeline ol.timeline li").all_inner_texts()]
    wanted = [
        ("新建案件", NAMES["lin"]),
        ("提交申请", NAMES["lin"]),
        ("审核通过", NAMES["wu"]),
        ("发布公示", None),
        ("登记异议", NAMES["wu"]),
        ("异议不成立", NAMES["wu"]),
        ("公示期满", "系统"),
        ("审批通过", NAMES["su"]),
        ("录入系统", NAMES["lin"]),
    ]
    at = 0
    for label, actor in wanted:
        while at < len(items) and label not in items[at]:
            at += 1
        assert at < len(items), f"{label} is not in the timeline after the earlier steps: {items}"
        if actor is not None:
            assert actor in items[at], f"{label} does not name {actor}: {items[at]}"
        at += 1
    # nothing failed to load (the only answer >= 400 is the refused save's 422), no script error, no CSP block
    assert [f for f in failed if not f.startswith("422 POST")] == [], failed
    assert [c for c in complaints if not c.startswith("Failed to load resource")] == [], complaints
    report = site.svc.verify_audit(ref)
    assert report.ok, report
    for name in ("web-inbox.png", "web-case.png"):
        assert (SCREENSHOTS / name).stat().st_size < 300_000, f"{name} is too big for the docs"


def test_the_supervisors_pages_in_the_browser(site: Site, browser_page: Page) -> None:
    """Screenshots of a report, the workflow page with its diagram, and the editor with a located error."""
    page = browser_page
    # a few cases in two counties and three states, so the report has figures
    for i, county in enumerate(("芗城区", "芗城区", "龙文区", "龙文区", "芗城区")):
        first17 = ("350602" if county == "芗城区" else "350603") + f"1980020{i + 1}123"
        ref = site.open_case("ye" if county == "芗城区" else "chen", county=county, id_number=_valid_id(first17))
        if i % 2 == 0:
            site.svc.fire(ref, "submit", "ye" if county == "芗城区" else "chen")
        if i == 0:
            site.svc.fire(ref, "withdraw", "ye", comment="申请人撤回")
    login(page, "luo")
    page.goto("/reports")
    expect(page.locator("h1")).not_to_be_empty()
    first = page.locator('main a[href^="/reports/"]').first
    expect(first).to_be_visible()
    first.click()
    expect(page.locator("main table")).not_to_have_count(0)
    shot(page, "07-report.png")

    page.goto("/admin/workflows/poverty_archive")
    diagram = page.locator('img[src*="/workflows/poverty_archive/v"][src*="diagram.svg"]')
    expect(diagram.first).to_be_visible()
    assert diagram.first.evaluate("img => img.naturalWidth") > 0, "the diagram did not load"
    shot(page, "08-admin-workflow.png")

    page.goto("/admin/editor")
    source = page.locator('textarea[name="source"]')
    text = (ROOT / "workflows" / "poverty_archive.yaml").read_text(encoding="utf-8")
    # a misspelt state in pass_review's `to:`: the editor names its line and suggests the right name
    broken = text.replace("    to: publicise\n", "    to: publicse\n", 1)
    line = broken.splitlines().index("    to: publicse") + 1
    source.fill(broken)
    source.press("End")  # the editor checks on input (after a pause), as the supervisor types
    source.press("Enter")
    problem = page.locator(f'#problems li[data-line="{line}"]')
    expect(problem.first).to_be_visible()
    expect(problem.first).to_contain_text(f"第 {line} 行")
    expect(problem.first).to_contain_text("publicise")
    shot(page, "09-editor.png")


def test_login_account_and_logout_in_the_browser(site: Site, browser_page: Page) -> None:
    """The session cookie is the browser's, the account page names the user, and logout ends the session."""
    page = browser_page
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?next=/account$"))
    page.get_by_label("用户名").fill("chen")
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(re.compile(r"/account$"))  # back where the user was going
    expect(page.locator("main")).to_contain_text("陈建华")
    expect(page.locator("main")).to_contain_text("龙文区")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = [c for c in cookies.values() if c["name"] != "casework_login"]
    assert session and all(c["httpOnly"] for c in session)
    assert page.evaluate("document.cookie") == ""  # no script reads the session
    logout(page)
    assert [e.action for e in site.svc.access_log() if e.actor == "chen"][-1:] == ["logout"]
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login"))


# ----------------------------------------------------------------------------- small things


def _choose(control: Any, value: str) -> None:
    """Select ``value`` in a <select>, type it in an <input>; a hidden control keeps what the page put there."""
    if control.count() == 0:
        return
    tag = control.first.evaluate("el => el.tagName.toLowerCase() + ':' + (el.type || '')")
    if tag.startswith("select"):
        control.first.select_option(value)
    elif tag != "input:hidden":
        control.first.fill(value)


def _valid_id(first17: str) -> str:
    from engine.idnumber import check_digit

    return first17 + check_digit(first17)
