"""Stage 4: references and graph checks; builds the frozen :class:`WorkflowDef`.

All problems are collected, not just the first, each with its location and,
where a near name exists, a "did you mean". The checks:

* exactly one initial state; final states have no way out;
* every state reachable from the initial state;
* every non-final state has a way out;
* every ``from``/``to``/``by``/``not_by``/``require``/``timeout.fire``/
  ``notify`` reference exists; ``system`` is reserved for the scheduler;
* guards compile and read only existing fields;
* a state's ``edit:`` names existing roles (not ``system``) and fields, and
  no final state; states without one get the default rule;
* ``cn_id`` fields, and text fields whose label or name says name or phone,
  are personal data (``pii``) even when the file does not say so;
* field options fit their type (choices for choice, items for checklist,
  min/max for numbers and text, at most one scope field, unique on a
  scalar field).
"""

from __future__ import annotations

import dataclasses
import hashlib
import zoneinfo
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from engine.definition.computing import check_computing
from engine.definition.loader import locate
from engine.definition.model import (
    SYSTEM_ROLE,
    CampaignDef,
    Duration,
    EditDef,
    EscalateDef,
    FieldDef,
    LimitDef,
    LinkDef,
    NotifyDef,
    ProgrammeDef,
    PublicityDef,
    RemindDef,
    ScheduleDef,
    StateDef,
    ThenDef,
    TimeoutDef,
    TransitionDef,
    WorkflowDef,
)
from engine.definition.schema import WorkflowSchema
from engine.definition.typecheck import check_types
from engine.errors import Problem
from engine.expressions import BUILTIN_ATTRIBUTES, ExpressionError, Guard, compile_guard
from engine.masking import implied_pii
from engine.suggest import did_you_mean
from engine.templates import PARTS, TemplateSet, check_template

__all__ = ["build_definition"]


