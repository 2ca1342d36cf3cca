"""Workflow definitions: untrusted YAML in, a frozen :class:`WorkflowDef` out.

The pipeline has named stages, each in its own module:
``loader`` (safe YAML with positions) → ``schema`` (pydantic shapes) →
``checks`` (references and graph) → ``model`` (the frozen result).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from engine.definition.checks import build_definition
from engine.definition.loader import Limits, ParseFailed, locate, parse_yaml
from engine.definition.model import (
    SYSTEM_ROLE,
    Duration,
    FieldDef,
    StateDef,
    TransitionDef,
    WorkflowDef,
)
from engine.definition.schema import WorkflowSchema
from engine.errors import DefinitionError, Problem
from engine.suggest import did_you_mean
from engine.templates import MAX_TEMPLATE_BYTES, MAX_TEMPLATES, PARTS

__all__ = [
    "SYSTEM_ROLE",
    "Duration",
    "FieldDef",
    "Limits",
    "StateDef",
    "TransitionDef",
    "WorkflowDef",
    "load_definition",
    "load_definition_file",
]

_TOP_KEYS = list(WorkflowSchema.model_fields)


def load_definition(
    text: str | bytes,
    file: str = "<workflow>",
    templates: Mapping[str, str] | None = None,
    templates_location: str = "templates",
    *,
    stored: bool = False,
) -> WorkflowDef:
    """Parse, validate and check a workflow; raise :class:`DefinitionError` listing every problem.

    Args:
        text: the YAML source.
        file: the name used in problem locations.
        templates: template file name → source (see :mod:`engine.templates`).
        templates_location: the folder named in template problems.
        stored: a version already stored (its cases depend on it): keys since
            retired are accepted and ignored, not refused.
    """
    try:
        tree = parse_yaml(text, file)
    except ParseFailed as exc:
        raise DefinitionError(exc.problems) from None
    if not isinstance(tree, dict):
        line, col = getattr(tree, "mark", (1, 1))
        raise DefinitionError(
            [Problem(file, line, col, "a workflow file must be a mapping with 'workflow:', 'states:', ...")]
        )
    source = text.decode("utf-8") if isinstance(text, bytes) else text
    try:
        schema = WorkflowSchema.model_validate(tree)
    except ValidationError as exc:
        raise DefinitionError(_schema_problems(exc, tree, file)) from None
    result = build_definition(tree, schema, source, file, templates, templates_location, stored=stored)
    if isinstance(result, list):
        raise DefinitionError(result)
    return result


def load_definition_file(path: str | Path) -> WorkflowDef:
    """Read a workflow file and its templates (``templates/<file stem>/`` beside it) and load it.

    Sizes are checked before anything is read in full.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > Limits.max_bytes:
            raise DefinitionError(
                [
                    Problem(
                        str(path), 1, 1, f"file is {size:,} bytes; a workflow may be at most {Limits.max_bytes:,} bytes"
                    )
                ]
            )
        data = p.read_bytes()
    except OSError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"cannot read the file: {exc.strerror}")]) from None
    folder = p.parent / "templates" / p.stem
    return load_definition(data, str(path), read_templates(folder), str(folder))


def read_templates(folder: Path) -> dict[str, str]:
    """The template files in ``folder`` (``*.subject``, ``*.txt``, ``*.html``), size-limited."""
    if not folder.is_dir():
        return {}
    found: dict[str, str] = {}
    problems = []
    for f in sorted(folder.iterdir()):
        if f.suffix not in PARTS.values() or not f.is_file():
            continue
        if len(found) >= MAX_TEMPLATES:
            problems.append(Problem(str(f), 1, 1, f"more than {MAX_TEMPLATES} templates in {folder}"))
            break
        if f.stat().st_size > MAX_TEMPLATE_BYTES:
            problems.append(Problem(str(f), 1, 1, f"template is larger than {MAX_TEMPLATE_BYTES:,} bytes"))
            continue
        try:
            found[f.name] = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(str(f), 1, 1, f"cannot read the template as UTF-8 text: {exc}"))
    if problems:
        raise DefinitionError(problems)
    return found


