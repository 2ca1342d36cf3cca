"""The reports a union office runs: archives, exit rate, programmes, petitions, overdue — each a :class:`Sheet`.

Every figure is counted in the database over the whole database, by one
grouped statement per report (:mod:`engine.store.reports`); this module
decides what to ask from the workflow definitions (which states, which
instants in which time zone) and lays the grouped rows out: labels,
totals over the grouped rows, rates, notes. The definitions, in full, are
in ``docs/reports.md``:

* ``archives`` — archives (``poverty_archive``) per state, county and
  household type, now or as of a date (the state a case was left in by its
  last audit event at or before it);
* ``exit-rate`` — per county: archives on file (``filed``) at the start of
  the year (00:00 on 1 January in the workflow's time zone), the
  denominator; of them, those that exited hardship (``exited``) during the
  year; the rate against the 30 % target. An archive filed *and* exited
  within the year is not in the rate (it was not on file when the year
  began) and is shown in a column of its own;
* ``programmes`` — per programme (a workflow with ``programme:``), county
  and year: cases, granted cases, their people and amounts, the amount paid;
* ``petitions`` — per county: petitions registered, closed (a final state
  that is not void), void, open, overdue; the closure rate against 100 %;
* ``overdue`` — per workflow, county and state: open cases past their
  deadline and not paused, with the oldest deadline, oldest first.

A report holds counts, never personal data, so reading one is not written
to the access log. ``county`` keeps one county; ``scopes`` (the acting
user's) keeps the cases a user may see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.access import ALL_SCOPES
from engine.catalog import Catalog, Loaded
from engine.definition import WorkflowDef
from engine.errors import Code, InputError, RefusedError, WorkflowNotFound
from engine.sheets import Column, Sheet
from engine.store import reports as store, versions as version_store
from engine.suggest import close_match, did_you_mean
from engine.users import declared_by, find_actor

__all__ = [
    "ARCHIVE_WORKFLOW",
    "EXIT_TARGET",
    "FIRST_YEAR",
    "PETITION_TARGET",
    "PETITION_WORKFLOW",
    "REPORTS",
    "archives",
    "check_report",
    "check_year",
    "exit_rate",
    "overdue",
    "petitions",
    "programmes",
    "run_report",
]

#: the workflow whose cases are the archives (建档立卡), and its states the exit rate reads
ARCHIVE_WORKFLOW = "poverty_archive"
FILED = "filed"
EXITED = "exited"
HOUSEHOLD_FIELD = "household_type"
#: the workflow whose cases are petitions (信访)
PETITION_WORKFLOW = "petition"
#: each year at least 30 % of the archives on file should exit hardship (动态管理)
EXIT_TARGET = Decimal("0.30")
#: every petition should be closed (the seed's 100 % 办结)
PETITION_TARGET = Decimal("1")
#: the earliest year a report is asked about (casework keeps no older cases)
FIRST_YEAR = 2000

#: what a cell shows where a rate has no denominator
NO_RATE = "—"
TOTAL = "合计"
#: a rate is shown to a hundredth of a percent
_RATE_PLACES = Decimal("0.0001")
_CENT = Decimal("0.01")
#: the office's time zone, for checking a year before any workflow is read
_SHANGHAI = ZoneInfo("Asia/Shanghai")


# ------------------------------------------------------------------ entry point


def check_report(name: str) -> Callable[..., Sheet]:
    """The report called ``name``; refused (with a did-you-mean) if there is none."""
    runner = REPORTS.get(name)
    if runner is None:
        raise InputError(
            f"there is no report {name!r}{did_you_mean(name, REPORTS)} (reports: {', '.join(REPORTS)})",
            option="report",
            value=name,
        )
    return runner


def run_report(
    conn: Connection,
    catalog: Catalog,
    name: str,
    *,
    now: dt.datetime,
    year: int | None = None,
    county: str | None = None,
    as_of: dt.date | dt.datetime | None = None,
    actor: str | None = None,
) -> Sheet:
    """Run report ``name`` (one of :data:`REPORTS`) with its options; refuse what it does not take.

    ``actor``: count only the cases in the user's scopes (the user must
    exist and be enabled). ``county`` must be a county some loaded workflow
    declares, and one the actor covers.
    """
    runner = check_report(name)
    if as_of is not None and name != "archives":
        raise InputError(
            f"--as-of applies to the archives report only; {name} counts as of now"
            + (" (or of the year given with --year)" if name != "overdue" else ""),
            option="as_of",
            value=str(as_of),
        )
    if year is not None and name in ("archives", "overdue"):
        raise InputError(
            f"the {name} report has no year; "
            + ("give --as-of DATE for the archives as they stood then" if name == "archives" else "it counts now"),
            option="year",
            value=str(year),
        )
    if name == "exit-rate" and year is None:
        raise InputError("the exit-rate report needs --year YYYY, e.g. --year 2026", option="year")
    if name == "programmes" and year is not None:
        # a programme whose year is a field may be asked about next year's grants already
        check_year(year, now.astimezone(_SHANGHAI), ahead=1)
    scopes = _scopes(conn, catalog, county, actor)
    options: dict[str, Any] = {"now": now, "scopes": scopes}
    if name == "archives":
        options["as_of"] = as_of
    if year is not None:
        options["year"] = year
    sheet = runner(conn, catalog, **options)
    meta = {**sheet.meta, "county": county, "as_user": actor}
    return Sheet(sheet.title, sheet.columns, sheet.rows, sheet.notes, meta)


def _scopes(conn: Connection, catalog: Catalog, county: str | None, actor: str | None) -> frozenset[str] | None:
    """The counties a report counts: None for all; the county given, within the actor's scopes."""
    covered: frozenset[str] | None = None
    if actor is not None:
        user = find_actor(conn, actor)
        covered = None if ALL_SCOPES in user.scopes else frozenset(user.scopes)
    if county is None:
        return covered
    known = declared_by(loaded.definition for loaded in catalog.all(conn)).scopes
    if known is not None and county not in known:
        raise InputError(
            f"no loaded workflow has the county {county!r}{did_you_mean(county, known)}", option="county", value=county
        )
    if covered is not None and county not in covered:
        raise RefusedError(
            f"{actor} covers {', '.join(sorted(covered))}, not {county}; "
            f"leave out --county to count {actor}'s counties, or ask as a user who covers {county}",
            code=Code.SCOPE_NOT_COVERED,
            user=actor,
            scopes=sorted(covered),
            scope=county,
        )
    return frozenset([county])


