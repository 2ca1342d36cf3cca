"""Campaigns on a date a supervisor sets each year (a workflow's ``campaign:``).

送温暖 (Spring Festival condolence) happens before the Spring Festival, whose date moves every
year, so no cron line can hold it. The target workflow declares the campaign (``from``: the
workflow whose cases it reaches, ``state``: which of them, ``link_field``: where the reached
case's reference goes, ``year_field``: where the campaign's year goes, ``set_by``: who sets the
date); each year a holder of ``set_by`` covering every county sets the date
(:meth:`Campaigns.set`), which may be replaced or cancelled until it runs.

On or after its date — the first scheduler pass from 00:00 of that day in the workflow's
timezone, or the first after downtime — the campaign runs once (:meth:`Campaigns.run_due`): its
row is claimed pending → ran in the run's own transaction (:mod:`engine.store.campaigns`), beside
a ``job_runs`` row as every scheduled job has, so however many schedulers see it due, one opens
the cases. Opening is the one plan every path uses (:func:`engine.opening.plan_opening`, as
``system``): same-named fields are copied, the link is checked and filled, the year set; a reached
case whose new case the rules refuse (its link, a unique value, a field) is skipped and counted.
A reached case that already has a case of that year (in any state) is never given a second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.access import ALL_SCOPES, SYSTEM, Actor
from engine.catalog import Catalog, Loaded
from engine.clock import Clock
from engine.deadlines import Deadlines
from engine.definition.model import CampaignDef, WorkflowDef
from engine.errors import Code, NotFound, PermissionDenied, RefusedError, WorkflowNotFound
from engine.links import in_hand
from engine.models import iso
from engine.opening import Planned, plan_opening, unique_clashes, write_openings
from engine.steps import Steps
from engine.store import campaigns as store, cases as case_store, jobs as job_store
from engine.store.campaigns import CampaignRow
from engine.store.database import Database
from engine.store.failures import Failure, classify
from engine.users import find_actor

__all__ = ["CampaignRefused", "CampaignView", "Campaigns"]


class CampaignRefused(RefusedError):
    """A campaign's date cannot be set, cancelled or run as asked; nothing was changed."""

    default_code = Code.NO_CAMPAIGN


@dataclass(frozen=True)
class CampaignView:
    """A workflow's campaign and (if set) one year's date: who set it, and whether and how it ran."""

    workflow: str
    label: str
    source: str
    state: str
    year: int | None = None
    date: dt.date | None = None
    status: str = "not set"  # not set | pending | ran | cancelled
    set_by: str | None = None
    set_at: dt.datetime | None = None
    cancelled_by: str | None = None
    cancelled_at: dt.datetime | None = None
    ran_at: dt.datetime | None = None
    opened: int | None = None
    skipped: int | None = None
    outcome: str | None = None
    timezone: str = "Asia/Shanghai"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO text, times in the workflow's timezone."""
        return {
            "workflow": self.workflow,
            "label": self.label,
            "from": self.source,
            "state": self.state,
            "year": self.year,
            "date": self.date.isoformat() if self.date else None,
            "status": self.status,
            "set_by": self.set_by,
            "set_at": iso(self.set_at, self.timezone),
            "cancelled_by": self.cancelled_by,
            "cancelled_at": iso(self.cancelled_at, self.timezone),
            "ran_at": iso(self.ran_at, self.timezone),
            "opened": self.opened,
            "skipped": self.skipped,
            "outcome": self.outcome,
        }


def _view(wf: WorkflowDef, row: CampaignRow | None) -> CampaignView:
    c = wf.campaign
    assert c is not None
    base = CampaignView(wf.name, c.label, c.source, c.state, timezone=wf.timezone)
    if row is None:
        return base
    return CampaignView(
        wf.name,
        c.label,
        c.source,
        c.state,
        year=row.year,
        date=row.on_date,
        status=row.status,
        set_by=row.set_by,
        set_at=row.set_at,
        cancelled_by=row.cancelled_by,
        cancelled_at=row.cancelled_at,
        ran_at=row.ran_at,
        opened=row.opened,
        skipped=row.skipped,
        outcome=row.outcome,
        timezone=wf.timezone,
    )


