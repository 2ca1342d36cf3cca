"""Stage 4: every guard and computed expression is run on typed example values of the fields it reads.

(Filled in by the type-checking work: an expression that raises on values its
fields can hold — decimal mixed with float, text compared with a number, a
filter on the wrong type — is a located problem when the workflow is validated.)
"""

from __future__ import annotations

from typing import Any

from engine.definition.model import FieldDef, TransitionDef

__all__ = ["check_types"]


def check_types(c: Any, fields: dict[str, FieldDef], transitions: dict[str, TransitionDef]) -> None:
    """Add to ``c`` a located problem for each guard or ``compute`` expression that raises on typed values."""
