"""A workflow's ``campaign:``: what the loader accepts and refuses (no database)."""

from __future__ import annotations

import pytest

from engine import load_definition, load_definition_file
from engine.errors import DefinitionError
from tests.conftest import ROOT

BASE = """
workflow: warmth
version: 1
title: 春节送温暖
roles: {{clerk: 经办人, organiser: 负责人}}
fields:
  archive_ref: {{type: text}}
  year: {{type: integer}}
  note: {{type: text}}
states:
  visit: {{initial: true}}
  done: {{final: true}}
transitions:
  finish: {{from: visit, to: done, by: clerk}}
campaign: {campaign}
"""

GOOD = (
    "{label: 春节送温暖, from: poverty_archive, state: filed, link_field: archive_ref, year_field: year, "
    "set_by: organiser}"
)


def problems(campaign: str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        load_definition(BASE.format(campaign=campaign))
    return [p.message for p in info.value.problems]


def test_the_bundled_warmth_declares_its_campaign() -> None:
    wf = load_definition_file(ROOT / "workflows" / "warmth.yaml")
    c = wf.campaign
    assert c is not None
    assert (c.label, c.source, c.state, c.link_field, c.year_field, c.set_by) == (
        "春节送温暖",
        "poverty_archive",
        "filed",
        "archive_ref",
        "year",
        "organiser",
    )
    assert wf.describe()["campaign"]["from"] == "poverty_archive"
    assert load_definition(BASE.format(campaign=GOOD)).campaign is not None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("link_field: archive_ref", "link_field: archive"), "unknown field 'archive'"),
        (("link_field: archive_ref", "link_field: year"), "field 'year' is integer; it holds a case reference"),
        (("year_field: year", "year_field: note"), "field 'note' is text; a year is an integer field"),
        (("set_by: organiser", "set_by: organizer"), "unknown role 'organizer'"),
        (("set_by: organiser", "set_by: system"), "'system' (the scheduler) runs the campaign"),
        (("from: poverty_archive", "from: warmth"), "unknown state 'filed'"),
        (("label: 春节送温暖, ", ""), "missing required key 'label'"),
    ],
)
def test_a_wrong_campaign_is_located(change: tuple[str, str], expected: str) -> None:
    found = problems(GOOD.replace(*change))
    assert any(expected in p for p in found), found
