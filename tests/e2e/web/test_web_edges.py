"""Edges of the pages found in review: a form without its version, where a failed login goes, session rotation,
the Secure flag, a refused objection keeping its outcome, Starlette's own errors in Chinese, a forged notice link."""

from __future__ import annotations

import re

import pytest

from casework.web import create_app
from casework.web.auth import safe_next
from casework.web.settings import WebSettings
from tests.e2e.web.conftest import PASSWORD, Site, WebClient
from tests.e2e.web.test_web_case import in_publicity, submitted


def test_an_edit_or_step_without_the_case_version_is_refused_and_changes_nothing(web: WebClient, site: Site) -> None:
    ref = site.open_case("lin")
    before = site.svc.get_case(ref)
    web.login("lin")
    web.get(f"/cases/{ref}")
    edit = web.post(f"/cases/{ref}/edit", {"phone": "13900009999", "fields": "phone"})
    assert edit.status_code == 422 and "版本号" in edit.text
    step = web.post(f"/cases/{ref}/steps/submit", {"comment": ""})
    assert step.status_code == 422
    after = site.svc.get_case(ref)
    assert (after.version, after.state, after.data) == (before.version, before.state, before.data)


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "https://evil.example/", "", "cases"])
def test_login_goes_only_to_a_path_on_this_site(target: str) -> None:
    assert safe_next(target) == "/"


def test_a_failed_login_keeps_where_the_user_was_going(web: WebClient) -> None:
    web.get("/login?next=/cases/new")
    failed = web.post("/login", {"username": "lin", "password": "not-the-password", "next": "/cases/new"})
    assert failed.status_code == 401
    assert 'name="next" value="/cases/new"' in failed.text
    ok = web.post("/login", {"username": "lin", "password": PASSWORD, "next": "/cases/new"})
    assert ok.headers["location"] == "/cases/new"


def test_each_login_gets_a_new_session_and_the_old_cookie_stops_working(web: WebClient, site: Site) -> None:
    web.login("lin")
    first = web.http.cookies.get("casework_session")
    web.login("lin")
    second = web.http.cookies.get("casework_session")
    assert first and second and first != second
    other = WebClient(site.app)
    other.http.cookies.set("casework_session", first)
    assert other.get("/account").status_code == 303  # the session of the first cookie has ended
    other.http.cookies.set("casework_session", second)
    assert other.get("/account").status_code == 200


def test_the_cookie_is_secure_when_the_site_is_served_over_https(site: Site) -> None:
    client = WebClient(create_app(site.svc, WebSettings(secure_cookies=True)))
    # a Secure cookie travels only over https: the form token's cookie too
    client.http.base_url = client.http.base_url.copy_with(scheme="https")
    response = client.login("lin")
    assert response.status_code == 303
    assert "Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]


def test_a_refused_resolution_keeps_the_outcome_chosen(web: WebClient, site: Site) -> None:
    ref = in_publicity(site)
    objection = site.svc.add_objection(ref, "wu", "邻居反映收入不实")
    web.login("wu")
    web.get(f"/cases/{ref}")
    refused = web.post(f"/cases/{ref}/objections/{objection.id}/resolve", {"outcome": "dismissed", "comment": ""})
    assert refused.status_code == 422
    chosen = re.search(r'<option value="(\w+)" selected>', refused.text)
    assert chosen is not None and chosen.group(1) == "dismissed"
    assert site.svc.objections(ref)[0].status == "open"


def test_a_get_on_a_form_address_is_answered_in_chinese(web: WebClient, site: Site) -> None:
    web.login("lin")
    ref = submitted(site)
    for path in ("/logout", "/bulk", f"/cases/{ref}/steps/pass_review"):
        response = web.get(path)
        assert response.status_code == 405
        assert "只接受表单提交" in response.text and "Method Not Allowed" not in response.text


def test_a_link_cannot_make_the_notices_page_announce_text_of_its_own(web: WebClient) -> None:
    web.login("lin")
    page = web.get("/notices?published=请致电400领取补助")
    assert page.status_code == 200
    assert "领取补助" not in page.text and "已发布公示" not in page.text
