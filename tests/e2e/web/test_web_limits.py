"""The request-size limit and the security headers every response carries."""

from __future__ import annotations

from collections.abc import Iterator

from tests.e2e.web.conftest import Site, WebClient


def test_a_body_larger_than_the_limit_is_refused_before_it_is_read(web: WebClient, site: Site) -> None:
    web.login("lin")
    web.get("/cases/import")
    limit = site.app.state.settings.max_upload_bytes
    big = b"applicant_name,id_number\n" + b"x" * (limit + 200_000)
    response = web.http.post(
        "/cases/import",
        data={"csrf_token": web.form_token(), "workflow": "poverty_archive"},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert response.status_code == 413
    assert "太大" in response.text
    assert site.svc.list_cases() == []


def test_a_chunked_body_is_cut_off_at_the_limit(web: WebClient, site: Site) -> None:
    web.login("lin")
    limit = site.app.state.settings.max_upload_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 65_536 + 10):
            yield b"a" * 65_536

    response = web.http.post(
        "/cases/new", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413


def test_every_page_carries_the_security_headers(web: WebClient) -> None:
    response = web.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["server-timing"].startswith("app;dur=")
