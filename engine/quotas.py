"""Limits across cases (``limits:``): at most so much per person and period, whichever case asks.

A guard sees one case; a limit sees every case of the workflow (all its
versions) with the same key — e.g. at most 50,000 yuan of medical subsidy
per ID number per calendar year. It is checked when one of its steps
(``at``) is fired, in that step's transaction, on the case's data as the
step leaves it:

* what is **used** is the sum of the ``sum`` field (or the number of cases)
  that other cases counted at a limit step in the same period, for those
  cases now in one of the limit's ``states`` — a case later rejected or
  withdrawn stops counting;
* the **period** of a case is the calendar year, in the workflow's time
  zone, in which its limit step was fired (``period: year``), or all time;
* the step is refused (:class:`LimitReached`, nothing written) when used
  plus this case's amount would go over ``max``; otherwise the case's
  amount is recorded (:mod:`engine.store.quotas`), replacing what the case
  counted before if the step is fired on it again after a step back.

Several cases of one batch (``fire-many``) with the same key are counted
together, in the batch's order. The key is stored as its SHA-256, never as
the ID number itself. Concurrency (two clerks granting the same person at
the same moment) is the store's: see :mod:`engine.store.quotas`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.definition import WorkflowDef
from engine.definition.model import LimitDef
from engine.errors import Code, MissingFields, TransitionRefused
from engine.fields import is_empty
from engine.store import quotas as store
from engine.store.quotas import Counted, Slot
from engine.store.tables import CaseRow

__all__ = [
    "Claim",
    "LimitReached",
    "check_step",
    "claims",
    "hash_key",
    "judge",
    "period_of",
    "record",
    "record_step",
    "settle",
]

_CENTS = Decimal("0.01")


class LimitReached(TransitionRefused):
    """The step would take a key over one of its workflow's limits across cases; nothing was changed."""

    default_code = Code.LIMIT_REACHED


@dataclass(frozen=True)
class Claim:
    """What one case asks of one limit at one step: ``amount`` in ``slot`` (its key hashed, its period)."""

    limit: LimitDef
    slot: Slot
    case_id: int
    ref: str
    state: str
    trigger: str
    amount: Decimal
    key_label: str
    decimal: bool  # the summed field is a decimal: amounts are shown with cents


