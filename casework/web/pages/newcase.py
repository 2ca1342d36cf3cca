"""The new-case form (/cases/new) and the import upload (/cases/import).

The form is generated from the workflow's fields (:mod:`casework.web.forms`);
who may open a case, and whether the data is right, is the engine's to say:
:func:`engine.access.opening_role` picks the workflows offered, and
:meth:`engine.Casework.create_case` checks every value again and refuses with
per-field problems, shown next to each field. The import reads the upload
with the same reader as ``casework case import`` (:mod:`casework.importfile`)
and imports through the same engine call.
"""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePath
from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response

from casework.web import forms
from casework.web.auth import Form, Viewer, service, settings
from casework.web.render import page
from casework.web.wording import word
from engine import CaseworkError, Code, InputError, NotFound, WorkflowDef
from engine.access import Actor, opening_role
from engine.bulk import InvalidImport
from engine.logins import SessionView
from engine.models import RowProblem

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

#: the file types the import reads (casework.importfile.read_rows)
IMPORT_SUFFIXES = (".csv", ".xlsx", ".xlsm")


def _actor(viewer: SessionView) -> Actor:
    return Actor(viewer.username, tuple(viewer.roles), tuple(viewer.scopes))


def openable(request: Request, viewer: SessionView) -> list[WorkflowDef]:
    """The latest version of every workflow the viewer may open a case of (the engine's opening rule)."""
    svc = service(request)
    names = [wf.name for wf in svc.latest_workflows()]
    found = []
    for name in names:
        wf = svc.workflow(name)
        try:
            opening_role(wf, _actor(viewer))
        except CaseworkError:
            continue
        found.append(wf)
    return found


def _form_page(
    request: Request,
    viewer: SessionView,
    wf: WorkflowDef,
    *,
    values: dict[str, Any] | None = None,
    problems: dict[str, str] | None = None,
    refusal: str | None = None,
    others: list[str] | None = None,
    status: int = 200,
) -> Response:
    controls = forms.widgets(wf, values=values, problems=problems, scopes=viewer.scopes)
    return page(
        request,
        "newcase.html",
        {
            "wf": wf,
            "controls": controls,
            "refusal": refusal,
            "others": others or [],
            "workflows": None,
            "filled": _filled_note(wf),
        },
        status=status,
    )


def _filled_note(wf: WorkflowDef) -> list[tuple[str, str]]:
    """(filled field's label, link field's label) for each field copied from a linked case."""
    return [(wf.fields[f].label, wf.fields[link].label) for f, link in wf.filled_by.items() if f in wf.fields]


@router.get("/cases/new")
def new_case_form(request: Request, viewer: Viewer) -> Response:
    """Without ``?workflow=``: the workflows I may open; with it, that workflow's form."""
    name = request.query_params.get("workflow")
    if not name:
        return page(
            request,
            "newcase.html",
            {"wf": None, "workflows": openable(request, viewer), "refusal": None, "controls": [], "others": []},
        )
    wf = service(request).workflow(name)  # NotFound → 404
    try:
        opening_role(wf, _actor(viewer))
    except CaseworkError as exc:
        return page(
            request,
            "newcase.html",
            {"wf": wf, "workflows": None, "refusal": word(exc), "controls": [], "others": [], "filled": []},
            status=403,
        )
    return _form_page(request, viewer, wf)


@router.post("/cases/new")
def create_case(request: Request, viewer: Viewer, form: Form) -> Response:
    """Open the case; on a refusal the form again with what was typed and each field's problem."""
    name = str(form.get("workflow") or "")
    svc = service(request)
    try:
        wf = svc.workflow(name)
    except NotFound:
        return page(
            request,
            "newcase.html",
            {
                "wf": None,
                "workflows": openable(request, viewer),
                "refusal": "请选择要新建案件的业务流程。",
                "controls": [],
                "others": [],
            },
            status=422,
        )
    data = forms.parse_form(wf, form)
    typed = forms.form_values(wf, form)
    try:
        view = svc.create_case(wf.name, viewer.username, data)
    except CaseworkError as exc:
        raw = exc.facts.get("problems")
        if exc.code == Code.INVALID_DATA and isinstance(raw, list):
            by_field, others = forms.field_problems(wf, raw)
            return _form_page(
                request,
                viewer,
                wf,
                values=typed,
                problems=by_field,
                refusal="填写的内容有误，案件未创建。请按各项旁的提示修改后重新保存。",
                others=others,
                status=422,
            )
        status = 404 if isinstance(exc, NotFound) else 409 if exc.code == Code.DUPLICATE else 403
        if isinstance(exc, InputError):
            status = 422
        return _form_page(request, viewer, wf, values=typed, refusal=word(exc), status=status)
    return RedirectResponse(f"/cases/{view.ref}", status_code=303)


