"""Options shared by several commands, and turning ``--set``/``--data-file`` into case data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from casework.cli.context import AppContext
from engine.limits import DEFAULT_BATCH, MAX_BATCH

__all__ = [
    "actor_option",
    "batch_option",
    "case_data",
    "data_file_option",
    "json_option",
    "output_file",
    "parse_sets",
    "set_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(AppContext).json = True
    return value


def json_option(help: str = "Print JSON (a refusal too: its code, facts and message).") -> Callable[[F], F]:
    """``--json``: output for scripts; a refusal is then printed as JSON on stdout as well."""
    return click.option("--json", "as_json", is_flag=True, help=help, callback=_remember_json)


set_option = click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Set a field (repeatable).")
data_file_option = click.option(
    "--data-file", type=click.Path(dir_okay=False), help="JSON object of field values (--set wins over it)."
)
batch_option = click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH),
    default=DEFAULT_BATCH,
    show_default=True,
    help="Cases per transaction.",
)


def actor_option(help: str = "Who is acting.", required: bool = True) -> Callable[[F], F]:
    """``--as USER``."""
    return click.option("--as", "actor", required=required, metavar="USER", help=help)


def parse_sets(pairs: Iterable[str]) -> dict[str, str]:
    """``FIELD=VALUE`` pairs as a dict (the value stays text: the field's type converts it)."""
    data: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} should be FIELD=VALUE, e.g. household_size=4", param_hint="--set")
        key, value = pair.split("=", 1)
        data[key.strip()] = value
    return data


def _read_data_file(path: str | None) -> dict[str, Any]:
    from engine import InputError

    if not path:
        return {}
    p = Path(path)
    try:
        if p.stat().st_size > 1_000_000:
            raise InputError(f"{path}: a data file may be at most 1 MB")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f'{path}: expected a JSON object of field: value, e.g. {{"household_size": 4}}')
    return data


def case_data(sets: Iterable[str], data_file: str | None) -> dict[str, Any]:
    """``--data-file``'s object with ``--set`` over it."""
    data = _read_data_file(data_file)
    data.update(parse_sets(sets))
    return data


def output_file(output: str | None, fmt: str) -> Path | None:
    """``-o``'s path for a tabular export, checked before anything is read: xlsx needs one, a table has none, a
    folder is no file, and the file's folder must exist."""
    from engine import InputError

    if fmt == "xlsx" and output is None:
        raise InputError(
            "an xlsx file is binary and is not printed: give -o FILE.xlsx (or --format csv to print CSV)",
            option="output",
        )
    if output is None:
        return None
    if fmt == "table":
        raise InputError("a table is for the screen: give --format csv, xlsx or json to write a file", option="output")
    path = Path(output).expanduser()
    if path.is_dir():
        raise InputError(f"{output} is a folder: give a file name in it", option="output", value=output)
    if not path.parent.is_dir():
        raise InputError(
            f"cannot write {output}: the folder {path.parent} does not exist; create it first or write elsewhere",
            option="output",
            value=output,
        )
    return path
