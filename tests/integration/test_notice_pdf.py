"""Public notices printed by a real HTML/CSS renderer: what is hashed is what is printed.

The PDF of a notice is its stored HTML laid out by WeasyPrint
(:mod:`notifications.pdf`). Read back with poppler's ``pdftotext`` (Debian
``poppler-utils``, installed by ``scripts/system-packages``):

* every text of a supervisor's template — ``div``, ``ul``/``li``, ``section``,
  ``span``, a table, headings and paragraphs — is in the PDF (the hand-written
  parser it replaced kept only h1–h3, p and table);
* the bundled 公示名单 reads as an official notice: a centred title, Chinese
  dates, the period and contact ending in "。", 特此公示。, the issuer and date
  under a seal area, 第 N 页 共 M 页 on every page, the table header repeated;
* the renderer fetches nothing a template names (``file:``, ``http:``,
  ``data:``), while WeasyPrint's own fetcher would have;
* without a CJK font the PDF is refused, naming the package, never printed as
  empty boxes.
"""

from __future__ import annotations

import datetime as dt
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from casework.synthetic import SyntheticPeople
from engine import Casework, load_definition, load_definition_file
from engine.outbox import case_context
from engine.publication import declared_period, period_text
from engine.templates import TemplateRenderError, TemplateSet, cn_date
from notifications.notices import notice_pdf, publish_list, render_with
from notifications.pdf import PdfUnavailable, cjk_fonts, html_to_pdf
from tests.conftest import BUNDLED, ROOT

WF = "poverty_archive"
MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")


def pdftotext(pdf: bytes, tmp_path: Path, page: int | None = None) -> str:
    """The PDF's text as poppler reads it (one page, or all)."""
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    proc = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *pages, str(path), "-"], capture_output=True, check=True, timeout=60
    )
    return proc.stdout.decode("utf-8")


def squeeze(text: str) -> str:
    """Text without any whitespace: line breaks and spacing are layout, not content."""
    return "".join(text.split())


def page_count(pdf: bytes, tmp_path: Path) -> int:
    path = tmp_path / "count.pdf"
    path.write_bytes(pdf)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True, timeout=60).stdout
    found = re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE)
    assert found is not None, info
    return int(found.group(1))


class _Texts(HTMLParser):
    """Every text node of a page's body (what a reader of the HTML sees)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("head", "style", "title", "script")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("head", "style", "title", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.texts.append(squeeze(data))


def body_texts(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    parser.close()
    return parser.texts


def publicised(svc: Casework, seed: int, workflow: str = WF) -> str:
    """A case of 芗城区 passed review: it awaits its county's list."""
    data = SyntheticPeople(seed).household()
    data.update(county="芗城区", materials=list(MATERIALS))
    ref = svc.create_case(workflow, "lin", data).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    return ref


# a supervisor's own list template: block and list elements the old parser dropped, nested inline text
RICH_TEMPLATE = """\
<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>{{ scope }}建档立卡公示（{{ notice.number }}）</title>
<style>
  @page { size: A4; margin: 20mm; @bottom-center { content: "第 " counter(page) " 页 共 " counter(pages) " 页"; } }
  html { font-family: "WenQuanYi Micro Hei", "Noto Sans CJK SC", sans-serif; font-size: 11pt; }
  .box { border: 1px solid #000; padding: 2mm; }
</style></head>
<body>
<h1>关于{{ scope }}困难职工建档立卡对象的公示</h1>
<div class="lead">经{{ scope }}总工会审核，以下职工家庭拟纳入建档立卡范围。</div>
<p>公示期：{{ notice.period_start | cn_date }}至{{ notice.period_end | cn_date }}（{{ notice.period_length }}）。</p>
<ul>
  <li>对公示对象有异议的，请于公示期内实名反映。</li>
  <li>反映情况须实事求是，并提供线索。</li>
</ul>
<ol><li>公示期满无异议的，报审批。</li></ol>
<section class="box"><div><span>联系人：帮扶中心</span>（工作日上午八时至十二时）</div></section>
<h2>公示名单</h2>
<table>
  <thead><tr><th>序号</th><th>档案编号</th><th>申请人</th><th>公民身份号码</th></tr></thead>
  <tbody>{% for c in cases %}<tr><td>{{ c.no }}</td><td>{{ c.ref }}</td><td>{{ c.applicant_name }}</td>\
<td>{{ c.id_number }}</td></tr>{% endfor %}</tbody>
</table>
<div style="text-align: right">{{ publicity.issuer }}<br>{{ notice.date | cn_date }}</div>
</body>
</html>
"""


