"""The HTTP API (``/api/v1``): :func:`create_api` builds it on an engine service; the web server mounts it."""

from casework.api.app import PREFIX, create_api

__all__ = ["PREFIX", "create_api"]
