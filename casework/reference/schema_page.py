"""``docs/workflow-schema.md``: every key of a workflow file, from the pydantic models of the definition schema.

The models give each key's type, default and whether it is required; what
they do not say — what the key means — is kept here, in
:data:`KEY_DESCRIPTIONS`, and a key without a description stops the generation.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from casework.reference.markdown import GENERATED, cell, code, plain, slug

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["DURATION_KEYS", "EXPRESSION_KEYS", "KEY_DESCRIPTIONS", "workflow_schema_page"]

#: What each key of a workflow file means, by model (of :mod:`engine.definition.schema`) and key.
#: The models carry types and defaults but no descriptions; a key added to a model needs its line here.
KEY_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "WorkflowSchema": {
        "workflow": "The name cases refer to (`case new poverty_archive`).",
        "version": "The version number. Changed content needs a new number: loading different content under a "
        "loaded number is refused (`version_exists`).",
        "title": "The title people see.",
        "timezone": "IANA time zone in which dates, deadlines, references and cron times are counted.",
        "calendar": "The working-day calendar deadlines are counted on (`workflows/calendars/cn.yaml`).",
        "ref_prefix": "1–6 capital letters that start case references: `ZZ` gives `ZZ-2026-000123`. "
        "Default: the initials of the workflow's name.",
        "roles": "`role: label` for every role of the workflow. `system` is reserved for the scheduler.",
        "fields": "The case's fields, by name.",
        "states": "The states, by name: exactly one `initial`, at least one `final`.",
        "transitions": "The steps, by trigger (a verb: `submit`).",
        "notify": "Who is told when: one rule per entry.",
        "privacy": "How ID numbers appear wherever the public or a message sees them.",
        "publicity": "The publicity (公示) of the workflow: its state, the step an upheld objection fires, "
        "the list notice.",
        "schedules": "Jobs the scheduler runs at cron times, once per due time.",
        "tables": "Decision tables, by name: rows of conditions on inputs → outputs, used by computed fields.",
        "tests": "Examples the workflow must compute right (inputs → expected outputs); run when it is "
        "validated or loaded.",
        "limits": "Limits across cases: a sum or count per key (e.g. a person's ID number) and period, "
        "checked at a step.",
        "programme": "Makes the workflow a programme in `casework report programmes`: which field is the amount "
        "granted, and in which states it counts as granted and paid.",
        "campaign": "A yearly campaign on a date a supervisor sets (`casework campaign set`): on that day, one "
        "case of this workflow for every case of another workflow in a state (e.g. 送温暖 for every filed "
        "archive), once.",
    },
    "FieldSchema": {
        "type": "How the value is checked and stored (see [field types](workflow.md#fields)).",
        "label": "What people see. Default: the field's name.",
        "required": "Must be filled before any step is fired (a case may be opened as a draft without it).",
        "pii": "Personal data of this kind: masked wherever it is shown to others (trail, messages, notices).",
        "unique": "`open`: no two cases of the workflow share the value, unless one of them ended in a `void` state.",
        "scope": "On at most one field: its value decides who may see and act on the case (users' scopes).",
        "choices": "The allowed values of a `choice` field.",
        "items": "The items of a `checklist` field, in order.",
        "min": "Lower bound of an `integer` or `decimal`; shortest length of a `text`.",
        "max": "Upper bound of an `integer` or `decimal`; longest length of a `text` (default 500).",
        "help": "A hint for people filling it in.",
        "compute": "The engine works the value out (an expression or a decision table) at named steps; "
        "nobody types it.",
        "link": "On a text field: it holds the reference of a case of another workflow, which must exist and be "
        "in one of the given states whenever the value is set and at each step that requires the field; "
        "`fill` fields are copied from that case (and cannot be typed while the link is set).",
    },
    "LinkSchema": {
        "workflow": "The workflow whose case the field names (it may be loaded later).",
        "states": "The states that case must be in (e.g. `filed`).",
        "fill": "Fields of this workflow copied from the same-named fields of that case when the link is set "
        "or changed (recorded old → new in the same event).",
    },
    "CampaignSchema": {
        "label": "What people see (`campaign list`, the run's outcome).",
        "from": "The workflow whose cases the campaign reaches.",
        "state": "One new case for each case of that workflow in this state.",
        "link_field": "This workflow's text field set to the reached case's reference (same-named fields are "
        "copied too, as `open_cases` does).",
        "year_field": "This workflow's integer field set to the campaign's year; a reached case that already "
        "has a case of that year is skipped.",
        "set_by": "The role (of this workflow) whose holders, covering every county, set and cancel the date.",
    },
    "ComputeSchema": {
        "expr": "An expression over the case's fields giving the value (decimal arithmetic; an empty field it "
        "reads leaves the value empty).",
        "table": "A decision table (`tables:`) giving the value.",
        "output": "The table's output column to take. Default: the field's name.",
        "at": "The steps at which the value is computed, before their conditions are checked; also `opened` "
        "(when the case is opened) and `edited` (when its data is edited).",
        "round": "How the value is rounded: `half_up` (0.005 → 0.01), `half_even`, `down`, `up`.",
        "places": "Decimal places kept; the stored value keeps them (`500.00`). Default: 2 for a `decimal` "
        "(0.01 yuan), 0 for an `integer`.",
    },
    "ThenSchema": {
        "case": "The field holding the other case's reference.",
        "fire": "The step fired on that case, by the same person, in the same transaction.",
        "comment": "The comment recorded on the other case's step. Default: this step's comment.",
    },
    "TableSchema": {
        "hit": "`unique`: exactly one row may match; `first`: the first matching row wins.",
        "inputs": "The fields the rows test (number, text or choice fields).",
        "outputs": "The values each row gives (a computed field takes one with `output:`).",
        "rows": "One mapping per row: a test per input (`< 6000`, `[6000..10000]`, `(10000..30000]`, `6000`, "
        "`芗城区, 龙文区`, `-` for any) and a value per output (a number, `~`, or an expression over the case). "
        "Gaps, and overlaps under `unique`, are refused when the workflow is loaded.",
        "label": "What people see.",
    },
    "TestSchema": {
        "given": "Field values (as they would be typed).",
        "expect": "The values expected from them: the table's outputs, or the computed fields as stored. "
        "Numbers compare by value; `~` expects no value.",
        "table": "Test this table's outputs; without it, the computed fields.",
        "name": "What the example shows.",
    },
    "LimitSchema": {
        "name": "The limit's name (in refusals).",
        "label": "What people see.",
        "sum": "The number field summed; without it, cases are counted.",
        "key": "The field the limit is per, e.g. `id_number`, or several together: `[id_number, level]`.",
        "period": "`year`: per calendar year in the workflow's time zone; `all`: ever.",
        "states": "The cases that count: those in these states.",
        "at": "The step or steps at which the limit is checked.",
        "max": "The most allowed.",
    },
    "ProgrammeSchema": {
        "label": "The programme's name in reports. Default: the workflow's title.",
        "amount": "The number field holding the amount granted to the case.",
        "people": "An integer field: how many people the case covers. Default: 1 per case.",
        "granted": "The states in which the amount counts as granted (include the paid ones).",
        "paid": "The states in which the amount counts as paid.",
        "year": "An integer field naming the programme year. Default: the year the case was opened.",
    },
    "StateSchema": {
        "label": "What people see. Default: the state's name.",
        "initial": "Cases open in this state (exactly one state).",
        "final": "No step may leave it (at least one state).",
        "void": "On a final state: the case came to nothing, so its `unique` values are free again.",
        "deadline": "How long a case may wait in the state, counted from the time it entered.",
        "timeout": "A step `system` fires when the time is up.",
        "remind": "Tell a role before the deadline.",
        "escalate": "Tell a role after the deadline has passed.",
        "notice": "A template: entering the state publishes a public notice of the case made from it.",
        "edit": "Who may change which fields in this state: role → a list of fields, or `all` (`{}`: nobody). "
        "Without it, only the initial state's data may be changed, by the roles acting there.",
    },
    "TimeoutSchema": {
        "after": "How long after entering the state.",
        "fire": "The trigger to fire; it must leave this state and allow `system` in `by`.",
        "held_to": "The role told (once) when a guard holds the step.",
        "held_template": "The template of that message.",
    },
    "RemindSchema": {
        "before": "How long before the deadline (working days before: the start of the Nth-last working day).",
        "to": "The role told.",
        "template": "The template of the message.",
    },
    "EscalateSchema": {
        "after": "How long after the deadline.",
        "to": "The role told.",
        "template": "The template of the message.",
    },
    "TransitionSchema": {
        "label": "What people see. Default: the trigger's name.",
        "from": "The state or states the step leaves.",
        "to": "The state it enters.",
        "by": "The role or roles that may fire it (`system`: the scheduler).",
        "when": "A guard that must be true (an expression, see [guards](workflow.md#guards)).",
        "unless": "A guard that must be false: while it is true it holds the step.",
        "not_by": "Four-eyes: nobody who ever fired one of these triggers on the case may fire this one.",
        "require": "Fields that must be filled before this step.",
        "comment": "Whether the step needs a comment saying why.",
        "explain": "What a refused guard means, shown in the refusal.",
        "then": "Fire a step on a linked case in the same transaction; both steps happen or neither.",
        "inbox": "Whether a case this step may take waits in the inbox of those who may take it. Default: "
        "yes, unless the step leads to a `void` final state (withdraw, reject).",
    },
    "NotifySchema": {
        "on": "`enter STATE` or `fire TRIGGER`.",
        "to": "A role (everyone holding it whose scopes cover the case), `user:NAME`, or `field:FIELD` "
        "(an `email` field of the case).",
        "template": "The message's template.",
        "channels": "How: `inbox`, `email`, `webhook`, `console` (email only reaches users with an address).",
    },
    "PrivacySchema": {
        "id_number": "`partial`: first 6 and last 4 digits (`350602********1234`); `omit`: left out.",
    },
    "PublicitySchema": {
        "state": "The publicity state: objections are taken while a case is in it.",
        "uphold": "The step an upheld objection fires (back to review; it needs a comment).",
        "list_template": "The template of the 公示名单 that `notice publish` issues.",
        "issuer": "Who issues the notices (shown on them).",
        "contact": "How to raise an objection (shown on them).",
    },
    "ScheduleSchema": {
        "name": "The job's name: each (workflow, name) runs once per due time, however many schedulers run.",
        "cron": "`minute hour day month weekday`, in the workflow's time zone.",
        "action": "`overdue_digest`: tell a role the overdue cases waiting for each of them; `open_cases`: a "
        "campaign opening one case of another workflow per case in a state.",
        "to": "`overdue_digest`: the role told.",
        "template": "`overdue_digest`: the message's template.",
        "working_days_only": "Skip (and record as skipped) a due time that falls on a rest day.",
        "workflow": "`open_cases`: the workflow whose cases are opened (by `system`).",
        "from_state": "`open_cases`: one new case for every case of this workflow in this state.",
        "link_field": "`open_cases`: the new case's field set to our case's reference.",
    },
}

#: Keys the schema types as text but checks as a duration (a field validator the JSON schema cannot show).
DURATION_KEYS = {
    ("StateSchema", "deadline"),
    ("TimeoutSchema", "after"),
    ("RemindSchema", "before"),
    ("EscalateSchema", "after"),
}

#: Keys whose text is a guard expression (checked by :mod:`engine.expressions` when the workflow loads).
EXPRESSION_KEYS = {("TransitionSchema", "when"), ("TransitionSchema", "unless")}

#: What the placeholder of a map's key is called in the section titles.
_MAP_KEYS = {"fields": "FIELD", "states": "STATE", "transitions": "TRIGGER"}

_NAME_PATTERN = "^[a-z][a-z0-9_]{0,62}$"

_SCHEMA_INTRO = """\
Every key a workflow file may hold, at every level, as the pydantic models
in `engine/definition/schema.py` define them. What the keys are for, with
examples, is in [the workflow format](workflow.md); the bundled workflow,
[`workflows/poverty_archive.yaml`](../workflows/poverty_archive.yaml), uses
most of them.

