"""Login, logout and sessions over HTTP (the browser's view of them is in test_browser_*.py)."""

from __future__ import annotations

from tests.e2e.web.conftest import Site, WebClient


def test_a_page_without_a_session_goes_to_the_login_form(web: WebClient) -> None:
    response = web.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account"


def test_the_right_password_opens_a_session_and_the_account_page_names_the_user(web: WebClient) -> None:
    response = web.login("lin")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = web.get("/account")
    assert page.status_code == 200
    assert "林晓" in page.text


def test_a_wrong_password_is_refused_in_chinese_and_logged(web: WebClient, site: Site) -> None:
    response = web.login("lin", "not-the-password")
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert [e.action for e in site.svc.access_log(action="login_failed")] == ["login_failed"]
