"""Case fields as form controls, and posted forms back into the values the engine takes.

Two halves, used by the new-case form and the case page's edit and step forms:

- :func:`widgets` describes, for each field a person types, the control a
  page shows (a select for a choice, checkboxes for a checklist, a date
  input, a number typed as text with ``inputmode`` and ``pattern``, the ID
  number with ``data-idnumber`` so ``static/app.js`` checks it as it is
  typed) with the limits the workflow declares (min, max, max length,
  required). The browser's checks only help the person typing: the engine
  checks every value again (:func:`engine.fields.coerce_value`).
- :func:`parse_form` turns the posted strings into the data a
  :class:`engine.Casework` call takes. It checks nothing itself — no rule
  lives in the web layer — so a value the browser let through (or a forged
  post) is refused by the engine with its :class:`engine.FieldProblem`.

Fields the engine fills (``compute:``, or copied from a linked case by a
``link:``'s ``fill``) are never typed: :func:`typed_fields` leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import ImmutableMultiDict

from engine.definition.model import FieldDef, WorkflowDef
from engine.fields import DEFAULT_MAX_TEXT, is_multiline

__all__ = [
    "Widget",
    "field_problems",
    "form_values",
    "parse_form",
    "typed_fields",
    "widget",
    "widgets",
]

# what a browser checks before posting; the engine's own patterns in engine/fields.py are the rule.
# Written without character-class ranges starting with '-' so they compile under the 'v' flag
# browsers use for the pattern attribute.
INTEGER_PATTERN = r"-?[0-9]{1,16}"
DECIMAL_PATTERN = r"-?[0-9]{1,15}(\.[0-9]{1,6})?"
ID_PATTERN = r"[0-9]{17}[0-9Xx]"


#: what :func:`parse_form` reads: a Starlette ``FormData`` (or any multi-dict of strings)
FormLike = ImmutableMultiDict[str, Any]


@dataclass(frozen=True)
class Widget:
    """One field as a form control.

    ``control`` is one of ``select`` (a choice), ``checkboxes`` (a checklist),
    ``date``, ``integer``, ``decimal``, ``idnumber`` (a ``cn_id``), ``email``,
    ``text`` (one line) or ``textarea``. ``attrs`` are the HTML attributes
    that carry the workflow's limits (``inputmode``, ``pattern``, ``min``,
    ``max``, ``maxlength``, ``minlength``); ``options`` the choices or
    checklist items offered; ``value`` what the control shows (a list for
    checkboxes, text otherwise); ``problem`` the server's word on the value,
    shown next to it.
    """

    name: str
    label: str
    type: str
    control: str
    required: bool = False
    options: tuple[str, ...] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)
    help: str | None = None
    pii: str | None = None
    value: Any = ""
    problem: str | None = None

    @property
    def dom_id(self) -> str:
        """The control's ``id`` (``field-{name}``; the ID number's check note is ``field-{name}-check``)."""
        return f"field-{self.name}"


def typed_fields(wf: WorkflowDef) -> list[str]:
    """The fields a person types, in the workflow's order: not computed, not filled from a linked case."""
    filled = wf.filled_by
    return [f.name for f in wf.fields.values() if f.compute is None and f.name not in filled]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _attrs(fd: FieldDef) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if fd.type == "integer":
        attrs.update(inputmode="numeric", pattern=INTEGER_PATTERN)
    elif fd.type == "decimal":
        attrs.update(inputmode="decimal", pattern=DECIMAL_PATTERN)
    elif fd.type == "cn_id":
        attrs.update(pattern=ID_PATTERN, maxlength="18", autocomplete="off")
    elif fd.type == "email":
        attrs.update(maxlength="254", autocomplete="off")
    elif fd.type == "text":
        attrs["maxlength"] = _number(fd.max) if fd.max is not None else str(DEFAULT_MAX_TEXT)
        if fd.min is not None:
            attrs["minlength"] = _number(fd.min)
    if fd.type in ("integer", "decimal"):
        # on a text input the browser does not enforce min/max; static/app.js checks them as typed
        if fd.min is not None:
            attrs["min"] = _number(fd.min)
        if fd.max is not None:
            attrs["max"] = _number(fd.max)
    return attrs


def _control(fd: FieldDef) -> str:
    if fd.type == "choice":
        return "select"
    if fd.type == "checklist":
        return "checkboxes"
    if fd.type == "cn_id":
        return "idnumber"
    if fd.type == "text":
        return "textarea" if is_multiline(fd) else "text"
    return fd.type  # date, integer, decimal, email