def test_every_text_of_a_template_with_divs_lists_and_a_table_is_in_the_pdf(svc: Casework, tmp_path: Path) -> None:
    bundled = svc.workflow(WF)
    source = BUNDLED.read_text(encoding="utf-8")
    following = f"version: {bundled.version + 1}"
    templates = {**bundled.templates.sources, "public_list.html": RICH_TEMPLATE}
    svc.load_workflow(load_definition(source.replace(f"version: {bundled.version}", following), "rich.yaml", templates))
    refs = [publicised(svc, 300 + i) for i in range(6)]
    view = publish_list(svc, WF, "芗城区")
    assert view is not None and set(view.cases) == set(refs)

    pdf = notice_pdf(view)
    text = squeeze(pdftotext(pdf, tmp_path))
    expected = body_texts(view.html)  # the stored, hashed HTML: what a reader of it sees
    assert "联系人：帮扶中心" in expected and "反映情况须实事求是，并提供线索。" in expected
    missing = [t for t in expected if t not in text]
    assert missing == [], f"texts of the hashed HTML missing from the PDF: {missing}"
    assert "2026年11月30日" in text and "第1页共1页" in text
    assert pdf == notice_pdf(view), "the same stored HTML prints to the same bytes"


def _context(households: int) -> dict[str, Any]:
    """A list notice's context as the engine builds it, for ``households`` synthetic households."""
    wf = load_definition_file(BUNDLED)
    people = SyntheticPeople(11)
    cases = []
    for i in range(1, households + 1):
        data = {**people.household(), "county": "芗城区"}
        cases.append({"no": i, **case_context(wf, f"ZZ-2026-{i:06d}", "publicise", data)})
    p = wf.publicity
    assert p is not None
    length = period_text(declared_period(wf))  # as the engine states it: "7 天"
    notice = {"number": "ZZGS-2026-000007", "date": "2026-12-01", "period_start": "2026-12-01",
              "period_end": "2026-12-08", "period_days": 7, "period_length": length}  # fmt: skip
    return {
        "workflow": {"name": wf.name, "title": wf.title},
        "notice": notice,
        "publicity": {"issuer": p.issuer, "contact": p.contact},
        "cases": cases,
        "scope": "芗城区",
    }


def test_a_long_list_numbers_its_pages_repeats_its_header_and_ends_with_the_issuer_and_seal(tmp_path: Path) -> None:
    wf = load_definition_file(BUNDLED)
    title, html = render_with(wf, "public_list")(_context(120))
    pdf = html_to_pdf(html, title)
    pages = page_count(pdf, tmp_path)
    assert pages >= 4
    header = "序号档案编号申请人公民身份号码困难类型家庭人口"
    for n in range(1, pages + 1):
        page = squeeze(pdftotext(pdf, tmp_path, n))
        assert f"第{n}页共{pages}页" in page, f"page {n}: {page[-60:]}"
        if n < pages:
            assert header in page, f"page {n} has no table header"
    first = squeeze(pdftotext(pdf, tmp_path, 1))
    assert first.startswith("关于芗城区困难职工建档立卡对象的公示（ZZGS-2026-000007）")
    assert "以下120户困难职工家庭" in first
    last = squeeze(pdftotext(pdf, tmp_path, pages))
    closing = [
        "公示期：2026年12月1日至2026年12月8日（7天）。",
        # the workflow's contact sentence has no final "。": the template ends it
        "向漳州市总工会职工帮扶中心反映。",
        "特此公示。",
        "（盖章处）漳州市总工会2026年12月1日",  # the seal area, then the issuer and the date under it
    ]
    positions = [last.find(t) for t in closing]
    assert -1 not in positions, dict(zip(closing, positions, strict=True))
    assert positions == sorted(positions), "period, contact, closing line, seal area, issuer, date: in that order"
    assert not ISO_DATE.search(squeeze(pdftotext(pdf, tmp_path))), "every date is written in Chinese"
    assert "ZZ-2026-000120" in last or "ZZ-2026-000120" in squeeze(pdftotext(pdf, tmp_path, pages - 1))


def test_a_published_notice_has_chinese_dates_the_closing_line_and_the_issuer(svc: Casework, tmp_path: Path) -> None:
    refs = [publicised(svc, 500 + i) for i in range(3)]
    view = publish_list(svc, WF, "芗城区")
    assert view is not None and set(view.cases) == set(refs)
    visible = "".join(body_texts(view.html))
    assert not ISO_DATE.search(visible), "the notice shows no ISO date"
    text = squeeze(pdftotext(notice_pdf(view), tmp_path))
    for words in (
        "关于芗城区困难职工建档立卡对象的公示",
        "芗城区困难职工建档立卡公示名单",
        "公示期：2026年11月30日至2026年12月7日（7天）。",
        "来信或来访向漳州市总工会职工帮扶中心反映。",
        "特此公示。",
        "（盖章处）漳州市总工会2026年11月30日",
        "第1页共1页",
        *refs,
    ):
        assert words in text, words


# ------------------------------------------------------------------------ fetching nothing

PROBE_CSS = '.%s::after { content: "FETCHED-%s"; }'


