"""``casework case import`` and ``casework case fire-many``: the bulk paths, with a progress bar.

The file is read here (:mod:`casework.importfile`); every rule runs in the
engine. The progress bar goes to stderr, so ``--json`` output stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import actor_option, batch_option, json_option
from casework.cli.output import emit_json, err, out, visible
from casework.cli.wording import word

__all__ = ["case_fire_many", "case_import"]


@contextmanager
def _progress(label: str, total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    if quiet or not err.is_terminal:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err._get(), transient=True
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@click.command("import")
@click.argument("workflow")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@actor_option()
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows and report the others (default: none).")
@batch_option
@json_option("Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_app
def case_import(
    app: AppContext, workflow: str, file: Path, actor: str, skip_invalid: bool, batch: int, as_json: bool, quiet: bool
) -> None:
    """Open one case per row of FILE (.csv UTF-8 or .xlsx; header row = field names or labels).

    Every row is checked first; if any is invalid nothing is imported and
    each bad row is listed with its line number, unless --skip-invalid.
    """
    from casework.importfile import read_rows
    from engine import InputError

    svc = app.service()
    wf = svc.workflow(workflow)
    total, rows = read_rows(file, wf)
    if total == 0:
        raise InputError(f"{file}: no rows to import below the header")
    # each row is counted twice: once checked, once written
    with _progress(f"importing {file.name}", total * 2, quiet) as advance:
        report = svc.import_cases(workflow, actor, rows, skip_invalid=skip_invalid, batch=batch, progress=advance)
    if as_json:
        emit_json(report.to_json())
        return
    if report.imported:
        out.print(
            f"imported {len(report.imported)} {workflow} cases: {report.imported[0]} … {report.imported[-1]}",
            markup=False,
        )
    else:
        out.print("imported nothing", markup=False)
    for problem in report.skipped:
        err.print(visible(f"skipped {problem}"), markup=False)


@click.command("fire-many")
@click.argument("trigger")
@click.argument("refs", nargs=-1)
@actor_option()
@click.option("--refs-file", type=click.File("r", encoding="utf-8"), help="Read refs from this file, one per line.")
@click.option("--comment", help="Why (required by some steps); the same for every case.")
@batch_option
@json_option("Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@pass_app
def case_fire_many(
    app: AppContext,
    trigger: str,
    refs: tuple[str, ...],
    actor: str,
    refs_file: IO[str] | None,
    comment: str | None,
    batch: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Take the step TRIGGER on every case in REFS (and/or --refs-file; '-' reads stdin).

    Each case is checked as 'case fire' checks it; a refused case is listed
    with its reason and the others go ahead. Exit 1 if any was refused.
    """
    wanted = list(refs)
    if refs_file is not None:
        wanted += [line.strip() for line in refs_file if line.strip() and not line.startswith("#")]
    if not wanted:
        raise click.UsageError("no cases given: name refs, or --refs-file FILE")
    svc = app.service()
    with _progress(trigger, len(set(wanted)), quiet) as advance:
        report = svc.fire_many(wanted, trigger, actor, comment=comment, batch=batch, progress=advance)
    if as_json:
        emit_json(report.to_json())
    else:
        out.print(f"{trigger}: {len(report.fired)} fired, {len(report.refused)} refused", markup=False)
        for r in report.refused:
            # a ref is what a refs file said: shown visible, as any text that came from outside
            err.print(visible(f"refused {r.ref}: {word(r.code, r.reason, r.facts)}"), markup=False)
    if report.refused:
        raise SystemExit(1)
