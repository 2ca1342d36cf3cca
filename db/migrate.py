"""Schema migrations (Alembic), run programmatically: no alembic.ini needed.

Alembic is imported only to migrate: checking that a database is at the
schema this code expects (:func:`schema_status`, on every command) is one
query of Alembic's ``alembic_version`` table against :data:`SCHEMA_HEAD`,
which a test keeps equal to the newest migration.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["SCHEMA_HEAD", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).with_name("migrations")

#: The newest migration's revision: what ``casework init`` upgrades to.
SCHEMA_HEAD = "0010"


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The newest revision among the migration scripts (what :data:`SCHEMA_HEAD` must say)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for a database without casework's schema."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(found) if found is not None else None


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the schema; idempotent. Returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return before, current_revision(engine) or ""
