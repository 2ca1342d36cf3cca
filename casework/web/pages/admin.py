"""The supervisor's pages: workflows, diagrams, the YAML editor, users, the access log."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