def _schema_problems(exc: ValidationError, tree: Any, file: str) -> list[Problem]:
    problems = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple("from" if p == "from_" else p for p in err["loc"])
        at_key = bool(loc) and loc[-1] == "[key]"
        path = _tree_path(tree, loc)
        if path in seen:
            continue
        seen.add(path)
        kind = err["type"]
        if kind == "extra_forbidden":
            key = path[-1]
            parent_known = _known_keys(path[:-1])
            message = f"unknown key {key!r}{did_you_mean(str(key), parent_known)}"
            line, col = locate(tree, path, key=True)
        elif kind == "missing":
            message = f"missing required key {path[-1]!r}"
            line, col = locate(tree, path[:-1], key=False)
        elif _in_edit(path) and not at_key:
            what = ".".join(str(p) for p in path)
            if len(path) == 3:
                hint = "map each role to the fields it may change here, e.g. {reviewer: [materials]} or {clerk: all}"
            else:
                hint = f"write 'all' or a list of the fields {path[3]} may change here, e.g. [materials]"
            message = f"{what}: {hint}"
            line, col = locate(tree, path, key=False)
        else:
            what = ".".join(str(p) for p in path) or "workflow"
            msg = err["msg"]
            if kind == "string_pattern_mismatch" and err.get("ctx", {}).get("pattern", "").startswith("^[a-z]"):
                msg = (
                    f"{err['input']!r} is not a valid name: "
                    "use lowercase letters, digits and '_', starting with a letter"
                )
            elif kind == "literal_error":
                options = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
                hint = did_you_mean(str(err["input"]), options)
                if not hint.startswith("; did"):
                    hint = f"; expected one of: {', '.join(options)}"
                msg = f"{err['input']!r} is not allowed here{hint}"
            elif kind == "value_error":
                msg = msg.removeprefix("Value error, ")
            elif kind == "too_long" and path and isinstance(err["input"], (dict, list)):
                limit = err.get("ctx", {}).get("max_length")
                msg = f"{len(err['input']):,} entries; a workflow may have at most {limit}"
            elif kind == "too_short" and isinstance(err["input"], (dict, list)):
                msg = "must not be empty"
            elif kind == "string_pattern_mismatch" and what.endswith(".on"):
                msg = f"{err['input']!r} should be 'enter STATE' or 'fire TRIGGER'"
            message = f"{what}: {msg}"
            line, col = locate(tree, path, key=at_key)
        problems.append(Problem(file, line, col, message))
    return problems


def _in_edit(path: tuple[Any, ...]) -> bool:
    """Whether ``path`` is a state's ``edit:`` or inside it (whose union errors read better in one sentence)."""
    return len(path) in (3, 4) and path[0] == "states" and path[2] == "edit"


def _tree_path(tree: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a pydantic error location that names real keys and items of the file.

    pydantic adds the names of union members ("str", "list[str]", "function-after[...]")
    and "[key]" to locations; a field that is really called "int" must survive that.
    """
    path: list[Any] = []
    node = tree
    for step in loc:
        if isinstance(node, dict) and isinstance(step, str) and step in node:
            path.append(step)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            path.append(step)
            node = node[step]
        elif isinstance(step, str) and ("[" in step or step in ("str", "int", "float", "bool")):
            continue  # a union member's name, not a place in the file
        else:
            path.append(step)  # missing key: keep it so the message can name it
            node = None
    return tuple(path)


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    from engine.definition import schema as s

    if not path:
        return _TOP_KEYS
    head = path[0]
    table: dict[str, type[BaseModel]] = {
        "fields": s.FieldSchema,
        "states": s.StateSchema,
        "transitions": s.TransitionSchema,
        "notify": s.NotifySchema,
        "privacy": s.PrivacySchema,
        "publicity": s.PublicitySchema,
        "schedules": s.ScheduleSchema,
    }
    model = table.get(head)
    if model is None:
        return []
    if head == "states" and len(path) >= 3 and path[2] in ("timeout", "remind", "escalate"):
        nested: dict[str, type[BaseModel]] = {
            "timeout": s.TimeoutSchema,
            "remind": s.RemindSchema,
            "escalate": s.EscalateSchema,
        }
        model = nested[path[2]]
    return [f.alias or n for n, f in model.model_fields.items()]
