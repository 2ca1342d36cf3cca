"""The ``casework`` command: a thin shell over the engine's public API.

It parses options, calls :class:`engine.Casework`, prints tables (rich) or
JSON, and words the engine's refusals for a person at a terminal. No rule,
query or transaction lives here. :func:`run` runs one command line and
returns its exit code (the tests call it in-process); :func:`main` is the
console script.
"""

from __future__ import annotations

from casework.cli.app import cli
from casework.cli.main import main, run

__all__ = ["cli", "main", "run"]
