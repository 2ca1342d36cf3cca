"""What a case offers its reader (``editable``, ``clock``) is exactly what the engine then allows.

The web page and the API show the fields a user may edit and the clock button
they may press from the case view; these tests hold the view to the engine's
own refusals, user by user, in the states of the bundled workflow.
"""

from __future__ import annotations

import pytest

from engine import Casework, RefusedError
from engine.access import Actor, check_edit
from engine.idnumber import check_digit
from tests.casedata import case_data

DATA = case_data()
USERS = ("lin", "chen", "wu", "ye", "su", "xu")


@pytest.fixture
def cases(svc: Casework) -> dict[str, str]:
    """A 芗城区 case in apply, in review, paused in review, and rejected (final)."""
    found = {}
    for n, name in enumerate(("apply", "review", "paused", "rejected")):
        first17 = f"3506021985010120{n}"
        ref = svc.create_case("poverty_archive", "lin", {**DATA, "id_number": first17 + check_digit(first17)}).ref
        found[name] = ref
    return found


def _move(svc: Casework, cases: dict[str, str]) -> None:
    svc.fire(cases["review"], "submit", "lin")
    svc.fire(cases["paused"], "submit", "lin")
    svc.pause(cases["paused"], "wu", "户口簿复印件不清")
    svc.fire(cases["rejected"], "submit", "lin")
    svc.fire(cases["rejected"], "reject", "wu", comment="收入超过标准")


def test_the_clock_button_shown_is_the_one_the_engine_allows(svc: Casework, cases: dict[str, str]) -> None:
    _move(svc, cases)
    for ref in cases.values():
        for user in USERS:
            try:
                offered = svc.get_case(ref, user).clock
            except RefusedError:
                continue  # a case they may not see offers them nothing
            for doing in ("pause", "resume"):
                version = svc.get_case(ref).version
                try:
                    if doing == "pause":
                        svc.pause(ref, user, "补正")
                    else:
                        svc.resume(ref, user)
                except RefusedError:
                    assert offered != doing, f"{user} was offered {doing} on {ref} but the engine refused it"
                    assert svc.get_case(ref).version == version
                else:
                    assert offered == doing, f"{user} may {doing} {ref} but was offered {offered}"
                    # put the clock back as it was
                    svc.resume(ref, user) if doing == "pause" else svc.pause(ref, user, "补正")


def test_the_fields_offered_for_editing_are_the_ones_the_engine_lets_change(
    svc: Casework, cases: dict[str, str]
) -> None:
    _move(svc, cases)
    wf = svc.workflow("poverty_archive")
    for ref in cases.values():
        for user in USERS:
            try:
                view = svc.get_case(ref, user)
            except RefusedError:
                continue
            actor = svc.user(user)
            who = Actor(actor.username, actor.roles, actor.scopes)
            allowed = set()
            for name in wf.fields:
                try:
                    check_edit(wf, ref, view.state, who, [name])
                except RefusedError:
                    continue
                allowed.add(name)
            if wf.states[view.state].final:
                allowed = set()
            assert set(view.editable or ()) == allowed, (user, ref, view.state)
    assert svc.get_case(cases["apply"], "lin").editable == tuple(wf.fields)
    assert svc.get_case(cases["review"], "wu").editable == ()
