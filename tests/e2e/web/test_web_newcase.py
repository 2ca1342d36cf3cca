"""The new-case form and the import upload over HTTP: a form made from the fields, the engine's refusals by field."""

from __future__ import annotations

import re
from typing import Any

from casework.web.forms import parse_form, typed_fields, widgets
from casework.web.settings import WebSettings
from tests.e2e.web.conftest import BAD_ID, GOOD_ID, Site, WebClient, case_data

FORM = "/cases/new?workflow=poverty_archive"


def cases(site: Site) -> list[Any]:
    return site.svc.list_cases(workflow="poverty_archive")


def posted(**overrides: Any) -> dict[str, Any]:
    """What the browser posts for a 芗城区 household (every value as text, the checklist as its ticked boxes)."""
    data = {k: v if isinstance(v, list) else str(v) for k, v in case_data(**overrides).items()}
    data["workflow"] = "poverty_archive"
    return data


def problem(text: str, field: str) -> str:
    """The server's word next to ``field`` (its ``<span class="field-problem" data-field=…>``)."""
    found = re.search(rf'<span class="field-problem" data-field="{field}"[^>]*>([^<]*)</span>', text)
    assert found is not None, f"no problem span for {field}"
    return found.group(1)


# ---------------------------------------------------------------------------------- the form


def test_the_list_offers_the_workflows_the_viewer_may_open(web: WebClient) -> None:
    web.login("lin")
    page = web.get("/cases/new")
    assert page.status_code == 200
    assert 'href="/cases/new?workflow=poverty_archive"' in page.text
    assert "困难职工建档立卡" in page.text


def test_an_approver_is_offered_no_workflow_and_refused_the_form(web: WebClient) -> None:
    web.login("su")  # approver: no step out of 申请
    page = web.get("/cases/new")
    assert "/cases/new?workflow=poverty_archive" not in page.text
    refused = web.get(FORM)
    assert refused.status_code == 403
    assert 'class="refusal" role="alert"' in refused.text
    assert 'action="/cases/new"' not in refused.text


def test_the_form_has_one_control_per_field_with_the_workflows_limits(web: WebClient) -> None:
    web.login("lin")
    page = web.get(FORM)
    text = page.text
    assert page.status_code == 200
    assert '<input type="hidden" name="workflow" value="poverty_archive">' in text
    # choice → select; the scope field offers only the clerk's county
    county = re.search(r'<select name="county".*?</select>', text, re.S)
    assert county is not None and "芗城区" in county.group(0) and "龙文区" not in county.group(0)
    assert re.search(r'<select name="household_type"', text)
    # checklist → one checkbox per item
    assert len(re.findall(r'<input type="checkbox" name="materials" value="[^"]+"', text)) == 4
    # numbers typed as text, checked in the browser with inputmode, pattern and the bounds
    assert re.search(r'name="household_size"[^>]*inputmode="numeric"[^>]*min="1" max="20"', text)
    assert re.search(r'name="income_per_capita"[^>]*inputmode="decimal"[^>]*pattern="[^"]+"[^>]*max="100000"', text)
    # the ID number: checked as typed (static/app.js) by these ids
    assert re.search(r'<input[^>]*id="field-id_number" data-idnumber', text)
    assert 'id="field-id_number-check" class="field-problem"' in text
    assert re.search(r'name="applicant_name"[^>]*maxlength="40"[^>]*required', text)
    assert "<label" in text and "申请人姓名" in text
    assert re.search(r'<button type="submit">保存</button>', text)


def test_fields_filled_by_a_link_are_not_typed(site: Site) -> None:
    from engine import load_definition_file
    from tests.e2e.web.conftest import ROOT

    wf = load_definition_file(ROOT / "workflows" / "golden_autumn.yaml")
    names = typed_fields(wf)
    assert "archive_ref" in names or any(wf.fields[n].link for n in names)
    for filled in ("applicant_name", "id_number", "county"):
        assert filled not in names
    assert all(w.name not in ("applicant_name", "id_number", "county") for w in widgets(wf))


