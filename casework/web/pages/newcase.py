"""The new-case form (/cases/new) and the import upload (/cases/import)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
