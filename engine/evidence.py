"""Proving the stored data against its evidence — what ``casework check`` and ``audit verify`` report.

Each case's hash chain must hold, its trail head must carry a valid seal
(when an audit key is configured), and its replay must give the stored row
(:mod:`engine.replay`). Beyond the cases: every stored workflow version must
hash to the ``source_hash`` recorded when it was loaded, every notice's HTML
to the SHA-256 recorded for it (and the trail's record of it), every
allocated reference must still belong to a case, and, on SQLite, the file
must pass ``PRAGMA integrity_check``.

Findings are added to a report under a check name: ``chain``, ``replay``,
``seal``, ``publicity`` (a step out of publicity that the trail does not
show was allowed: never on a published notice, or before its period
ended), ``deleted``, ``source``, ``notice``, ``storage`` and, against a
checkpoint file, ``checkpoint``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection

from engine.audit import Recorder, verify_chain
from engine.definition import WorkflowDef
from engine.definition.checks import source_hash
from engine.masking import mask_value
from engine.models import ChainBreak
from engine.publication import trail_problems
from engine.replay import differences, replay
from engine.store import evidence as store
from engine.store.refs import format_ref
from engine.store.tables import EventRow
from engine.store.versions import all_versions

__all__ = ["Checkpoint", "Examined", "Findings", "examine"]

#: what a checkpoint file recorded: case ref → (seq, hash) of its trail head, notice number → SHA-256
Checkpoint = tuple[Mapping[str, tuple[int, str]], Mapping[str, str]]


class Findings(Protocol):
    """Where findings go: a report with ``add(check, ref, detail)``."""

    def add(self, check: str, ref: str, detail: str) -> None:
        """Record one finding."""


@dataclass
class Examined:
    """How much was examined, and the first break of each broken chain."""

    cases: int = 0
    events: int = 0
    breaks: list[ChainBreak] | None = None


#: references listed per missing block before "… and N more"
_LISTED_REFS = 5


def examine(
    conn: Connection,
    definition: Callable[[int], WorkflowDef],
    recorder: Recorder,
    findings: Findings,
    *,
    ref: str | None = None,
    checkpoint: Checkpoint | None = None,
) -> Examined:
    """Examine every case (or only ``ref``) and, for the whole database, versions, notices and references.

    Chain breaks are returned (``audit verify`` lists them on their own);
    everything else is added to ``findings``. With a ``checkpoint`` (case
    heads and notice hashes read from a checkpoint file), every trail must
    still pass through the head it had then, and every notice still be there.
    """
    heads_then, notices_then = checkpoint if checkpoint is not None else ({}, {})
    seen: set[str] = set()
    versions = {v.id: v for v in all_versions(conn)}
    pins = {vid: {"name": v.name, "version": v.version, "source_hash": v.source_hash} for vid, v in versions.items()}
    out = Examined(breaks=[])
    recorded_notices: dict[str, tuple[str, str]] = {}
    for case_id, case, events in store.trails(conn, ref):
        out.events += len(events)
        if case is None:
            findings.add(
                "deleted",
                f"case id {case_id}",
                f"the case row is gone but {len(events)} audit event(s) remain (deleted behind the engine's back)",
            )
            continue
        out.cases += 1
        seen.add(case.ref)
        broken = verify_chain(case.ref, events, case.audit_seq, case.audit_head)
        if broken is not None:
            out.breaks.append(broken)  # type: ignore[union-attr]
            continue  # a broken chain proves nothing further
        why = recorder.check(case.ref, case.audit_seq, case.audit_head, case.audit_seal)
        if why is not None:
            findings.add("seal", case.ref, why)
        wf = definition(case.workflow_version_id)
        pin = pins.get(case.workflow_version_id)
        if pin is not None and case.workflow != pin["name"]:
            findings.add("replay", case.ref, f"workflow: stored {case.workflow!r}, its version is of {pin['name']!r}")
        for diff in differences(case, replay(events), scope_field=wf.scope_field, pin=pin, show=_masker(wf)):
            findings.add("replay", case.ref, str(diff))
        # a version with a per-case notice (retired) ran under the old publicity rules: judged by the new ones,
        # every case it moved would be named, though nothing was done behind the engine's back
        legacy = any(st.notice for st in wf.states.values())
        for problem in [] if legacy else trail_problems(wf, events):
            findings.add("publicity", case.ref, problem)
        _collect_notices(case.ref, events, recorded_notices)
        if case.ref in heads_then:
            seq, head = heads_then[case.ref]
            if seq > len(events) or events[seq - 1].hash != head:
                findings.add(
                    "checkpoint",
                    case.ref,
                    f"the trail no longer passes through event {seq} as the checkpoint recorded it "
                    "(rebuilt or cut back since)",
                )
    if ref is not None:
        return out
    for gone in sorted(heads_then.keys() - seen):
        findings.add("checkpoint", gone, "in the checkpoint, but no such case is stored any more (deleted)")
    for v in versions.values():
        if source_hash(v.source, v.templates) != v.source_hash:
            findings.add(
                "source",
                f"{v.name} v{v.version}",
                "the stored YAML or templates do not hash to the source_hash recorded when it was loaded (changed)",
            )
    stored = {}
    for n in store.notices(conn):
        stored[n.number] = n.sha256
        if hashlib.sha256(n.html.encode("utf-8")).hexdigest() != n.sha256:
            findings.add("notice", n.number, "its HTML does not hash to the SHA-256 recorded when it was published")
    for number, sha in notices_then.items():
        if stored.get(number) != sha:
            findings.add("checkpoint", number, "the notice is gone or not the one the checkpoint recorded")
    for number, (sha, case_ref) in recorded_notices.items():
        if number not in stored:
            findings.add("notice", number, f"the trail of {case_ref} records it, but no such notice is stored")
        elif stored[number] != sha:
            findings.add("notice", number, f"its SHA-256 is not the one the trail of {case_ref} records")
    for block in store.ref_blocks(conn):
        missing = [n for n in range(1, block.allocated + 1) if n not in block.numbers]
        if missing:
            shown = ", ".join(format_ref(block.prefix, block.year, n) for n in missing[:_LISTED_REFS])
            more = f" … and {len(missing) - _LISTED_REFS} more" if len(missing) > _LISTED_REFS else ""
            findings.add(
                "deleted",
                f"{block.prefix}-{block.year}",
                f"{len(missing)} allocated reference(s) held by no case: {shown}{more} (cases deleted)",
            )
    for problem in store.integrity_problems(conn):
        findings.add("storage", "database", f"PRAGMA integrity_check: {problem}")
    return out


def _collect_notices(ref: str, events: Iterable[EventRow], into: dict[str, tuple[str, str]]) -> None:
    for e in events:
        number, sha = e.changes.get("notice"), e.changes.get("notice_sha256")
        if isinstance(number, list) and isinstance(sha, list) and number[-1] and sha[-1]:
            into.setdefault(str(number[-1]), (str(sha[-1]), ref))


def _masker(wf: WorkflowDef) -> Callable[[str, Any], Any]:
    def show(name: str, value: Any) -> Any:
        f = wf.fields.get(name)
        return mask_value(f.pii if f is not None else None, value, id_policy=wf.id_policy)

    return show