def test_parse_form_keeps_posted_text_for_the_engine_and_lists_for_checklists(site: Site) -> None:
    from starlette.datastructures import FormData

    wf = site.svc.workflow("poverty_archive")
    form = FormData([("household_size", "3"), ("materials", "申请表"), ("materials", "身份证"), ("cause", "  ")])
    assert parse_form(wf, form) == {"household_size": "3", "materials": ["申请表", "身份证"], "cause": None}
    # named explicitly (an edit form): an unticked checklist is "none ticked"
    assert parse_form(wf, FormData([]), ["materials", "phone"]) == {"materials": []}


# ---------------------------------------------------------------------------------- creating


def test_a_case_created_through_the_form_holds_the_typed_values(web: WebClient, site: Site) -> None:
    web.login("lin")
    web.get(FORM)
    response = web.post("/cases/new", posted(income_per_capita="650.50", materials=["申请表", "户口簿"]))
    assert response.status_code == 303
    ref = response.headers["location"].removeprefix("/cases/")
    case = site.svc.get_case(ref)
    assert case.created_by == "lin" and case.scope == "芗城区"
    assert case.data["household_size"] == 3  # an integer, not "3"
    assert case.data["income_per_capita"] == "650.5"  # the engine's canonical decimal
    assert case.data["materials"] == ["申请表", "户口簿"]
    assert case.data["id_number"] == GOOD_ID


def test_a_bad_id_number_shows_the_problem_next_to_the_field_and_creates_nothing(web: WebClient, site: Site) -> None:
    web.login("lin")
    web.get(FORM)
    response = web.post("/cases/new", posted(id_number=BAD_ID, cause="因病致困"))
    assert response.status_code == 422
    assert cases(site) == []
    said = problem(response.text, "id_number")
    assert "公民身份号码" in said or "身份证" in said
    assert 'class="refusal" role="alert"' in response.text
    # what was typed is kept
    assert f'value="{BAD_ID}"' in response.text
    assert re.search(r'value="申请表" checked', response.text)
    assert problem(response.text, "applicant_name") == ""
    # fixed, it is created
    fixed = web.post("/cases/new", posted(id_number=GOOD_ID))
    assert fixed.status_code == 303
    assert len(cases(site)) == 1


def test_a_decimal_out_of_range_is_refused_by_field(web: WebClient, site: Site) -> None:
    web.login("lin")
    web.get(FORM)
    response = web.post("/cases/new", posted(income_per_capita="100000.01"))
    assert response.status_code == 422
    assert "家庭月人均收入" in problem(response.text, "income_per_capita")
    assert 'value="100000.01"' in response.text
    assert cases(site) == []


def test_a_choice_not_offered_is_refused_by_field(web: WebClient, site: Site) -> None:
    web.login("lin")
    web.get(FORM)
    response = web.post("/cases/new", posted(household_type="富裕户", household_size="3.5"))
    assert response.status_code == 422
    assert problem(response.text, "household_type") != ""
    assert problem(response.text, "household_size") != ""
    assert cases(site) == []


def test_a_clerk_of_longwen_cannot_open_a_xiangcheng_case(web: WebClient, site: Site) -> None:
    web.login("chen")
    web.get(FORM)
    response = web.post("/cases/new", posted(county="芗城区"))
    assert response.status_code == 403
    assert 'class="refusal" role="alert"' in response.text
    assert "范围" in response.text
    assert cases(site) == []


def test_a_duplicate_id_number_is_refused_and_nothing_created(web: WebClient, site: Site) -> None:
    site.open_case("lin")
    web.login("lin")
    web.get(FORM)
    response = web.post("/cases/new", posted())
    assert response.status_code == 409
    assert 'class="refusal" role="alert"' in response.text
    assert len(cases(site)) == 1