def check_year(year: int, now: dt.datetime, *, ahead: int = 0) -> int:
    """``year`` if a report may be asked about it (from :data:`FIRST_YEAR` to this year + ``ahead``)."""
    last = now.year + ahead
    if isinstance(year, bool) or not isinstance(year, int) or not FIRST_YEAR <= year <= last:
        guess = _year_meant(year, last) if isinstance(year, int) and not isinstance(year, bool) else None
        hint = f"; did you mean {guess}?" if guess else ""
        raise InputError(
            f"year {year!r} is not one a report covers: give the four-digit year, from {FIRST_YEAR} to {last}{hint}",
            option="year",
            value=str(year),
        )
    return year


def _year_meant(year: int, last: int) -> int | None:
    """26 → 2026; 12026 → 2026; 2062 → None (a real year, only not yet)."""
    for guess in (2000 + year if 0 <= year < 100 else None, year % 10_000 if year >= 10_000 else None):
        if guess is not None and FIRST_YEAR <= guess <= last:
            return guess
    return None


# ------------------------------------------------------------------ archives


def archives(
    conn: Connection,
    catalog: Catalog,
    *,
    now: dt.datetime,
    as_of: dt.date | dt.datetime | None = None,
    scopes: Collection[str] | None = None,
) -> Sheet:
    """Archives per state, county and household type: now, or as of a date (its end) or an instant.

    A date means the end of that day in the workflow's time zone (the day's
    events counted); an aware datetime, that instant (events at or before it).
    The state is the one the case's last audit event at or before then left
    it in; its county and household type are read as they are now.
    """
    versions = _versions(conn, catalog, ARCHIVE_WORKFLOW)
    wf = versions[0]
    zone = ZoneInfo(wf.timezone)
    cut = _cut(as_of, zone, now)
    rows = store.archive_counts(conn, ARCHIVE_WORKFLOW, HOUSEHOLD_FIELD, before=cut, scopes=scopes)
    kinds = list(_choices(versions, HOUSEHOLD_FIELD))
    kinds += sorted({r.kind for r in rows if r.kind is not None and r.kind not in kinds})
    unknown = "未填" if any(r.kind is None for r in rows) else None
    columns = [
        Column("state", "状态"),
        Column("county", "县区"),
        *(Column(f"kind_{i}", k, "integer") for i, k in enumerate(kinds)),
        *([Column("kind_none", unknown, "integer")] if unknown else []),
        Column("total", "合计", "integer"),
    ]
    key = {k: f"kind_{i}" for i, k in enumerate(kinds)}
    cells: dict[tuple[str | None, str | None], dict[str, int]] = {}
    for r in rows:
        cell = cells.setdefault((r.state, r.scope), {})
        where = key[r.kind] if r.kind is not None else "kind_none"
        cell[where] = cell.get(where, 0) + r.cases
    labels = _state_labels(versions)
    order = {name: i for i, name in enumerate(labels)}
    county_key = _by_county(versions)
    out: list[dict[str, Any]] = []
    grand: dict[str, int] = {}
    for state in sorted({s for s, _ in cells}, key=lambda s: (order.get(s or "", len(order)), s or "")):
        counties = sorted((county for s, county in cells if s == state), key=county_key)
        subtotal: dict[str, int] = {}
        for county in counties:
            counts = cells[(state, county)]
            out.append({"state": labels.get(state or "", state), "county": county or "—", **_with_total(counts)})
            _add(subtotal, counts)
        if len(counties) > 1:
            out.append({"state": labels.get(state or "", state), "county": "小计", **_with_total(subtotal)})
        _add(grand, subtotal)
    out.append({"state": TOTAL, "county": "", **_with_total(grand)})
    for row in out:
        for column in columns[2:]:
            row.setdefault(column.key, 0)
    when = "now" if cut is None else _local(cut - dt.timedelta(microseconds=1), zone)
    title = f"{wf.title}：档案统计（{'截至现在' if cut is None else '截至 ' + _day(cut, zone)}）"
    notes = [
        "户数：每个档案（案件）计一户；状态为该时点前最后一条审计记录所记的状态"
        if cut is not None
        else "户数：每个档案（案件）计一户，按其现在的状态",
        "县区与困难类型按档案现在的数据",
    ]
    void = [labels[s] for s in _finals(versions)[1] if s in labels]
    if void:
        notes.append(f"{'、'.join(sorted(void))}的档案也列出，不计为在档")
    meta = {"report": "archives", "workflow": ARCHIVE_WORKFLOW, "as_of": when, "states": labels}
    return Sheet(title, tuple(columns), out, tuple(notes), meta)


