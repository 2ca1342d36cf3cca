"""Reports as tables, with CSV/XLSX download: what ``casework report`` gives, in the browser.

The engine counts (:meth:`engine.Casework.report`, limited to the viewer's
counties as the CLI's ``--as`` limits it) and refuses what a report does not
take; this page only reads the options from the query string, shows the
:class:`~engine.sheets.Sheet` with its Chinese column headings and notes, and
writes the download with :func:`casework.export.write_sheet` — the same
bytes as ``casework report NAME --format csv|xlsx -o FILE`` (CSV in UTF-8
with a BOM, formula-like text neutralised).
"""

from __future__ import annotations

import datetime as dt
import inspect
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from casework.web.auth import Viewer, service
from casework.web.render import page
from casework.web.wording import word
from engine import CaseworkError, Code, NotFound, WorkflowNotFound
from engine.reports import FIRST_YEAR, REPORTS
from engine.sheets import Sheet

__all__ = ["OPTION_LABELS", "REPORT_TITLES", "options_of", "router"]

router = APIRouter(include_in_schema=False)

#: what each report is, for the list (a report added later shows under its own name until it gets one)
REPORT_TITLES: dict[str, tuple[str, str]] = {
    "archives": ("建档统计", "建档立卡档案按状态、县区和困难类型统计；可查看截至某日的情况。"),
    "exit-rate": ("解困脱困率", "各县区年初在档户数、年内解困脱困户数及解困脱困率（目标不低于 30%）。"),
    "programmes": ("帮扶项目统计", "各帮扶项目按年度、县区统计的案件数、人数、批准金额和已发放金额。"),
    "petitions": ("信访统计", "各县区信访件的登记、办结、作废、在办、逾期件数和办结率。"),
    "overdue": ("逾期案件", "按流程、县区和环节统计已超过办理期限的在办案件，最早到期的在前。"),
}

#: the options a report may take, in the order the form shows them, with their Chinese names
OPTION_LABELS: dict[str, str] = {"year": "年份", "county": "县区", "as_of": "截至日期"}

_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class _BadOption(Exception):
    """An option that is not even a value of its kind (a year that is not a number, a date that is no date)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def options_of(name: str) -> dict[str, bool]:
    """The options report ``name`` takes → whether it needs it, read from the engine's report function.

    ``county`` every report takes (it narrows the scopes); ``year`` and
    ``as_of`` only the reports whose function has them. The engine still
    checks every option given: this only decides which fields the form shows.
    """
    params = inspect.signature(REPORTS[name]).parameters
    found = {"county": False}
    for option in ("year", "as_of"):
        if option in params:
            found[option] = params[option].default is inspect.Parameter.empty
    return {k: found[k] for k in OPTION_LABELS if k in found}


def _title(name: str) -> str:
    return REPORT_TITLES.get(name, (name, ""))[0]


@router.get("/reports")
def report_list(request: Request, viewer: Viewer) -> Response:
    """Every report ``casework report`` offers, with what it counts."""
    listed = [(name, *REPORT_TITLES.get(name, (name, ""))) for name in REPORTS]
    return page(request, "reports.html", {"reports": listed})


def _given(request: Request) -> dict[str, str]:
    """The options in the query string, as typed (empty ones left out)."""
    return {k: v.strip() for k in OPTION_LABELS if (v := request.query_params.get(k)) is not None and v.strip()}


def _parsed(given: dict[str, str]) -> dict[str, Any]:
    """The options as the engine takes them; :class:`_BadOption` for a year or date that is not one."""
    out: dict[str, Any] = {}
    if "year" in given:
        text = given["year"]
        if not text.isdigit() or len(text) > 6:
            raise _BadOption(f"年份“{text}”不是数字：请填写四位年份，例如 2026。")
        out["year"] = int(text)
    if "county" in given:
        out["county"] = given["county"]
    if "as_of" in given:
        text = given["as_of"]
        try:
            out["as_of"] = dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            out["as_of"] = None
        if out["as_of"] is None:
            raise _BadOption(f"截至日期“{text}”不是日期：请按 年-月-日 填写，例如 2025-12-31（统计到当日结束）。")
    return out


def _refusal(name: str, exc: CaseworkError) -> str:
    """A report's refusal in Chinese: the option it does not take, needs, or cannot use."""
    option = str(exc.facts.get("option", ""))
    label = OPTION_LABELS.get(option)
    if exc.code == Code.INVALID_INPUT and label is not None:
        value = exc.facts.get("value")
        if option not in options_of(name):
            return f"报表“{_title(name)}”不接受“{label}”选项，未统计。请去掉该选项后重试。"
        if value is None:
            return f"报表“{_title(name)}”需要填写“{label}”，例如 2026，未统计。"
        if option == "year":
            return f"年份 {value} 不能统计：请填写四位年份，从 {FIRST_YEAR} 年到今年。"
        if option == "county":
            return f"县区“{value}”不是任何已加载流程中的县区，未统计。请从列表中选择县区。"
    if exc.code == Code.SCOPE_NOT_COVERED:
        return f"您负责的范围不包括“{exc.facts.get('scope', '')}”：请去掉县区选项，统计您负责的县区。"
    return word(exc)


