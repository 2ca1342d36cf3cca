"""The reference pages in ``docs/`` that are made from the code, and the check that they are current.

Three pages are generated, each from the one place its facts live:

* ``docs/cli.md`` — every command of the click tree :data:`casework.cli.app.cli`:
  usage, description and options, read with click's own API;
* ``docs/refusals.md`` — every refusal code of :data:`engine.errors.CODES`,
  with what it means and the facts it carries;
* ``docs/workflow-schema.md`` — every key of a workflow file, from the pydantic
  models of :mod:`engine.definition.schema` (types, defaults and whether a key
  is required); the descriptions the models do not carry are kept here, in
  :data:`KEY_DESCRIPTIONS`, and a key without one stops the generation.

Usage::

    python -m casework.reference           # write the pages (make docs)
    python -m casework.reference --check   # exit 1 listing the pages that are out of date

The output depends on nothing but the code: no terminal width, no date, no
rich markup. ``tests/unit/test_reference.py`` fails while a checked-in page
differs from what the code generates now.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from casework.reference.cli_page import cli_page
from casework.reference.refusals_page import refusals_page
from casework.reference.schema_page import KEY_DESCRIPTIONS, workflow_schema_page

__all__ = [
    "KEY_DESCRIPTIONS",
    "PAGES",
    "ROOT",
    "cli_page",
    "generate",
    "main",
    "refusals_page",
    "stale_pages",
    "workflow_schema_page",
    "write_pages",
]

#: The repository (the directory holding ``docs/``).
ROOT = Path(__file__).resolve().parents[2]


#: Each generated page (relative to the repository) and the function that makes it.
PAGES: dict[str, Callable[[], str]] = {
    "docs/cli.md": cli_page,
    "docs/refusals.md": refusals_page,
    "docs/workflow-schema.md": workflow_schema_page,
}


def generate() -> dict[str, str]:
    """Every generated page's path (relative to the repository) and the text the code makes now."""
    return {path: make() for path, make in PAGES.items()}


def stale_pages(root: Path = ROOT) -> list[str]:
    """The pages under ``root`` that are missing or differ from what the code generates now."""
    stale = []
    for path, text in generate().items():
        file = root / path
        if not file.is_file() or file.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def write_pages(root: Path = ROOT) -> list[str]:
    """Write every generated page under ``root``; return the ones that changed."""
    changed = []
    for path, text in generate().items():
        file = root / path
        if file.is_file() and file.read_text(encoding="utf-8") == text:
            continue
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8", newline="\n")
        changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m casework.reference [--check]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m casework.reference", description="Write (or check) the reference pages made from the code."
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing the out-of-date pages")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this checkout)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages(args.root)
        for path in stale:
            print(f"out of date: {path} (run 'make docs')", file=sys.stderr)
        return 1 if stale else 0
    for path in write_pages(args.root):
        print(f"wrote {path}")
    return 0
