"""``casework demo``: the main job of ``make run``.

Loads every bundled workflow, creates users across several counties, files a
few dozen synthetic archives and drives them through every path — filed,
returned and resubmitted, rejected, withdrawn, an objection upheld — runs the
six programmes on the filed households, shows the rules refusing what they
must, prints the office's reports, and ends by verifying the audit trail.
Re-runnable: each run adds new archives (the seed follows what is stored).

The story runs on its own clock, which only moves forward and never past the
real time. It begins in November of the year before the programme year
(:func:`programme_year`): a prologue files households, so that on 2 January
the scheduler's yearly review has archives to re-survey and the year's exit
rate a denominator. Through that year the programmes run on the filed
households — 送温暖 on the date the organiser sets before the Spring
Festival, legal aid, medical aid, skills rewards, petitions, 金秋助学 in
August. Then, publicity (公示) taking days, the demo tells the last month of
work: the lists are published, objections come in, the periods end and the
scheduler ends publicity, the city union approves, until it is the real time
again, where the last archives wait in every state. Nothing is stamped in the
future.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rich.console import Console
from rich.progress import Progress

from casework.cli.wording import word
from casework.synthetic import SyntheticPeople
from engine import AlreadyExists, Casework, CaseworkError, load_definition_file
from engine.errors import Code
from engine.logins import LoginPolicy

if TYPE_CHECKING:
    from engine import NoticeView

__all__ = ["BUNDLED_WORKFLOW", "DEMO_PASSWORD", "PROGRAMME_USERS", "USERS", "StoryClock", "programme_year", "run_demo"]

BUNDLED_WORKFLOW = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
WORKFLOW = "poverty_archive"
# every bundled workflow the demo loads: the archive, its yearly review, and the six programmes
BUNDLED = (
    WORKFLOW,
    "annual_review",
    "warmth",
    "legal_aid",
    "medical_aid",
    "skills_reward",
    "petition",
    "golden_autumn",
)
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
# the roles only the programmes declare (users may hold only roles a loaded workflow declares)
PROGRAMME_USERS = [
    ("gao", "高振宇", ["organiser"], ["*"]),  # 帮扶中心负责人: sets the date of 送温暖
    ("fang", "方志强", ["coordinator"], ["*"]),  # 法律援助中心负责人: assigns the lawyers
    ("peng", "彭海燕", ["handler"], ["芗城区", "龙文区"]),  # 信访承办人
    ("tang", "唐俊杰", ["handler"], ["漳浦县", "龙海区"]),
    ("luo", "罗国平", ["supervisor"], list(COUNTIES)),  # 县级工会负责人: escalations reach someone
]
#: the password of every demo user (printed by the demo: a trial database, never a real office's)
DEMO_PASSWORD = "demo-password-2026"
CLERK = {"芗城区": "lin", "龙文区": "chen", "漳浦县": "huang", "龙海区": "zheng"}
REVIEWER = {"芗城区": "wu", "龙文区": "wu", "漳浦县": "cai", "龙海区": "cai"}
HANDLER = {"芗城区": "peng", "龙文区": "peng", "漳浦县": "tang", "龙海区": "tang"}
APPROVER = "su"

# How the archives travel (repeated over the counties): most are filed.
OPEN_STOPS = ("apply", "review", "approve", "enter")  # "publicised" archives stop in publicity
STORY_DAYS = 30  # the last month of the story starts this many days before the real time
# archives that end the story early in their path: they start on its last day
LATE = {("publicised", s) for s in OPEN_STOPS} | {("open", "apply"), ("open", "review")}

# The prologue: households filed in November of the year before, so that the programme year
# begins with archives on file. How many of each county's archives the annual review finds
# out of hardship (about a third in all; one county short of the 30 % target).
PROLOGUE_PER_COUNTY = 6
EXITS = {"芗城区": 2, "龙文区": 3, "漳浦县": 2, "龙海区": 1}
# 春节 (the first day of the lunar year): 送温暖 is before it, on a date set each year
SPRING_FESTIVAL = {
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
    2028: dt.date(2028, 1, 26),
    2029: dt.date(2029, 2, 13),
    2030: dt.date(2030, 2, 3),
}
# the last programme event of the year is in August; the last month of the story must start after it
PROGRAMMES_END = (9, 1)


def programme_year(now: dt.datetime | None = None) -> int:
    """The year the demo's programmes run in: the latest whose programmes end before its last month starts.

    Run on 2026-12-02 (its last month from 2026-11-02): 2026; run in March 2027: 2026 still.
    """
    start = ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=STORY_DAYS)).astimezone(SHANGHAI).date()
    return start.year if start >= dt.date(start.year, *PROGRAMMES_END) else start.year - 1


def _at(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    """``day`` at ``hour``:``minute`` in Zhangzhou."""
    return dt.datetime.combine(day, dt.time(hour, minute), SHANGHAI)


class StoryClock:
    """The real time set back by a lag that only shrinks: the story moves forward until it is now.

    Every event is stamped at or before the real time, and in order, however
    often the demo runs.
    """

    def __init__(self, days_back: float) -> None:
        self._lag = dt.timedelta(days=days_back)

    @classmethod
    def since(cls, start: dt.datetime) -> StoryClock:
        """A clock that reads ``start`` now (the real time if ``start`` is later)."""
        return cls(max(0.0, (dt.datetime.now(dt.UTC) - start).total_seconds() / 86400))

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
    engine on the same database. The reports at the end are printed by the
    CLI's own renderer (``casework report``), on the CLI's console.
    """
    started = time.perf_counter()
    year = programme_year()
    clock = StoryClock.since(_at(dt.date(year - 1, 11, 3)))
    story = Casework(svc.engine, clock)
    out.rule("[bold]casework demo[/]: 困难职工建档立卡 archive filing, and the programmes on the archives")
    loaded: dict[bool, list[str]] = {True: [], False: []}
    for name in BUNDLED:
        info, created = story.load_workflow(load_definition_file(BUNDLED_WORKFLOW.with_name(f"{name}.yaml")))
        loaded[created].append(f"{info.name} v{info.version}")
    for created, names in sorted(loaded.items(), reverse=True):
        if names:
            out.print(f"workflows {'loaded' if created else 'already loaded'}: {', '.join(names)}")
    for username, name, roles, scopes in USERS + PROGRAMME_USERS:
        with contextlib.suppress(AlreadyExists):  # re-running the demo
            story.add_user(username, name, roles, scopes)
    # a trial database: every demo user logs in to the web application with the one printed password, hashed
    # at Argon2's lowest costs (the password is public; each user's first login rehashes it at the real ones)
    cheap = story.logins_with(LoginPolicy(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1))
    for username, *_ in USERS + PROGRAMME_USERS:
        cheap.set_password(username, DEMO_PASSWORD)
    out.print(
        f"{len(USERS) + len(PROGRAMME_USERS)} users across {len(COUNTIES)} counties (clerks, reviewers, city "
        "approvers; a campaign organiser, a legal-aid coordinator, petition handlers, a supervisor)"
    )

    existing = len(story.list_cases(workflow=WORKFLOW))
    people = SyntheticPeople(seed if seed is not None else 20260 + existing)
    out.rule(f"{year - 1}: households filed before the year begins (the exit rate's denominator)")
    filed = _prologue(story, clock, out, people)
    out.rule(f"{year}: the yearly review (动态管理) — households leave hardship (解困脱困)")
    kept = _annual_review(story, clock, out, filed, year)
    out.rule(f"{year}: the programmes on the filed households")
    _programmes(story, clock, out, people, kept, year)

    plan = [
        (COUNTIES[i % len(COUNTIES)], PATHS[(i // len(COUNTIES)) % len(PATHS)], OPEN_STOPS[i % len(COUNTIES)])
        for i in range(archives)
    ]
    outcomes = Counter(path for _, path, _ in plan)
    clock.move_to(dt.datetime.now(dt.UTC) - dt.timedelta(days=STORY_DAYS))
    out.rule(f"the last month of work, from {clock.now().astimezone(SHANGHAI):%Y-%m-%d} to today")
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

    _reports(story, out, year)

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
    _logins(out)
    return report.ok


def _logins(out: Console) -> None:
    """The demo's web logins: who to log in as to take a case through its five steps in the browser."""
    out.rule("the web application (casework serve): log in as")
    for username, role in (
        ("lin", "clerk 经办人, 芗城区: 新建案件, 提交申请, 录入系统"),
        ("wu", "reviewer 审核人, 芗城区 and 龙文区: 审核通过, 发布公示, 异议"),
        ("su", "approver 审批人, every county: 审批通过"),
        ("luo", "supervisor 负责人: 流程管理, 用户管理, 访问日志"),
    ):
        out.print(f"  {username:<5} {role}", markup=False)
    out.print(
        f"  every demo user's password: {DEMO_PASSWORD}  (a trial database only: set real ones with "
        "'casework user passwd USER')",
        markup=False,
    )
    out.print(
        "  the HTTP API for other systems: /api/v1/docs on the same server; a token with "
        "'casework token create lin --name my-system' (docs/api.md)",
        markup=False,
    )


# ---------------------------------------------------------------------- the year before, and the yearly review

ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def _today(clock: StoryClock) -> str:
    return f"{clock.now().astimezone(SHANGHAI):%Y-%m-%d}"


def _prologue(svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople) -> dict[str, list[str]]:
    """Households filed in November of the year before; their references by county.

    The same five procedures as every archive (apply, review, publicity, approval, entry), on a
    few households per county and without detours: the month's story below shows the detours.
    """
    filed: dict[str, list[str]] = {county: [] for county in COUNTIES}
    for county in COUNTIES:
        for _ in range(PROLOGUE_PER_COUNTY):
            data = people.household()
            data.update(county=county, materials=list(ALL_MATERIALS))
            ref = svc.create_case(WORKFLOW, CLERK[county], data).ref
            svc.fire(ref, "submit", CLERK[county])
            filed[county].append(ref)
    refs = [ref for county in COUNTIES for ref in filed[county]]
    out.print(f"  {_today(clock)} {len(refs)} households apply ({refs[0]} – {refs[-1]}); the clerks submit them")
    clock.advance(days=1)
    for county in COUNTIES:
        for ref in filed[county]:
            svc.fire(ref, "pass_review", REVIEWER[county])
    clock.advance(days=1)
    _publicise(svc, clock, out, WORKFLOW, refs)
    clock.advance(hours=2)
    for ref in refs:
        svc.fire(ref, "grant", APPROVER)
    clock.advance(days=1)
    for county in COUNTIES:
        for ref in filed[county]:
            svc.fire(ref, "record", CLERK[county])
    out.print(f"  {_today(clock)} the city union approves them all; the clerks enter {len(refs)} archives (已建档)")
    return filed


def _publicise(svc: Casework, clock: StoryClock, out: Console, workflow: str, refs: list[str]) -> list[NoticeView]:
    """Publish every county's 公示名单 of ``workflow``; once every period is over, the scheduler ends publicity."""
    from notifications.notices import publish_list

    views = [v for v in (publish_list(svc, workflow, county) for county in COUNTIES) if v is not None]
    if not views:  # pragma: no cover - the demo publishes only what it has just reviewed
        return views
    numbers = f"{views[0].number} – {views[-1].number}" if len(views) > 1 else views[0].number
    out.print(
        f"  {_today(clock)} 公示名单 {numbers}: {sum(len(v.cases) for v in views)} cases in {len(views)} "
        f"count{'ies' if len(views) != 1 else 'y'}, 公示期 {views[0].period_start} – {views[0].period_end}",
        markup=False,
    )
    last = max(v.period_end or v.created_at.astimezone(SHANGHAI).date() for v in views)
    clock.move_to(_at(last + dt.timedelta(days=1)))
    svc.sweep()
    ended = sum(1 for ref in refs if svc.get_case(ref).state not in ("publicise", "review", "apply"))
    out.print(f"  {_today(clock)} 公示期满: the scheduler ends the publicity of {ended} (as system, no objection)")
    return views


def _annual_review(
    svc: Casework, clock: StoryClock, out: Console, filed: dict[str, list[str]], year: int
) -> dict[str, list[str]]:
    """2 January: the scheduler opens a review per filed archive; a third exit. The archives still filed, by county."""
    clock.move_to(_at(dt.date(year, 1, 2), 8, 5))
    ran = {job: outcome for job, _, outcome in svc.run_due_schedules()}
    outcome = ran.get(f"{WORKFLOW}:annual_review")
    ours = {ref: county for county, refs in filed.items() for ref in refs}
    if outcome is None:
        # a re-run: the scheduler reviews once per year, and this year's review already ran
        out.print(
            f"  {year}-01-02 08:00 the yearly review of {year} ({WORKFLOW}:annual_review) already ran in an earlier "
            f"run of the demo: the {len(ours)} archives filed now stay on file until next year's"
        )
        return filed
    out.print(f"  {year}-01-02 08:00 the scheduler's yearly job {WORKFLOW}:annual_review — {outcome}")
    reviews = {
        v.data["archive_ref"]: v.ref
        for v in svc.list_cases(workflow="annual_review", state="survey")
        if v.data.get("archive_ref") in ours
    }
    clock.move_to(_at(dt.date(year, 1, 6)))
    # the first few of each county's reviewed archives leave hardship
    leaving = {ref for county in COUNTIES for ref in [r for r in filed[county] if r in reviews][: EXITS[county]]}
    for archive, review in reviews.items():
        county = ours[archive]
        if archive in leaving:
            finding = {"finding": "子女已就业，家庭月人均收入超过当地最低生活保障标准", "income_per_capita": "2650.00"}
        else:
            finding = {"finding": "家中仍有重病患者，收入未见改善"}
        svc.fire(review, "report", CLERK[county], data=finding)
    out.print(f"  {_today(clock)} the clerks visit the {len(reviews)} households and report what they found")
    clock.advance(days=2)
    for archive, review in reviews.items():
        reviewer = REVIEWER[ours[archive]]
        if archive in leaving:
            svc.fire(review, "exit", reviewer, comment="家庭月人均收入已超过当地最低生活保障标准，解困脱困")
        else:
            svc.fire(review, "keep", reviewer)
    out.print(
        f"  {_today(clock)} the reviewers keep {len(reviews) - len(leaving)} households and find {len(leaving)} "
        "out of hardship: each review's exit exits its archive too (then:), in the same step",
        markup=False,
    )
    return {county: [ref for ref in refs if ref not in leaving] for county, refs in filed.items()}


# ---------------------------------------------------------------------- the programmes


def _programmes(
    svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, kept: dict[str, list[str]], year: int
) -> None:
    """The six programmes through the year, on dates that suit them, each on households still filed."""
    _warmth(svc, clock, out, year)
    _legal_aid(svc, clock, out, people, kept, year)
    _medical_aid(svc, clock, out, people, year)
    _skills_reward(svc, clock, out, people, kept, year)
    _petitions(svc, clock, out, people, kept, year)
    _golden_autumn(svc, clock, out, people, kept, year)


def _refused(out: Console, what: str, attempt: Callable[[], object]) -> None:
    """Try a step the rules must refuse, and say how it was refused."""
    what, exc = _try(what, attempt)
    _show_refusal(out, what, exc)


def _show_refusal(out: Console, what: str, exc: CaseworkError | None) -> None:
    if exc is None:  # pragma: no cover - the demo would be lying
        out.print(f"[red]NOT refused[/] {what}")
        return
    out.print(f"[yellow]refused[/] {what} [dim]({exc.code})[/]:")
    out.print(f"    {word(exc.code, exc.message, exc.facts)}", markup=False)


def _yuan(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _warmth(svc: Casework, clock: StoryClock, out: Console, year: int) -> None:
    """春节送温暖: the organiser sets the date; on it the scheduler opens a case per filed household."""
    festival = SPRING_FESTIVAL.get(year, dt.date(year, 2, 1))
    on = festival - dt.timedelta(days=7)
    clock.move_to(_at(on - dt.timedelta(days=8)))
    out.print(f"[bold]春节送温暖[/] (warmth), before the Spring Festival ({festival})")
    try:
        view, _ = svc.set_campaign("warmth", on, "gao")
    except CaseworkError as exc:
        if exc.code != Code.CAMPAIGN_RAN:
            raise
        # a re-run: the campaign runs once a year
        out.print(
            f"  {_today(clock)} 送温暖 {year} already ran in an earlier run of the demo: {exc.facts.get('outcome')}"
        )
        return
    out.print(f"  {_today(clock)} gao (organiser) sets 送温暖 {year} for {view.date}")
    clock.move_to(_at(on, 8, 30))
    ran = {job: outcome for job, _, outcome in svc.run_due_schedules()}
    out.print(f"  {on} 08:30 the scheduler runs it — {ran.get(f'warmth:campaign {year}', 'not run')}")
    cases = [
        v for v in svc.list_cases(workflow="warmth", state="visit") if v.data.get("year") == year and v.scope in CLERK
    ]
    clock.advance(days=1)
    for v in cases:
        svc.fire(v.ref, "visit", CLERK[v.scope or ""], data={"visit_note": "入户走访，送去慰问金和年货，了解家庭近况"})
    people = sum(int(v.data.get("household_size") or 0) for v in cases)
    amount = sum((Decimal(svc.get_case(v.ref).data["amount"]) for v in cases), Decimal(0))
    out.print(
        f"  {_today(clock)} the clerks visit {len(cases)} households, {people} people: "
        f"{_yuan(amount)} yuan at 1,000 per person (the rate of {year})"
    )
    clock.advance(days=1)
    for v in cases:
        svc.fire(v.ref, "grant", APPROVER)
    clock.advance(days=1)
    for v in cases:
        svc.fire(v.ref, "record_payment", CLERK[v.scope or ""])
    out.print(f"  {_today(clock)} the city union approved them (not the visitor: four-eyes); paid {len(cases)}")


class Legal(NamedTuple):
    """One legal-aid case of the demo, from the application to its close."""

    county: str
    household: bool  # a worker of a filed household: named by the archive's reference
    matter: str
    facts: str
    lawyer: str
    firm: str
    outcome: str
    fees_waived: str
    recovered: str


LEGAL_CASES = [
    Legal(
        "芗城区",
        True,
        "追索劳动报酬",
        "用人单位拖欠工资八个月，多次讨要未果",
        "郭建新",
        "漳州九龙律师事务所",
        "调解",
        "3000",
        "48600",
    ),
    Legal(
        "漳浦县",
        False,
        "工伤赔偿",
        "厂内作业时右手受伤，单位拒绝申报工伤",
        "沈丽萍",
        "漳浦鹿溪律师事务所",
        "仲裁裁决",
        "5000",
        "126000",
    ),
    Legal(
        "龙海区",
        False,
        "劳动合同争议",
        "未签书面劳动合同即被解除用工",
        "郭建新",
        "漳州九龙律师事务所",
        "和解",
        "2000",
        "15000",
    ),
]


def _legal_aid(
    svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, kept: dict[str, list[str]], year: int
) -> None:
    """职工法律援助: intake, a lawyer assigned, the case closed with the fees waived and the amount recovered."""
    out.print("[bold]职工法律援助[/] (legal_aid)")
    clock.move_to(_at(dt.date(year, 3, 2)))
    refs = []
    for c in LEGAL_CASES:
        data: dict[str, Any] = {"matter_type": c.matter, "facts": c.facts}
        if c.household and kept[c.county]:
            data["archive_ref"] = kept[c.county][0]  # name, ID number and county are filled from the archive
        else:
            data.update(county=c.county, applicant_name=people.name(), id_number=people.id_number(c.county))
        refs.append(svc.create_case("legal_aid", CLERK[c.county], data).ref)
    linked = [svc.get_case(ref).data.get("archive_ref") for ref in refs]
    out.print(
        f"  {_today(clock)} {len(refs)} workers apply ({', '.join(refs)}); "
        + ", ".join(f"{ref} is of the filed household {a}" for ref, a in zip(refs, linked, strict=True) if a)
        + " (name, ID number and county filled from its archive)"
    )
    clock.advance(days=2)
    for ref, c in zip(refs, LEGAL_CASES, strict=True):
        svc.fire(ref, "accept", REVIEWER[c.county])
    clock.advance(days=1)
    for ref, c in zip(refs, LEGAL_CASES, strict=True):
        svc.fire(ref, "assign_lawyer", "fang", data={"lawyer": c.lawyer, "law_firm": c.firm})
    out.print(f"  {_today(clock)} accepted by the reviewers; fang (coordinator) assigns the lawyers")
    clock.move_to(_at(dt.date(year, 4, 24)))
    for ref, c in zip(refs, LEGAL_CASES, strict=True):
        data = {"outcome": c.outcome, "fees_waived": c.fees_waived, "amount_recovered": c.recovered}
        svc.fire(ref, "close", CLERK[c.county], data=data)
    fees = sum((Decimal(c.fees_waived) for c in LEGAL_CASES), Decimal(0))
    recovered = sum((Decimal(c.recovered) for c in LEGAL_CASES), Decimal(0))
    out.print(
        f"  {_today(clock)} {len(refs)} closed ({', '.join(c.outcome for c in LEGAL_CASES)}): legal fees waived "
        f"{_yuan(fees)} yuan, recovered for the workers {_yuan(recovered)} yuan"
    )


MEDICAL_CASES = [("芗城区", "8200.00"), ("龙文区", "12345.65"), ("漳浦县", "45000.00"), ("龙海区", "128000.00")]


def _medical_aid(svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, year: int) -> None:
    """职工医疗互助补助: a case in each tier, and one below 6,000 yuan refused at submit."""
    out.print("[bold]职工医疗互助补助[/] (medical_aid)")
    clock.move_to(_at(dt.date(year, 5, 6)))
    refs: list[tuple[str, str]] = []
    subsidies = []
    for county, paid in MEDICAL_CASES:
        data = {"county": county, "applicant_name": people.name(), "id_number": people.id_number(county)}
        ref = svc.create_case("medical_aid", CLERK[county], {**data, "self_paid": paid}).ref
        view = svc.fire(ref, "submit", CLERK[county])
        refs.append((ref, county))
        subsidies.append(f"{_yuan(Decimal(paid))} → {_yuan(Decimal(view.data['subsidy']))}")
    out.print(f"  {_today(clock)} {len(refs)} applications, self-paid → subsidy: {'; '.join(subsidies)}")
    data = {"county": "芗城区", "applicant_name": people.name(), "id_number": people.id_number("芗城区")}
    low = svc.create_case("medical_aid", "lin", {**data, "self_paid": "5200.00"}).ref
    _refused(out, f"{low}: self-paid 5,200.00 yuan is submitted", lambda: svc.fire(low, "submit", "lin"))
    svc.fire(low, "withdraw", "lin", comment="个人自付费用不足6000元，申请人撤回申请")
    clock.advance(days=1)
    for ref, county in refs:
        svc.fire(ref, "pass_review", REVIEWER[county])
    clock.advance(days=1)
    _publicise(svc, clock, out, "medical_aid", [ref for ref, _ in refs])
    clock.advance(hours=2)
    for ref, _ in refs:
        svc.fire(ref, "grant", APPROVER)
    clock.advance(days=2)
    for ref, county in refs:
        svc.fire(ref, "record_payment", CLERK[county])
    out.print(f"  {_today(clock)} the city union granted {len(refs)}; the clerks record the payments")


SKILLS_CASES = [
    # county, a filed household's?, level, contract years, employer
    ("龙文区", True, "高级技师", 5, "漳州东南机械有限公司"),
    ("漳浦县", False, "技师", 10, "漳浦闽南食品有限公司"),
    ("龙海区", False, "技师", 2, "龙海港湾物流有限公司"),
]


def _skills_reward(
    svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, kept: dict[str, list[str]], year: int
) -> None:
    """职工技能奖励: a senior technician and a technician rewarded; a 2-year contract refused at submit."""
    out.print("[bold]职工技能奖励[/] (skills_reward)")
    clock.move_to(_at(dt.date(year, 6, 8)))
    refs: list[tuple[str, str]] = []
    for i, (county, household, level, years, employer) in enumerate(SKILLS_CASES):
        data: dict[str, Any] = {
            "employer": employer,
            "level": level,
            "certificate_no": f"S{year}3506{i + 1:05d}",
            "certified_year": year,
            "contract_years": years,
            "reward_year": year,
        }
        if household and kept[county]:
            data["archive_ref"] = kept[county][0]  # name, ID number and county are filled from the archive
        else:
            data.update(county=county, applicant_name=people.name(), id_number=people.id_number(county))
        ref = svc.create_case("skills_reward", CLERK[county], data).ref
        if years < 3:
            clerk = CLERK[county]
            _refused(
                out,
                f"{ref}: a {level} with a {years}-year contract is submitted",
                partial(svc.fire, ref, "submit", clerk),
            )
            svc.fire(ref, "withdraw", CLERK[county], comment="劳动合同期限不足3年，不符合奖励条件")
            continue
        svc.fire(ref, "submit", CLERK[county])
        refs.append((ref, county))
    clock.advance(days=2)
    for ref, county in refs:
        svc.fire(ref, "pass_review", REVIEWER[county])
    clock.advance(days=2)
    rewards = []
    for ref, _ in refs:
        view = svc.fire(ref, "grant", APPROVER)
        rewards.append(f"{ref} {view.data['level']} {_yuan(Decimal(view.data['reward']))}")
    clock.advance(days=3)
    for ref, county in refs:
        svc.fire(ref, "record_payment", CLERK[county])
    out.print(f"  {_today(clock)} rewarded and paid: {'; '.join(rewards)} yuan")


PETITIONS = [
    # county, channel, persons, matter, content, a filed household's?
    ("芗城区", "来访", 3, "劳动报酬", "反映所在企业拖欠三名职工工资", False),
    ("漳浦县", "电话", 1, "社会保险", "反映单位未足额缴纳养老保险", False),
    ("龙文区", "来信", 1, "困难帮扶", "询问困难职工子女助学政策", True),
    ("龙海区", "网上信访", 12, "劳动关系", "十二名职工反映企业转制后劳动关系未接续", False),
]


def _petitions(
    svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, kept: dict[str, list[str]], year: int
) -> None:
    """职工信访: registered, handled, answered, revisited and closed; the last one left overdue."""
    out.print("[bold]职工信访[/] (petition)")
    clock.move_to(_at(dt.date(year, 7, 1)))
    refs: list[tuple[str, str]] = []
    for i, (county, channel, persons, matter, content, household) in enumerate(PETITIONS):
        if i == len(PETITIONS) - 1:
            clock.advance(days=5)  # the collective petition comes in a few days later
        data: dict[str, Any] = {
            "county": county,
            "petitioner_name": people.name(),
            "channel": channel,
            "persons": persons,
            "matter": matter,
            "content": content,
        }
        if household and kept[county]:
            data["archive_ref"] = kept[county][-1]
        ref = svc.create_case("petition", CLERK[county], data).ref
        svc.fire(ref, "accept", CLERK[county])
        refs.append((ref, county))
    late, late_county = refs.pop()
    out.print(
        f"  {_today(clock)} {len(refs) + 1} petitions registered and accepted ({', '.join(r for r, _ in refs)}, {late})"
    )
    clock.move_to(_at(dt.date(year, 7, 20)))
    for ref, county in refs:
        svc.fire(ref, "handled", HANDLER[county], data={"handling_result": "已协调有关单位办理，问题已解决"})
    clock.advance(days=3)
    for ref, county in refs:
        svc.fire(ref, "answer", REVIEWER[county], data={"reply_text": "经调查核实，已督促有关单位依法处理"})
    clock.advance(days=12)
    for ref, county in refs:
        data = {"revisit_result": "电话回访，信访人对办理结果表示认可", "satisfaction": "满意"}
        svc.fire(ref, "close", CLERK[county], data=data)
    due = svc.get_case(late).deadline
    assert due is not None  # 办理 has a deadline: 60 days
    out.print(
        f"  {_today(clock)} {len(refs)} handled, answered, revisited and closed (回访结案); {late} "
        f"({late_county}, {PETITIONS[-1][2]} persons) stays in 办理, due {due.astimezone(SHANGHAI):%Y-%m-%d} "
        "(60 days): it will be overdue"
    )


GOLDEN_CASES = [
    # county, level, school
    ("芗城区", "本科", "福州大学"),
    ("漳浦县", "研究生", "厦门大学"),
    ("龙海区", "专科（高职）", "漳州职业技术学院"),
]


def _golden_autumn(
    svc: Casework, clock: StoryClock, out: Console, people: SyntheticPeople, kept: dict[str, list[str]], year: int
) -> None:
    """金秋助学: three students of filed households granted; a second application for one refused by the limit."""
    out.print("[bold]金秋助学[/] (golden_autumn)")
    clock.move_to(_at(dt.date(year, 8, 10)))
    refs: list[tuple[str, str]] = []
    first: dict[str, Any] = {}
    for county, level, school in GOLDEN_CASES:
        if not kept[county]:  # pragma: no cover - every county keeps some households
            continue
        born = (dt.date(year - 23, 1, 1), dt.date(year - 22, 12, 31)) if level == "研究生" else None
        born = born or (dt.date(year - 19, 1, 1), dt.date(year - 18, 12, 31))
        data = {
            "archive_ref": kept[county][min(1, len(kept[county]) - 1)],  # fills the household's name and county
            "student_name": people.name(),
            "student_id_number": people.id_number(county, born),
            "school": school,
            "level": level,
            "admission_year": year,
        }
        first = first or data
        ref = svc.create_case("golden_autumn", CLERK[county], data).ref
        svc.fire(ref, "submit", CLERK[county])
        refs.append((ref, county))
    # the same student applied for again, through the household's clerk, the same year
    county = refs[0][1]
    again = svc.create_case("golden_autumn", CLERK[county], first).ref
    svc.fire(again, "submit", CLERK[county])
    out.print(
        f"  {_today(clock)} {len(refs) + 1} applications for students of filed households "
        f"({', '.join(r for r, _ in refs)}; {again} is the same student as {refs[0][0]}, applied for again)"
    )
    clock.advance(days=1)
    for ref, where in [*refs, (again, county)]:
        svc.fire(ref, "pass_review", REVIEWER[where])
    clock.advance(days=1)
    _publicise(svc, clock, out, "golden_autumn", [r for r, _ in refs] + [again])
    clock.advance(hours=2)
    grants = []
    for ref, _ in refs:
        view = svc.fire(ref, "grant", APPROVER)
        grants.append(f"{view.data['level']} {_yuan(Decimal(view.data['grant']))}")
    out.print(f"  {_today(clock)} the city union grants {len(refs)}: {', '.join(grants)} yuan")
    _refused(
        out, f"{again}: the second grant for the same student in {year}", lambda: svc.fire(again, "grant", APPROVER)
    )
    svc.fire(again, "reject", APPROVER, comment="该生本年度已获金秋助学资助，每名学生每年资助一次")
    clock.advance(days=2)
    for ref, county in refs:
        svc.fire(ref, "record_payment", CLERK[county])
    out.print(f"  {_today(clock)} {again} rejected (不予资助); the {len(refs)} grants paid")


# ---------------------------------------------------------------------- the reports


def _reports(svc: Casework, out: Console, year: int) -> None:
    """The office's reports, as ``casework report NAME`` prints them."""
    from casework.cli.report import show_sheet
    from engine import REPORTS

    for name in REPORTS:
        yearly = name in ("exit-rate", "programmes")
        out.rule(f"casework report {name}" + (f" --year {year}" if yearly else ""))
        show_sheet(svc.report(name, year=year if yearly else None), out)


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
