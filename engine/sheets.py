"""A titled table of rows: what a report or a list hands to whoever shows it (CLI, export, web).

Plain data, no formatting: :mod:`casework.export` writes it as CSV, XLSX or
JSON, the CLI as a terminal table, the web application (later) as HTML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Column", "Kind", "Sheet"]

Kind = Literal["text", "integer", "decimal", "percent"]


@dataclass(frozen=True)
class Column:
    """One column: the row key it shows, its heading, and the kind of value it holds."""

    key: str
    title: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Sheet:
    """A titled table of rows (mappings keyed by :attr:`Column.key`), with notes printed under it."""

    title: str
    columns: tuple[Column, ...]
    rows: Sequence[Mapping[str, Any]]
    notes: tuple[str, ...] = ()
    #: extra facts for JSON (the report's year, county, as-of date, …)
    meta: Mapping[str, Any] = field(default_factory=dict)
