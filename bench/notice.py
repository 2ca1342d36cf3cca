"""Time to render a 1,000-household list notice (公示名单) to HTML and to PDF.

    python -m bench.notice [--households 1000] [--rounds 5] [--pdf FILE]

The HTML is the workflow's own template rendered in the sandbox; the PDF is
that HTML laid out by WeasyPrint (:func:`notifications.pdf.html_to_pdf`, the
fonts subset and embedded). Baseline: a plain f-string table of the same rows
(the floor for producing that HTML at all). Medians of rounds, wall clock and
the process's CPU time; ``--pdf`` keeps the last PDF.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from typing import Any

from pypdf import PdfReader

from bench.transition import BUNDLED
from casework.synthetic import SyntheticPeople
from engine import load_definition_file
from engine.outbox import case_context
from engine.publication import declared_period, period_text
from notifications.notices import render_with
from notifications.pdf import html_to_pdf


def _context(n: int) -> dict[str, Any]:
    wf = load_definition_file(BUNDLED)
    people = SyntheticPeople(5)
    cases = []
    for i in range(1, n + 1):
        data = people.household()
        data["county"] = "芗城区"
        cases.append({"no": i, **case_context(wf, f"ZZ-2026-{i:06d}", "publicise", data)})
    return {
        "workflow": {"name": wf.name, "title": wf.title},
        "notice": {"number": "ZZGS-2026-000001", "date": "2026-12-01", "period_start": "2026-12-01",
                   "period_end": "2026-12-08", "period_days": 7,
                   "period_length": period_text(declared_period(wf))},  # as the engine states it: "7 天"
        "publicity": {"issuer": wf.publicity.issuer, "contact": wf.publicity.contact} if wf.publicity else {},
        "cases": cases,
        "scope": "芗城区",
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pdf", help="write the last PDF here")
    args = parser.parse_args()
    wf = load_definition_file(BUNDLED)
    context = _context(args.households)
    render = render_with(wf, "public_list")
    times: dict[str, list[float]] = {"f-string table (baseline)": [], "HTML from template": [], "PDF from HTML": []}
    size = {}
    cpu: list[float] = []
    html_to_pdf("<p>预热</p>")  # WeasyPrint's first call loads its stylesheets and the font list: not per notice
    pdf = b""
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        rows = "".join(
            f"<tr><td>{c['no']}</td><td>{c['ref']}</td><td>{c['applicant_name']}</td><td>{c['id_number']}</td></tr>"
            for c in context["cases"]
        )
        size["f-string table (baseline)"] = len(f"<table>{rows}</table>")
        times["f-string table (baseline)"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        title, html = render(context)
        times["HTML from template"].append(time.perf_counter() - t0)
        size["HTML from template"] = len(html.encode())
        t0, c0 = time.perf_counter(), time.process_time()
        pdf = html_to_pdf(html, title)
        times["PDF from HTML"].append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        size["PDF from HTML"] = len(pdf)
    base = statistics.median(times["f-string table (baseline)"])
    print(f"{args.households}-household list notice   {'median ms':>10} {'bytes':>10} {'× baseline':>11}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:32} {med * 1000:10.1f} {size[name]:10,d} {med / base:11.1f}")
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"PDF: {pages} pages; CPU per PDF median {statistics.median(cpu) * 1000:.0f} ms "
          f"(min {min(cpu) * 1000:.0f}, max {max(cpu) * 1000:.0f})")  # fmt: skip
    if args.pdf:
        with open(args.pdf, "wb") as out:
            out.write(pdf)


if __name__ == "__main__":
    main()