def test_a_form_without_its_token_is_refused_and_creates_nothing(web: WebClient, site: Site) -> None:
    web.login("lin")
    web.get(FORM)
    response = web.post("/cases/new", posted(), token="")
    assert response.status_code == 403
    assert cases(site) == []


# ---------------------------------------------------------------------------------- import

HEADER = "申请人姓名,公民身份号码,困难类型,所属县区,家庭人口,家庭月人均收入（元）,申报材料\n"
#: valid 芗城区 ID numbers (check digits worked out below)


def id_number(serial: int) -> str:
    body = f"35060219850101{serial:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    return body + check


def csv_text(rows: list[str]) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode("utf-8")


def upload(web: WebClient, content: bytes, *, skip_invalid: bool = False, name: str = "cases.csv") -> Any:
    web.get("/cases/import")
    data = {"csrf_token": web.form_token(), "workflow": "poverty_archive"}
    if skip_invalid:
        data["skip_invalid"] = "1"
    response = web.http.post("/cases/import", data=data, files={"file": (name, content, "text/csv")})
    web.last_text = response.text
    return response


def test_the_import_form_names_the_columns(web: WebClient) -> None:
    web.login("lin")
    page = web.get("/cases/import")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert 'name="skip_invalid"' in page.text and 'type="file" name="file"' in page.text
    assert "<code>id_number</code>" in page.text and "公民身份号码" in page.text


def test_a_good_csv_imports_every_row(web: WebClient, site: Site) -> None:
    web.login("lin")
    rows = [f"王{n},{id_number(n)},低保户,芗城区,{n},600.{n:02d},申请表、身份证" for n in range(1, 4)]
    response = upload(web, csv_text(rows))
    assert response.status_code == 200, response.text
    imported = cases(site)
    assert len(imported) == 3
    for case in imported:
        assert f'<tr data-ref="{case.ref}">' in response.text
    assert imported[0].data["materials"] == ["申请表", "身份证"]


def test_a_bad_csv_lists_its_rows_and_imports_nothing(web: WebClient, site: Site) -> None:
    web.login("lin")
    rows = [
        f"王一,{id_number(1)},低保户,芗城区,3,600,申请表",
        f"王二,{id_number(2)[:-1]}0,低保户,芗城区,3,600,申请表",  # a wrong check digit (or not: see below)
        f"王三,{id_number(3)},低保户,芗城区,30,600,申请表",  # 家庭人口 above 20
    ]
    if id_number(2).endswith("0"):
        rows[1] = f"王二,{id_number(2)[:-1]}1,低保户,芗城区,3,600,申请表"
    response = upload(web, csv_text(rows))
    assert response.status_code == 422
    assert cases(site) == []
    assert 'class="refusal" role="alert"' in response.text
    assert '<tr data-line="3">' in response.text and '<tr data-line="4">' in response.text
    assert '<tr data-line="2">' not in response.text
    assert "家庭人口" in response.text  # the field's label, not only its name
    # with skip_invalid the good row is imported and the others reported
    skipped = upload(web, csv_text(rows), skip_invalid=True)
    assert skipped.status_code == 200
    assert len(cases(site)) == 1
    assert '<tr data-line="3">' in skipped.text and "跳过" in skipped.text


def test_a_file_above_the_upload_limit_is_refused(site: Site) -> None:
    from casework.web import create_app

    small = WebClient(create_app(site.svc, WebSettings(max_upload_bytes=2_000)))
    with small.http:
        small.login("lin")
        rows = [f"王{n},{id_number(n)},低保户,芗城区,3,600,申请表" for n in range(1, 60)]
        response = upload(small, csv_text(rows))
    assert response.status_code in (400, 413)
    assert cases(site) == []


def test_an_unknown_column_is_refused_in_the_page(web: WebClient, site: Site) -> None:
    web.login("lin")
    response = upload(web, "姓名,身份证\n王一,1\n".encode())
    assert response.status_code == 422
    assert 'class="refusal" role="alert"' in response.text
    assert "casework-import-" not in response.text  # the temporary folder is not shown
    assert cases(site) == []
