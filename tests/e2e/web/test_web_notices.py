"""Public notices over HTTP: publishing a county's list, the list, the stored HTML under its own CSP, the PDF."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from casework.web.pages.notices import NOTICE_CSP
from tests.e2e.web.conftest import Site, WebClient


def awaiting_publicity(site: Site, **overrides: str) -> str:
    """A 芗城区 case submitted by lin and passed by wu: it waits for its county's list."""
    ref = site.open_case("lin", **overrides)
    site.svc.fire(ref, "submit", "lin")
    site.svc.fire(ref, "pass_review", "wu")
    assert site.svc.get_case(ref).state == "publicise"
    return ref


def publish(web: WebClient, scope: str = "芗城区", workflow: str = "poverty_archive", **kw: str) -> Any:
    web.get("/notices")
    return web.post("/notices/publish", {"workflow": workflow, "scope": scope, **kw})


def test_a_reviewer_publishes_the_list_and_it_is_listed(web: WebClient, site: Site) -> None:
    ref = awaiting_publicity(site)
    web.login("wu")
    page = web.get("/notices")
    assert 'action="/notices/publish"' in page.text
    scopes = re.search(r'<select name="scope".*?</select>', page.text, re.S)
    assert scopes is not None and "芗城区" in scopes.group(0) and "龙文区" in scopes.group(0)
    assert "漳浦县" not in scopes.group(0)  # only the reviewer's counties
    assert re.search(r"<button type=\"submit\">发布公示</button>", page.text)
    response = publish(web)
    assert response.status_code == 303
    (notice,) = site.svc.notices("poverty_archive")
    assert response.headers["location"] == f"/notices?published={notice.number}"
    assert notice.cases == (ref,) and notice.scope == "芗城区"
    # the listed case's publicity has started: its automatic end is due when the period ends
    assert [t.kind for t in site.svc.case_timers(ref)] != []
    listed = web.get(response.headers["location"])
    assert listed.status_code == 200
    assert f'<tr data-number="{notice.number}">' in listed.text
    assert f'href="/notices/{notice.number}"' in listed.text
    assert f'href="/notices/{notice.number}.pdf"' in listed.text
    assert 'role="status"' in listed.text
    # publishing again publishes nothing new (no case awaits it)
    again = publish(web)
    assert again.status_code == 303 and again.headers["location"] == "/notices?none=1"
    assert len(site.svc.notices()) == 1


def test_a_clerk_lists_the_notices_but_may_not_publish(web: WebClient, site: Site) -> None:
    awaiting_publicity(site)
    web.login("lin")
    page = web.get("/notices")
    assert page.status_code == 200
    assert 'action="/notices/publish"' not in page.text
    refused = web.post("/notices/publish", {"workflow": "poverty_archive", "scope": "芗城区"})
    assert refused.status_code == 403
    assert 'class="refusal" role="alert"' in refused.text
    assert site.svc.notices() == []


def test_a_reviewer_may_not_publish_another_countys_list(web: WebClient, site: Site) -> None:
    site.open_case("chen", county="龙文区", id_number="350603198501012332")
    web.login("ye")  # clerk and reviewer of 芗城区 only
    refused = publish(web, scope="龙文区")
    assert refused.status_code == 403
    assert "范围" in refused.text
    assert site.svc.notices() == []


def test_the_notice_is_served_as_published_under_its_own_policy(web: WebClient, site: Site) -> None:
    awaiting_publicity(site)
    web.login("wu")
    publish(web)
    (notice,) = site.svc.notices()
    web.login("chen")  # any logged-in member of staff may read a public notice
    response = web.get(f"/notices/{notice.number}")
    assert response.status_code == 200
    assert response.text == notice.html  # the stored text its SHA-256 seals, not re-rendered
    csp = response.headers["content-security-policy"]
    assert csp == NOTICE_CSP
    assert "default-src 'none'" in csp and "script-src" not in csp and "sandbox" in csp
    assert "<script" not in response.text.lower()
    assert "350602198501012336" not in response.text  # the ID number is masked in a public notice
    assert web.get("/notices/ZZGS-2099-999999").status_code == 404


def test_the_pdf_download_is_a_pdf(web: WebClient, site: Site) -> None:
    from notifications.pdf import cjk_fonts

    if not cjk_fonts():
        pytest.skip("no CJK font on this machine (fonts-wqy-microhei)")
    awaiting_publicity(site)
    web.login("wu")
    publish(web)
    (notice,) = site.svc.notices()
    response = web.get(f"/notices/{notice.number}.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert f'filename="{notice.number}.pdf"' in response.headers["content-disposition"]


def test_without_a_cjk_font_the_pdf_is_refused_in_chinese(
    web: WebClient, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    awaiting_publicity(site)
    web.login("wu")
    publish(web)
    (notice,) = site.svc.notices()
    # a machine without the font: fontconfig (the real fc-list) given a configuration with no fonts
    empty = tmp_path / "fonts.conf"
    empty.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig></fontconfig>\n')
    # WeasyPrint loaded before the fonts go, as in a running server (loaded under the empty configuration,
    # its import warns, which this suite turns into an error)
    import weasyprint  # noqa: F401

    monkeypatch.setenv("FONTCONFIG_FILE", str(empty))
    response = web.get(f"/notices/{notice.number}.pdf")
    assert response.status_code == 503
    assert "PDF" in response.text and "字体" in response.text
    assert not response.content.startswith(b"%PDF")


def test_publishing_without_the_form_token_is_refused(web: WebClient, site: Site) -> None:
    awaiting_publicity(site)
    web.login("wu")
    web.get("/notices")
    response = web.post("/notices/publish", {"workflow": "poverty_archive", "scope": "芗城区"}, token="")
    assert response.status_code == 403
    assert site.svc.notices() == []


def test_the_list_filters_by_workflow(web: WebClient, site: Site) -> None:
    awaiting_publicity(site)
    web.login("wu")
    publish(web)
    (notice,) = site.svc.notices()
    assert notice.number in web.get("/notices?workflow=poverty_archive").text
    assert notice.number not in web.get("/notices?workflow=no_such_workflow").text