class Campaigns:
    """Set, cancel, list and run the workflows' yearly campaigns.

    Args:
        db: each change or run is one transaction.
        catalog, steps, deadlines, clock: as the opened cases use them.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, deadlines: Deadlines, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.deadlines = deadlines
        self.clock = clock

    # ------------------------------------------------------------------ the date

    def set(
        self, workflow: str, on: dt.date, actor: str, year: int | None = None
    ) -> tuple[CampaignView, CampaignView | None]:
        """Set the date of ``workflow``'s campaign of programme ``year``; (the campaign, the one it replaced if any).

        ``year`` defaults to ``on``'s year. The programme year is kept apart from the date because the
        Spring Festival may fall in late January: 送温暖 of 2027 then starts in December 2026. The date
        must fall from 1 November of ``year - 1`` to 31 December of ``year``.

        Refused: an unknown workflow (with a did-you-mean), one without ``campaign:``, an actor without
        its ``set_by`` role or not covering every county (the date is city-wide), a date outside the
        year's window, a date before today, a year whose campaign already ran.
        """
        year = on.year if year is None else year

        def work(conn: Connection) -> tuple[CampaignView, CampaignView | None]:
            wf, user = self._allowed(conn, workflow, actor)
            earliest, latest = dt.date(year - 1, 11, 1), dt.date(year, 12, 31)
            if not earliest <= on <= latest:
                raise CampaignRefused(
                    f"{wf.name}: {on.isoformat()} is not a date of {_label(wf)} of {year}: a {year} campaign's "
                    f"date is between {earliest.isoformat()} and {latest.isoformat()} "
                    f"(for another programme year, give --year)",
                    code=Code.CAMPAIGN_OUT_OF_YEAR,
                    workflow=wf.name,
                    year=year,
                    date=on.isoformat(),
                    earliest=earliest.isoformat(),
                    latest=latest.isoformat(),
                )
            today = self._today(wf)
            if on < today:
                raise CampaignRefused(
                    f"{wf.name}: {on.isoformat()} is before today ({today.isoformat()}); "
                    f"set the date of {_label(wf)} on today or later",
                    code=Code.CAMPAIGN_BACKDATED,
                    workflow=wf.name,
                    date=on.isoformat(),
                    today=today.isoformat(),
                )
            before = store.find(conn, wf.name, year)
            if before is not None and before.status == "ran":
                raise _ran(wf, before)
            replaced = _view(wf, before) if before is not None and before.status == "pending" else None
            store.put(conn, wf.name, year, on, user.username, self.clock.now())
            return _view(wf, store.find(conn, wf.name, year)), replaced

        return self.db.transaction(work)

    def cancel(self, workflow: str, year: int, actor: str) -> CampaignView:
        """Cancel ``workflow``'s campaign of ``year`` before it runs (by whoever may set its date)."""

        def work(conn: Connection) -> CampaignView:
            wf, user = self._allowed(conn, workflow, actor)
            row = store.find(conn, wf.name, year)
            if row is not None and row.status == "ran":
                raise _ran(wf, row)
            if row is None or not store.cancel(conn, row.id, user.username, self.clock.now()):
                raise _not_set(wf, year)
            return _view(wf, store.find(conn, wf.name, year))

        return self.db.transaction(work)

    def views(self) -> list[CampaignView]:
        """Each loaded workflow's campaign: every year's date set, or one 'not set' line."""
        out: list[CampaignView] = []
        with self.db.read() as conn:
            for loaded in self.catalog.latest(conn):
                wf = loaded.definition
                if wf.campaign is None:
                    continue
                found = store.rows(conn, wf.name)
                out += [_view(wf, r) for r in found] or [_view(wf, None)]
        return out

    # ------------------------------------------------------------------ running

    def run_due(self) -> list[tuple[str, str, str]]:
        """Run every pending campaign whose date has come; (job, date, outcome) for those run now."""
        done = []
        with self.db.read() as conn:
            due = [(row, self._loaded(conn, row.workflow)) for row in store.pending(conn)]
        for row, loaded in due:
            if loaded is None or loaded.definition.campaign is None:
                continue  # its workflow is gone or no longer declares it: nothing to run
            if row.on_date > self._today(loaded.definition):
                continue
            outcome = self._run_once(row)
            if outcome is not None:
                done.append((f"{row.workflow}:campaign {row.year}", row.on_date.isoformat(), outcome))
        return done

    def run_now(self, workflow: str, actor: str) -> CampaignView:
        """Run ``workflow``'s pending campaign now, if its date is today or past (and it has not run).

        The pending campaign whose date comes first, whatever its programme year (送温暖 of next year may
        be due in December); with none pending, this year's (or next year's, if it ran) is reported.
        """
        with self.db.read() as conn:
            wf, _ = self._allowed(conn, workflow, actor)
            today = self._today(wf)
            found = store.rows(conn, wf.name)
        waiting = sorted((r for r in found if r.status == "pending"), key=lambda r: r.on_date)
        if not waiting:
            over = [r for r in found if r.status == "ran" and r.year >= today.year]
            if over:
                raise _ran(wf, over[-1])
            raise _not_set(wf, today.year)
        row = waiting[0]
        if row.on_date > today:
            raise CampaignRefused(
                f"{_label(wf)} is set for {row.on_date.isoformat()}, not yet due (today is {today.isoformat()}); "
                "it runs by itself on that day, or set it for today first",
                code=Code.CAMPAIGN_NOT_DUE,
                workflow=wf.name,
                year=row.year,
                date=row.on_date.isoformat(),
                today=today.isoformat(),
            )
        with self.db.read() as conn:
            if self._loaded(conn, wf.campaign.source) is None:  # type: ignore[union-attr]
                raise WorkflowNotFound(wf.campaign.source)  # type: ignore[union-attr]
        self._run_once(row)
        with self.db.read() as conn:
            ran = store.find(conn, wf.name, row.year)
        if ran is None or ran.status != "ran":  # pragma: no cover - cancelled at the same moment
            raise _not_set(wf, row.year)
        return _view(wf, ran)

    def _run_once(self, row: CampaignRow) -> str | None:
        try:
            return self.db.transaction(partial(self._run, row=row))
        except Exception as exc:
            if classify(exc) is Failure.UNIQUE:
                return None  # another scheduler claimed the same run
            raise

    def _run(self, conn: Connection, row: CampaignRow) -> str | None:
        target = self.catalog.resolve(conn, row.workflow)
        wf = target.definition
        campaign = wf.campaign
        assert campaign is not None
        now = self.clock.now()
        source = self._loaded(conn, campaign.source)
        if source is None:
            # left pending: it runs once the reached workflow is loaded
            return f"waiting: workflow {campaign.source!r} (its cases are the campaign's) is not loaded"
        if not store.claim(conn, row.id, row.on_date, now):
            return None  # ran, was cancelled or moved to another date meanwhile
        start = dt.datetime.combine(row.on_date, dt.time(), ZoneInfo(wf.timezone))
        if not job_store.claim_run(conn, f"{wf.name}:campaign", start, now):
            return None  # pragma: no cover - the claim above already guards it
        opened, skipped, already = self._open(conn, target, source.definition, campaign, row.year, now)
        outcome = (
            f"{campaign.label} {row.year}: opened {opened} {wf.name} case{'s' if opened != 1 else ''}, "
            f"skipped {skipped}" + (f" ({already} already had one this year)" if already else "")
        )
        store.finish(conn, row.id, opened, skipped, outcome)
        job_store.finish_run(conn, f"{wf.name}:campaign", start, outcome)
        return outcome

    def _open(
        self, conn: Connection, target: Loaded, source: WorkflowDef, c: CampaignDef, year: int, now: dt.datetime
    ) -> tuple[int, int, int]:
        """Open one case of ``target`` per case of ``source`` in ``c.state``; (opened, skipped, already had one)."""
        wf = target.definition
        tz = ZoneInfo(wf.timezone)
        # without a year field, a case of this programme year is one opened in its window (from 1 November
        # before), after last year's campaign ran: 送温暖 of 2027 in December 2026 is not 2026's
        start = dt.datetime(year - 1, 11, 1, tzinfo=tz)
        last = store.find(conn, wf.name, year - 1)
        if last is not None and last.ran_at is not None and last.ran_at >= start:
            start = last.ran_at + dt.timedelta(microseconds=1)
        bounds = (start, dt.datetime(year + 1, 1, 1, tzinfo=tz))
        done = store.reached(conn, wf.name, c.link_field, c.year_field, year, bounds)
        reached = case_store.refs_in_state(conn, source.name, c.state)
        read = in_hand(source, c.state, reached)
        planned: list[Planned] = []
        skipped = already = 0
        for ref, data in reached:
            if ref in done:
                already += 1
                continue
            # same-named fields are copied (as open_cases does); computed and linked-filled ones are the
            # engine's to work out or fill, never copied in
            values = {
                k: v
                for k, v in data.items()
                if k in wf.fields and wf.fields[k].compute is None and k not in wf.filled_by
            }
            values[c.link_field] = ref
            if c.year_field:
                values[c.year_field] = year
            try:
                planned.append(plan_opening(wf, SYSTEM, values, now, links=read))
            except RefusedError:
                skipped += 1
        taken = {i for i, _, _ in unique_clashes(conn, wf, planned)}
        opened = write_openings(
            conn, target, [p for i, p in enumerate(planned) if i not in taken], now, self.deadlines, self.steps.recorder
        )
        return len(opened), skipped + len(taken) + already, already

    # ------------------------------------------------------------------ internals

    def _allowed(self, conn: Connection, workflow: str, actor: str) -> tuple[WorkflowDef, Actor]:
        """The workflow (with a campaign) and the actor, refused unless they hold ``set_by`` and cover every county."""
        user = find_actor(conn, actor)
        wf = self.catalog.resolve(conn, workflow).definition
        c = wf.campaign
        if c is None:
            raise CampaignRefused(
                f"{wf.name} ({wf.title}) declares no campaign, so it has no date to set; "
                "a workflow opened by a yearly campaign declares 'campaign:'",
                workflow=wf.name,
            )
        if c.set_by not in user.roles:
            raise PermissionDenied(
                f"{user.username} ({', '.join(user.roles) or 'no role'}) may not set the date of {_label(wf)}: "
                f"that needs role {c.set_by} ({wf.roles.get(c.set_by, c.set_by)})",
                user=user.username,
                roles=list(user.roles),
                needed=[c.set_by],
            )
        if ALL_SCOPES not in user.scopes:
            raise PermissionDenied(
                f"{user.username} covers {', '.join(user.scopes)}; the date of {_label(wf)} is the same in every "
                "county, so it is set by someone who covers them all (*)",
                code=Code.SCOPE_NOT_COVERED,
                user=user.username,
                scopes=list(user.scopes),
                scope=ALL_SCOPES,
            )
        return wf, user

    def _loaded(self, conn: Connection, workflow: str) -> Loaded | None:
        try:
            return self.catalog.resolve(conn, workflow)
        except NotFound:
            return None

    def _today(self, wf: WorkflowDef) -> dt.date:
        return self.clock.now().astimezone(ZoneInfo(wf.timezone)).date()


def _label(wf: WorkflowDef) -> str:
    assert wf.campaign is not None
    return f"{wf.campaign.label} ({wf.name})"


def _ran(wf: WorkflowDef, row: CampaignRow) -> CampaignRefused:
    return CampaignRefused(
        f"{_label(wf)} of {row.year} already ran on {iso(row.ran_at, wf.timezone)} ({row.outcome}); "
        "it runs once a year: set next year's date instead",
        code=Code.CAMPAIGN_RAN,
        workflow=wf.name,
        year=row.year,
        date=row.on_date.isoformat(),
        ran_at=iso(row.ran_at, wf.timezone),
        outcome=row.outcome,
    )


def _not_set(wf: WorkflowDef, year: int) -> CampaignRefused:
    return CampaignRefused(
        f"no date is set for {_label(wf)} of {year} (or it was cancelled); set one first",
        code=Code.CAMPAIGN_NOT_SET,
        workflow=wf.name,
        year=year,
    )
