"""Every bundled workflow's 公示名单 looks official: the same parts, in Chinese dates, with a seal area.

Templates cannot include one another (the sandbox refuses it), so each
workflow's ``public_list`` carries its own copy of the layout; this test keeps
the copies honest: title, number, period in Chinese dates, the contact ending
in "。", 特此公示。, the seal area with the issuer and the date, page numbers,
and no ISO date anywhere in the printed text.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine import load_definition_file
from engine.outbox import case_context
from engine.publication import declared_period, period_text
from notifications.notices import render_with
from notifications.pdf import html_to_pdf
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils (pdftotext)")

ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
LISTED = sorted(
    p.name for p in (ROOT / "workflows").glob("*.yaml") if re.search(r"^\s*list_template:", p.read_text(), re.M)
)


def test_the_bundled_workflows_with_a_list_are_found() -> None:
    assert {"poverty_archive.yaml", "medical_aid.yaml", "golden_autumn.yaml"} <= set(LISTED)


@pytest.mark.parametrize("file", LISTED)
def test_a_bundled_list_notice_has_every_official_part(file: str, tmp_path: Path) -> None:
    wf = load_definition_file(ROOT / "workflows" / file)
    assert wf.publicity is not None and wf.scope_field is not None
    cases = [
        {"no": i, **case_context(wf, f"{wf.ref_prefix}-2026-{i:06d}", wf.publicity.state, {wf.scope_field: "芗城区"})}
        for i in (1, 2)
    ]
    context = {
        "workflow": {"name": wf.name, "title": wf.title},
        "notice": {
            "number": f"{wf.ref_prefix}GS-2026-000003",
            "date": "2026-12-02",
            "period_start": "2026-12-02",
            "period_end": "2026-12-09",
            "period_days": 7,
            "period_length": period_text(declared_period(wf)),
        },
        "publicity": {"issuer": wf.publicity.issuer, "contact": wf.publicity.contact},
        "cases": cases,
        "scope": "芗城区",
    }
    _, html = render_with(wf, "public_list")(context)
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(html_to_pdf(html, wf.title))
    text = "".join(
        subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True, timeout=60)
        .stdout.decode("utf-8")
        .split()
    )
    issuer = "".join(wf.publicity.issuer.split())
    for part in (
        "关于芗城区",
        f"（{wf.ref_prefix}GS-2026-000003）",
        "公示期：2026年12月2日至2026年12月9日",
        "特此公示。",
        f"（盖章处）{issuer}2026年12月2日",
        "第1页共1页",
        f"{wf.ref_prefix}-2026-000002",
    ):
        assert part in text, f"{file}: {part!r} not printed"
    assert not ISO_DATE.search(text), f"{file}: an ISO date is printed"
    contact = "".join(wf.publicity.contact.split())
    assert contact.rstrip("。") + "。" in text, f"{file}: the contact sentence does not end in 。"
