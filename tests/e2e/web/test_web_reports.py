"""The reports pages over HTTP: the table, its options, the refusals, and the CSV/XLSX downloads."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from engine import load_definition, load_definition_file
from tests.e2e.web.conftest import BUNDLED, Site, WebClient


def _archives(site: Site) -> None:
    """Two 芗城区 archives (one submitted) and one of 龙文区."""
    first = site.open_case("lin")
    site.open_case("lin", id_number="350602199001011235", applicant_name="李四")
    site.open_case("chen", id_number="350603198001011237", county="龙文区", applicant_name="张三")
    site.svc.fire(first, "submit", "lin")


def test_the_list_offers_every_report_of_the_cli(web: WebClient) -> None:
    web.login("lin")
    response = web.get("/reports")
    assert response.status_code == 200
    for name in ("archives", "exit-rate", "programmes", "petitions", "overdue"):
        assert f'href="/reports/{name}"' in response.text
    assert "建档统计" in response.text and "解困脱困率" in response.text


def test_the_archives_table_has_chinese_headings_and_counts_only_the_viewers_counties(
    web: WebClient, site: Site
) -> None:
    _archives(site)
    web.login("lin")  # a clerk of 芗城区
    response = web.get("/reports/archives")
    assert response.status_code == 200, response.text
    text = response.text
    assert '<table id="report"' in text
    for heading in ("状态", "县区", "低保户", "合计"):
        assert heading in text
    assert "芗城区" in text and "龙文区" not in text.split('<table id="report"')[1]
    # archives takes county and as_of, not year
    assert 'name="as_of"' in text and 'name="county"' in text and 'name="year"' not in text
    assert "注：" in text


def test_a_supervisor_sees_every_county(web: WebClient, site: Site) -> None:
    _archives(site)
    web.login("luo")
    table = web.get("/reports/archives").text.split('<table id="report"')[1]
    assert "芗城区" in table and "龙文区" in table


def test_an_option_the_report_does_not_take_is_refused_in_chinese_with_422(web: WebClient) -> None:
    web.login("lin")
    response = web.get("/reports/archives", params={"year": "2026"})
    assert response.status_code == 422
    assert '<p class="refusal" role="alert">' in response.text
    assert "不接受“年份”选项" in response.text
    overdue = web.get("/reports/overdue", params={"as_of": "2026-11-01"})
    assert overdue.status_code == 422 and "不接受“截至日期”选项" in overdue.text


def test_bad_values_and_scopes_are_refused_in_chinese(web: WebClient) -> None:
    web.login("lin")
    assert "不是数字" in web.get("/reports/exit-rate", params={"year": "二〇二六"}).text
    far = web.get("/reports/exit-rate", params={"year": "1999"})
    assert far.status_code == 422 and "年份 1999 不能统计" in far.text
    wrong_day = web.get("/reports/archives", params={"as_of": "2026-02-30"})
    assert wrong_day.status_code == 422 and "不是日期" in wrong_day.text
    other = web.get("/reports/archives", params={"county": "龙文区"})
    assert other.status_code == 422 and "您负责的范围不包括“龙文区”" in other.text
    assert web.get("/reports/no-such-report").status_code == 404


def test_a_report_that_needs_a_year_asks_for_it_then_counts(web: WebClient, site: Site) -> None:
    web.login("luo")
    asked = web.get("/reports/exit-rate")
    assert asked.status_code == 200
    assert "请先填写年份" in asked.text and 'name="year"' in asked.text and "required" in asked.text
    counted = web.get("/reports/exit-rate", params={"year": "2026"})
    assert counted.status_code == 200, counted.text
    assert "2026 年" in counted.text and "解困脱困率" in counted.text


def test_csv_download_is_utf8_with_bom_and_neutralises_formula_like_text(web: WebClient, site: Site) -> None:
    # a later version offers a household type that a spreadsheet would read as a formula
    bundled = load_definition_file(BUNDLED)
    source = bundled.source.replace("version: 4", "version: 5", 1).replace(
        "choices: [低保户, 低保边缘户, 意外致困户]", 'choices: [低保户, 低保边缘户, 意外致困户, "=HYPERLINK(1)"]', 1
    )
    site.svc.load_workflow(load_definition(source, templates=bundled.templates.sources))
    _archives(site)
    web.login("lin")
    response = web.get("/reports/archives", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="archives.csv"' in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["状态", "县区"]
    assert "'=HYPERLINK(1)" in rows[0] and "=HYPERLINK(1)" not in rows[0]
    assert any(row[1] == "芗城区" for row in rows[1:])


def test_xlsx_download_opens_in_openpyxl(web: WebClient, site: Site) -> None:
    _archives(site)
    web.login("luo")
    response = web.get("/reports/exit-rate", params={"year": "2026", "format": "xlsx"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert 'filename="exit-rate-2026.xlsx"' in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    values = [[c for c in row] for row in book.active.iter_rows(values_only=True)]
    flat = [str(v) for row in values for v in row if v is not None]
    assert any("县区" in v for v in flat) and "合计" in flat


def test_a_refused_download_writes_no_file(web: WebClient) -> None:
    web.login("lin")
    response = web.get("/reports/archives", params={"year": "2026", "format": "csv"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert web.get("/reports/archives", params={"format": "pdf"}).status_code == 422


def test_reports_need_a_login(web: WebClient) -> None:
    response = web.get("/reports/archives")
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