def _download(sheet: Sheet, name: str, fmt: str) -> Response:
    """The sheet as the CLI writes it to a file (``write_sheet`` to a temporary file, read back)."""
    from casework.export import write_sheet

    with tempfile.TemporaryDirectory(prefix="casework-report-") as folder:
        target = Path(folder) / f"report.{fmt}"
        write_sheet(sheet, fmt, target)
        body = target.read_bytes()
    year = sheet.meta.get("year")
    filename = f"{name}-{year}.{fmt}" if year else f"{name}.{fmt}"
    return Response(body, media_type=_MEDIA[fmt], headers={"content-disposition": f'attachment; filename="{filename}"'})


@router.get("/reports/{name}")
def report_page(request: Request, viewer: Viewer, name: str) -> Response:
    """One report as a table, with the options it takes; ``?format=csv|xlsx`` downloads it."""
    if name not in REPORTS:
        raise HTTPException(404)
    fmt = request.query_params.get("format") or "html"
    takes = options_of(name)
    given = _given(request)
    context: dict[str, Any] = {
        "name": name,
        "title": _title(name),
        "about": REPORT_TITLES.get(name, (name, ""))[1],
        "takes": takes,
        "labels": OPTION_LABELS,
        "given": given,
        "sheet": None,
        "cells": [],
        "error": None,
        "needs": [],
    }
    if fmt not in ("html", *_MEDIA):
        context["error"] = f"下载格式“{fmt}”不可用：请选择 CSV 或 Excel（xlsx）。"
        return page(request, "report.html", context, status=422)
    try:
        options = _parsed(given)
    except _BadOption as exc:
        context["error"] = exc.message
        return page(request, "report.html", context, status=422)
    needs = [k for k, required in takes.items() if required and k not in options]
    if needs and fmt == "html":
        # the form first: a report that needs a year is asked for one, not refused on arrival
        context["needs"] = [OPTION_LABELS[k] for k in needs]
        return page(request, "report.html", context)
    try:
        sheet = service(request).report(name, actor=viewer.username, **options)
    except WorkflowNotFound as exc:
        # e.g. the petitions report on a database without the petition workflow
        context["error"] = f"此报表统计的流程“{exc.name}”尚未加载，暂无可统计的数据。"
        return page(request, "report.html", context, status=404)
    except CaseworkError as exc:
        context["error"] = _refusal(name, exc)
        return page(request, "report.html", context, status=404 if isinstance(exc, NotFound) else 422)
    if fmt != "html":
        return _download(sheet, name, fmt)
    context["sheet"] = sheet
    context["cells"] = [[c.shown(row.get(c.key)) for c in sheet.columns] for row in sheet.rows]
    return page(request, "report.html", context)
