"""How the CLI writes: rich tables on stdout, one-line errors on stderr, JSON for scripts.

Stored data is never rich markup: :class:`PlainTable` shows text cells as
written, and messages that carry data are printed with ``markup=False``.
Stored free text is never a terminal control either: every place that prints
it passes it through :func:`visible`, which shows a line break, ESC or an
invisible character as an escape (``\\n``, ``\\x1b``, ``\\u200b``), so a
comment cannot forge a line of the history or recolour the screen. With
``--json`` the JSON escaping does the same.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from engine import CaseView, Casework

__all__ = [
    "Applicants",
    "deadline_cell",
    "emit_json",
    "err",
    "fail_line",
    "out",
    "plain_table",
    "short",
    "visible",
]


class _LazyConsole:
    """A rich ``Console`` made on first use: importing rich costs more than most commands' own work."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """``Console.print``."""
        self._get().print(*objects, **kwargs)

    def forget(self) -> None:
        """Make the console again on next use (a new run may have other streams, width and environment)."""
        self._console = None


#: stdout and stderr as rich consoles, made for each run of the command (see :func:`casework.cli.run`)
out = _LazyConsole(stderr=False)
err = _LazyConsole(stderr=True)


@functools.cache
def _plain_table() -> type[Table]:
    from rich.table import Table
    from rich.text import Text

    class PlainTable(Table):
        """A table whose text cells are shown as written: stored data is never rich markup."""

        def add_row(self, *cells: Any, **kwargs: Any) -> None:
            super().add_row(*(Text(visible(c)) if isinstance(c, str) else c for c in cells), **kwargs)

    return PlainTable


def plain_table(*headers: str, title: str | None = None) -> Table:
    """A rich table whose text cells are shown as written (control characters made :func:`visible`)."""
    return _plain_table()(*headers, title=title)


# the escapes a reader knows; every other refused character is shown by its code point
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """``text`` on one line with nothing that could steer a terminal: control and invisible characters escaped.

    A line break becomes ``\\n``, ESC ``\\x1b``, ZWSP ``\\u200b``, U+2028 ``\\u2028``:
    every character of Unicode category Cc, Cf, Cs, Co, Cn, Zl or Zp. Letters,
    numbers, punctuation, symbols and spaces are shown as they are. Used for
    every piece of stored free text the CLI prints (comments, objections,
    field values, names); the text stored is not changed.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or unicodedata.category(ch) == "Zs" else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON (Chinese as it is, not escaped)."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def deadline_cell(view: CaseView) -> str:
    """The deadline as a table shows it: ``2026-12-04 00:00 (provisional): 3 working days left``."""
    if view.paused:
        return view.time_left or "paused"
    if view.deadline is None:
        return ""
    at = str(view.to_json()["deadline"])[:16].replace("T", " ")
    flag = " (provisional)" if view.deadline_provisional else ""
    return f"{at}{flag}: {view.time_left}"


class Applicants:
    """The masked applicant of each case in a table, reading each workflow version's definition once."""

    def __init__(self, svc: Casework) -> None:
        self._svc = svc
        self._pii: dict[tuple[str, int], dict[str, str]] = {}

    def __call__(self, view: CaseView) -> str:
        from engine import masked_applicant

        key = (view.workflow, view.workflow_version)
        if key not in self._pii:
            self._pii[key] = self._svc.workflow(*key).pii_fields
        return masked_applicant(self._pii[key], view.data)


def short(value: Any) -> str:
    """A value in one line (made :func:`visible`): ∅ for none, a list in brackets."""
    if value is None:
        return "∅"
    if isinstance(value, list):
        return visible("[" + ", ".join(map(str, value)) + "]")
    return visible(str(value))


def fail_line(message: str) -> None:
    """Write ``error: message`` on stderr (as it is: no markup)."""
    click.echo(f"error: {message}", err=True)