@pytest.fixture
def http_probe() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that serves a stylesheet to anyone and records every request."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            body = (PROBE_CSS % ("http", "HTTP")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _hostile(tmp_path: Path, base: str) -> str:
    """A template's HTML naming a local file, a local server and a data: URL, each of which would add text."""
    stylesheet = tmp_path / "evil.css"
    stylesheet.write_text(PROBE_CSS % ("file", "FILE"), encoding="utf-8")
    imported = tmp_path / "imported.css"
    imported.write_text(PROBE_CSS % ("import", "IMPORT"), encoding="utf-8")
    data_css = "data:text/css," + (PROBE_CSS % ("data", "DATA")).replace(" ", "%20").replace('"', "%22")
    return f"""<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>探测</title>
<link rel="stylesheet" href="{stylesheet.as_uri()}">
<link rel="stylesheet" href="{base}/notice.css">
<link rel="stylesheet" href="{data_css}">
<style>@import url("{imported.as_uri()}"); html {{ font-family: "WenQuanYi Micro Hei", sans-serif; }}</style>
</head><body>
<p class="file">公示正文</p>
<p class="import">正文第二段</p><p class="data">正文第三段</p><p class="http">正文第四段</p>
<img src="file:///etc/passwd" alt=""><img src="{base}/seal.png" alt="">
<svg width="10" height="10"><image href="{base}/seal.svg" width="10" height="10"/></svg>
</body></html>"""


def test_a_notice_fetches_no_file_no_url_and_no_data(tmp_path: Path, http_probe: tuple[str, list[str]]) -> None:
    base, seen = http_probe
    html = _hostile(tmp_path, base)
    text = squeeze(pdftotext(html_to_pdf(html), tmp_path))
    assert "公示正文" in text
    assert "FETCHED" not in text, text
    assert seen == [], f"the renderer asked the server for {seen}"

    # the control: WeasyPrint's own fetcher reads the file, the import and the data: URL, so the probes above work
    import weasyprint

    local = html.replace(f'<link rel="stylesheet" href="{base}/notice.css">', "")
    local = re.sub(r'<(img|image) [^>]*src="http[^"]*"[^>]*>|<image href="http[^"]*"[^>]*/>', "", local)
    unguarded = weasyprint.HTML(string=local).write_pdf()
    control = squeeze(pdftotext(unguarded, tmp_path))
    assert {"FETCHED-FILE", "FETCHED-IMPORT", "FETCHED-DATA"} <= set(re.findall(r"FETCHED-[A-Z]+", control))


# ------------------------------------------------------------------------ fonts


# the fonts are the host's, whichever database holds the notice: two command processes (~3 s each) on SQLite only
@pytest.mark.parametrize("backend", ["sqlite"])
def test_without_a_cjk_font_the_pdf_is_refused_naming_the_package(svc: Casework, db_url: str, tmp_path: Path) -> None:
    publicised(svc, 700)
    view = publish_list(svc, WF, "芗城区")
    assert view is not None
    assert "WenQuanYi Micro Hei" in cjk_fonts()  # here there is one (scripts/system-packages installs it)
    empty = tmp_path / "fonts.conf"
    empty.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig></fontconfig>\n')
    out = tmp_path / "notice.pdf"
    env = {**os.environ, "FONTCONFIG_FILE": str(empty), "CASEWORK_DB": db_url}
    casework = [sys.executable, "-c", "from casework.cli import main; main()"]
    proc = subprocess.run(
        [*casework, "notice", "show", view.number, "--format", "pdf", "-o", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "no font for Chinese is installed" in proc.stderr and "fonts-wqy-microhei" in proc.stderr, proc.stderr
    assert not out.exists(), "no PDF of empty boxes"
    probe = "from notifications.pdf import PdfUnavailable, html_to_pdf\ntry:\n    html_to_pdf('<p>中文</p>')\n"
    probe += "except PdfUnavailable as e:\n    print(e.code, e.facts['install'])\n"
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.split() == ["pdf_unavailable", "fonts-wqy-microhei"], proc.stdout + proc.stderr
    assert issubclass(PdfUnavailable, Exception)


# ------------------------------------------------------------------------ dates


def test_cn_date_writes_dates_as_a_chinese_notice_does() -> None:
    assert cn_date("2026-12-02") == "2026年12月2日"
    assert cn_date(dt.date(2027, 1, 5)) == "2027年1月5日"
    assert cn_date(dt.datetime(2026, 10, 1, 23, 59)) == "2026年10月1日"
    templates = TemplateSet({"n.html": "{{ notice.date | cn_date }}", "bad.html": "{{ notice | cn_date }}"})
    assert templates.render("n", "html", {"notice": {"date": "2026-12-02"}}) == "2026年12月2日"
    with pytest.raises(TemplateRenderError, match="cn_date needs a date such as 2026-12-02"):
        templates.render("bad", "html", {"notice": "下周一"})