def hash_key(value: Any) -> str:
    """The SHA-256 (hex) a key value is stored as: the same value, the same hash, in every version.

    A key of several fields (``key: [id_number, level]``) is given as a tuple of their values, hashed as
    the JSON array of their texts, so no two different tuples join into the same text ("a|b" + "c" vs
    "a" + "b|c"); a key of one field hashes its text alone, as it always has (no ledger row changes).
    """
    if isinstance(value, tuple):
        if len(value) == 1:
            return hash_key(value[0])
        text = json.dumps([str(v) for v in value], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def period_of(limit: LimitDef, when: dt.datetime, timezone: str) -> str:
    """The period a step at ``when`` counts in: its calendar year in ``timezone`` ("2026"), or "all"."""
    if limit.period == "all":
        return "all"
    return str(when.astimezone(ZoneInfo(timezone)).year)


def claims(
    wf: WorkflowDef,
    case_id: int,
    ref: str,
    state: str,
    trigger: str,
    values: Mapping[str, Any],
    when: dt.datetime,
) -> list[Claim]:
    """What firing ``trigger`` at ``when`` asks of each limit checked at it, the data being ``values``.

    :class:`MissingFields` if the key (or the summed field) is empty: a case
    without an ID number could not be counted against anyone's limit.
    """
    out = []
    for lim in wf.limits:
        if trigger not in lim.at:
            continue
        needed = [*lim.key] + ([lim.sum] if lim.sum else [])
        missing = [f for f in needed if is_empty(values.get(f))]
        if missing:
            labels = {f: wf.fields[f].label for f in missing}
            raise MissingFields(
                f"{trigger} needs {', '.join(f'{f} ({label})' for f, label in labels.items())} filled in first: "
                f"{lim.label} counts {_what(wf, lim)} per {' and '.join(lim.key)}",
                missing,
                labels=labels,
                ref=ref,
                state=state,
                trigger=trigger,
            )
        amount = Decimal(1) if lim.sum is None else Decimal(str(values[lim.sum]))
        key = tuple(values[k] for k in lim.key)
        slot = Slot(wf.name, lim.name, hash_key(key), period_of(lim, when, wf.timezone))
        out.append(
            Claim(
                limit=lim,
                slot=slot,
                case_id=case_id,
                ref=ref,
                state=state,
                trigger=trigger,
                # a negative amount (a computed field may give one) would make room: it counts as nothing
                amount=max(amount, Decimal(0)),
                key_label=" and ".join(_field(wf, k) for k in lim.key),
                decimal=lim.sum is not None and wf.fields[lim.sum].type == "decimal",
            )
        )
    return out


def judge(claim: Claim, used: Decimal) -> LimitReached | None:
    """The refusal if ``used`` (by other cases) plus the claim's amount goes over the limit's max, else None."""
    lim = claim.limit
    if used + claim.amount <= lim.max:
        return None
    left = max(lim.max - used, Decimal(0))
    period = "in all" if claim.slot.period == "all" else f"in {claim.slot.period}"
    if lim.sum is None:
        message = (
            f"{claim.trigger} refused: {lim.label} allows at most {_plain(lim.max)} "
            f"case{'s' if lim.max != 1 else ''} per {claim.key_label} {period}; "
            f"{_plain(used)} already count{'s' if used == 1 else ''}, so no more may be counted"
        )
    else:
        shown = _money if claim.decimal else _plain
        message = (
            f"{claim.trigger} refused: {lim.label} allows at most {_plain(lim.max)} per {claim.key_label} {period}; "
            f"{shown(used)} is already counted on other cases, so at most {shown(left)} is left "
            f"and this case asks {shown(claim.amount)}"
        )
    return LimitReached(
        message,
        ref=claim.ref,
        state=claim.state,
        trigger=claim.trigger,
        limit=lim.name,
        label=lim.label,
        key=", ".join(lim.key),
        period=claim.slot.period,
        max=_plain(lim.max),
        used=_plain(used),
        asked=_plain(claim.amount),
        left=_plain(left),
    )


def settle(conn: Connection, asks: Sequence[Sequence[Claim]]) -> list[LimitReached | None]:
    """Check the claims of several steps (one list per case, in order); each case's refusal, or None.

    The slots are locked first (PostgreSQL), then what other cases used is
    read once. A case that passes adds its amounts to what the next cases of
    the same key see; a refused case adds nothing. Nothing is written.
    """
    wanted: dict[Slot, tuple[str, ...]] = {}
    for case_claims in asks:
        for claim in case_claims:
            states = wanted.setdefault(claim.slot, ())
            wanted[claim.slot] = tuple(dict.fromkeys((*states, *claim.limit.states)))
    if not wanted:
        return [None] * len(asks)
    store.lock(conn, wanted)
    used: dict[Slot, Decimal] = dict.fromkeys(wanted, Decimal(0))
    deciding = {c.case_id for case_claims in asks for c in case_claims}
    # what a deciding case counts already (it is fired again after a step back): replaced if it passes
    before: dict[tuple[int, str, str], Counted] = {}
    for row in store.counted(conn, list(wanted.items())):
        used[row.slot] += Decimal(row.amount)
        if row.case_id in deciding:
            before[(row.case_id, row.slot.workflow, row.slot.limit)] = row
    out: list[LimitReached | None] = []
    for case_claims in asks:
        refusal = None
        for c in case_claims:
            own = before.get((c.case_id, c.slot.workflow, c.slot.limit))
            others = used[c.slot] - (Decimal(own.amount) if own is not None and own.slot == c.slot else 0)
            refusal = judge(c, others)
            if refusal is not None:
                break
        if refusal is None:
            for c in case_claims:
                own = before.pop((c.case_id, c.slot.workflow, c.slot.limit), None)
                if own is not None:
                    used[own.slot] -= Decimal(own.amount)
                used[c.slot] += c.amount
        out.append(refusal)
    return out


def record(conn: Connection, steps: Sequence[tuple[Sequence[Claim], int, dt.datetime]]) -> None:
    """Record what each step (its claims, its audit event's seq, its time) counted, replacing earlier rows."""
    rows = [(Counted(c.slot, c.case_id, _plain(c.amount)), seq, at) for asked, seq, at in steps for c in asked]
    store.record(conn, rows)


def _field(wf: WorkflowDef, name: str) -> str:
    label = wf.fields[name].label
    return f"{name} ({label})" if label and label != name else name


def _what(wf: WorkflowDef, lim: LimitDef) -> str:
    return "cases" if lim.sum is None else _field(wf, lim.sum)


def _plain(value: Decimal) -> str:
    """A decimal as stored: no exponent, no trailing zeros ("50000", "612.5")."""
    normal = value.normalize()
    return "0" if normal == 0 else format(normal, "f")


def _money(value: Decimal) -> str:
    """A decimal with cents ("30000.00"), or with all its places if it has more."""
    return format(value.quantize(_CENTS), "f") if value == value.quantize(_CENTS) else _plain(value)


def check_step(
    conn: Connection, wf: WorkflowDef, case: CaseRow, trigger: str, values: Mapping[str, Any], written: CaseRow
) -> list[Claim]:
    """Refuse one step that would go over a limit (:class:`LimitReached`); its claims, to record once written.

    ``case`` is the case as read, ``values`` its data after the step and
    ``written`` the case as the step writes it (its time is the step's).
    """
    asked = claims(wf, case.id, case.ref, case.state, trigger, values, written.updated_at)
    if asked:
        refusal = settle(conn, [asked])[0]
        if refusal is not None:
            raise refusal
    return asked


def record_step(conn: Connection, asked: Sequence[Claim], written: CaseRow) -> None:
    """Record what a step written as ``written`` counted (nothing, for a step no limit is checked at)."""
    if asked:
        record(conn, [(asked, written.audit_seq, written.updated_at)])
