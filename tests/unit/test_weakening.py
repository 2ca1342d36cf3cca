"""Weakened controls between two versions of a workflow, and personal data masked whatever the file says."""

from __future__ import annotations

import pytest

from engine.definition import load_definition
from engine.definition.model import WorkflowDef
from engine.definition.weakening import Weakening, unaccepted, weakened_controls
from engine.masking import implied_pii, public_view

BASE = """\
workflow: grants
version: {version}
title: Grants
roles:
  clerk: Clerk
  boss: Boss
fields:
  applicant: {{type: text, label: 申请人姓名, pii: name}}
  id_number: {{type: cn_id, label: 身份证号, pii: id_number}}
  phone: {{type: text, label: 联系电话, pii: phone}}
  address: {{type: text, label: 住址, pii: address}}
  size: {{type: integer, required: true}}  # the guards read it: filled in before they run (the type check)
states:
  draft: {{initial: true}}
  review: {{}}
  done: {{final: true}}
transitions:
  submit: {{from: draft, to: review, by: clerk}}
  grant: {{from: review, to: done, by: boss, not_by: submit, comment: required, when: "case.size > 0"}}
  hold: {{from: review, to: review, by: boss, unless: "case.size > 9"}}
privacy:
  id_number: {policy}
"""


def version(n: int = 1, policy: str = "omit", **replace: str) -> WorkflowDef:
    text = BASE.format(version=n, policy=policy)
    for old, new in replace.items():
        old_text = old.replace("__", " ")
        assert old_text in text, old_text
        text = text.replace(old_text, new)
    return load_definition(text, "grants.yaml")


def tokens(old: WorkflowDef, new: WorkflowDef) -> list[str]:
    return [w.token for w in weakened_controls(old, new)]


def test_the_same_workflow_weakens_nothing() -> None:
    assert weakened_controls(version(1), version(2)) == []


def test_each_kind_of_weakened_control_is_named() -> None:
    old = version(1)
    new = load_definition(
        BASE.format(version=2, policy="partial")
        .replace(', not_by: submit, comment: required, when: "case.size > 0"', "")
        .replace(', unless: "case.size > 9"', "")
        .replace(", pii: phone", "")
        .replace(", pii: address", ", pii: name"),
        "grants.yaml",
    )
    assert weakened_controls(old, new) == [
        Weakening("comment:grant", "grant needed a comment; now it does not"),
        Weakening("not_by:grant", "whoever fired submit could not take grant; now anyone may"),
        Weakening("pii:address", "address was masked as pii: address; now pii: name"),
        Weakening("privacy:id_number", "ID numbers were omitted from public output; now partial"),
        Weakening("unless:hold", "hold was held while 'case.size > 9'; now it is not"),
        Weakening("when:grant", "grant needed 'case.size > 0'; now it has no condition"),
    ]


def test_a_changed_not_by_is_weakened_and_a_wider_one_is_not() -> None:
    changed = version(2, **{"not_by: submit": "not_by: hold"})
    assert tokens(version(1), changed) == ["not_by:grant"]
    assert str(weakened_controls(version(1), changed)[0]) == (
        "not_by:grant (whoever fired submit could not take grant; now not_by hold)"
    )
    wider = version(2, **{"not_by: submit": "not_by: [submit, hold]"})
    assert tokens(version(1), wider) == []


def test_dropping_pii_from_a_field_whose_label_says_what_it_is_weakens_nothing() -> None:
    # 申请人姓名 is masked as a name, 联系电话 as a phone, a cn_id as an ID number, whatever the file says
    new = version(2, **{", pii: name": "", ", pii: phone": "", ", pii: id_number": ""})
    assert tokens(version(1), new) == []
    assert {f: new.fields[f].pii for f in ("applicant", "phone", "id_number")} == {
        "applicant": "name",
        "phone": "phone",
        "id_number": "id_number",
    }


