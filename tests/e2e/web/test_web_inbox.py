"""我的待办 (/), in-app messages (/messages) and the bulk step (/bulk) over HTTP."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from engine.idnumber import check_digit
from notifications import NotificationConfig, Relay, default_channels, inbox
from tests.e2e.web.conftest import Site, WebClient

_serial = itertools.count(1)


def id_number(county: str = "芗城区") -> str:
    """A fresh valid 公民身份号码 of ``county`` (the ID number is unique among open cases)."""
    first17 = {"芗城区": "350602", "龙文区": "350603"}[county] + "19850101" + f"{next(_serial):03d}"
    return first17 + check_digit(first17)


def open_case(site: Site, county: str = "芗城区", clerk: str = "lin", *, submit: bool = False) -> str:
    ref = site.open_case(clerk, county=county, id_number=id_number(county))
    if submit:
        site.svc.fire(ref, "submit", clerk)
    return ref


def rows(text: str) -> list[str]:
    """The refs of the inbox table's rows, in order."""
    return re.findall(r'<tr data-ref="([^"]+)"', text)


def row_html(text: str, ref: str) -> str:
    found = re.search(rf'<tr data-ref="{re.escape(ref)}"[^>]*>.*?</tr>', text, re.S)
    assert found, f"{ref} is not in the inbox"
    return found.group(0)


def inbox_of(web: WebClient, user: str, query: str = "") -> Any:
    web.login(user)
    return web.get("/" + query)


# ------------------------------------------------------------------------------------------ who sees what


def test_without_a_session_the_inbox_and_its_forms_go_to_the_login_form(web: WebClient, site: Site) -> None:
    ref = open_case(site, submit=True)
    for response in (web.get("/"), web.get("/messages"), web.http.post("/bulk", data={"refs": ref})):
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")
    assert site.svc.get_case(ref).state == "review"


def test_a_clerk_sees_only_the_cases_of_their_county(web: WebClient, site: Site) -> None:
    mine = [open_case(site), open_case(site)]
    theirs = open_case(site, "龙文区", "chen")
    page = inbox_of(web, "lin")
    assert page.status_code == 200
    assert sorted(rows(page.text)) == sorted(mine)
    assert theirs not in page.text
    assert f'<a href="/cases/{mine[0]}">{mine[0]}</a>' in page.text
    row = row_html(page.text, mine[0])
    # the columns: workflow title, masked applicant, county, the state's label in Chinese
    assert "困难职工建档立卡" in row and "王*英" in row and "芗城区" in row and "申请" in row
    assert "王秀英" not in page.text


def test_a_reviewer_sees_the_submitted_cases_of_their_counties_and_no_others(web: WebClient, site: Site) -> None:
    submitted = [open_case(site, submit=True), open_case(site, "龙文区", "chen", submit=True)]
    open_case(site)  # still with the clerk
    page = inbox_of(web, "wu")
    assert sorted(rows(page.text)) == sorted(submitted)
    assert all("审核" in row_html(page.text, ref) for ref in submitted)


def test_soonest_deadline_first_with_working_days_left(web: WebClient, site: Site) -> None:
    first, second, third = (open_case(site) for _ in range(3))
    # submitted in another order than opened: the deadline, not the reference, orders the inbox
    for ref in (third, first, second):
        site.svc.fire(ref, "submit", "lin")
        site.clock.advance(days=1)
    page = inbox_of(web, "wu")
    assert rows(page.text) == [third, first, second]
    # Monday's submission is due in 5 working days; three days on (Thursday) 2 remain
    assert "剩余 2 个工作日" in row_html(page.text, third)
    assert "overdue" not in row_html(page.text, third)


def test_an_overdue_case_is_marked(web: WebClient, site: Site) -> None:
    late = open_case(site, submit=True)
    site.clock.advance(days=5)
    fresh = open_case(site, submit=True)
    site.clock.advance(days=3)  # 8 days after the first submission: past its 5 working days
    page = inbox_of(web, "wu")
    assert rows(page.text) == [late, fresh]
    row = row_html(page.text, late)
    assert 'class="overdue"' in row and "已逾期" in row and "已超期" in row
    assert "已逾期" not in row_html(page.text, fresh)


# ------------------------------------------------------------------------------------------ filters


