"""The catalog of workflow versions: storing a definition, finding one, and keeping each loaded once.

A loaded version is its checked definition plus its ``transitions`` machine,
built once per process and shared by every case on that version (a machine
per case would cost ~150 µs each and grow with the number of cases).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection
from transitions import Machine

from engine.definition import WorkflowDef, load_definition
from engine.errors import AlreadyExists, Code, WorkflowNotFound
from engine.machine import build_machine
from engine.models import WorkflowInfo
from engine.store import versions as store
from engine.store.tables import VersionRow
from engine.suggest import close_match

__all__ = ["Catalog", "Loaded"]


@dataclass(frozen=True)
class Loaded:
    """A stored workflow version, ready to use: its row id, definition and machine."""

    id: int
    definition: WorkflowDef
    machine: Machine


class Catalog:
    """Workflow versions: stored immutable, loaded once per process.

    Not thread-safe to fill from several threads at once; harmless if it is
    (the same version may be built twice, and either copy is the same).
    """

    def __init__(self) -> None:
        self._loaded: dict[int, Loaded] = {}

    def store(self, conn: Connection, definition: WorkflowDef, now: dt.datetime) -> tuple[VersionRow, bool]:
        """Store ``definition`` as a new version, or find it stored already; (its row, whether new).

        A *different* source under an existing version number is refused
        (:data:`Code.VERSION_EXISTS`): cases in flight depend on the old one.
        """
        found = store.find_version(conn, definition.name, definition.version)
        if found is not None:
            row = store.read_version(conn, found)
            if row.source_hash == definition.source_hash:
                return row, False
            following = store.latest_number(conn, definition.name) + 1
            raise AlreadyExists(
                f"{definition.name} version {definition.version} is already loaded with different content; "
                f"set 'version: {following}' in the changed file (cases in flight stay on the version they started on)",
                code=Code.VERSION_EXISTS,
                workflow=definition.name,
                version=definition.version,
                next_version=following,
            )
        return store.read_version(conn, store.add_version(conn, definition, now)), True

    def loaded(self) -> list[Loaded]:
        """The versions this process has loaded so far."""
        return list(self._loaded.values())

    def get(self, conn: Connection, version_id: int) -> Loaded:
        """The loaded version with this row id."""
        loaded = self._loaded.get(version_id)
        if loaded is None:
            row = store.read_version(conn, version_id)
            definition = load_definition(row.source, f"{row.name} v{row.version}", row.templates)
            loaded = self._loaded[version_id] = Loaded(version_id, definition, build_machine(definition))
        return loaded

    def resolve(self, conn: Connection, name: str, version: int | None = None) -> Loaded:
        """The version ``version`` of workflow ``name`` (its latest if None); :class:`WorkflowNotFound` if none."""
        found = store.find_version(conn, name, version)
        if found is None:
            if version is None:
                names = store.workflow_names(conn)
                raise WorkflowNotFound(name, suggestion=close_match(name, names), known=names)
            raise WorkflowNotFound(name, version)
        return self.get(conn, found)

    def info(self, conn: Connection, row: VersionRow) -> WorkflowInfo:
        """What ``workflow list`` shows of a version: how many cases it has, whether it is the latest."""
        return WorkflowInfo(
            name=row.name,
            version=row.version,
            title=row.title,
            source_hash=row.source_hash,
            loaded_at=row.loaded_at,
            cases=store.cases_on_version(conn, row.id),
            latest=store.latest_number(conn, row.name) == row.version,
        )

    def infos(self, conn: Connection) -> list[WorkflowInfo]:
        """Every stored version, by name then version."""
        return [self.info(conn, row) for row in store.all_versions(conn)]

    def all(self, conn: Connection, workflow: str | None = None) -> list[Loaded]:
        """Every stored version (of ``workflow``), oldest first."""
        return [self.get(conn, vid) for vid in store.version_ids(conn, workflow)]

    def latest(self, conn: Connection) -> list[Loaded]:
        """The latest version of every workflow."""
        newest: dict[str, Loaded] = {}
        for loaded in self.all(conn):
            wf = loaded.definition
            if wf.name not in newest or wf.version > newest[wf.name].definition.version:
                newest[wf.name] = loaded
        return list(newest.values())