def test_dropping_pii_from_a_field_of_another_kind_is_weakened() -> None:
    assert tokens(version(1), version(2, **{", pii: address": ""})) == ["pii:address"]


def test_stricter_versions_and_removed_steps_or_fields_weaken_nothing() -> None:
    stricter = version(1, policy="partial")
    assert tokens(stricter, version(2, policy="omit")) == []
    no_address = version(2, **{"  address: {type: text, label: 住址, pii: address}\n": ""})
    assert tokens(version(1), no_address) == []


def test_unaccepted_names_what_is_missing_and_what_matches_nothing() -> None:
    weakened = [Weakening("not_by:grant", ""), Weakening("pii:phone", "")]
    assert unaccepted(weakened, ["not_by:grant", " pii:phone "]) == ([], [])
    assert unaccepted(weakened, ["not_by:grant", "pii:fone"]) == ([weakened[1]], ["pii:fone"])
    assert unaccepted([], ["comment:x"]) == ([], ["comment:x"])


# --- personal data is masked whatever the file says -----------------------------------------------------------

FULL_ID = "350602199001011234"

BARE = """\
workflow: bare
version: 1
title: Bare
roles:
  clerk: Clerk
fields:
  id_number: {type: cn_id, label: 公民身份号码}
  applicant_name: {type: text, label: 姓名}
  contact: {type: text, label: 联系电话}
  mobile: {type: text}
  cause: {type: text, label: 致困原因}
states:
  draft: {initial: true}
  done: {final: true}
transitions:
  finish: {from: draft, to: done, by: clerk}
notify:
  - {on: enter done, to: clerk, template: shown}
"""
TEXT_PARTS = {"shown.subject": "x", "shown.txt": "x"}


def test_a_cn_id_field_without_pii_is_an_id_number_and_names_and_phones_are_recognised() -> None:
    wf = load_definition(
        BARE, "bare.yaml", {**TEXT_PARTS, "shown.html": "<p>{{ case.id_number }} {{ case.cause }}</p>"}
    )
    assert wf.pii_fields == {"id_number": "id_number", "applicant_name": "name", "contact": "phone", "mobile": "phone"}
    assert wf.describe()["fields"]["id_number"]["pii"] == "id_number"


def test_the_full_id_number_never_appears_in_a_notice_rendered_from_a_workflow_without_pii() -> None:
    wf = load_definition(
        BARE,
        "bare.yaml",
        {
            **TEXT_PARTS,
            "shown.html": "<p>{{ case.id_number }} {{ case.applicant_name }} {{ case.contact }} {{ case.cause }}</p>",
        },
    )
    data = {"id_number": FULL_ID, "applicant_name": "陈志强", "contact": "13812345678", "cause": "病"}
    page = wf.templates.render("shown", "html", {"case": public_view(wf.fields, data, id_policy=wf.id_policy)})
    assert page == "<p>350602********1234 陈*强 138****5678 病</p>"
    assert FULL_ID not in page


@pytest.mark.parametrize(
    ("name", "type_", "label", "declared", "kind"),
    [
        ("idno", "cn_id", None, None, "id_number"),
        ("idno", "cn_id", None, "other", "other"),
        ("x", "text", "户主姓名", None, "name"),
        ("x", "text", "联系人", None, "name"),
        ("name", "text", None, None, "name"),
        ("spouse_name", "text", None, None, "name"),
        ("x", "text", "手机号码", None, "phone"),
        ("home_phone", "text", None, None, "phone"),
        ("tel", "text", None, None, "phone"),
        ("x", "text", "单位", None, None),
        ("names_count", "integer", None, None, None),
        ("hotel", "text", "宾馆", None, None),
        ("x", "choice", "姓名", None, None),
    ],
)
def test_implied_pii(name: str, type_: str, label: str | None, declared: str | None, kind: str | None) -> None:
    assert implied_pii(name, type_, label, declared) == kind
