"""Publicity on real databases: objections, per-case and list notices, PDF, masking."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from typing import Any

import pytest
from pypdf import PdfReader

from casework.synthetic import SyntheticPeople
from engine import (
    Casework,
    CommentRequired,
    DefinitionError,
    GuardFailed,
    InvalidCaseData,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RefusedError,
    TemplateRenderError,
    load_definition,
)
from notifications.notices import notice_pdf, publish_list, render_with
from tests.conftest import BUNDLED

WF = "poverty_archive"
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
ID_PATTERN = re.compile(r"\d{17}[\dX]")


def publicised(svc: Casework, seed: int, county: str = "芗城区", **over: Any) -> tuple[str, dict[str, Any]]:
    data = SyntheticPeople(seed).household()
    data.update(county=county, materials=list(ALL_MATERIALS), **over)
    clerk = {"芗城区": "lin", "龙文区": "chen"}[county]
    ref = svc.create_case(WF, clerk, data).ref
    svc.fire(ref, "submit", clerk)
    svc.fire(ref, "pass_review", "wu")
    return ref, data


def on_list(svc: Casework, seed: int, county: str = "芗城区", **over: Any) -> tuple[str, dict[str, Any]]:
    """A case on its county's published list: its publicity period has begun."""
    ref, data = publicised(svc, seed, county, **over)
    publish_list(svc, WF, county)
    return ref, data


def stored(svc: Casework, ref: str) -> dict[str, Any]:
    return {
        "case": svc.get_case(ref).to_json(),
        "history": [r.to_json() for r in svc.history(ref)],
        "objections": [o.to_json() for o in svc.objections(ref)],
    }


def test_an_open_objection_holds_the_end_of_publicity(svc: Casework, clock: Any) -> None:
    ref, _ = on_list(svc, 1)
    objection = svc.add_objection(ref, "lin", "群众来电反映其家庭有经营性收入", "电话")
    assert objection.status == "open"
    clock.advance(days=8)  # the period is over: only the objection holds the end now
    before = stored(svc, ref)
    with pytest.raises(GuardFailed, match="end_publicity is held: 公示期内有未处理的异议"):
        svc.fire(ref, "end_publicity", "wu")
    assert stored(svc, ref) == before
    possible = {a.trigger for a in svc.get_case(ref, "wu").actions or ()}
    assert {"uphold_objection", "withdraw"} <= possible and "end_publicity" not in possible
    svc.resolve_objection(ref, objection.id, "wu", "dismissed", "经核实无经营性收入")
    assert svc.fire(ref, "end_publicity", "wu").state == "approve"
    actions = [h.action for h in svc.history(ref)]
    assert "objection_added" in actions and "objection_dismissed" in actions


def test_an_upheld_objection_sends_the_case_back_to_review(svc: Casework) -> None:
    ref, _ = publicised(svc, 2)
    objection = svc.add_objection(ref, "wu", "来信反映子女有稳定工作", "来信")
    resolved = svc.resolve_objection(ref, objection.id, "wu", "upheld", "情况属实")
    assert resolved.status == "upheld" and resolved.resolved_by == "wu"
    assert svc.get_case(ref).state == "review"
    last = svc.history(ref)[-1]
    assert (last.trigger, last.from_state, last.to_state) == ("uphold_objection", "publicise", "review")
    assert "异议 #" in (last.comment or "") and "情况属实" in (last.comment or "")
    assert svc.verify_audit(ref).ok


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda s, r, o: s.add_objection(r, "lin", "   ", "电话"), RefusedError, "an objection needs its text"),
        (lambda s, r, o: s.add_objection(r, "lin", "x", "微信"), InvalidCaseData, "channel: '微信' is not one of"),
        (lambda s, r, o: s.add_objection(r, "chen", "x", "电话"), PermissionDenied, "chen covers 龙文区"),
        (lambda s, r, o: s.resolve_objection(r, o, "lin", "dismissed", "x"), PermissionDenied, "needs role reviewer"),
        (lambda s, r, o: s.resolve_objection(r, o, "wu", "dismissed", ""), CommentRequired, "needs a comment"),
        (lambda s, r, o: s.resolve_objection(r, o + 99, "wu", "dismissed", "x"), NotFound, "has no objection"),
    ],
)
def test_objection_refusals_change_nothing(svc: Casework, call: Any, error: type, words: str) -> None:
    ref, _ = publicised(svc, 3)
    objection = svc.add_objection(ref, "lin", "来电反映", "电话")
    before = stored(svc, ref)
    with pytest.raises(error, match=re.escape(words)):
        call(svc, ref, objection.id)
    assert stored(svc, ref) == before


def test_objections_only_during_publicity_and_only_once_resolved(svc: Casework) -> None:
    data = SyntheticPeople(4).household()
    data.update(county="芗城区")
    ref = svc.create_case(WF, "lin", data).ref
    with pytest.raises(InvalidTransition, match="objections are taken only during publicity"):
        svc.add_objection(ref, "lin", "x", "电话")
    ref, _ = publicised(svc, 5)
    objection = svc.add_objection(ref, "lin", "x", "电话")
    svc.resolve_objection(ref, objection.id, "wu", "dismissed", "不成立")
    svc.add_objection(ref, "lin", "y", "来访")  # a second one, still during publicity
    with pytest.raises(RefusedError, match="already dismissed"):
        svc.resolve_objection(ref, objection.id, "wu", "upheld", "改判")


