"""我的待办 (/), in-app messages (/messages) and the bulk step."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
