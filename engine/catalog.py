"""The catalog of workflow versions: storing a definition, finding one, and keeping each loaded once.

Storing a new version compares it with the latest stored version of the same
workflow (:mod:`engine.definition.weakening`): one that drops or relaxes a
control is refused unless each weakened control is accepted by name, and the
version records who loaded it and what they accepted (``workflow history``).

A loaded version is its checked definition plus its ``transitions`` machine,
built once per process and shared by every case on that version (a machine
per case would cost ~150 µs each and grow with the number of cases).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection
from transitions import Machine

from engine.definition import WorkflowDef, load_definition
from engine.definition.weakening import unaccepted, weakened_controls
from engine.errors import AlreadyExists, Code, InputError, RefusedError, WorkflowNotFound
from engine.machine import build_machine
from engine.models import WorkflowInfo, WorkflowVersion
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

    def store(
        self,
        conn: Connection,
        definition: WorkflowDef,
        now: dt.datetime,
        *,
        loaded_by: str | None = None,
        accept_weaker: Iterable[str] = (),
    ) -> tuple[VersionRow, bool]:
        """Store ``definition`` as a new version, or find it stored already; (its row, whether new).

        A *different* source under an existing version number is refused
        (:data:`Code.VERSION_EXISTS`): cases in flight depend on the old one.
        A version that weakens a control of the latest stored one is refused
        (:data:`Code.WEAKENED_CONTROLS`) unless ``accept_weaker`` names every
        weakened control (``not_by:grant``); naming one it does not weaken is
        refused too (:data:`Code.INVALID_INPUT`), so a stale or mistyped
        acceptance is noticed. ``loaded_by`` and the accepted controls are
        stored with the version.
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
        accepted = self._accepted(conn, definition, accept_weaker)
        new_id = store.add_version(conn, definition, now, loaded_by, accepted)
        return store.read_version(conn, new_id), True

    def _accepted(self, conn: Connection, definition: WorkflowDef, accept_weaker: Iterable[str]) -> list[str]:
        """The weakened controls of ``definition``, each accepted; refuse if one is not, or an acceptance is stray."""
        previous_id = store.find_version(conn, definition.name)
        previous = self.get(conn, previous_id).definition if previous_id is not None else None
        weakened = weakened_controls(previous, definition) if previous is not None else []
        missing, stray = unaccepted(weakened, accept_weaker)
        name, version = definition.name, definition.version
        if missing:
            assert previous is not None
            tokens = ",".join(w.token for w in weakened)
            raise RefusedError(
                f"{name} version {version} weakens {len(missing)} control{'s' if len(missing) > 1 else ''} of "
                f"version {previous.version}: {'; '.join(str(w) for w in missing)}. Nothing was loaded. To load "
                f"it all the same, accept by name each control it weakens ({tokens}); the acceptance is recorded "
                "with the version",
                code=Code.WEAKENED_CONTROLS,
                workflow=name,
                version=version,
                previous_version=previous.version,
                weakened=[w.token for w in weakened],
                accepted=sorted({a.strip() for a in accept_weaker if a.strip()}),
            )
        if stray:
            weakens = f"it weakens only {', '.join(w.token for w in weakened)}" if weakened else "it weakens nothing"
            raise InputError(
                f"{', '.join(stray)} {'is' if len(stray) == 1 else 'are'} accepted as weakened, but {name} "
                f"version {version} does not weaken {'it' if len(stray) == 1 else 'them'} ({weakens}); "
                "accept exactly the controls it weakens",
                option="accept_weaker",
                value=",".join(stray),
            )
        return [w.token for w in weakened]

    def history(self, conn: Connection, name: str) -> list[WorkflowVersion]:
        """Every stored version of ``name``, oldest first: when, by whom, and the weakened controls accepted."""
        rows = store.history(conn, name)
        if not rows:
            names = store.workflow_names(conn)
            raise WorkflowNotFound(name, suggestion=close_match(name, names), known=names)
        return [
            WorkflowVersion(
                name=row.name,
                version=row.version,
                title=row.title,
                source_hash=row.source_hash,
                loaded_at=row.loaded_at,
                loaded_by=row.loaded_by,
                weakened=tuple(row.weakened or ()),
                cases=store.cases_on_version(conn, row.id),
            )
            for row in rows
        ]

    def loaded(self) -> list[Loaded]:
        """The versions this process has loaded so far."""
        return list(self._loaded.values())

    def get(self, conn: Connection, version_id: int) -> Loaded:
        """The loaded version with this row id."""
        loaded = self._loaded.get(version_id)
        if loaded is None:
            row = store.read_version(conn, version_id)
            definition = load_definition(row.source, f"{row.name} v{row.version}", row.templates, stored=True)
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