def _cut(as_of: dt.date | dt.datetime | None, zone: ZoneInfo, now: dt.datetime) -> dt.datetime | None:
    """The first instant not counted (events before it are), or None for now."""
    if as_of is None:
        return None
    if isinstance(as_of, dt.datetime):
        if as_of.tzinfo is None or as_of.utcoffset() is None:
            raise InputError("as-of must be an aware datetime (with a time zone) or a date", option="as_of")
        if as_of > now:
            raise InputError(
                f"as-of {as_of.isoformat()} is after now ({now.astimezone(zone).isoformat(timespec='seconds')}); "
                "leave it out to count the archives as they are now",
                option="as_of",
                value=as_of.isoformat(),
            )
        cut = as_of + dt.timedelta(microseconds=1)
    else:
        today = now.astimezone(zone).date()
        if as_of > today:
            raise InputError(
                f"as-of {as_of.isoformat()} is after today ({today.isoformat()}); "
                "leave it out to count the archives as they are now",
                option="as_of",
                value=as_of.isoformat(),
            )
        cut = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone)
    # nothing happens after now: the end of today is now, counted from the rows (the fast path)
    return None if cut > now else cut.astimezone(dt.UTC)


def _with_total(counts: Mapping[str, int]) -> dict[str, int]:
    return {**counts, "total": sum(counts.values())}


