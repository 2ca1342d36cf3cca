"""Columns shared by the engine's case reads."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import Case, Objection

__all__ = ["OPEN_OBJECTIONS"]

_cases = Case.__table__
_objections = Objection.__table__

#: a case's open objections, as a column of a case read (guards may read ``case.open_objections``)
OPEN_OBJECTIONS = (
    select(func.count())
    .select_from(_objections)
    .where(_objections.c.case_id == _cases.c.id, _objections.c.status == "open")
    .scalar_subquery()
    .label("open_objections")
)
