"""``link:`` fields and multi-field limit keys, without a database: the load checks, the fill, the hashes."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from engine import load_definition
from engine.errors import Code, DefinitionError, InvalidCaseData, TransitionRefused
from engine.links import fill_links, in_hand
from engine.quotas import hash_key

NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=8)))

ARCHIVE = """
workflow: poverty_archive
version: 1
title: 困难职工建档立卡
roles: {clerk: 经办人}
fields:
  applicant_name: {type: text, pii: name}
  county: {type: choice, choices: [芗城区, 龙文区], scope: true}
  household_size: {type: integer}
states:
  apply: {initial: true}
  filed: {label: 已建档}
  exited: {label: 解困脱困, final: true}
transitions:
  file: {from: apply, to: filed, by: clerk}
  exit: {from: filed, to: exited, by: clerk}
"""


def programme(link: str, extra: str = "", limit_key: str = "archive_ref") -> str:
    return f"""
workflow: aid
version: 1
title: 助学
roles: {{clerk: 经办人}}
fields:
  archive_ref: {{type: text, link: {link}}}
  applicant_name: {{type: text, pii: name}}
  county: {{type: choice, choices: [芗城区, 龙文区], scope: true}}
  household_size: {{type: integer}}
  level: {{type: choice, choices: [本科, 专科]}}
{extra}
states:
  apply: {{initial: true}}
  done: {{final: true}}
transitions:
  finish: {{from: apply, to: done, by: clerk, require: [archive_ref]}}
limits:
  - {{name: once, key: {limit_key}, period: all, states: [done], at: finish, max: 1}}
"""


GOOD = "{workflow: poverty_archive, states: [filed], fill: [applicant_name, county, household_size]}"


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_definition(text)
    return [p.message for p in info.value.problems]


def test_a_link_loads_with_its_fill_and_describes_itself() -> None:
    wf = load_definition(programme(GOOD))
    assert wf.linked_fields == ("archive_ref",)
    assert dict(wf.filled_by) == {
        "applicant_name": "archive_ref",
        "county": "archive_ref",
        "household_size": "archive_ref",
    }
    assert wf.describe()["fields"]["archive_ref"]["link"] == {
        "workflow": "poverty_archive",
        "states": ["filed"],
        "fill": ["applicant_name", "county", "household_size"],
    }
    assert load_definition(ARCHIVE).linked_fields == ()  # no links: nothing to do, nothing to pay


@pytest.mark.parametrize(
    ("link", "extra", "expected"),
    [
        ("{workflow: poverty_archive, states: [filed], fill: [nope]}", "", "unknown field 'nope'"),
        ("{workflow: poverty_archive, states: [filed], fill: [archive_ref]}", "", "is the link itself"),
        (
            "{workflow: poverty_archive, states: [filed], fill: [amount]}",
            "  amount: {type: integer, compute: {expr: '1', at: finish}}",
            "'amount' is computed",
        ),
        ("{workflow: Poverty, states: [filed]}", "", "is not a valid name"),
        ("{workflow: aid, states: [nowhere]}", "", "unknown state 'nowhere'"),
    ],
)
def test_a_wrong_link_is_located(link: str, extra: str, expected: str) -> None:
    assert any(expected in p for p in problems(programme(link, extra))), problems(programme(link, extra))


def test_a_link_on_a_number_and_a_field_filled_twice_are_refused() -> None:
    text = programme(GOOD).replace("archive_ref: {type: text,", "archive_ref: {type: integer,")
    assert any("a link holds a case reference" in p for p in problems(text))
    twice = programme(
        GOOD, "  other_ref: {type: text, link: {workflow: poverty_archive, states: [filed], fill: [county]}}"
    )
    assert any("'county' is already filled by the link 'archive_ref'" in p for p in problems(twice))


def test_fill_copies_from_the_linked_case_and_refuses_a_typed_filled_field() -> None:
    wf = load_definition(programme(GOOD))
    source = load_definition(ARCHIVE)
    read = in_hand(source, "filed", [("ZZ-1", {"applicant_name": "林", "county": "龙文区", "household_size": 3})])
    values = fill_links(wf, {}, {"archive_ref": "ZZ-1"}, {"archive_ref": "ZZ-1"}, NOW, read, None)
    assert values == {"archive_ref": "ZZ-1", "applicant_name": "林", "county": "龙文区", "household_size": 3}
    with pytest.raises(InvalidCaseData) as info:
        fill_links(
            wf,
            {},
            {"archive_ref": "ZZ-1", "county": "芗城区"},
            {"archive_ref": "ZZ-1", "county": "芗城区"},
            NOW,
            read,
            None,
        )
    assert "county: is filled from the poverty_archive case in archive_ref" in str(info.value)
    with pytest.raises(TransitionRefused) as missing:
        fill_links(wf, {}, {"archive_ref": "ZZ-2"}, {"archive_ref": "ZZ-2"}, NOW, read, None)
    assert missing.value.code == Code.LINKED_CASE_NOT_FOUND
    assert missing.value.message == "archive_ref: no poverty_archive case ZZ-2; check the reference (archive_ref)"
    exited = in_hand(source, "exited", [("ZZ-3", {"county": "芗城区"})])
    with pytest.raises(TransitionRefused) as gone:
        fill_links(wf, {}, {"archive_ref": "ZZ-3"}, {"archive_ref": "ZZ-3"}, NOW, exited, None)
    assert gone.value.code == Code.LINKED_CASE_STATE
    assert (
        gone.value.message
        == "archive_ref: ZZ-3 is 解困脱困 (exited); 助学 is only for 困难职工建档立卡 cases in 已建档 (filed)"
    )
    assert gone.value.facts["allowed"] == ["filed"] and gone.value.facts["linked_state"] == "exited"
    # unchanged link: not read again (no reader needed)
    assert fill_links(wf, {"archive_ref": "ZZ-3"}, {"archive_ref": "ZZ-3"}, {}, NOW, None, None) == {
        "archive_ref": "ZZ-3"
    }


def test_a_limit_key_of_several_fields_hashes_unambiguously_and_one_field_as_before() -> None:
    assert hash_key(("350602198001011230",)) == hashlib.sha256(b"350602198001011230").hexdigest()
    assert hash_key("350602198001011230") == hash_key(("350602198001011230",))
    assert hash_key(("a|b", "c")) != hash_key(("a", "b|c"))
    assert hash_key(("1", "本科")) == hash_key((1, "本科"))
    wf = load_definition(programme(GOOD, limit_key="[archive_ref, level]"))
    assert wf.limits[0].key == ("archive_ref", "level")
    assert any("unknown field 'levels'" in p for p in problems(programme(GOOD, limit_key="[archive_ref, levels]")))
