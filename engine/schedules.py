"""Scheduled jobs a workflow declares (``schedules:``): the overdue digest, and campaigns that open cases;
and the campaigns on a date a supervisor sets (``campaign:``, :mod:`engine.campaigns`), run on the same pass.

Each (job, due time) runs once across all scheduler processes: the
``job_runs`` row is claimed first in the job's transaction, so a second
process either waits and fails on the unique key, or finds the row. After
downtime a job runs once, for its latest due time (coalesced), not once per
missed time.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.access import SYSTEM, Actor, Person
from engine.campaigns import Campaigns
from engine.catalog import Catalog, Loaded
from engine.clock import Clock
from engine.deadlines import Deadlines
from engine.definition.model import ScheduleDef, WorkflowDef
from engine.errors import NotFound, RefusedError
from engine.links import in_hand
from engine.models import iso
from engine.opening import Planned, plan_opening, unique_clashes, write_openings
from engine.outbox import case_context, user_messages
from engine.queries import overdue_for
from engine.steps import Steps
from engine.store import cases as case_store, jobs as job_store
from engine.store.database import Database
from engine.store.failures import Failure, classify
from engine.store.outbox import add_messages
from engine.store.users import directory

__all__ = ["Schedules", "latest_fire_time"]

logger = logging.getLogger(__name__)


def latest_fire_time(
    cron: str, tz: str, now: dt.datetime, lookback: dt.timedelta = dt.timedelta(days=7)
) -> dt.datetime | None:
    """The latest time at or before ``now`` that ``cron`` was due (within ``lookback``), or None."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    last = None
    at = trigger.get_next_fire_time(None, now - lookback)
    for _ in range(20_000):  # a minutely job over a week, bounded
        if at is None or at > now:
            break
        last = at
        at = trigger.get_next_fire_time(at, at + dt.timedelta(seconds=1))
    return last


class Schedules:
    """Runs the due jobs of every workflow's latest version.

    Args:
        db: each job run is one transaction.
        catalog, steps, deadlines, clock: as the jobs' cases use them.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, deadlines: Deadlines, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.deadlines = deadlines
        self.clock = clock
        self.campaigns = Campaigns(db, catalog, steps, deadlines, clock)

    def run_due(self) -> list[tuple[str, str, str]]:
        """Run every job whose latest due time has not run yet, then every campaign whose date has come;
        (job, due time, outcome) for those run now."""
        now = self.clock.now()
        done = []
        with self.db.read() as conn:
            latest = self.catalog.latest(conn)
        for loaded in latest:
            wf = loaded.definition
            for schedule in wf.schedules:
                fire = latest_fire_time(schedule.cron, wf.timezone, now)
                if fire is None:
                    continue
                job = f"{wf.name}:{schedule.name}"
                try:
                    outcome = self.db.transaction(
                        partial(self._run, loaded=loaded, schedule=schedule, job=job, fire=fire)
                    )
                except Exception as exc:
                    if classify(exc) is Failure.UNIQUE:
                        continue  # another scheduler ran it for this due time
                    raise
                if outcome is not None:
                    done.append((job, iso(fire, wf.timezone) or "", outcome))
                    logger.info("job %s for %s: %s", job, fire.isoformat(), outcome)
        for job, on, outcome in self.campaigns.run_due():
            done.append((job, on, outcome))
            logger.info("campaign %s on %s: %s", job, on, outcome)
        return done

    def _run(self, conn: Connection, loaded: Loaded, schedule: ScheduleDef, job: str, fire: dt.datetime) -> str | None:
        wf = loaded.definition
        now = self.clock.now()
        if not job_store.claim_run(conn, job, fire, now):
            return None
        local_day = fire.astimezone(ZoneInfo(wf.timezone)).date()
        if schedule.working_days_only and not self.deadlines.is_working_day(local_day):
            outcome = f"skipped: {local_day} is not a working day"
        elif schedule.action == "open_cases":
            outcome = self._open_cases(conn, wf, schedule, now)
        else:
            outcome = self._digest(conn, loaded, schedule, job, fire, now)
        job_store.finish_run(conn, job, fire, outcome)
        return outcome

    def _digest(
        self, conn: Connection, loaded: Loaded, schedule: ScheduleDef, job: str, fire: dt.datetime, now: dt.datetime
    ) -> str:
        """Tell everyone holding ``schedule.to`` what is overdue and waiting for them."""
        wf = loaded.definition
        assert schedule.template is not None
        people = [p for p in directory(conn) if schedule.to in p.roles]
        sent = 0
        for person in people:
            user = Actor(person.username, tuple(person.roles), tuple(person.scopes))
            overdue = overdue_for(self.catalog, conn, user, now, wf.name)
            if not overdue:
                continue
            rows = []
            for case, version in overdue:
                view = self.steps.view(version.definition, case)
                rows.append(
                    {
                        **case_context(version.definition, case.ref, case.state, case.data),
                        "deadline": iso(view.deadline, wf.timezone),
                        "left": view.time_left,
                    }
                )
            sent += add_messages(conn, self._digest_rows(loaded, schedule, job, fire, person, rows, now))
        return f"{schedule.action}: {sent} message{'s' if sent != 1 else ''} to {len(people)} {schedule.to}(s)"

    @staticmethod
    def _digest_rows(
        loaded: Loaded,
        schedule: ScheduleDef,
        job: str,
        fire: dt.datetime,
        person: Person,
        cases: list[dict[str, object]],
        now: dt.datetime,
    ) -> list[dict[str, object]]:
        wf = loaded.definition
        assert schedule.template is not None
        return user_messages(
            version_id=loaded.id,
            key=f"job:{job}:{fire.isoformat()}:{person.username}",
            user=person,
            template=schedule.template,
            channels=("inbox", "email"),
            now=now,
            context={
                "cases": cases,
                "workflow": {"name": wf.name, "title": wf.title},
                "date": fire.astimezone(ZoneInfo(wf.timezone)).date().isoformat(),
            },
        )

    def _open_cases(self, conn: Connection, wf: WorkflowDef, schedule: ScheduleDef, now: dt.datetime) -> str:
        """A campaign: open one case of ``schedule.workflow`` for every case of ours in ``from_state``."""
        assert schedule.workflow is not None and schedule.from_state is not None
        try:
            target = self.catalog.resolve(conn, schedule.workflow)
        except NotFound:
            return f"open_cases: workflow {schedule.workflow!r} is not loaded"
        fields = target.definition.fields
        filled = target.definition.filled_by
        planned: list[Planned] = []
        skipped = 0
        reached = case_store.refs_in_state(conn, wf.name, schedule.from_state)
        read = in_hand(wf, schedule.from_state, reached)  # a link: on the new case reads these, no query
        for ref, data in reached:
            # same-named fields are copied; a computed one is the engine's to work out, and one a link fills
            # is filled from the linked case, never copied in
            values = {k: v for k, v in data.items() if k in fields and fields[k].compute is None and k not in filled}
            if schedule.link_field:
                values[schedule.link_field] = ref
            try:
                planned.append(plan_opening(target.definition, SYSTEM, values, now, links=read))
            except RefusedError:
                skipped += 1
        # e.g. last year's review of this archive is still open: skip it, open the rest
        taken = {i for i, _, _ in unique_clashes(conn, target.definition, planned)}
        opened = write_openings(
            conn, target, [p for i, p in enumerate(planned) if i not in taken], now, self.deadlines, self.steps.recorder
        )
        skipped += len(taken)
        count = len(opened)
        return f"open_cases: opened {count} {schedule.workflow} case{'s' if count != 1 else ''}, skipped {skipped}"
