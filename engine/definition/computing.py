"""Stage 4 for computed fields, decision tables and a workflow's ``tests:``.

(Filled in by the rules-as-data work: checks each ``compute:``, compiles the
``tables:``, finds overlapping and missing ranges, and runs ``tests:``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.definition.model import FieldDef, TableDef, TransitionDef

if TYPE_CHECKING:
    from engine.definition.schema import WorkflowSchema

__all__ = ["check_computing"]


def check_computing(
    c: Any, schema: WorkflowSchema, fields: dict[str, FieldDef], transitions: dict[str, TransitionDef]
) -> tuple[dict[str, FieldDef], dict[str, TableDef]]:
    """The fields with their ``compute`` resolved, and the compiled tables; problems go to ``c``."""
    return fields, {}
