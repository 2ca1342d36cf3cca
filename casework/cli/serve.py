"""``casework serve``: the web application, served by uvicorn (and, on SQLite, the clock beside it)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

import click

from casework.cli.context import AppContext, pass_app

__all__ = ["serve"]

logger = logging.getLogger("casework.serve")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="The port.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (sessions live in the database, so workers and hosts share them).",
)
@click.option(
    "--no-scheduler",
    is_flag=True,
    help="Do not run the clock (timers, campaigns, the outbox relay) in this process. On SQLite it runs "
    "here by default; on PostgreSQL never (run 'casework scheduler' as its own process).",
)
@click.option(
    "--interval", type=click.FloatRange(min=0.2), default=10.0, show_default=True, help="Seconds between sweeps."
)
@pass_app
def serve(app: AppContext, host: str, port: int, workers: int, no_scheduler: bool, interval: float) -> None:
    """Serve the web application until Ctrl-C or SIGTERM.

    Put a reverse proxy with TLS in front of it for anything but this
    machine, and set CASEWORK_WEB_SECURE_COOKIES=1 there. Users log in with
    the password 'casework user passwd' sets.
    """
    import uvicorn

    from casework.web.app import create_app

    svc = app.service()  # checks the schema before anything listens
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("casework", "engine", "notifications"):
        logging.getLogger(name).setLevel(logging.INFO)
    sqlite = svc.engine.dialect.name == "sqlite"
    clock = None
    if sqlite and not no_scheduler:
        clock = _start_clock(app, interval)
    click.echo(f"casework: serving {app.safe_url()} at http://{host}:{port}/ (Ctrl-C stops it)", err=True)
    try:
        if workers == 1:
            config = uvicorn.Config(create_app(svc), host=host, port=port, log_level="info", proxy_headers=True)
            uvicorn.Server(config).run()
        else:
            # each worker builds its own engine from the same URL
            os.environ["CASEWORK_DB"] = app.url
            uvicorn.run(
                "casework.web.app:app_from_env",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level="info",
                proxy_headers=True,
            )
    finally:
        if clock is not None:
            clock()


def _start_clock(app: AppContext, interval: float) -> Callable[[], None]:
    """Start the sweep in a background thread; returns the function that stops it."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from casework.cli.outbox import make_relay
    from casework.cli.scheduler import add_sweep, sweep_once

    svc = app.service()
    relay = make_relay(app)
    stopping = threading.Event()
    sched = BackgroundScheduler(timezone="UTC")
    add_sweep(sched, lambda: sweep_once(svc, relay, stopping, quiet=True), interval)
    sched.start()
    logger.info("the clock runs in this process: sweeping every %s s", interval)

    def stop() -> None:
        stopping.set()
        sched.shutdown(wait=True)

    return stop