def test_filter_by_state_county_workflow_and_reference(web: WebClient, site: Site) -> None:
    applying = open_case(site, clerk="ye")
    reviewing = open_case(site, submit=True)
    web.login("ye")  # clerk and reviewer of 芗城区: both wait for ye
    assert sorted(rows(web.get("/").text)) == sorted([applying, reviewing])
    assert rows(web.get("/?state=review").text) == [reviewing]
    assert rows(web.get("/?state=apply&workflow=poverty_archive").text) == [applying]
    assert rows(web.get("/?county=芗城区&state=").text) and rows(web.get("/?workflow=poverty_archive").text)
    # a whole reference, a part of one (lower case too), and a part nothing has
    assert rows(web.get(f"/?q={reviewing}").text) == [reviewing]
    assert rows(web.get(f"/?q={reviewing[-3:]}").text) == [reviewing]
    assert sorted(rows(web.get("/?q=zz-2026").text)) == sorted([applying, reviewing])
    empty = web.get("/?q=999999")
    assert empty.status_code == 200 and rows(empty.text) == [] and "没有符合筛选条件的待办案件" in empty.text


def test_filter_by_county_for_a_reviewer_of_two(web: WebClient, site: Site) -> None:
    xc = open_case(site, submit=True)
    lw = open_case(site, "龙文区", "chen", submit=True)
    web.login("wu")
    assert rows(web.get("/?county=芗城区").text) == [xc]
    assert rows(web.get("/?county=龙文区").text) == [lw]
    assert sorted(rows(web.get("/?county=").text)) == sorted([xc, lw])


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?state=reveiw", ["没有“reveiw”这个环节", "审核"]),
        ("?county=芗城", ["没有“芗城”这个县区", "芗城区"]),
        ("?workflow=poverty_archiv", ["没有“poverty_archiv”这项业务", "困难职工建档立卡"]),
    ],
)
def test_an_unknown_filter_is_refused_in_chinese_with_a_suggestion(
    web: WebClient, site: Site, query: str, words: list[str]
) -> None:
    open_case(site, submit=True)
    page = inbox_of(web, "wu", query)
    assert page.status_code == 422
    assert '<p class="refusal" role="alert">' in page.text
    assert all(w in page.text for w in words), page.text
    assert rows(page.text) == []


def test_a_county_outside_my_scopes_is_refused(web: WebClient, site: Site) -> None:
    open_case(site, "龙文区", "chen")
    page = inbox_of(web, "lin", "?county=龙文区")
    assert page.status_code == 403
    assert "不包括“龙文区”" in page.text and rows(page.text) == []


def test_paging_keeps_the_filters(web: WebClient, site: Site) -> None:
    site.app.state.settings.per_page = 2
    refs = [open_case(site) for _ in range(5)]
    web.login("lin")
    seen: list[str] = []
    path: str | None = "/?state=apply"
    pages = 0
    while path is not None:
        page = web.get(path)
        assert page.status_code == 200
        assert len(rows(page.text)) <= 2
        seen += rows(page.text)
        pages += 1
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        path = found.group(1).replace("&amp;", "&") if found else None
        if path is not None:
            assert "state=apply" in path
    assert pages == 3
    assert sorted(seen) == sorted(refs) and len(seen) == 5
    assert web.get("/?page=0").status_code == 422
    assert web.get("/?page=1001").status_code == 422
    assert "这一页没有待办案件" in web.get("/?page=9").text


# ------------------------------------------------------------------------------------------ messages


def deliver(site: Site) -> None:
    """Run the relay once: the notify rules' messages reach the in-app inboxes."""
    config = NotificationConfig()
    Relay(site.svc.engine, site.svc, default_channels(config), config, clock=site.clock).run_once()


