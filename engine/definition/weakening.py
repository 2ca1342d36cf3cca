"""Which controls a new version of a workflow drops or relaxes, compared with the version before it.

A supervisor may change a workflow freely, except that quietly removing a
safeguard is not allowed: loading a version that weakens a control of the
latest stored version of the same workflow is refused until each weakened
control is accepted by name (and the acceptance is recorded with the
version). Pure: two checked definitions in, a list out.

The controls compared, each named ``KIND:NAME`` (the name a supervisor
accepts it by):

==================  ============================================================
``not_by:STEP``     the step's four-eyes rule lost a step it named (dropped or
                    changed: the new ``not_by`` does not include the old one)
``comment:STEP``    the step no longer requires a comment
``when:STEP``       the step's ``when`` condition was removed
``unless:STEP``     the step's ``unless`` condition was removed
``pii:FIELD``       the field is no longer masked, or masked less (a fully
                    starred ``address``/``other`` became a partial kind)
``privacy:id_number``  ID numbers were omitted from public output and now show
                    in part
==================  ============================================================

What is not compared: a changed condition's text (whether ``case.x > 2``
is weaker than ``case.x > 3`` is not decidable cheaply), a renamed step or
field (it is a new one), and a step or field that is gone altogether (what no
longer exists cannot be taken without its safeguard). The *effective* masking
is compared, so dropping ``pii: name`` from a field that is masked as a name
anyway (:func:`engine.masking.implied_pii`) weakens nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.definition.model import WorkflowDef

__all__ = ["KINDS", "Weakening", "unaccepted", "weakened_controls"]

KINDS = ("not_by", "comment", "when", "unless", "pii", "privacy")

# how much of a value each pii kind hides: fully starred kinds hide more than the partial ones
_PII_STRENGTH = {None: 0, "name": 1, "phone": 1, "id_number": 1, "address": 2, "other": 2}


@dataclass(frozen=True, order=True)
class Weakening:
    """One weakened control: ``token`` (``not_by:grant``) names it; ``detail`` says what changed."""

    token: str
    detail: str

    def __str__(self) -> str:
        return f"{self.token} ({self.detail})"


def weakened_controls(old: WorkflowDef, new: WorkflowDef) -> list[Weakening]:
    """The controls of ``old`` that ``new`` drops or relaxes, in a stable order (by token)."""
    found: list[Weakening] = []
    for name, was in old.transitions.items():
        now = new.transitions.get(name)
        if now is None:
            continue
        lost = [s for s in was.not_by if s not in now.not_by]
        if lost:
            after = f"now not_by {', '.join(now.not_by)}" if now.not_by else "now anyone may"
            found.append(Weakening(f"not_by:{name}", f"whoever fired {', '.join(lost)} could not take {name}; {after}"))
        if was.comment_required and not now.comment_required:
            found.append(Weakening(f"comment:{name}", f"{name} needed a comment; now it does not"))
        if was.when is not None and now.when is None:
            found.append(Weakening(f"when:{name}", f"{name} needed '{was.when.text}'; now it has no condition"))
        if was.unless is not None and now.unless is None:
            found.append(Weakening(f"unless:{name}", f"{name} was held while '{was.unless.text}'; now it is not"))
    for name, was_field in old.fields.items():
        now_field = new.fields.get(name)
        if now_field is None:
            continue
        if _PII_STRENGTH.get(now_field.pii, 0) < _PII_STRENGTH.get(was_field.pii, 0):
            after = f"now pii: {now_field.pii}" if now_field.pii else "now shown unmasked"
            found.append(Weakening(f"pii:{name}", f"{name} was masked as pii: {was_field.pii}; {after}"))
    if old.id_policy == "omit" and new.id_policy != "omit":
        found.append(Weakening("privacy:id_number", f"ID numbers were omitted from public output; now {new.id_policy}"))
    return sorted(found)


def unaccepted(weakened: Iterable[Weakening], accepted: Iterable[str]) -> tuple[list[Weakening], list[str]]:
    """(the weakenings ``accepted`` does not name, the names in ``accepted`` that match no weakening)."""
    tokens = {w.token for w in weakened}
    names = {a.strip() for a in accepted if a.strip()}
    return [w for w in weakened if w.token not in names], sorted(names - tokens)
