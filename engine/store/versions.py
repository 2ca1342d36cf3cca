"""The ``workflow_versions`` table: every loaded version of every workflow, immutable once stored."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, func, insert, select

from engine.definition import WorkflowDef
from engine.store import tables
from engine.store.tables import VersionRow

__all__ = [
    "add_version",
    "all_versions",
    "cases_on_version",
    "find_version",
    "history",
    "latest_number",
    "read_version",
    "version_ids",
    "workflow_names",
]

_versions = tables.versions
_cases = tables.cases


def find_version(conn: Connection, name: str, version: int | None = None) -> int | None:
    """The id of ``name`` at ``version`` (its latest when None), or None."""
    if "\x00" in name:
        return None
    query = select(_versions.c.id).where(_versions.c.name == name)
    if version is not None:
        query = query.where(_versions.c.version == version)
    found = conn.execute(query.order_by(_versions.c.version.desc()).limit(1)).scalar()
    return int(found) if found is not None else None


def read_version(conn: Connection, version_id: int) -> VersionRow:
    """One stored version."""
    return VersionRow._make(conn.execute(select(_versions).where(_versions.c.id == version_id)).one())


def all_versions(conn: Connection) -> list[VersionRow]:
    """Every stored version, by name then version."""
    rows = conn.execute(select(_versions).order_by(_versions.c.name, _versions.c.version))
    return [VersionRow._make(r) for r in rows]


def history(conn: Connection, name: str) -> list[VersionRow]:
    """Every stored version of ``name``, oldest first."""
    rows = conn.execute(select(_versions).where(_versions.c.name == name).order_by(_versions.c.version))
    return [VersionRow._make(r) for r in rows]


def version_ids(conn: Connection, workflow: str | None = None) -> list[int]:
    """Ids of every version (of ``workflow`` only, if given), oldest first."""
    query = select(_versions.c.id).order_by(_versions.c.id)
    if workflow is not None:
        query = query.where(_versions.c.name == workflow)
    return [int(v) for v in conn.execute(query).scalars()]


def workflow_names(conn: Connection) -> list[str]:
    """The names of the loaded workflows."""
    return sorted(conn.execute(select(_versions.c.name).distinct()).scalars())


def latest_number(conn: Connection, name: str) -> int:
    """The highest version number of ``name`` (0 if none is loaded)."""
    top = conn.execute(select(func.max(_versions.c.version)).where(_versions.c.name == name)).scalar()
    return int(top or 0)


def cases_on_version(conn: Connection, version_id: int) -> int:
    """How many cases are pinned to the version."""
    count = conn.execute(
        select(func.count()).select_from(_cases).where(_cases.c.workflow_version_id == version_id)
    ).scalar_one()
    return int(count)


def add_version(
    conn: Connection,
    definition: WorkflowDef,
    now: dt.datetime,
    loaded_by: str | None = None,
    weakened: list[str] | None = None,
) -> int:
    """Store ``definition`` as a new version; return its id.

    ``loaded_by`` is who loaded it (``os_user@host`` from the command line);
    ``weakened`` the controls of the previous version it weakens, which they
    accepted by name (None or empty: none).
    """
    new_id = conn.execute(
        insert(_versions)
        .values(
            name=definition.name,
            version=definition.version,
            title=definition.title,
            source=definition.source,
            source_hash=definition.source_hash,
            templates=dict(definition.templates.sources),
            loaded_at=now,
            loaded_by=loaded_by,
            weakened=list(weakened) if weakened else None,
        )
        .returning(_versions.c.id)
    ).scalar_one()
    return int(new_id)
