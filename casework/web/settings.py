"""The web application's settings, from ``CASEWORK_WEB_*`` environment variables (pydantic-settings).

The database URL is not here: it is ``--db``/``CASEWORK_DB``, as for every command.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["WebSettings"]


class WebSettings(BaseSettings):
    """What an operator may set for ``casework serve``.

    ``secure_cookies``: mark the session cookie ``Secure`` (set it whenever the
    site is served over HTTPS, i.e. behind a TLS reverse proxy); ``per_page``:
    rows per inbox page.
    """

    model_config = SettingsConfigDict(env_prefix="CASEWORK_WEB_", extra="ignore")

    secure_cookies: bool = False
    cookie_name: str = "casework_session"
    per_page: int = 50
    #: the largest upload (an import file, a workflow's YAML) the forms accept, in bytes
    max_upload_bytes: int = 5_000_000
    #: Graphviz's ``dot`` (a path, or a name on PATH) that draws the workflow diagrams; without it, Mermaid text
    dot: str = "dot"
    #: requests an API token may send per minute (over every worker: counted in the database)
    api_requests_per_minute: int = 600
    #: the largest JSON body the API reads, in bytes (413 above it)
    api_max_body_bytes: int = 1_000_000
