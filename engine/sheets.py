"""A titled table of rows: what a report or a list hands to whoever shows it (CLI, export, web).

Plain data: :mod:`casework.export` writes it as CSV, XLSX or JSON, the CLI as
a terminal table, the web application as HTML; the last two show each cell as
:meth:`Column.shown` words it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["Column", "Kind", "Sheet"]

Kind = Literal["text", "integer", "decimal", "percent"]


@dataclass(frozen=True)
class Column:
    """One column: the row key it shows, its heading, and the kind of value it holds."""

    key: str
    title: str
    kind: Kind = "text"

    def shown(self, value: Any) -> str:
        """``value`` as a table on a screen shows it: rates as percentages, amounts with cents, counts with
        separators (a year without)."""
        if value is None:
            return ""
        if isinstance(value, Decimal) and self.kind == "percent":
            return f"{value * 100:.2f}%".replace(".00%", "%")
        if isinstance(value, Decimal):
            return f"{value:,.2f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value) if self.key == "year" else f"{value:,}"
        return str(value)


@dataclass(frozen=True)
class Sheet:
    """A titled table of rows (mappings keyed by :attr:`Column.key`), with notes printed under it."""

    title: str
    columns: tuple[Column, ...]
    rows: Sequence[Mapping[str, Any]]
    notes: tuple[str, ...] = ()
    #: extra facts for JSON (the report's year, county, as-of date, …)
    meta: Mapping[str, Any] = field(default_factory=dict)
