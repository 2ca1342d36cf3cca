"""Replaying a case from its audit trail, and comparing the replay with the stored case.

The trail is the truth: the first event records every value the case was
opened with (and, since provenance is recorded, the workflow version), and
every later change to the data records each field's old and new value. So
the events alone give the case's state, data, version counter, scope and who
fired what; a ``migrated`` event moves the case to another version of its
workflow, and its context records the new pin as the first event recorded
the first; :func:`differences` names each column where the stored row says
something else — an ``UPDATE cases SET data = …`` made behind the engine's
back shows up here even though the hash chain itself is intact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.access import add_four_eyes_fact
from engine.fields import is_empty
from engine.store.tables import CaseRow, EventRow

__all__ = ["DATA_ACTIONS", "MIGRATED", "Difference", "Replayed", "differences", "replay"]

#: the actions whose ``changes`` are changes of the case's data (the others record notes: a notice, a pause)
DATA_ACTIONS = frozenset({"created", "fired", "updated"})

#: the action of a case moved to another version of its workflow (``workflow migrate``)
MIGRATED = "migrated"


@dataclass
class Replayed:
    """A case as its trail says it is."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    fired_by: dict[str, list[str]] = field(default_factory=dict)
    events: int = 0
    workflow: Mapping[str, Any] | None = None
    #: where an event's recorded old value is not what the events before it left (seq, field, recorded, replayed)
    mismatches: list[tuple[int, str, Any, Any]] = field(default_factory=list)
    #: where a ``migrated`` event moved from a version the case was not on (seq, recorded, replayed)
    moves_from: list[tuple[int, Any, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Difference:
    """One column where the stored case and its replay disagree."""

    column: str
    stored: Any
    replayed: Any

    def __str__(self) -> str:
        return f"{self.column}: stored {_show(self.stored)}, the trail says {_show(self.replayed)}"


def replay(events: Iterable[EventRow]) -> Replayed:
    """Apply ``events`` (in seq order) from nothing."""
    out = Replayed()
    for e in events:
        out.events += 1
        if e.to_state is not None:
            out.state = e.to_state
        if e.seq == 1 and e.context:
            out.workflow = e.context.get("workflow")
        elif e.action == MIGRATED:
            _migrate(out, e)
        if e.action not in DATA_ACTIONS:
            continue
        for name, pair in e.changes.items():
            old, new = pair
            if _norm(out.data.get(name)) != _norm(old):
                out.mismatches.append((e.seq, name, old, out.data.get(name)))
            if is_empty(new):
                out.data.pop(name, None)
            else:
                out.data[name] = new
        # who fired what and who entered or changed the data: what the four-eyes rule reads
        add_four_eyes_fact(out.fired_by, e)
    return out


def differences(
    case: CaseRow,
    replayed: Replayed,
    *,
    scope_field: str | None,
    pin: Mapping[str, Any] | None,
    show: Callable[[str, Any], Any] = lambda _name, value: value,
) -> list[Difference]:
    """Each column of ``case`` that its replay contradicts.

    ``pin`` is the workflow version the case row points at (name, version,
    source_hash), compared with what its first event recorded; ``show``
    masks a field's values for the report (personal data stays masked).
    """
    found = []
    if case.state != replayed.state:
        found.append(Difference("state", case.state, replayed.state))
    if case.version != replayed.events:
        found.append(Difference("version", case.version, replayed.events))
    stored = {k: v for k, v in case.data.items() if not is_empty(v)}
    for name in sorted(stored.keys() | replayed.data.keys()):
        if _norm(stored.get(name)) != _norm(replayed.data.get(name)):
            found.append(Difference(f"data.{name}", show(name, stored.get(name)), show(name, replayed.data.get(name))))
    if _fired(case.fired_by) != _fired(replayed.fired_by):
        found.append(Difference("fired_by", case.fired_by, replayed.fired_by))
    if scope_field is not None and case.scope != replayed.data.get(scope_field):
        found.append(Difference("scope", case.scope, replayed.data.get(scope_field)))
    if replayed.workflow is not None and pin is not None:
        for key in ("name", "version", "source_hash"):
            if replayed.workflow.get(key) != pin.get(key):
                found.append(Difference(f"workflow.{key}", pin.get(key), replayed.workflow.get(key)))
    for seq, recorded, before in replayed.moves_from:
        found.append(Difference(f"event {seq} workflow_version (old value)", recorded, before))
    for seq, name, recorded, before in replayed.mismatches:
        found.append(Difference(f"event {seq} data.{name} (old value)", show(name, recorded), show(name, before)))
    return found


def _migrate(out: Replayed, e: EventRow) -> None:
    """A move to another version: the pin its context records replaces the case's, from the version it was on."""
    pair = e.changes.get("workflow_version")
    was = out.workflow.get("version") if out.workflow is not None else None
    if not isinstance(pair, list) or len(pair) != 2 or pair[0] != was:
        out.moves_from.append((e.seq, pair[0] if isinstance(pair, list) and pair else None, was))
    # a move that records no pin leaves none: the stored row's version is then unproven, and named
    out.workflow = (e.context or {}).get("workflow") or {}


def _fired(fired_by: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    return {k: set(v) for k, v in fired_by.items() if v}


def _norm(value: Any) -> Any:
    return None if is_empty(value) else value


def _show(value: Any) -> str:
    return "nothing" if value is None else repr(value)