# ------------------------------------------------------------------------------------------ import


def _import_page(request: Request, viewer: SessionView, *, status: int = 200, **context: Any) -> Response:
    workflows = openable(request, viewer)
    base: dict[str, Any] = {
        "workflows": workflows,
        "columns": {wf.name: _columns(wf) for wf in workflows},
        "chosen": request.query_params.get("workflow") or "",
        "skip_invalid": False,
        "refusal": None,
        "report": None,
        "rows": [],
        "wf": None,
    }
    base.update(context)
    return page(request, "import.html", base, status=status)


def _columns(wf: WorkflowDef) -> list[tuple[str, str, bool]]:
    """(field name, label, required) of each column an import file may have."""
    return [(n, wf.fields[n].label, wf.fields[n].required) for n in forms.typed_fields(wf)]


@router.get("/cases/import")
def import_form(request: Request, viewer: Viewer) -> Response:
    """The upload form: workflow, file, skip invalid rows, and the columns each workflow reads."""
    return _import_page(request, viewer)


def _row_problems(wf: WorkflowDef, problems: list[RowProblem]) -> list[tuple[int, list[str]]]:
    """Each bad row's line and its problems in Chinese where the field is known ("field: message")."""
    rows = []
    for row in problems:
        texts = []
        for text in row.problems:
            name, sep, message = text.partition(": ")
            if sep and name in wf.fields:
                by_field, _ = forms.field_problems(wf, [{"field": name, "message": message}])
                texts.append(by_field[name])
            else:
                texts.append(text)
        rows.append((row.line, texts))
    return rows


@router.post("/cases/import")
def import_cases(request: Request, viewer: Viewer, form: Form) -> Response:
    """Import the uploaded file as ``casework case import`` does; the per-row report."""
    svc = service(request)
    name = str(form.get("workflow") or "")
    skip_invalid = form.get("skip_invalid") not in (None, "", "0")
    upload = form.get("file")
    keep: dict[str, Any] = {"chosen": name, "skip_invalid": skip_invalid}
    try:
        wf = svc.workflow(name)
    except NotFound:
        return _import_page(request, viewer, refusal="请选择要导入的业务流程。", status=422, **keep)
    if not isinstance(upload, UploadFile) or not upload.filename:
        if isinstance(upload, UploadFile):
            upload.file.close()
        return _import_page(request, viewer, refusal="请选择要导入的文件（.csv 或 .xlsx）。", status=422, **keep)
    limit = settings(request).max_upload_bytes
    try:
        # read one byte past the limit: enough to know it is too big, never the whole of a huge file
        upload.file.seek(0)
        data = upload.file.read(limit + 1)
    finally:
        upload.file.close()
    if len(data) > limit:
        return _import_page(
            request,
            viewer,
            refusal=f"文件太大，一次最多上传 {limit:,} 字节。请把文件拆分后分批导入。未导入任何案件。",
            status=413,
            **keep,
        )
    suffix = PurePath(upload.filename).suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        return _import_page(
            request,
            viewer,
            refusal="只能导入 .csv（UTF-8 编码）或 .xlsx 文件。未导入任何案件。",
            status=422,
            **keep,
        )
    with tempfile.TemporaryDirectory(prefix="casework-import-") as folder:
        # the CLI's reader takes a path: the upload is written under its own (safe) name, and the
        # temporary folder is taken out of any message, which then names the file as the clerk knows it
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            report = _run_import(svc, wf, viewer.username, path, skip_invalid)
        except InvalidImport as exc:
            return _import_page(
                request,
                viewer,
                refusal=f"共 {exc.facts.get('total')} 行，其中 {len(exc.problems)} 行有误，未导入任何案件。"
                "请修改这些行后重新导入，或勾选“跳过有误的行”只导入无误的行。",
                rows=_row_problems(wf, exc.problems),
                wf=wf,
                status=422,
                **keep,
            )
        except CaseworkError as exc:
            message = word(exc).replace(str(path), upload.filename).replace(folder, "")
            status = 403 if exc.code in (Code.ROLE_NEEDED, Code.SCOPE_NOT_COVERED) else 422
            return _import_page(request, viewer, refusal=message, status=status, **keep)
    return _import_page(request, viewer, report=report, rows=_row_problems(wf, list(report.skipped)), wf=wf, **keep)


def _run_import(svc: Any, wf: WorkflowDef, actor: str, path: Path, skip_invalid: bool) -> Any:
    from casework.importfile import read_rows

    total, rows = read_rows(path, wf)
    if total == 0:
        raise InputError("文件中表头下没有数据行，未导入任何案件。")
    return svc.import_cases(wf.name, actor, rows, skip_invalid=skip_invalid)
