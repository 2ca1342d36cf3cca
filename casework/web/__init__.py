"""The web application (``casework serve``): pages in Chinese for clerks, reviewers, approvers and supervisors.

Start here: :func:`create_app` builds the application on an engine service.
Logins are the engine's (:mod:`engine.logins`); this package carries them and
every page over HTTP, and words the engine's refusals in Chinese.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI is imported only when the web application is wanted, not by every CLI command
    if name == "create_app":
        from casework.web.app import create_app

        return create_app
    raise AttributeError(f"module 'casework.web' has no attribute {name!r}")


if TYPE_CHECKING:
    from casework.web.app import create_app as create_app
