"""What every command shares: the database URL, the engine service built on first use, whether JSON was asked for.

Nothing here imports the engine or SQLAlchemy until a command asks for the
service, so ``casework --help`` (and every command's ``--help``) stays quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from engine import Casework

__all__ = ["AppContext", "pass_app"]


class AppContext:
    """The shared state of one ``casework`` invocation.

    Args:
        url: the ``--db`` URL (None: ``$CASEWORK_DB``, else ``sqlite:///casework.db``).
    """

    def __init__(self, url: str | None = None) -> None:
        self.given_url = url
        #: set by ``--json``: a refusal is then printed as JSON too
        self.json = False
        self._engine: Engine | None = None
        self._service: Casework | None = None

    @property
    def url(self) -> str:
        """The database URL this invocation uses."""
        from db.connect import resolve_url

        return resolve_url(self.given_url)

    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def engine(self) -> Engine:
        """The SQLAlchemy engine (made once)."""
        if self._engine is None:
            from db.connect import make_engine

            self._engine = make_engine(self.url)
        return self._engine

    def service(self) -> Casework:
        """The engine service, after checking the schema is there and current."""
        if self._service is None:
            from db.migrate import SCHEMA_HEAD, current_revision
            from engine import Casework, InputError

            engine = self.engine()
            current = current_revision(engine)
            if current != SCHEMA_HEAD:
                state = "has no casework schema" if current is None else f"is at schema {current}"
                raise InputError(f"the database {self.safe_url()} {state}; run 'casework init' first")
            self._service = Casework(engine)
        return self._service

    def close(self) -> None:
        """Give back the engine's connections (an in-process caller may run many commands)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._service = None


pass_app = click.make_pass_decorator(AppContext)
