"""End-to-end: publicity (公示) really happens, for its full period (issue 11, section B), as a user types it.

The command runs on the real clock, so what needs days to pass is in
``tests/integration/test_publicity_period.py`` (the engine's ``FixedClock``);
here: the refusals as the command words them, the ``--date`` in the past, and
the demo, whose filed archives were each on a published notice before they
left publicity.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

from engine import Casework, load_definition_file
from tests.e2e.conftest import BUNDLED, DemoRun, Seeded
from tests.e2e.runner import casework
from tests.e2e.test_cli import WF, full_household, ok, ok_json, refused


def reviewed(svc: Casework) -> str:
    ref = svc.create_case(WF, "lin", full_household()).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    return ref


def trail(svc: Casework, ref: str) -> list[dict[str, object]]:
    return [e.to_json() for e in svc.history(ref)]


def test_end_publicity_right_after_review_is_refused_before_and_after_publication(seeded: Seeded) -> None:
    url, svc = seeded.url, seeded.svc
    ref = reviewed(svc)
    before = trail(svc, ref)
    r = casework(url, "case", "fire", ref, "end_publicity", "--as", "wu")
    refused(r, f"case {ref} has not been on a published notice", "尚未公示，不能公示期满", "casework notice publish")
    assert trail(svc, ref) == before
    published = ok_json(casework(url, "notice", "publish", WF, "--scope", "芗城区", "--json"))
    assert published["cases"] == [ref]
    end = published["period_end"]
    out = ok(casework(url, "notice", "publish", WF, "--scope", "芗城区"))
    assert out.strip() == f"nothing to publish: no {WF} case of 芗城区 awaits publication"
    before = trail(svc, ref)
    for who in ("wu", "ye"):
        r = casework(url, "case", "fire", ref, "end_publicity", "--as", who)
        refused(r, f"公示期至 {end} 止，期满前不能公示期满（end_publicity）", "whoever asks")
    r = casework(url, "case", "fire-many", "end_publicity", ref, "--as", "wu", "--json")
    assert r.rc == 1  # every case refused
    report = json.loads(r.out)
    assert report["fired"] == [] and [x["code"] for x in report["refused"]] == ["publicity_not_over"]
    assert trail(svc, ref) == before
    # an objection is taken while the period runs; the case is still in publicity
    ok(casework(url, "objection", "add", ref, "--as", "lin", "--text", "来电反映有经营性收入"))
    assert svc.get_case(ref).state == "publicise"


def test_a_notice_dated_in_the_past_is_refused_and_nothing_is_published(seeded: Seeded) -> None:
    url, svc = seeded.url, seeded.svc
    ref = reviewed(svc)
    before = trail(svc, ref)
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    for args in (["--date", "2020-01-01"], ["--date", "2020-01-01", "--json"]):
        r = casework(url, "notice", "publish", WF, "--scope", "芗城区", *args)
        refused(r, "a notice cannot be dated in the past: 2020-01-01 is before today", f"--date {today}", rc=2)
    assert ok_json(casework(url, "notice", "list", "--json")) == []
    assert trail(svc, ref) == before
    # a future date is allowed: the period starts then
    later = today + dt.timedelta(days=3)
    published = ok_json(casework(url, "notice", "publish", WF, "--scope", "芗城区", "--date", str(later), "--json"))
    assert published["period_start"] == str(later) and published["cases"] == [ref]


def test_the_demo_publicises_every_archive_before_it_leaves_publicity(demo_run: DemoRun, tmp_path: Path) -> None:
    out = ok(demo_run.result)
    url = f"sqlite:///{demo_run.copy(tmp_path)}"
    assert "NOT refused" not in out and "audit verify: intact" in out
    assert "(publicity_not_over)" in out and "(not_publicised)" in out and "(notice_backdated)" in out
    from db import make_engine

    engine = make_engine(url)
    try:
        svc = Casework(engine)
        svc.load_workflow(load_definition_file(BUNDLED))
        wf = svc.workflow(WF)
        left = 0
        for case in svc.list_cases(workflow=WF):
            events = svc.history(case.ref)
            for i, e in enumerate(events):
                if e.from_state != "publicise" or e.to_state in ("publicise", "review") or wf.states[e.to_state].void:
                    continue
                left += 1
                # the stay in publicity this step ends: entered at the last step into it
                entered = max(j for j in range(i) if events[j].to_state == "publicise" and events[j].trigger)
                published = [x for x in events[entered:i] if x.action == "publicised"]
                assert len(published) == 1, (case.ref, [x.action for x in events])
                _, end = published[0].changes["period"][1]
                assert e.at >= dt.datetime.combine(
                    dt.date.fromisoformat(end) + dt.timedelta(days=1), dt.time(), ZoneInfo(wf.timezone)
                ), (case.ref, end, e.at)
            actions = [x.action for x in events]
            assert "notice_published" not in actions
            if case.state in ("approve", "enter", "filed"):
                assert actions.index("publicised") < [x.trigger for x in events].index("end_publicity")
        assert left >= 20  # most archives were filed or went on to approval
        assert svc.check().ok
    finally:
        engine.dispose()