def test_list_notice_numbers_every_case_in_publicity_and_is_idempotent(svc: Casework, clock: Any) -> None:
    refs = [publicised(svc, 10 + i)[0] for i in range(5)]
    other, _ = publicised(svc, 20, county="龙文区")
    still_in_review = svc.create_case(WF, "lin", {**SyntheticPeople(30).household(), "county": "芗城区"}).ref
    view = publish_list(svc, WF, "芗城区", dt.date(2026, 12, 1))
    assert view is not None
    assert view.cases == tuple(refs)
    assert (view.period_start, view.period_end) == (dt.date(2026, 12, 1), dt.date(2026, 12, 8))
    assert "漳州市总工会" in view.html and "0596-2023333" in view.html
    for i, ref in enumerate(refs, 1):
        assert f"<td>{i}</td><td>{ref}</td>" in view.html
    assert other not in view.html and still_in_review not in view.html
    assert publish_list(svc, WF, "芗城区", dt.date(2026, 12, 1)) is None  # nothing new: no-op
    assert len([n for n in svc.notices() if n.kind == "list"]) == 1
    for ref in refs:
        assert [h.changes["notice"][1] for h in svc.history(ref) if h.action == "publicised"] == [view.number]
    # back from review after an upheld objection: listed again on the next list
    objection = svc.add_objection(refs[0], "lin", "异议", "电话")
    svc.resolve_objection(refs[0], objection.id, "wu", "upheld", "属实")
    clock.advance(hours=1)
    svc.fire(refs[0], "pass_review", "wu")
    again = publish_list(svc, WF, "芗城区")
    assert again is not None and again.cases == (refs[0],)
    assert svc.verify_audit().ok


def test_list_notice_pdf_has_the_masked_names_and_no_raw_data(svc: Casework) -> None:
    people = [publicised(svc, 40 + i) for i in range(12)]
    people.append(publicised(svc, 99, applicant_name="欧阳志华")[0:2])
    view = publish_list(svc, WF, "芗城区")
    assert view is not None
    started = time.perf_counter()
    pdf = notice_pdf(view)
    assert time.perf_counter() - started < 10
    assert pdf.startswith(b"%PDF")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "困难职工建档立卡公示名单" in text
    assert "欧阳*华" in text
    for ref, data in people:
        assert ref in text
        assert data["applicant_name"] not in text
        masked_id = data["id_number"][:6] + "********" + data["id_number"][-4:]
        assert masked_id in text
    assert not ID_PATTERN.search(text)


def test_id_numbers_can_be_omitted_by_policy(svc: Casework) -> None:
    source = BUNDLED.read_text(encoding="utf-8")
    source = source.replace("version: 4", "version: 5").replace("id_number: partial", "id_number: omit")
    templates = dict(svc.workflow(WF).templates.sources)
    svc.load_workflow(load_definition(source, "omit.yaml", templates))
    ref, data = publicised(svc, 50)
    view = publish_list(svc, WF, "芗城区")
    assert view is not None and view.cases == (ref,)
    assert data["id_number"][:6] not in view.html.split("<tbody>")[1]
    assert data["id_number"][-4:] not in view.html.split("<tbody>")[1]


MALICIOUS = [
    ("{{ ''.__class__.__mro__ }}", "attribute '__class__' is not allowed"),
    ("{{ case.applicant_name|attr('__class__') }}", "filter 'attr' is not allowed"),
    ("{{ '{0.__class__}'.format(1) }}", "calls are not allowed"),
    ("{{ 'x' * 10**9 }}", "'**' is not allowed"),
    ("{% include 'other.html' %}", "include/import/extends are not allowed"),
    ("{{ config }}", "unknown variable 'config'"),
    ("{{ case.applicant_name|safe }}", "filter 'safe' is not allowed"),
    ("{{ case.salary }}", "case.salary is not a field"),
]


@pytest.mark.parametrize(("body", "message"), MALICIOUS)
def test_malicious_templates_are_refused_at_load(body: str, message: str) -> None:
    source = BUNDLED.read_text(encoding="utf-8")
    templates = {
        "review_waiting.subject": "待审核 {{ case.ref }}",
        "review_waiting.txt": "第一行\n" + body + "\n",
    }
    started = time.perf_counter()
    with pytest.raises(DefinitionError) as info:
        load_definition(source, "evil.yaml", templates, "templates/evil")
    assert time.perf_counter() - started < 1.0
    problems = [p for p in info.value.problems if p.file == "templates/evil/review_waiting.txt"]
    assert problems, info.value.problems
    assert problems[0].line == 2 and message in problems[0].message


def test_a_huge_string_fails_safely_at_render() -> None:
    source = BUNDLED.read_text(encoding="utf-8")
    templates = dict(load_definition_file_templates())
    templates["review_waiting.txt"] = "{{ case.cause * 100000 }}"
    wf = load_definition(source, "t.yaml", templates)
    started = time.perf_counter()
    with pytest.raises(TemplateRenderError, match="would build a text of more than 10000 characters"):
        wf.templates.render("review_waiting", "text", {"case": {"cause": "x" * 50}, "recipient": {}, "event": {}})
    assert time.perf_counter() - started < 1.0


def load_definition_file_templates() -> dict[str, str]:
    from engine import load_definition_file

    return dict(load_definition_file(BUNDLED).templates.sources)


def test_render_with_takes_the_title_from_the_page() -> None:
    from engine import load_definition_file

    wf = load_definition_file(BUNDLED)
    context = {
        "workflow": {"name": WF, "title": wf.title},
        "notice": {"number": "ZZGS-2026-000009", "date": "2026-12-01", "period_start": "2026-12-01",
                   "period_end": "2026-12-08", "period_days": 7, "period_length": "7 天"},
        "publicity": {"issuer": "漳州市总工会", "contact": "电话"},
        "cases": [], "scope": "芗城区",
    }  # fmt: skip
    title, page = render_with(wf, "public_list")(context)
    assert title == "芗城区困难职工建档立卡公示名单（ZZGS-2026-000009）"
    assert page.startswith("<!DOCTYPE html>")