def widget(
    wf: WorkflowDef,
    name: str,
    *,
    value: Any = None,
    problem: str | None = None,
    scopes: Sequence[str] | None = None,
    required: bool | None = None,
) -> Widget:
    """The control for field ``name`` of ``wf``.

    ``scopes``: the viewer's scopes; when the workflow's scope field is a
    choice, only the choices they cover are offered (``*`` covers all) — a
    convenience, the engine refuses any other. ``required`` overrides the
    field's own flag (a step that requires a field).
    """
    fd = wf.fields[name]
    options = fd.choices if fd.type == "choice" else fd.items
    if fd.type == "choice" and fd.scope and scopes is not None and "*" not in scopes:
        options = tuple(c for c in fd.choices if c in scopes)
    return Widget(
        name=name,
        label=fd.label,
        type=fd.type,
        control=_control(fd),
        required=fd.required if required is None else required,
        options=tuple(options),
        attrs=_attrs(fd),
        help=fd.help,
        pii=fd.pii,
        value=_shown(fd, value),
        problem=problem,
    )


def widgets(
    wf: WorkflowDef,
    *,
    fields: Iterable[str] | None = None,
    values: Mapping[str, Any] | None = None,
    problems: Mapping[str, str] | None = None,
    scopes: Sequence[str] | None = None,
) -> list[Widget]:
    """The controls for ``fields`` (default: :func:`typed_fields`), showing ``values`` and ``problems``."""
    values = values or {}
    problems = problems or {}
    names = typed_fields(wf) if fields is None else [n for n in fields if n in wf.fields]
    return [widget(wf, n, value=values.get(n), problem=problems.get(n), scopes=scopes) for n in names]


def _shown(fd: FieldDef, value: Any) -> Any:
    """A stored or posted value as its control shows it again (a list for checkboxes, text otherwise)."""
    if fd.type == "checklist":
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def parse_form(wf: WorkflowDef, form: FormLike, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The case data posted in ``form``, as :meth:`engine.Casework.create_case` / ``update_case`` / ``fire`` take it.

    Reads ``fields`` (default: every :func:`typed_fields` field present in
    the form). A checklist is the list of its ticked boxes (empty strings
    dropped); an unticked checklist posts nothing, so when ``fields`` names
    it explicitly its absence means "none ticked" (``[]``), otherwise it is
    left out. Any other field is its posted text, or ``None`` when blank
    (which clears it); a field not posted is left out. Nothing is checked
    here: the engine coerces and refuses (its problems name the field).
    """
    explicit = fields is not None
    names = typed_fields(wf) if fields is None else list(fields)
    data: dict[str, Any] = {}
    for name in names:
        fd = wf.fields.get(name)
        if fd is None:
            continue
        if fd.type == "checklist":
            ticked = [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]
            if ticked or explicit or name in form:
                data[name] = ticked
            continue
        if name not in form:
            continue
        raw = form.get(name)
        if not isinstance(raw, str):
            continue  # an uploaded file where text belongs: never a field value
        data[name] = raw if raw.strip() else None
    return data


def form_values(wf: WorkflowDef, form: FormLike, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """What the person typed, to show the form again after a refusal (checklists as lists, text as posted)."""
    names = typed_fields(wf) if fields is None else list(fields)
    shown: dict[str, Any] = {}
    for name in names:
        fd = wf.fields.get(name)
        if fd is None:
            continue
        if fd.type == "checklist":
            shown[name] = [v for v in form.getlist(name) if isinstance(v, str) and v]
        else:
            raw = form.get(name)
            shown[name] = raw if isinstance(raw, str) else ""
    return shown


def field_problems(wf: WorkflowDef, problems: Iterable[Any]) -> tuple[dict[str, str], list[str]]:
    """The engine's per-field problems as a page shows them: (field → Chinese sentence, the rest).

    ``problems`` are :class:`engine.FieldProblem` objects or their JSON
    (``exc.facts["problems"]``). The sentence comes from
    ``casework.web.wording.field_problem`` when it exists; otherwise it is the
    field's Chinese label with the engine's message. A problem naming no field
    of ``wf`` goes into the second list, to be shown above the form.
    """
    from casework.web import wording

    worded = getattr(wording, "field_problem", None)
    by_field: dict[str, str] = {}
    others: list[str] = []
    for problem in problems:
        as_json = problem.to_json() if hasattr(problem, "to_json") else dict(problem)
        name = str(as_json.get("field") or "")
        fd = wf.fields.get(name)
        label = fd.label if fd is not None else name
        text = str(worded(as_json)) if worded is not None else str(as_json.get("message", ""))
        if label and label not in text:
            # shown next to the field and also above the form: the sentence names its field
            text = f"{label}：{text}"
        if fd is not None:
            by_field[name] = f"{by_field[name]}；{text}" if name in by_field else text
        else:
            others.append(text)
    return by_field, others