def _many(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


class _Collector:
    def __init__(self, tree: Any, file: str) -> None:
        self.tree = tree
        self.file = file
        self.problems: list[Problem] = []

    def add(self, path: tuple[Any, ...], message: str, *, key: bool = False) -> None:
        line, col = locate(self.tree, path, key=key)
        self.problems.append(Problem(self.file, line, col, message))

    def ref(self, path: tuple[Any, ...], value: str, known: Iterable[str], what: str, *, index: int | None) -> bool:
        known = list(known)
        if value in known:
            return True
        where = path + ((index,) if index is not None else ())
        self.add(where, f"unknown {what} {value!r}{did_you_mean(value, known)}")
        return False


def build_definition(
    tree: Any,
    schema: WorkflowSchema,
    source: str,
    file: str,
    templates: Mapping[str, str] | None = None,
    templates_location: str = "templates",
    *,
    stored: bool = False,
) -> WorkflowDef | list[Problem]:
    """Check references, the graph and the templates; return the model or the problems found.

    ``templates`` maps template file names (``review_waiting.txt``) to their
    sources; ``templates_location`` is the folder named in problems.
    ``stored``: a version already stored, whose retired keys are ignored.
    """
    c = _Collector(tree, file)
    roles = dict(schema.roles)
    if SYSTEM_ROLE in roles:
        c.add(("roles", SYSTEM_ROLE), "'system' is reserved for the scheduler; use another role name", key=True)

    try:
        zoneinfo.ZoneInfo(schema.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        c.add(("timezone",), f"unknown timezone {schema.timezone!r}; e.g. Asia/Shanghai")

    fields = _fields(c, schema)
    states = _states(c, schema, stored)
    transitions = _transitions(c, schema, roles, fields, states)
    _edits(c, schema, roles, fields, states, transitions)
    _timeouts(c, schema, states, transitions)
    notify = _notify(c, schema, roles, states, transitions, fields)
    publicity = _publicity(c, schema, states, transitions)
    schedules = _schedules(c, schema)
    fields, tables = check_computing(c, schema, fields, transitions, stored=stored)
    check_types(c, fields, transitions)
    limits = _limits(c, schema, fields, states, transitions)  # after computing: a computed sum is exempt from min
    programme = _programme(c, schema, fields, states)
    _links(c, schema, fields, states)
    campaign = _campaign(c, schema, roles, fields)
    _graph(c, schema, states, transitions)
    used = _templates(c, schema, fields, templates or {}, templates_location, stored)

    if c.problems:
        return c.problems
    prefix = schema.ref_prefix or "".join(p[0] for p in schema.workflow.split("_"))[:3].upper()
    return WorkflowDef(
        name=schema.workflow,
        version=schema.version,
        title=schema.title,
        timezone=schema.timezone,
        calendar=schema.calendar,
        ref_prefix=prefix,
        # shared by every case on this version: read-only views, not dicts
        roles=MappingProxyType(roles),
        fields=MappingProxyType(fields),
        states=MappingProxyType(states),
        transitions=MappingProxyType(transitions),
        notify=notify,
        source=source,
        source_hash=source_hash(source, used),
        file=file,
        templates=TemplateSet(MappingProxyType(used)),
        id_policy=schema.privacy.id_number,
        publicity=publicity,
        schedules=schedules,
        tables=MappingProxyType(tables),
        limits=limits,
        programme=programme,
        campaign=campaign,
    )


def source_hash(source: str, templates: Mapping[str, str]) -> str:
    """SHA-256 identifying a version: the YAML and every template it uses."""
    digest = hashlib.sha256(source.encode("utf-8"))
    for name in sorted(templates):
        digest.update(b"\0" + name.encode("utf-8") + b"\0" + templates[name].encode("utf-8"))
    return digest.hexdigest()


def _fields(c: _Collector, schema: WorkflowSchema) -> dict[str, FieldDef]:
    out: dict[str, FieldDef] = {}
    scope_fields = []
    for name, f in schema.fields.items():
        path = ("fields", name)
        if name in BUILTIN_ATTRIBUTES:
            c.add(path, f"field name {name!r} is reserved (the engine provides case.{name})", key=True)
        if f.type == "choice" and not f.choices:
            c.add(path, "a choice field needs 'choices: [...]'")
        if f.type != "choice" and f.choices:
            c.add(path + ("choices",), f"'choices' only applies to choice fields, not {f.type}", key=True)
        if f.type == "checklist" and not f.items:
            c.add(path, "a checklist field needs 'items: [...]'")
        if f.type != "checklist" and f.items:
            c.add(path + ("items",), f"'items' only applies to checklist fields, not {f.type}", key=True)
        if f.type not in ("integer", "decimal", "text"):
            for bound in ("min", "max"):
                if getattr(f, bound) is not None:
                    c.add(
                        path + (bound,),
                        f"'{bound}' applies to integer, decimal and text fields, not {f.type}",
                        key=True,
                    )
        if f.min is not None and f.max is not None and f.min > f.max:
            c.add(path + ("min",), f"min ({f.min}) is greater than max ({f.max})")
        if f.unique and f.type in ("checklist",):
            c.add(path + ("unique",), "'unique' needs a single-valued field", key=True)
        for listed in ("choices", "items"):
            values = getattr(f, listed) or []
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                c.add(path + (listed,), f"{listed} repeat {', '.join(dupes)}; list each once")
        if f.scope:
            scope_fields.append(name)
        out[name] = FieldDef(
            name=name,
            type=f.type,
            label=f.label or name,
            required=f.required,
            # ID numbers, names and phones are masked whatever the file says (engine.masking)
            pii=implied_pii(name, f.type, f.label, f.pii),
            unique=f.unique,
            scope=f.scope,
            choices=tuple(f.choices or ()),
            items=tuple(f.items or ()),
            min=f.min,
            max=f.max,
            help=f.help,
            link=LinkDef(f.link.workflow, _many(f.link.states), tuple(f.link.fill)) if f.link else None,
        )
    for extra in scope_fields[1:]:
        c.add(("fields", extra, "scope"), f"only one field may be the scope; {scope_fields[0]!r} already is", key=True)
    return out


def _states(c: _Collector, schema: WorkflowSchema, stored: bool) -> dict[str, StateDef]:
    out: dict[str, StateDef] = {}
    initial = [n for n, s in schema.states.items() if s.initial]
    if not initial:
        c.add(("states",), "no initial state; mark exactly one state with 'initial: true'")
    for extra in initial[1:]:
        c.add(
            ("states", extra, "initial"), f"more than one initial state ({initial[0]!r} is already initial)", key=True
        )
    for name, s in schema.states.items():
        path = ("states", name)
        if s.initial and s.final:
            c.add(path, "a state cannot be both initial and final")
        if s.void and not s.final:
            c.add(path + ("void",), "'void' applies only to final states (it frees unique fields)", key=True)
        if s.final and (s.deadline or s.timeout):
            c.add(path, "a final state cannot have a deadline or timeout")
        timeout = None
        if s.timeout:
            timeout = TimeoutDef(
                after=Duration.parse(s.timeout.after),
                fire=s.timeout.fire,
                held_to=s.timeout.held_to,
                held_template=s.timeout.held_template,
            )
        if s.notice and not stored:
            # retired: a case's publicity is the published list (公示名单), rendered when it is published
            c.add(
                (*path, "notice"),
                "a state's own 'notice' is no longer published: publicity is the published list (公示名单) — "
                "declare 'publicity: {state: ..., list_template: ...}' and remove 'notice'",
                key=True,
            )
        if (s.remind or s.escalate) and not s.deadline:
            c.add(path, "'remind' and 'escalate' count from the state's deadline: add 'deadline: N working days'")
        out[name] = StateDef(
            name=name,
            label=s.label or name,
            initial=s.initial,
            final=s.final,
            void=s.void,
            deadline=Duration.parse(s.deadline) if s.deadline else None,
            timeout=timeout,
            notice=s.notice,
            remind=tuple(RemindDef(Duration.parse(r.before), r.to, r.template) for r in s.remind or ()),
            escalate=EscalateDef(Duration.parse(s.escalate.after), s.escalate.to, s.escalate.template)
            if s.escalate
            else None,
        )
    return out


def _transitions(
    c: _Collector,
    schema: WorkflowSchema,
    roles: dict[str, str],
    fields: dict[str, FieldDef],
    states: dict[str, StateDef],
) -> dict[str, TransitionDef]:
    out: dict[str, TransitionDef] = {}
    known_roles = [*roles, SYSTEM_ROLE]
    attrs = [*fields, *BUILTIN_ATTRIBUTES]
    for name, t in schema.transitions.items():
        path = ("transitions", name)
        sources = _many(t.from_)
        for i, s in enumerate(sources):
            if c.ref(path + ("from",), s, states, "state", index=i if isinstance(t.from_, list) else None):
                if states[s].final:
                    c.add(path + ("from",), f"{s!r} is a final state; nothing may leave it")
        c.ref(path + ("to",), t.to, states, "state", index=None)
        by = _many(t.by)
        for i, r in enumerate(by):
            c.ref(path + ("by",), r, known_roles, "role", index=i if isinstance(t.by, list) else None)
        not_by = _many(t.not_by)
        for i, other in enumerate(not_by):
            c.ref(
                path + ("not_by",),
                other,
                schema.transitions,
                "transition",
                index=i if isinstance(t.not_by, list) else None,
            )
        for i, f in enumerate(t.require or ()):
            c.ref(path + ("require",), f, fields, "field", index=i)
        guards: dict[str, Guard | None] = {"when": None, "unless": None}
        for kind in guards:
            text = getattr(t, kind)
            if text is None:
                continue
            try:
                guard = compile_guard(text)
            except ExpressionError as exc:
                c.add(path + (kind,), f"{kind}: {exc}")
                continue
            for attr in sorted(guard.case_attributes - set(attrs)):
                c.add(path + (kind,), f"{kind}: case.{attr} is not a field{did_you_mean(attr, attrs)}")
            guards[kind] = guard
        out[name] = TransitionDef(
            name=name,
            label=t.label or name,
            sources=sources,
            dest=t.to,
            by=by,
            when=guards["when"],
            unless=guards["unless"],
            not_by=not_by,
            require=tuple(t.require or ()),
            comment_required=t.comment == "required",
            explain=t.explain,
            then=_then(c, path, t, fields),
            inbox=t.inbox,
        )
    return out


def _then(c: _Collector, path: tuple[Any, ...], t: Any, fields: dict[str, FieldDef]) -> ThenDef | None:
    """A step's ``then:``: the field holding the other case's reference must exist (its trigger is checked
    when the step runs, against the other case's workflow version)."""
    if t.then is None:
        return None
    if c.ref(path + ("then", "case"), t.then.case, fields, "field", index=None):
        kind = fields[t.then.case].type
        if kind != "text":
            c.add(path + ("then", "case"), f"field {t.then.case!r} is {kind}; a case reference is a text field")
    return ThenDef(case=t.then.case, fire=t.then.fire, comment=t.then.comment)


def _limits(
    c: _Collector,
    schema: WorkflowSchema,
    fields: dict[str, FieldDef],
    states: dict[str, StateDef],
    transitions: dict[str, TransitionDef],
) -> tuple[LimitDef, ...]:
    out = []
    names: set[str] = set()
    for i, lim in enumerate(schema.limits):
        path = ("limits", i)
        if lim.name in names:
            c.add(path + ("name",), f"limit {lim.name!r} is declared twice")
        names.add(lim.name)
        if lim.sum is not None and c.ref(path + ("sum",), lim.sum, fields, "field", index=None):
            summed = fields[lim.sum]
            if summed.type not in ("integer", "decimal"):
                c.add(path + ("sum",), f"field {lim.sum!r} is {summed.type}; a limit sums a number field")
            elif summed.compute is None and (summed.min is None or summed.min < 0):
                # a negative amount would make room under the limit for the person's other cases
                c.add(path + ("sum",), f"field {lim.sum!r} may be negative; a limit sums amounts: give it min: 0")
        key = _many(lim.key)
        for j, k in enumerate(key):
            c.ref(path + ("key",), k, fields, "field", index=j if isinstance(lim.key, list) else None)
        if len(set(key)) != len(key) or not key:
            c.add(path + ("key",), "list each key field once (at least one)")
        in_states = _many(lim.states)
        for j, s in enumerate(in_states):
            c.ref(path + ("states",), s, states, "state", index=j if isinstance(lim.states, list) else None)
        at = _many(lim.at)
        for j, t in enumerate(at):
            where = j if isinstance(lim.at, list) else None
            if c.ref(path + ("at",), t, transitions, "transition", index=where):
                dest = transitions[t].dest
                if dest in states and dest not in in_states:
                    # the case would be checked against the limit, then not count toward it
                    c.add(
                        path + ("at",) + ((j,) if where is not None else ()),
                        f"{t} leads to {dest}, which is not among the limit's states; "
                        f"a case the limit lets through must count: add {dest} to states",
                    )
        try:
            most = Decimal(str(lim.max))
        except ArithmeticError:
            most = Decimal(-1)
        if not most.is_finite() or most < 0:
            c.add(path + ("max",), f"max must be a number of at least 0, e.g. 50000 (not {lim.max!r})")
            most = Decimal(0)
        if lim.sum is None and most != most.to_integral_value():
            c.add(path + ("max",), f"a limit without sum counts cases: max must be a whole number (not {lim.max!r})")
        out.append(
            LimitDef(
                name=lim.name,
                label=lim.label or lim.name,
                sum=lim.sum,
                key=key,
                period=lim.period,
                states=in_states,
                at=at,
                max=most,
            )
        )
    return tuple(out)


def _programme(
    c: _Collector, schema: WorkflowSchema, fields: dict[str, FieldDef], states: dict[str, StateDef]
) -> ProgrammeDef | None:
    p = schema.programme
    if p is None:
        return None
    path = ("programme",)
    kinds = {"amount": ("integer", "decimal"), "people": ("integer",), "year": ("integer",)}
    for key, allowed in kinds.items():
        name = getattr(p, key)
        if name is not None and c.ref(path + (key,), name, fields, "field", index=None):
            if fields[name].type not in allowed:
                c.add(path + (key,), f"field {name!r} is {fields[name].type}; {key} must be {' or '.join(allowed)}")
    granted, paid = _many(p.granted), _many(p.paid)
    for key, names, raw in (("granted", granted, p.granted), ("paid", paid, p.paid)):
        for j, s in enumerate(names):
            c.ref(path + (key,), s, states, "state", index=j if isinstance(raw, list) else None)
    for s in paid:
        if s in states and s not in granted:
            # an amount paid was granted first: the report's paid column is part of its granted column
            c.add(path + ("paid",), f"state {s!r} is paid but not among granted; add it to granted")
    return ProgrammeDef(
        label=p.label or schema.title, amount=p.amount, granted=granted, paid=paid, people=p.people, year=p.year
    )


def _links(c: _Collector, schema: WorkflowSchema, fields: dict[str, FieldDef], states: dict[str, StateDef]) -> None:
    """Each ``link:``: on a text field; the fields it fills exist here, are typed (not computed, not a link)
    and are filled by one link only. The linked workflow's own states are checked when the link is used
    (it may be loaded later); a link to this same workflow has its states checked now."""
    filled: dict[str, str] = {}
    for name, f in fields.items():
        if f.link is None:
            continue
        path = ("fields", name, "link")
        if f.type != "text":
            c.add(path, f"field {name!r} is {f.type}; a link holds a case reference: make it a text field", key=True)
        if f.link.workflow == schema.workflow:
            raw = schema.fields[name].link
            for j, s in enumerate(f.link.states):
                c.ref(path + ("states",), s, states, "state", index=j if raw and isinstance(raw.states, list) else None)
        for j, target in enumerate(f.link.fill):
            where = path + ("fill",)
            if not c.ref(where, target, fields, "field", index=j):
                continue
            other = fields[target]
            if target == name:
                c.add(where + (j,), f"{name!r} is the link itself; it cannot be filled from the case it names")
            elif other.compute is not None:
                c.add(where + (j,), f"{target!r} is computed; a link fills only typed fields")
            elif other.link is not None:
                c.add(where + (j,), f"{target!r} is itself a link; fill it by hand, not from another case")
            elif target in filled:
                c.add(where + (j,), f"{target!r} is already filled by the link {filled[target]!r}; fill it from one")
            else:
                filled[target] = name
            if list(f.link.fill).count(target) > 1 and f.link.fill.index(target) != j:
                c.add(where + (j,), f"{target!r} is listed twice; list each field once")


def _campaign(
    c: _Collector, schema: WorkflowSchema, roles: dict[str, str], fields: dict[str, FieldDef]
) -> CampaignDef | None:
    """``campaign:``: its fields are this workflow's (link_field text, year_field integer), ``set_by`` one of its
    roles. The reached workflow may be loaded later: its name and state are checked when the campaign runs."""
    p = schema.campaign
    if p is None:
        return None
    path = ("campaign",)
    if c.ref(path + ("link_field",), p.link_field, fields, "field", index=None):
        if fields[p.link_field].type != "text":
            c.add(
                path + ("link_field",),
                f"field {p.link_field!r} is {fields[p.link_field].type}; it holds a "
                "case reference: make it a text field",
            )
    if p.year_field is not None and c.ref(path + ("year_field",), p.year_field, fields, "field", index=None):
        if fields[p.year_field].type != "integer":
            c.add(
                path + ("year_field",),
                f"field {p.year_field!r} is {fields[p.year_field].type}; a year is an integer field",
            )
        elif fields[p.year_field].compute is not None:
            c.add(path + ("year_field",), f"field {p.year_field!r} is computed; the campaign sets the year")
    if p.set_by == SYSTEM_ROLE:
        c.add(
            path + ("set_by",), "'system' (the scheduler) runs the campaign; give setting its date to a person's role"
        )
    else:
        c.ref(path + ("set_by",), p.set_by, roles, "role", index=None)
    if p.from_ == schema.workflow:
        c.ref(path + ("state",), p.state, schema.states, "state", index=None)
    return CampaignDef(
        label=p.label,
        source=p.from_,
        state=p.state,
        link_field=p.link_field,
        set_by=p.set_by,
        year_field=p.year_field,
    )


def _edits(
    c: _Collector,
    schema: WorkflowSchema,
    roles: dict[str, str],
    fields: dict[str, FieldDef],
    states: dict[str, StateDef],
    transitions: dict[str, TransitionDef],
) -> None:
    """Resolve each state's edit rights into ``states``: declared (checked) or the default rule.

    The default keeps what was decided decided: data may be changed only in
    the initial state, by the roles that take a step from it; anywhere else
    it takes a declared ``edit:`` or a step back (a correction) first.
    """
    every = tuple(fields)
    for name, s in schema.states.items():
        path = ("states", name, "edit")
        if s.edit is None:
            grants: tuple[EditDef, ...] = ()
            if states[name].initial:
                acting = {r for t in transitions.values() if name in t.sources for r in t.by} - {SYSTEM_ROLE}
                grants = tuple(EditDef(r, every, every=True) for r in roles if r in acting)
            states[name] = dataclasses.replace(states[name], edit=grants)
            continue
        if states[name].final and s.edit:
            c.add(path, f"{name!r} is a final state: its data can no longer be changed; remove 'edit'", key=True)
        declared = []
        for role, listed in s.edit.items():
            if role == SYSTEM_ROLE:
                c.add(
                    path + (role,),
                    "'system' (the scheduler) never changes a case's data; give the right to a person's role",
                    key=True,
                )
                continue
            if role not in roles:
                c.add(path + (role,), f"unknown role {role!r}{did_you_mean(role, roles)}", key=True)
                continue
            if listed == "all":
                declared.append(EditDef(role, every, every=True))
                continue
            for i, f in enumerate(listed):
                c.ref(path + (role,), f, fields, "field", index=i)
            dupes = sorted({f for f in listed if listed.count(f) > 1})
            if dupes:
                c.add(path + (role,), f"{', '.join(dupes)} listed more than once; list each field once")
            # in the workflow's field order, so messages and descriptions read the same everywhere
            declared.append(EditDef(role, tuple(f for f in fields if f in listed)))
        states[name] = dataclasses.replace(states[name], edit=tuple(declared))


def _timeouts(
    c: _Collector, schema: WorkflowSchema, states: dict[str, StateDef], transitions: dict[str, TransitionDef]
) -> None:
    for name, s in states.items():
        for i, r in enumerate(s.remind):
            c.ref(("states", name, "remind", i, "to"), r.to, schema.roles, "role", index=None)
        if s.escalate:
            c.ref(("states", name, "escalate", "to"), s.escalate.to, schema.roles, "role", index=None)
        if not s.timeout:
            continue
        path = ("states", name, "timeout", "fire")
        if c.ref(path, s.timeout.fire, transitions, "transition", index=None):
            t = transitions[s.timeout.fire]
            if name not in t.sources:
                c.add(path, f"timeout fires {t.name!r}, which does not leave {name!r}")
            elif SYSTEM_ROLE not in t.by:
                c.add(path, f"timeout fires {t.name!r}, but its 'by' does not include 'system'")
        if s.timeout.held_to:
            c.ref(("states", name, "timeout", "held_to"), s.timeout.held_to, schema.roles, "role", index=None)


def _notify(
    c: _Collector,
    schema: WorkflowSchema,
    roles: dict[str, str],
    states: dict[str, StateDef],
    transitions: dict[str, TransitionDef],
    fields: dict[str, FieldDef],
) -> tuple[NotifyDef, ...]:
    out = []
    for i, n in enumerate(schema.notify):
        kind, target = n.on.split(" ", 1)
        path = ("notify", i)
        if kind == "enter":
            c.ref(path + ("on",), target, states, "state", index=None)
        else:
            c.ref(path + ("on",), target, transitions, "transition", index=None)
        notify = NotifyDef(on=n.on, to=n.to, template=n.template, channels=tuple(n.channels))
        kind, name = notify.recipient
        if kind == "role":
            c.ref(path + ("to",), name, roles, "role", index=None)
        elif kind == "field" and c.ref(path + ("to",), name, fields, "field", index=None):
            if fields[name].type != "email":
                c.add(path + ("to",), f"field {name!r} is {fields[name].type}; a message goes to an email field")
            elif any(ch != "email" for ch in notify.channels):
                c.add(path + ("channels",), "a message to a field can only go by email (channels: [email])")
        if len(set(notify.channels)) != len(notify.channels):
            c.add(path + ("channels",), "a channel is listed twice")
        out.append(notify)
    return tuple(out)


def _schedules(c: _Collector, schema: WorkflowSchema) -> tuple[ScheduleDef, ...]:
    from apscheduler.triggers.cron import CronTrigger

    out = []
    names: set[str] = set()
    for i, s in enumerate(schema.schedules):
        path = ("schedules", i)
        if s.name in names:
            c.add(path + ("name",), f"schedule {s.name!r} is declared twice")
        names.add(s.name)
        try:
            CronTrigger.from_crontab(s.cron, timezone=schema.timezone)
        except (ValueError, KeyError) as exc:
            c.add(
                path + ("cron",), f"not a cron expression ({exc}); write 'minute hour day month weekday' ('0 9 * * *')"
            )
        if s.action == "overdue_digest":
            if not (s.to and s.template):
                c.add(path, "an overdue_digest needs 'to: ROLE' and 'template: NAME'")
            else:
                c.ref(path + ("to",), s.to, schema.roles, "role", index=None)
        elif not (s.workflow and s.from_state):
            c.add(path, "open_cases needs 'workflow: NAME' (what to open) and 'from_state: STATE' (for which cases)")
        else:
            c.ref(path + ("from_state",), s.from_state, schema.states, "state", index=None)
        out.append(
            ScheduleDef(
                s.name, s.cron, s.action, s.to, s.template, s.working_days_only, s.workflow, s.from_state, s.link_field
            )
        )
    return tuple(out)


def _publicity(
    c: _Collector, schema: WorkflowSchema, states: dict[str, StateDef], transitions: dict[str, TransitionDef]
) -> PublicityDef | None:
    p = schema.publicity
    if p is None:
        return None
    if c.ref(("publicity", "state"), p.state, states, "state", index=None) and p.uphold:
        if c.ref(("publicity", "uphold"), p.uphold, transitions, "transition", index=None):
            t = transitions[p.uphold]
            if p.state not in t.sources:
                c.add(("publicity", "uphold"), f"{p.uphold!r} does not leave {p.state!r}, the publicity state")
            elif not t.comment_required:
                c.add(("publicity", "uphold"), f"{p.uphold!r} should need a comment ('comment: required')")
    return PublicityDef(
        state=p.state, issuer=p.issuer, contact=p.contact, uphold=p.uphold, list_template=p.list_template
    )


def _templates(
    c: _Collector,
    schema: WorkflowSchema,
    fields: dict[str, FieldDef],
    sources: Mapping[str, str],
    location: str,
    stored: bool,
) -> dict[str, str]:
    """Check every template the workflow uses; return the sources it uses."""
    needed: list[tuple[tuple[Any, ...], str, str, tuple[str, ...]]] = []
    for i, n in enumerate(schema.notify):
        needed.append((("notify", i, "template"), n.template, "message", ("subject", "text")))
    for name, s in schema.states.items():
        if s.notice and stored:  # retired (refused in a new version), but part of a stored version's hash
            needed.append((("states", name, "notice"), s.notice, "notice", ("html",)))
        for i, r in enumerate(s.remind or ()):
            needed.append((("states", name, "remind", i), r.template, "message", ("subject", "text")))
        if s.escalate:
            needed.append((("states", name, "escalate"), s.escalate.template, "message", ("subject", "text")))
        if s.timeout and s.timeout.held_to:
            needed.append((("states", name, "timeout"), s.timeout.held_template, "message", ("subject", "text")))
    for i, sch in enumerate(schema.schedules):
        if sch.template:
            needed.append((("schedules", i, "template"), sch.template, "digest", ("subject", "text")))
    if schema.publicity and schema.publicity.list_template:
        needed.append((("publicity", "list_template"), schema.publicity.list_template, "list", ("html",)))
    attrs = [*fields, *BUILTIN_ATTRIBUTES, "state_label"]
    used: dict[str, str] = {}
    known = sorted({f.rsplit(".", 1)[0] for f in sources})
    for path, name, kind, parts in needed:
        optional = ("html",) if kind == "message" else ()
        for part in (*parts, *optional):
            filename = name + PARTS[part]
            if filename not in sources:
                if part not in optional:
                    c.add(path, f"no template file {location}/{filename}{did_you_mean(name, known)}")
                continue
            if filename in used:
                continue
            used[filename] = sources[filename]
            c.problems.extend(
                check_template(filename, sources[filename], kind, attrs, location=f"{location}/{filename}")
            )
    return used


def _graph(
    c: _Collector, schema: WorkflowSchema, states: dict[str, StateDef], transitions: dict[str, TransitionDef]
) -> None:
    initial = [s.name for s in states.values() if s.initial]
    edges: dict[str, set[str]] = {s: set() for s in states}
    for t in transitions.values():
        if t.dest not in states:
            continue
        for s in t.sources:
            if s in edges:
                edges[s].add(t.dest)
    if len(initial) == 1:
        seen = {initial[0]}
        todo = [initial[0]]
        while todo:
            for nxt in edges[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for s in states:
            if s not in seen:
                c.add(
                    ("states", s),
                    f"state {s!r} cannot be reached from the initial state {initial[0]!r}; "
                    "add a transition to it or remove it",
                    key=True,
                )
    for s, st in states.items():
        if not st.final and not edges[s]:
            c.add(
                ("states", s),
                f"state {s!r} has no way out; add a transition from it or mark it 'final: true'",
                key=True,
            )
    if not any(st.final for st in states.values()):
        c.add(("states",), "no final state; mark at least one state with 'final: true'")
