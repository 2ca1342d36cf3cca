"""The case page (/cases/{ref}): data, diagram, timeline, steps, edits, objections."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