def _add(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v


# ------------------------------------------------------------------ exit rate


def exit_rate(
    conn: Connection,
    catalog: Catalog,
    *,
    now: dt.datetime,
    year: int,
    scopes: Collection[str] | None = None,
) -> Sheet:
    """Per county and in total: archives on file at the start of ``year``, of them exited in it, the rate.

    The start of the year is 00:00 on 1 January in the workflow's time zone;
    an archive is on file then if its last audit event before that instant
    left it in ``filed``. It exited in the year if it entered ``exited`` from
    then until the next 1 January. Archives filed during the year (not on
    file at its start) are counted apart, with those of them that also
    exited: they are not in the rate.
    """
    versions = _versions(conn, catalog, ARCHIVE_WORKFLOW)
    wf = versions[0]
    zone = ZoneInfo(wf.timezone)
    check_year(year, now.astimezone(zone))
    start, end = (at for _, at in store.year_starts(zone, year, year))
    rows = store.exit_counts(conn, ARCHIVE_WORKFLOW, start=start, end=end, filed=FILED, exited=EXITED, scopes=scopes)
    labels = _state_labels(versions)
    filed, exited = labels.get(FILED, FILED), labels.get(EXITED, EXITED)
    filing = filed.removeprefix("已")  # 已建档 → 年内新建档
    columns = (
        Column("county", "县区"),
        Column("on_file", f"年初{filed}户数", "integer"),
        Column("exited", f"其中年内{exited}", "integer"),
        Column("rate", f"{exited}率", "percent"),
        Column("target", "目标", "percent"),
        Column("met", "是否达标"),
        Column("new", f"年内新{filing}", "integer"),
        Column("new_exited", f"年内新{filing}并{exited}", "integer"),
    )
    out = []
    total = [0, 0, 0, 0]
    county_key = _by_county(versions)
    for r in sorted(rows, key=lambda r: county_key(r.scope)):
        figures = [r.filed_at_start, r.exited, r.filed_in_year, r.filed_and_exited]
        total = [a + b for a, b in zip(total, figures, strict=True)]
        out.append(_exit_row(r.scope or "—", *figures))
    out.append(_exit_row(TOTAL, *total))
    begun = dt.datetime(year, 1, 1, tzinfo=zone)
    notes = [
        f"分母：{year}-01-01 00:00（{wf.timezone}）时状态为“{filed}”的档案户数，即该时点前最后一条审计记录所记的状态",
        f"分子：分母中在 {year} 年内转为“{exited}”的户数；{exited}率 = 分子 ÷ 分母，目标不低于 30%",
        f"年内新{filing}的档案（年初不是“{filed}”）不在分母中，不计入{exited}率；其中年内又{exited}的另列",
        f"分母为 0 的县区{exited}率显示“{NO_RATE}”",
    ]
    if now.astimezone(zone).year == year:
        notes.append(f"{year} 年尚未结束：计至 {_local(now, zone)}")
    meta = {
        "report": "exit-rate",
        "workflow": ARCHIVE_WORKFLOW,
        "year": year,
        "year_starts": begun.isoformat(),
        "target": str(EXIT_TARGET),
    }
    return Sheet(f"{wf.title}：{year} 年{exited}率", columns, out, tuple(notes), meta)


def _exit_row(county: str, on_file: int, exited: int, new: int, new_exited: int) -> dict[str, Any]:
    rate = _rate(exited, on_file)
    met = NO_RATE if on_file == 0 else ("是" if exited * 100 >= on_file * int(EXIT_TARGET * 100) else "否")
    return {
        "county": county,
        "on_file": on_file,
        "exited": exited,
        "rate": rate,
        "target": EXIT_TARGET,
        "met": met,
        "new": new,
        "new_exited": new_exited,
    }


def _rate(part: int, whole: int) -> Decimal | str:
    """``part / whole`` as a fraction to four places (a percent to two), or "—" when ``whole`` is 0."""
    if whole == 0:
        return NO_RATE
    return (Decimal(part) / Decimal(whole)).quantize(_RATE_PLACES)


# ------------------------------------------------------------------ programmes


def programmes(
    conn: Connection,
    catalog: Catalog,
    *,
    now: dt.datetime,
    year: int | None = None,
    scopes: Collection[str] | None = None,
) -> Sheet:
    """Per programme (each loaded workflow with ``programme:``), year and county: cases, people, amounts.

    Cases: every case of the programme opened (or, with a year field, for)
    that year. Granted: those in one of the programme's granted states; their
    people (the people field, 1 per case without one) and amount; paid: the
    amount of those in a paid state. Amounts are summed in integer cents.
    """
    progs = [loaded.definition for loaded in catalog.latest(conn) if loaded.definition.programme is not None]
    columns = (
        Column("programme", "项目"),
        Column("year", "年度", "integer"),
        Column("county", "县区"),
        Column("cases", "申请件数", "integer"),
        Column("granted_cases", "获助件数", "integer"),
        Column("people", "获助人数", "integer"),
        Column("granted", "核定金额（元）", "decimal"),
        Column("paid", "已发放金额（元）", "decimal"),
    )
    out: list[dict[str, Any]] = []
    for wf in sorted(progs, key=lambda w: w.name):
        prog = wf.programme
        assert prog is not None
        zone = ZoneInfo(wf.timezone)
        this_year = now.astimezone(zone).year
        starts = store.year_starts(zone, FIRST_YEAR, this_year + 1)
        rows = store.programme_totals(
            conn,
            wf.name,
            amount=prog.amount,
            people=prog.people,
            year_field=prog.year,
            starts=starts,
            granted=prog.granted,
            paid=prog.paid,
            year=year,
            scopes=scopes,
        )
        by_year: dict[int | None, list[store.ProgrammeTotal]] = {}
        county_key = _by_county([wf])
        for r in sorted(rows, key=lambda r: county_key(r.scope)):
            by_year.setdefault(r.year, []).append(r)
        for y in sorted(by_year, key=lambda v: (v is None, v or 0)):
            group = by_year[y]
            for r in group:
                out.append(_programme_row(prog.label, y, r.scope or "—", r))
            if len(group) > 1:
                out.append(_programme_row(prog.label, y, TOTAL, *group))
    notes = [
        "申请件数：该年度开立的全部案件（含未获助、已撤回）；获助：处于项目“核定”状态（含已发放）的案件",
        "获助人数：按项目的人数字段合计（无人数字段的项目每件计 1 人）；金额按分精确合计，不经浮点",
        "年度：项目的年度字段；无年度字段的项目按案件开立时间（业务时区）所在年度",
    ]
    if not progs:
        notes.insert(0, "没有已加载的业务声明 programme:，无项目可统计")
    meta = {
        "report": "programmes",
        "year": year,
        "programmes": {w.name: w.programme.label for w in progs if w.programme},
    }
    title = "帮扶项目统计" + (f"（{year} 年度）" if year is not None else "")
    return Sheet(title, columns, out, tuple(notes), meta)


def _programme_row(label: str, year: int | None, county: str, *parts: store.ProgrammeTotal) -> dict[str, Any]:
    return {
        "programme": label,
        "year": year,
        "county": county,
        "cases": sum(p.cases for p in parts),
        "granted_cases": sum(p.granted_cases for p in parts),
        "people": sum(p.people for p in parts),
        "granted": _yuan(sum(p.granted_cents for p in parts)),
        "paid": _yuan(sum(p.paid_cents for p in parts)),
    }


def _yuan(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(_CENT)


# ------------------------------------------------------------------ petitions


def petitions(
    conn: Connection,
    catalog: Catalog,
    *,
    now: dt.datetime,
    year: int | None = None,
    scopes: Collection[str] | None = None,
) -> Sheet:
    """Per county and in total: petitions registered, closed, void, open, overdue; the closure rate.

    Closed: in a final state that is not void; void: in a void final state
    (not taken up, withdrawn). The closure rate is closed ÷ (registered −
    void), against 100 %. Overdue: open, past its deadline and not paused.
    ``year``: only petitions registered (opened) in that year.
    """
    versions = _versions(conn, catalog, PETITION_WORKFLOW)
    wf = versions[0]
    zone = ZoneInfo(wf.timezone)
    closed, void = _finals(versions)
    opened = None
    if year is not None:
        check_year(year, now.astimezone(zone))
        start, end = (at for _, at in store.year_starts(zone, year, year))
        opened = (start, end)
    rows = store.petition_counts(
        conn, PETITION_WORKFLOW, closed=closed, void=void, now=now, opened=opened, scopes=scopes
    )
    labels = _state_labels(versions)

    def names(states: Iterable[str]) -> str:
        return "、".join(labels.get(s, s) for s in sorted(states)) or "无"

    # the void column is named by the workflow's own void states (撤回; 不予受理 where that is void)
    voided = names(void) if void else "作废"
    columns = (
        Column("county", "县区"),
        Column("registered", "登记件数", "integer"),
        Column("closed", "已办结", "integer"),
        Column("void", voided, "integer"),
        Column("rate", "办结率", "percent"),
        Column("open", "在办", "integer"),
        Column("overdue", "其中逾期", "integer"),
    )
    out = []
    total = [0, 0, 0, 0, 0]
    county_key = _by_county(versions)
    for r in sorted(rows, key=lambda r: county_key(r.scope)):
        figures = [r.registered, r.closed, r.void, r.open, r.overdue]
        total = [a + b for a, b in zip(total, figures, strict=True)]
        out.append(_petition_row(r.scope or "—", *figures))
    out.append(_petition_row(TOTAL, *total))
    notes = [
        f"已办结：处于非作废的终结状态（{names(closed)}）；{voided}：处于作废的终结状态，不计入办结率",
        f"办结率 = 已办结 ÷（登记件数 − {voided}），目标 100%；分母为 0 时显示“{NO_RATE}”",
        f"逾期：在办且已过办理期限、未暂停计时的件数（截至 {_local(now, zone)}）",
    ]
    if year is not None:
        notes.append(f"仅统计 {year} 年内登记（{wf.timezone}）的信访件")
    meta = {"report": "petitions", "workflow": PETITION_WORKFLOW, "year": year, "target": str(PETITION_TARGET)}
    title = f"{wf.title}：办理情况" + (f"（{year} 年）" if year is not None else "")
    return Sheet(title, columns, out, tuple(notes), meta)


def _petition_row(county: str, registered: int, closed: int, void: int, open_: int, late: int) -> dict[str, Any]:
    return {
        "county": county,
        "registered": registered,
        "closed": closed,
        "void": void,
        "rate": _rate(closed, registered - void),
        "open": open_,
        "overdue": late,
    }


def _finals(versions: Sequence[WorkflowDef]) -> tuple[set[str], set[str]]:
    """State names that are final and not void (closed), and final and void — by their newest version."""
    closed: set[str] = set()
    void: set[str] = set()
    seen: set[str] = set()
    for wf in versions:  # newest first: a state's newest definition decides
        for st in wf.states.values():
            if st.name in seen:
                continue
            seen.add(st.name)
            if st.final:
                (void if st.void else closed).add(st.name)
    return closed, void


# ------------------------------------------------------------------ overdue


def overdue(
    conn: Connection,
    catalog: Catalog,
    *,
    now: dt.datetime,
    scopes: Collection[str] | None = None,
) -> Sheet:
    """Per workflow, county and state (step): open cases past their deadline, not paused; oldest deadline first."""
    found = store.overdue_counts(conn, now=now, scopes=scopes)
    defs: dict[str, list[WorkflowDef]] = {}
    for name in sorted({r.workflow for r in found}):
        defs[name] = _versions(conn, catalog, name)
    # oldest first; ties in the counties' declared order (not the database's collation, which differs)
    keys = {name: _by_county(versions) for name, versions in defs.items()}
    rows = sorted(found, key=lambda r: (r.oldest, r.workflow, keys[r.workflow](r.scope), r.state))
    columns = (
        Column("workflow", "业务"),
        Column("county", "县区"),
        Column("state", "环节"),
        Column("cases", "逾期件数", "integer"),
        Column("oldest", "最早期限"),
    )
    out = []
    for r in rows:
        versions = defs[r.workflow]
        wf = versions[0]
        label = _state_labels(versions).get(r.state, r.state)
        out.append(
            {
                "workflow": wf.title,
                "county": r.scope or "—",
                "state": f"{label}（{r.state}）" if label != r.state else r.state,
                "cases": r.cases,
                "oldest": _local(r.oldest, ZoneInfo(wf.timezone)),
            }
        )
    cases = sum(r.cases for r in rows)
    out.append({"workflow": TOTAL, "county": "", "state": "", "cases": cases, "oldest": ""})
    notes = [
        f"逾期：已过办理期限（期限不晚于 {_local(now, _SHANGHAI)}）且未暂停计时的在办案件；按最早期限排列",
        "期限按各业务的工作日历与时区计算，显示为业务时区的本地时间",
    ]
    meta = {"report": "overdue", "now": now.astimezone(dt.UTC).isoformat(timespec="seconds")}
    return Sheet("逾期案件：按县区与环节", columns, out, tuple(notes), meta)


# ------------------------------------------------------------------ shared


#: report name → the function that makes it (``run_report`` passes the options each takes)
REPORTS: Mapping[str, Callable[..., Sheet]] = {
    "archives": archives,
    "exit-rate": exit_rate,
    "programmes": programmes,
    "petitions": petitions,
    "overdue": overdue,
}


def _versions(conn: Connection, catalog: Catalog, workflow: str) -> list[WorkflowDef]:
    """Every stored version of ``workflow``, newest first; refuse if it is not loaded."""
    loaded: list[Loaded] = catalog.all(conn, workflow)
    if not loaded:
        names = version_store.workflow_names(conn)
        raise WorkflowNotFound(workflow, suggestion=close_match(workflow, names), known=names)
    return sorted((x.definition for x in loaded), key=lambda wf: wf.version, reverse=True)


def _state_labels(versions: Iterable[WorkflowDef]) -> dict[str, str]:
    """State name → label, in the newest version's order; a state only older versions have comes after."""
    labels: dict[str, str] = {}
    for wf in versions:
        for st in wf.states.values():
            labels.setdefault(st.name, st.label)
    return labels


def _by_county(versions: Iterable[WorkflowDef]) -> Callable[[str | None], tuple[int, str]]:
    """A sort key for counties: the order the workflow's scope field declares them in, then by name.

    Sorting grouped rows here, not in SQL, keeps both backends in one order
    (PostgreSQL sorts text by its locale's collation, SQLite by code point).
    """
    order: dict[str, int] = {}
    for wf in versions:
        if wf.scope_field is not None:
            for county in wf.fields[wf.scope_field].choices:
                order.setdefault(county, len(order))
    return lambda county: (order.get(county or "", len(order)), county or "")


def _choices(versions: Iterable[WorkflowDef], field: str) -> dict[str, None]:
    out: dict[str, None] = {}
    for wf in versions:
        f = wf.fields.get(field)
        if f is not None:
            out.update(dict.fromkeys(f.choices))
    return out


def _local(at: dt.datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _day(cut: dt.datetime, zone: ZoneInfo) -> str:
    """The cut (first instant not counted) as the day it ends, or the instant before it."""
    local = cut.astimezone(zone)
    if local.time() == dt.time():
        return (local.date() - dt.timedelta(days=1)).isoformat()
    return (local - dt.timedelta(microseconds=1)).strftime("%Y-%m-%d %H:%M:%S")