Unknown keys are errors at every level, reported with their line and column.
This page is the shape only: how parts refer to each other (a transition
naming a state, a guard reading a field) is checked after it, and every
problem is reported at once.

Types used below:

* **name** — a lowercase letter, then lowercase letters, digits or `_`; at most
  63 characters (`{name_pattern}`);
* **label** — text of 1 to 200 characters;
* **duration** — `N working days`, `N days` or `N hours` (`1 working day`, `7 days`);
* **expression** — a guard, e.g. `case.materials | length == 4` (see [guards](workflow.md#guards));
* **name or list of names** — `by: reviewer` or `by: [reviewer, approver]`.

A key whose default is "—" may be left out and then has no value.
"""


def _ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def _non_null(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The alternatives of ``schema`` other than ``null``."""
    options = schema.get("anyOf")
    if options is None:
        return [schema]
    return [o for o in options if o.get("type") != "null"]


def _count(schema: Mapping[str, Any], low: str, high: str) -> str:
    lo, hi = schema.get(low), schema.get(high)
    if lo is not None and hi is not None:
        return f"{lo}–{hi}"
    if hi is not None:
        return f"at most {hi}"
    if lo is not None:
        return f"at least {lo}"
    return ""


class _SchemaPage:
    """Renders the JSON schema of :class:`~engine.definition.schema.WorkflowSchema` as markdown tables."""

    def __init__(self, root: type[BaseModel]) -> None:
        self.root = root
        self.schema = root.model_json_schema(by_alias=True)
        self.defs: dict[str, Any] = self.schema.get("$defs", {})
        self.models: dict[str, type[BaseModel]] = {}
        self._collect(root)
        # section title of each model: where it sits in the file
        self.paths: dict[str, str] = {root.__name__: ""}
        self.order: list[str] = [root.__name__]
        self._place(root.__name__, "")

    def _collect(self, model: type[BaseModel]) -> None:
        from pydantic import BaseModel

        self.models[model.__name__] = model
        for field in model.model_fields.values():
            for arg in _type_args(field.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg.__name__ not in self.models:
                    self._collect(arg)

    def _properties(self, name: str) -> dict[str, Any]:
        model_schema = self.schema if name == self.root.__name__ else self.defs[name]
        properties: dict[str, Any] = model_schema["properties"]
        return properties

    def _place(self, name: str, path: str) -> None:
        """Give every model reached from ``name`` (at ``path``) its path, depth first in key order."""
        for key, prop in self._properties(name).items():
            for option in _non_null(prop):
                target, where = self._nested(option, f"{path}.{key}" if path else key, key)
                if target and target not in self.paths:
                    self.paths[target] = where
                    self.order.append(target)
                    self._place(target, where)

    def _nested(self, schema: Mapping[str, Any], path: str, key: str) -> tuple[str | None, str]:
        """The model ``schema`` holds (directly, in a list, or as a map's values), and its path."""
        if name := _ref_name(schema):
            return name, path
        if schema.get("type") == "array" and (name := _ref_name(schema.get("items", {}))):
            return name, f"{path}[i]"
        for value in schema.get("patternProperties", {}).values():
            if name := _ref_name(value):
                return name, f"{path}.{_MAP_KEYS.get(key, 'NAME')}"
        return None, path

    def heading(self, name: str) -> str:
        """The section title of a model: where it sits in a workflow file."""
        path = self.paths[name]
        return code(path) if path else "Top level"

    def link(self, name: str) -> str:
        return f"[{self.heading(name)}](#{slug(self.heading(name))})"

    def type_of(self, schema: Mapping[str, Any]) -> str:
        """A reader's name for the type of ``schema`` (a property's schema, or one of its alternatives)."""
        options = _non_null(schema)
        if len(options) > 1:
            kinds = [self.type_of(o) for o in options]
            if kinds == ["name", "list of names"]:
                return "name or list of names"
            if set(kinds) == {"integer", "number"}:
                return "number"
            return " or ".join(kinds)
        one = options[0]
        if name := _ref_name(one):
            return self.link(name)
        if "enum" in one:
            return "one of " + ", ".join(code(str(v)) for v in one["enum"])
        if "const" in one:
            return code(str(one["const"]))
        kind = one.get("type")
        if kind == "string":
            pattern = one.get("pattern")
            if pattern == _NAME_PATTERN:
                return "name"
            if pattern:
                return f"text matching {code(pattern)}"
            if one.get("minLength") == 1 and one.get("maxLength") == 200:
                return "label"
            size = _count(one, "minLength", "maxLength")
            return f"text ({size} characters)" if size else "text"
        if kind == "integer":
            bounds = _count(one, "minimum", "maximum")
            return f"integer ({bounds})" if bounds else "integer"
        if kind in ("number", "boolean"):
            return str(kind)
        if kind == "array":
            item = self.type_of(one.get("items", {}))
            size = _count(one, "minItems", "maxItems")
            plural = {"name": "names", "label": "labels"}.get(item, item)
            return f"list of {plural}" + (f" ({size})" if size else "")
        if kind == "object":
            size = _count(one, "minProperties", "maxProperties")
            values = next(iter(one.get("patternProperties", {}).values()), None)
            value = self.type_of(values) if values is not None else "any value"
            return f"map of name → {value}" + (f" ({size} entries)" if size else "")
        return "any value"

    def default_of(self, model: type[BaseModel], key: str) -> str:
        from pydantic import BaseModel

        field = next(f for n, f in model.model_fields.items() if (f.alias or n) == key)
        if field.is_required():
            return "**required**"
        value = field.get_default(call_default_factory=True)
        if value is None:
            return "—"
        if isinstance(value, BaseModel):
            value = value.model_dump()
        return code(_yaml(value))

    def section(self, name: str) -> list[str]:
        model = self.models[name]
        descriptions = KEY_DESCRIPTIONS.get(name)
        if descriptions is None:
            raise SystemExit(f"casework/reference/schema_page.py: KEY_DESCRIPTIONS has no entry for {name}")
        properties = self._properties(name)
        unknown = sorted(set(descriptions) - set(properties))
        if unknown:
            raise SystemExit(
                f"casework/reference/schema_page.py: KEY_DESCRIPTIONS[{name!r}] describes no such keys: {unknown}"
            )
        own_doc = model.__dict__.get("__doc__")
        path = self.paths[name]
        if not path:
            where = "The keys of the file itself"
        elif path.endswith("[i]"):
            where = f"The keys of each entry of {code(path.removesuffix('[i]'))}"
        else:
            where = f"The keys of {code(path)}"
        lines = [f"## {self.heading(name)}", "", f"{where} (model `{name}`).", ""]
        if isinstance(own_doc, str) and own_doc.strip():
            lines += [plain(" ".join(inspect.cleandoc(own_doc).split())), ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for key, prop in properties.items():
            if key not in descriptions:
                raise SystemExit(
                    f"casework/reference/schema_page.py: add a description of {name}.{key} to KEY_DESCRIPTIONS"
                )
            kind = self.type_of(prop)
            if (name, key) in DURATION_KEYS:
                kind = "duration"
            elif (name, key) in EXPRESSION_KEYS:
                kind = "expression"
            lines.append(
                f"| {code(key)} | {cell(kind)} | {cell(self.default_of(model, key))} | {cell(descriptions[key])} |"
            )
        return [*lines, ""]


def _type_args(annotation: Any) -> Iterator[Any]:
    """Every class mentioned in ``annotation`` (through unions, lists, dicts and ``Annotated``)."""
    from typing import get_args

    yield annotation
    for arg in get_args(annotation):
        yield from _type_args(arg)


def _yaml(value: Any) -> str:
    """A default value as it would be written in YAML flow style."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    return str(value) if isinstance(value, str | int | float) else json.dumps(value)


def workflow_schema_page() -> str:
    """``docs/workflow-schema.md``: every key of a workflow file, with its type, default and meaning."""
    from engine.definition.schema import WorkflowSchema

    page = _SchemaPage(WorkflowSchema)
    described = set(KEY_DESCRIPTIONS) - set(page.order)
    if described:
        raise SystemExit(
            f"casework/reference/schema_page.py: KEY_DESCRIPTIONS names models the schema no longer has: {described}"
        )
    lines = [
        "# Workflow file schema (format v1)",
        "",
        GENERATED.format(source="the pydantic models in `engine/definition/schema.py`"),
        "",
        _SCHEMA_INTRO.replace("{name_pattern}", _NAME_PATTERN).rstrip("\n"),
        "",
        "Sections: " + " · ".join(page.link(name) for name in page.order) + ".",
        "",
    ]
    for name in page.order:
        lines += page.section(name)
    return "\n".join(lines).rstrip("\n") + "\n"
