"""``casework scheduler``: the clock — sweeps due timers and relays the outbox until told to stop."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from casework.cli.context import AppContext, pass_app

__all__ = ["add_sweep", "scheduler", "sweep_once"]

logger = logging.getLogger("casework.scheduler")


def sweep_once(svc: Any, relay: Any, stopping: threading.Event, *, quiet: bool = False) -> None:
    """One tick of the clock: fire due timers, run due scheduled jobs and campaigns, relay the outbox.

    ``quiet`` (the clock inside ``casework serve``): a tick that did nothing is logged at DEBUG, so the
    server's output is its requests and what the clock did, not a line every few seconds.
    """
    report = svc.sweep(should_stop=stopping.is_set)
    svc.run_due_schedules()
    relayed: Any = relay.run_once() if relay else None
    idle = not (report.fired or report.held or report.discarded or report.failed) and not (
        relayed and (relayed.sent or relayed.failed or relayed.dead)
    )
    logger.log(
        logging.DEBUG if quiet and idle else logging.INFO,
        "sweep: fired %s, held %s, discarded %s, failed %s%s",
        report.fired,
        report.held,
        report.discarded,
        report.failed,
        f"; outbox: sent {relayed.sent}, retry {relayed.failed}, dead {relayed.dead}" if relayed else "",
    )


def add_sweep(sched: Any, tick: Callable[[], None], interval: float) -> None:
    """Run ``tick`` every ``interval`` seconds on ``sched``, starting now.

    misfire_grace_time=None: a late run still runs (APScheduler 3's default of 1 s would drop it);
    coalesce: after a pause, one catch-up run, which fires everything due anyway.
    """
    sched.add_job(
        tick,
        "interval",
        seconds=interval,
        id="sweep",
        next_run_time=dt.datetime.now(dt.UTC),
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
    )


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=10.0,
    show_default=True,
    help="Seconds between sweeps of due timers and the outbox.",
)
@click.option("--no-relay", is_flag=True, help="Only fire timers; leave the outbox to another process.")
@pass_app
def scheduler(app: AppContext, interval: float, no_relay: bool) -> None:
    """Run the clock in the foreground: fire due timers and relay the outbox, until SIGTERM or Ctrl-C.

    Any number of schedulers may run against one database: timers and outbox
    rows are claimed under row locks, so each fires once. The database is
    the truth; APScheduler only wakes the sweep (its jobs live in memory,
    never shared between processes), and a timer missed during downtime
    fires on the next sweep however late it is.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    from casework.cli.outbox import make_relay

    # our own progress at INFO; libraries (transitions logs every callback) only when something is wrong
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("casework", "engine", "notifications"):
        logging.getLogger(name).setLevel(logging.INFO)
    svc = app.service()
    relay = None if no_relay else make_relay(app)

    stopping = threading.Event()

    def tick() -> None:
        sweep_once(svc, relay, stopping)

    sched = BlockingScheduler(timezone="UTC")
    add_sweep(sched, tick, interval)

    def stop(signum: int, _frame: Any) -> None:
        # a signal handler does as little as possible: locks taken here could deadlock
        if stopping.is_set():
            return  # a second signal while stopping: already on its way
        stopping.set()
        threading.Thread(target=sched.shutdown, kwargs={"wait": False}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("scheduler started: sweeping every %s s%s", interval, "" if relay else " (no outbox relay)")
    sched.start()
    # from here on we are leaving anyway: a late second signal must not kill the
    # process while the sweep in progress finishes and reports
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stopping.is_set():
        logger.info("stopped by a signal after the current timer")
    logger.info("scheduler stopped")
