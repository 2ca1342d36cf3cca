"""``casework demo``: the main job of ``make run``.

Loads the bundled archive workflow, creates users across several counties,
files a few dozen synthetic archives and drives them through every path —
filed, returned and resubmitted, rejected, withdrawn, an objection upheld —
shows the rules refusing what they must, prints a summary by state and
county, and ends by verifying the audit trail. Re-runnable: each run adds
new archives (the seed follows what is already stored).

Publicity (公示) takes days, so the demo tells a month of work: its clock
starts 30 days back and moves forward through the story (the lists are
published, objections come in, the periods end and the scheduler ends
publicity, the city union approves) until it is the real time again, where
the last archives wait in every state. Nothing is stamped in the future.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from casework.cli.wording import word
from casework.synthetic import SyntheticPeople
from engine import AlreadyExists, Casework, CaseworkError, load_definition_file

if TYPE_CHECKING:
    from engine import NoticeView

__all__ = ["BUNDLED_WORKFLOW", "run_demo"]

BUNDLED_WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
WORKFLOW = "poverty_archive"
COUNTIES = ("芗城区", "龙文区", "漳浦县", "龙海区")
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DEMO_OUTPUT = "demo-output"  # notices (HTML + PDF), relative to the current directory

# username, name, roles, scopes
USERS = [
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("huang", "黄丽娟", ["clerk"], ["漳浦县"]),
    ("zheng", "郑国栋", ["clerk"], ["龙海区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
    ("cai", "蔡雅琴", ["reviewer"], ["漳浦县", "龙海区"]),
    ("ye", "叶志远", ["clerk", "reviewer"], ["芗城区"]),  # holds two roles: four-eyes still applies
    ("su", "苏文斌", ["approver"], ["*"]),
    ("xu", "许慧敏", ["approver", "reviewer"], ["*"]),
]
CLERK = {"芗城区": "lin", "龙文区": "chen", "漳浦县": "huang", "龙海区": "zheng"}
REVIEWER = {"芗城区": "wu", "龙文区": "wu", "漳浦县": "cai", "龙海区": "cai"}

# How the archives travel (repeated over the counties): most are filed.
OPEN_STOPS = ("apply", "review", "approve", "enter")  # "publicised" archives stop in publicity
STORY_DAYS = 30  # the story starts this many days before the real time
# archives that end the story early in their path: they start on its last day
LATE = {("publicised", s) for s in OPEN_STOPS} | {("open", "apply"), ("open", "review")}


class StoryClock:
    """The real time set back by a lag that only shrinks: the story moves forward until it is now.

    Every event is stamped at or before the real time, and in order, however
    often the demo runs.
    """

    def __init__(self, days_back: int) -> None:
        self._lag = dt.timedelta(days=days_back)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) - self._lag

    def move_to(self, when: dt.datetime) -> None:
        """Jump forward to ``when`` (never back, never past the real time)."""
        self._lag = max(dt.timedelta(0), min(self._lag, dt.datetime.now(dt.UTC) - when))

    def advance(self, **delta: float) -> None:
        """Move forward by ``timedelta(**delta)``."""
        self.move_to(self.now() + dt.timedelta(**delta))


PATHS = ["filed"] * 3 + [
    "returned",
    "rejected_review",
    "rejected_approve",
    "withdrawn",
    "objection",
    "publicised",
    "open",
]


def run_demo(svc: Casework, out: Console, *, seed: int | None = None, archives: int = 40) -> bool:
    """Run the demonstration against ``svc``'s database; return True if the audit trail verifies.

    The story runs on its own clock (:class:`StoryClock`), through a second
    engine on the same database.
    """
    started = time.perf_counter()
    clock = StoryClock(STORY_DAYS)
    story = Casework(svc.engine, clock)
    out.rule("[bold]casework demo[/]: 困难职工建档立卡 archive filing")
    for file in (BUNDLED_WORKFLOW, BUNDLED_WORKFLOW.with_name("annual_review.yaml")):
        info, created = story.load_workflow(load_definition_file(file))
        out.print(f"workflow {info.name} v{info.version} {'loaded' if created else 'already loaded'}")
    for username, name, roles, scopes in USERS:
        with contextlib.suppress(AlreadyExists):  # re-running the demo
            story.add_user(username, name, roles, scopes)
    out.print(f"{len(USERS)} users across {len(COUNTIES)} counties (clerks, reviewers, city approvers)")

    existing = len(story.list_cases(workflow=WORKFLOW))
    people = SyntheticPeople(seed if seed is not None else 20260 + existing)
    plan = [
        (COUNTIES[i % len(COUNTIES)], PATHS[(i // len(COUNTIES)) % len(PATHS)], OPEN_STOPS[i % len(COUNTIES)])
        for i in range(archives)
    ]
    outcomes = Counter(path for _, path, _ in plan)
    out.rule(f"a month of work, from {clock.now().astimezone(SHANGHAI):%Y-%m-%d} to today")
    published, refs, tried = _story(story, clock, out, people, plan)
    out.print(f"filed {archives} archives: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))

    out.rule("the rules at work (each refusal changes nothing)")
    _refusals(story, out, people, refs, tried)

    out.rule("telling people: in-app messages and public notices (公示)")
    _notifications(story, out, published)

    out.rule("time: deadlines on the statutory working-day calendar")
    _time(story, out, refs)

    out.rule("one archive's trail (personal data masked)")
    sample = refs["objection"][0]
    for r in story.history(sample):
        what = f"{r.trigger}: {r.from_state} → {r.to_state}" if r.trigger else r.action
        if r.action == "updated":
            what += " " + ", ".join(r.changes)
        note = f"  “{r.comment}”" if r.comment else ""
        role = f" ({r.role})" if r.role else ""
        day = f"{r.at.astimezone(SHANGHAI):%m-%d}"
        out.print(f"  {r.seq}. {day} {r.actor}{role} {what}{note}", markup=False)

    out.rule("archives by state and county")
    _summary(story, out)

    report = story.verify_audit()
    elapsed = time.perf_counter() - started
    if report.ok:
        out.print(
            f"[green]audit verify: intact[/] — {report.events} events in {report.cases} cases "
            f"(demo took {elapsed:.1f} s)"
        )
    else:
        for b in report.breaks:
            out.print(f"[red]BROKEN[/] {b}")
    return report.ok


def _story(
    svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, plan: list[tuple[str, str, str]]
) -> tuple[list[NoticeView], dict[str, list[str]], list[Tried]]:
    """Drive every archive along its path, day by day.

    Returns the notices published, the refs by path, and the steps tried too early on the way (refused).
    """
    refs: dict[str, list[str]] = {}
    published: list[NoticeView] = []
    tried: list[Tried] = []
    early = [(i, c, p, s) for i, (c, p, s) in enumerate(plan) if (p, s) not in LATE]
    late = [(i, c, p, s) for i, (c, p, s) in enumerate(plan) if (p, s) in LATE]
    found: dict[int, str] = {}

    def publish(why: str) -> None:
        from notifications.notices import publish_list

        for county in COUNTIES:
            view = publish_list(svc, WORKFLOW, county)
            if view is not None:
                published.append(view)
                out.print(
                    f"  {view.created_at.astimezone(SHANGHAI):%m-%d} {county}: 公示名单 {view.number}, "
                    f"{len(view.cases)} household{'s' if len(view.cases) != 1 else ''}{why}, "
                    f"公示期 {view.period_start} – {view.period_end}",
                    markup=False,
                )

    with Progress(console=out, transient=True) as progress:
        task = progress.add_task("filing archives", total=len(plan))
        # day 0: applications, reviews; the reviewed wait in publicity for their county's list
        for i, county, path, stop in early:
            found[i] = _apply_and_review(svc, people, county, path, stop)
            progress.advance(task)
        publish("")
        # day 2: a reviewer tries to end publicity early; objections come in; an upheld one sends the
        # case back to review, then (reviewed again) onto a new list
        clock.advance(days=2)
        # one of this run's archives (a rerun also lists a previous run's cases still awaiting publication)
        ours = set(found.values())
        notice, listed = next((v, ref) for v in published for ref in v.cases if ref in ours)
        reviewer = next(REVIEWER[c] for i, c, _, _ in early if found[i] == listed)
        tried.append(
            _try(
                f"a reviewer ends publicity two days into the period ({notice.number})",
                lambda: svc.fire(listed, "end_publicity", reviewer),
            )
        )
        for i, _, path, _ in early:
            if path == "objection":
                _objection_upheld(svc, found[i], CLERK[plan[i][0]], REVIEWER[plan[i][0]])
        publish(" (re-reviewed after an upheld objection: a new notice, a new full period)")
        clock.advance(days=2)
        for i, county, path, _ in early:
            if path == "objection":
                second = svc.add_objection(found[i], CLERK[county], "来信反映申请人子女有工作", "来信")
                svc.resolve_objection(found[i], second.id, REVIEWER[county], "dismissed", "经核实，子女在读，无收入")
        # the periods run out: the scheduler ends publicity by itself, as system
        last = max(dt.datetime.combine(v.period_end or v.created_at.date(), dt.time(9), SHANGHAI) for v in published)
        clock.move_to(last + dt.timedelta(days=1))
        svc.sweep()
        ended = sum(1 for i, *_ in early if svc.get_case(found[i]).state == "approve")
        out.print(
            f"  {clock.now().astimezone(SHANGHAI):%m-%d} every period is over: the scheduler ended the publicity "
            f"of {ended} archives (公示期满, as system); the city union approves",
            markup=False,
        )
        clock.advance(hours=2)
        for i, county, path, stop in early:
            _approve_and_enter(svc, found[i], county, path, stop)
        # yesterday and today: the archives still on their way
        clock.move_to(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        for i, county, path, stop in late:
            found[i] = _apply_and_review(svc, people, county, path, stop)
            progress.advance(task)
        waiting = next(found[i] for i, _, p, _ in late if p == "publicised")
        tried.append(
            _try(
                "a reviewer ends the publicity of an archive that no published list carries yet",
                lambda: svc.fire(waiting, "end_publicity", "xu"),
            )
        )
        publish(" (their period runs on past today)")
    clock.move_to(dt.datetime.now(dt.UTC))
    for i, (_, path, _) in enumerate(plan):
        refs.setdefault(path, []).append(found[i])
    return published, refs, tried


Tried = tuple[str, "CaseworkError | None"]


def _try(what: str, attempt: Callable[[], object]) -> Tried:
    """Try a step the rules must refuse; (what, the refusal or None)."""
    try:
        attempt()
    except CaseworkError as exc:
        return what, exc
    return what, None  # pragma: no cover - the demo would be lying


def _apply_and_review(svc: Casework, people: SyntheticPeople, county: str, path: str, stop: str) -> str:
    """Open one archive and take it as far as review goes on ``path``; an "open" archive stays in ``stop``."""
    clerk, reviewer = CLERK[county], REVIEWER[county]
    data = people.household()
    data["county"] = county
    data["materials"] = ["申请表", "身份证", "户口簿", "收入证明"]
    if path == "returned":
        data["materials"] = data["materials"][:3]  # missing 收入证明: the reviewer returns it
    ref = svc.create_case(WORKFLOW, clerk, data).ref
    if path == "open" and stop == "apply":
        return ref
    svc.fire(ref, "submit", clerk)
    if path == "withdrawn":
        svc.fire(ref, "withdraw", clerk, comment="申请人已找到稳定工作，主动撤回")
        return ref
    if path == "rejected_review":
        svc.fire(ref, "reject", reviewer, comment="家庭月人均收入高于当地标准")
        return ref
    if path == "returned":
        svc.fire(ref, "return", reviewer, comment="缺少收入证明，请补正")
        svc.update_case(ref, clerk, {"materials": ["申请表", "身份证", "户口簿", "收入证明"]})
        svc.fire(ref, "submit", clerk)
    if path == "open" and stop == "review":
        return ref
    svc.fire(ref, "pass_review", reviewer)  # into 公示, awaiting its county's list
    return ref


def _objection_upheld(svc: Casework, ref: str, clerk: str, reviewer: str) -> None:
    first = svc.add_objection(ref, clerk, "群众来电反映申请人家庭有经营性收入", "电话")
    svc.resolve_objection(ref, first.id, reviewer, "upheld", "经入户核实，家庭有经营性收入，重新审核")
    svc.fire(ref, "pass_review", reviewer, comment="已核减经营性收入后重新审核，仍符合条件")


def _approve_and_enter(svc: Casework, ref: str, county: str, path: str, stop: str) -> None:
    """After publicity: the city union approves (or rejects), the clerk enters the archive."""
    if svc.get_case(ref).state != "approve" or (path == "open" and stop == "approve"):
        return
    if path == "rejected_approve":
        svc.fire(ref, "reject", "su", comment="材料与实际不符")
        return
    svc.fire(ref, "grant", "su")
    if path == "open":
        return
    svc.fire(ref, "record", CLERK[county])


def _refusals(
    svc: Casework, out: Console, people: SyntheticPeople, refs: dict[str, list[str]], tried: list[Tried]
) -> None:
    from notifications.notices import publish_list

    draft = people.household()
    draft["county"] = "芗城区"
    ref = svc.create_case(WORKFLOW, "ye", draft).ref
    svc.fire(ref, "submit", "ye")
    filed = refs["filed"][0]
    held = refs["publicised"][0]
    svc.add_objection(held, "wu", "来访群众反映申请人有房产出租收入", "来访")
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("the end of publicity during the period, an objection open", lambda: svc.fire(held, "end_publicity", "wu")),
        ("a 公示名单 dated in the past", lambda: publish_list(svc, WORKFLOW, "芗城区", dt.date(2020, 1, 1))),
        ("a clerk tries to pass a review", lambda: svc.fire(ref, "pass_review", "lin")),
        ("a clerk of 龙文区 tries a 芗城区 case", lambda: svc.get_case(ref, "chen")),
        (
            "ye submitted it and, holding the reviewer role too, tries to review it",
            lambda: svc.fire(ref, "pass_review", "ye"),
        ),
        ("a reviewer returns it without a comment", lambda: svc.fire(ref, "return", "wu")),
        ("the same household is filed twice", lambda: svc.create_case(WORKFLOW, "lin", draft)),
        ("an approver grants a case still in review", lambda: svc.fire(ref, "grant", "su")),
        ("a clerk edits a filed archive", lambda: svc.update_case(filed, "lin", {"household_size": 9})),
        ("an invalid ID number", lambda: svc.update_case(ref, "ye", {"id_number": "350602198502310013"})),
    ]
    for what, exc in tried + [_try(what, attempt) for what, attempt in attempts]:
        if exc is None:  # pragma: no cover - the demo would be lying
            out.print(f"[red]NOT refused[/] {what}")
            continue
        out.print(f"[yellow]refused[/] {what} [dim]({exc.code})[/]:")
        out.print(f"    {word(exc.code, exc.message, exc.facts)}", markup=False)


def _notifications(svc: Casework, out: Console, published: list[NoticeView]) -> None:
    from casework.cli.notice import write_notice
    from notifications import NotificationConfig, Relay, default_channels

    # the demo's users have no email address: in-app messages only
    config = NotificationConfig()
    relay = Relay(svc.engine, svc, default_channels(config), config)
    sent = dead = 0
    while True:  # a pass takes a batch; keep going until nothing is due
        report = relay.run_once()
        sent, dead = sent + report.sent, dead + report.dead
        if not (report.sent or report.failed or report.dead):
            break
    out.print(f"outbox relay: delivered {sent} in-app messages, dead {dead}")
    out.print(f"public notices: the {len(published)} 公示名单 published in the story, each stored as published")
    folder = Path(DEMO_OUTPUT)
    for view in published:
        paths = write_notice(view, folder)
        out.print(f"  {view.number} ({view.scope}) → {', '.join(str(p) for p in paths)}", markup=False)
    reviewer = svc.user("wu")
    from notifications import inbox

    messages = inbox(svc.engine, reviewer.username)
    out.print(f"inbox of {reviewer.username} ({reviewer.name}): {len(messages)} messages; the latest:")
    for m in messages[:4]:
        out.print(f"  #{m.id} {m.subject}", markup=False)


def _time(svc: Casework, out: Console, refs: dict[str, list[str]]) -> None:
    import datetime as dt

    cal = svc.calendar
    shanghai = dt.timezone(dt.timedelta(hours=8))
    entered = dt.datetime(2026, 9, 30, 10, 0, tzinfo=shanghai)
    due = cal.deadline(entered, 5, "working_days", "Asia/Shanghai")
    out.print(
        f"submitted 2026-09-30 → review due by {_end(due.at)} (5 working days: 国庆 Oct 1–7 skipped, "
        "调休 Sat Oct 10 counted)",
        markup=False,
    )
    late = cal.deadline(dt.datetime(2026, 12, 28, 10, 0, tzinfo=shanghai), 5, "working_days", "Asia/Shanghai")
    out.print(
        f"submitted 2026-12-28 → due by {_end(late.at)}, provisional={late.provisional} "
        "(2027's official schedule is not published yet)",
        markup=False,
    )
    open_cases = [v for v in svc.list_cases(workflow=WORKFLOW, state="review") if v.deadline]
    if open_cases:
        case = open_cases[0]
        out.print(f"timeline of {case.ref} (in review since {case.to_json()['updated_at'][:16]}):", markup=False)
        out.print(f"  deadline {case.to_json()['deadline'][:16]} — {case.time_left}", markup=False)
        for t in svc.timers():
            if t.case_ref == case.ref:
                what = {"remind": "remind", "escalate": "escalate to", "timeout": "fire"}[t.kind]
                target = t.payload.get("to") or t.payload.get("fire")
                out.print(f"  {t.to_json()['due_at'][:16]}  {what} {target}", markup=False)
        svc.pause(case.ref, REVIEWER[case.scope or "芗城区"], "缺少收入证明，通知申请人补正")
        paused = svc.get_case(case.ref)
        out.print(f"  paused for missing materials (补正): {paused.time_left}", markup=False)
        svc.resume(case.ref, CLERK[case.scope or "芗城区"], "收入证明已补交")
        resumed = svc.get_case(case.ref)
        out.print(f"  resumed: new deadline {resumed.to_json()['deadline'][:16]} — {resumed.time_left}", markup=False)


def _end(at: object) -> str:
    """A deadline at 00:00 is the end of the day before: 2026-10-14 00:00 → "2026-10-13 24:00"."""
    import datetime as dt

    assert isinstance(at, dt.datetime)
    if at.time() == dt.time():
        return f"{at - dt.timedelta(days=1):%Y-%m-%d} 24:00"
    return f"{at:%Y-%m-%d %H:%M}"


def _summary(svc: Casework, out: Console) -> None:
    rows = svc.count_by(WORKFLOW)
    wf = svc.workflow(WORKFLOW)
    states = [s for s in wf.states]
    scopes = sorted({r[1] or "" for r in rows})
    counts = {(r[1] or "", r[2]): r[3] for r in rows}
    table = Table("县区", *[wf.states[s].label for s in states], "合计")
    for scope in scopes:
        cells = [counts.get((scope, s), 0) for s in states]
        table.add_row(scope, *[str(c) if c else "·" for c in cells], str(sum(cells)))
    totals = [sum(counts.get((sc, s), 0) for sc in scopes) for s in states]
    table.add_row("[bold]合计[/]", *[str(t) for t in totals], str(sum(totals)))
    out.print(table)