def test_messages_are_listed_and_marked_read_and_another_users_message_is_not_found(web: WebClient, site: Site) -> None:
    first = open_case(site, submit=True)
    site.clock.advance(hours=1)
    second = open_case(site, submit=True)
    deliver(site)
    [newer, older] = inbox(site.svc.engine, "wu")
    assert (newer.case_ref, older.case_ref) == (second, first)
    web.login("wu")
    page = web.get("/messages")
    assert page.status_code == 200
    assert f'<a href="/cases/{first}">{first}</a>' in page.text
    assert '<span class="badge" id="unread-count">2</span>' in page.text
    done = web.post(f"/messages/{older.id}/read")
    assert done.status_code == 303 and done.headers["location"] == "/messages"
    page = web.get("/messages")
    assert '<span class="badge" id="unread-count">1</span>' in page.text
    # the unread message first, then the read one
    assert page.text.index(f'data-message="{newer.id}"') < page.text.index(f'data-message="{older.id}"')
    assert [m.read_at is None for m in inbox(site.svc.engine, "wu")] == [True, False]

    # ye is a reviewer of 芗城区 too, with messages of their own; wu's message is not theirs
    web.login("ye")
    web.get("/messages")
    assert web.post(f"/messages/{newer.id}/read").status_code == 404
    assert web.post("/messages/99999/read").status_code == 404
    assert inbox(site.svc.engine, "wu")[0].read_at is None


def test_marking_read_without_the_form_token_is_refused(web: WebClient, site: Site) -> None:
    open_case(site, submit=True)
    deliver(site)
    [message] = inbox(site.svc.engine, "wu")
    web.login("wu")
    web.get("/messages")
    assert web.post(f"/messages/{message.id}/read", token="").status_code == 403
    assert inbox(site.svc.engine, "wu")[0].read_at is None


# ------------------------------------------------------------------------------------------ bulk


def test_bulk_step_reports_done_and_refused_cases(web: WebClient, site: Site) -> None:
    by_lin = open_case(site, submit=True)
    by_ye = open_case(site, clerk="ye", submit=True)
    page = inbox_of(web, "ye")
    assert '<form id="bulk" method="post" action="/bulk">' in page.text
    assert '<option value="pass_review">审核通过</option>' in page.text
    assert f'name="refs" value="{by_ye}"' in page.text and "批量办理" in page.text
    result = web.post("/bulk", {"refs": [by_lin, by_ye], "trigger": "pass_review", "comment": "材料齐全"})
    assert result.status_code == 200
    done = result.text[result.text.index('id="done"') : result.text.index('id="refused"')]
    refused = result.text[result.text.index('id="refused"') :]
    assert by_lin in done and by_ye not in done
    assert by_ye in refused and "双人审核" in refused  # four-eyes: ye submitted it
    assert "审核通过" in result.text
    assert site.svc.get_case(by_lin).state == "publicise"
    assert site.svc.get_case(by_ye).state == "review"


def test_bulk_step_with_everything_refused_changes_nothing(web: WebClient, site: Site) -> None:
    mine = open_case(site, clerk="ye", submit=True)
    inbox_of(web, "ye")
    result = web.post("/bulk", {"refs": [mine], "trigger": "pass_review"})
    assert result.status_code == 409
    assert "双人审核" in result.text
    assert site.svc.get_case(mine).state == "review"


def test_bulk_step_on_a_case_out_of_my_county_is_refused(web: WebClient, site: Site) -> None:
    theirs = open_case(site, "龙文区", "chen", submit=True)
    inbox_of(web, "ye")
    result = web.post("/bulk", {"refs": [theirs], "trigger": "pass_review"})
    assert result.status_code == 409
    # answered as a reference nobody has: nothing tells that it exists, nor its county
    nobody = web.post("/bulk", {"refs": ["ZZ-2026-999999"], "trigger": "pass_review"})
    assert result.text.replace(theirs, "REF") == nobody.text.replace("ZZ-2026-999999", "REF")
    assert "龙文区" not in result.text.split("</header>")[1] and "王" not in result.text
    assert site.svc.get_case(theirs).state == "review"


def test_bulk_step_without_the_form_token_is_refused_and_changes_nothing(web: WebClient, site: Site) -> None:
    ref = open_case(site, submit=True)
    inbox_of(web, "wu")
    response = web.post("/bulk", {"refs": [ref], "trigger": "pass_review"}, token="")
    assert response.status_code == 403
    forged = web.post("/bulk", {"refs": [ref], "trigger": "pass_review"}, token="not-the-token")
    assert forged.status_code == 403
    assert site.svc.get_case(ref).state == "review"


def test_bulk_step_without_a_selection_asks_for_one(web: WebClient, site: Site) -> None:
    ref = open_case(site, submit=True)
    inbox_of(web, "wu")
    result = web.post("/bulk", {"trigger": "pass_review"})
    assert result.status_code == 422 and "请先勾选" in result.text
    assert site.svc.get_case(ref).state == "review"
