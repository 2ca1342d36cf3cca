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
from engine.definition.loader import Limits, LocDict, LocList, ParseFailed, locate, parse_yaml
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
from engine.suggest import close_match, did_you_mean
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
        problems = _schema_problems(exc, tree, file)
        # one pass: check the rest of the file too, without the parts the schema refused
        problems += _beyond_the_schema(exc, tree, source, file, templates, templates_location, stored)
        raise DefinitionError(_in_order(problems, file)) from None
    result = build_definition(tree, schema, source, file, templates, templates_location, stored=stored)
    if isinstance(result, list):
        raise DefinitionError(_in_order(result, file))
    return result


def _in_order(problems: list[Problem], file: str) -> list[Problem]:
    """The workflow file's problems by line and column, then those of its templates; each once."""
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file != file, p.file, p.line, p.column))


# --- one pass: the checks after the schema, on what the schema accepted -------------------------------------------

#: rounds of pruning (each removes what the schema refused; a removed required key refuses its parent next)
_MAX_ROUNDS = 8
#: the sections whose entries other parts name, and the word a reference problem uses for them
_NAMED = {"states": "state", "transitions": "transition", "fields": "field", "roles": "role", "tables": "table"}
#: problems of the whole graph, which a removed state or transition would distort
_GRAPH = (
    "cannot be reached from the initial state",
    "has no way out;",
    "no final state;",
    "no initial state;",
)
#: the required top-level keys nothing else refers to, and a valid value to check the rest with
_STAND_INS: dict[str, Any] = {"workflow": "workflow", "version": 1, "title": "workflow"}
_TYPE_CHECK = "' cannot run "  # a guard or computed expression refused by the type check (engine.definition.typecheck)


def _beyond_the_schema(
    exc: ValidationError,
    tree: Any,
    source: str,
    file: str,
    templates: Mapping[str, str] | None,
    templates_location: str,
    stored: bool,
) -> list[Problem]:
    """The reference, graph and type problems of ``tree`` without the parts the schema refused.

    Each refused key or entry is removed from a copy (positions kept), the copy
    validated again until it passes, and the later checks run on it. Problems
    that only the removal caused are left out: a reference to a removed entry,
    the graph if a state or transition was removed or changed, a problem of a
    whole entry one of whose keys was removed, and the type check if a field or
    a step's ``require:`` was. If the schema cannot pass without a required
    top-level key, there is nothing more to check.
    """
    pruned = _copy(tree)
    removed: list[tuple[tuple[Any, ...], set[tuple[int, int]]]] = []  # each path, and where its entry is
    error: ValidationError | None = exc
    schema = None
    for _ in range(_MAX_ROUNDS):
        assert error is not None
        paths = {_existing(pruned, _tree_path(pruned, _loc(e))) for e in error.errors(include_url=False)}
        for key, stand_in in _STAND_INS.items():
            # nothing refers to these: a stand-in lets the rest be checked
            if (() in paths and key not in pruned) or (key,) in paths:
                pruned[key] = stand_in
                pruned.key_marks.setdefault(key, pruned.mark)
                pruned.value_marks.setdefault(key, pruned.mark)
                paths.discard((key,))
        paths.discard(())  # a stand-in was set; if another required key is missing, validating says so
        for path in sorted(paths, key=_sort_key, reverse=True):
            entry = {locate(pruned, path[:2]), locate(pruned, path[:2], key=True)} if len(path) > 2 else set()
            if _remove(pruned, path):
                removed.append((path, entry))
        try:
            schema = WorkflowSchema.model_validate(pruned)
        except ValidationError as again:
            error = again
            continue
        break
    if schema is None:
        return []
    result = build_definition(pruned, schema, source, file, templates, templates_location, stored=stored)
    if not isinstance(result, list):
        return []
    return [p for p in result if not _follow_up(p, removed)]


def _follow_up(problem: Problem, removed: list[tuple[tuple[Any, ...], set[tuple[int, int]]]]) -> bool:
    """Whether ``problem`` may only be the effect of the removals (each path, and where its entry is)."""
    for path, entry in removed:
        if len(path) == 1 and path[0] in _NAMED and f"unknown {_NAMED[path[0]]} " in problem.message:
            return True  # a whole section removed: every reference into it
        if len(path) == 2 and path[0] in _NAMED:
            what, name = _NAMED[path[0]], str(path[1])
            named = re.search(rf"unknown {what} '([^']*)'", problem.message)
            # the removed entry itself, or (a name the schema refused, 'Draft') what it was meant to be
            if named and (
                named.group(1).lower() == name.lower()
                or ("; did you mean" not in problem.message and close_match(named.group(1), [name]))
            ):
                return True
            if what == "field" and f"case.{name} is not a field" in problem.message:
                return True
        if path[0] in ("states", "transitions") and any(g in problem.message for g in _GRAPH):
            return True
        if (problem.line, problem.column) in entry:
            return True  # about the whole entry one of whose keys was removed
        if _TYPE_CHECK in problem.message and (path[0] == "fields" or (len(path) > 2 and path[2] == "require")):
            return True
    return False


def _loc(error: Any) -> tuple[Any, ...]:
    return tuple("from" if p == "from_" else p for p in error["loc"])


def _existing(tree: Any, path: tuple[Any, ...]) -> tuple[Any, ...]:
    """The longest part of ``path`` that is in ``tree`` (a missing key: its parent, which is then unusable)."""
    node = tree
    for i, step in enumerate(path):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return path[:i]
    return path


def _sort_key(path: tuple[Any, ...]) -> tuple[tuple[int, Any], ...]:
    # later list items first, so removing one does not move the others
    return tuple((0, step) if isinstance(step, int) else (1, str(step)) for step in path)


def _copy(node: Any) -> Any:
    """A copy of a parsed tree that keeps every position (so problems found in it point into the file)."""
    if isinstance(node, LocDict):
        out = LocDict(node.mark)
        out.key_marks = dict(node.key_marks)
        out.value_marks = dict(node.value_marks)
        out.update((k, _copy(v)) for k, v in node.items())
        return out
    if isinstance(node, LocList):
        items = LocList(node.mark)
        items.item_marks = list(node.item_marks)
        items.extend(_copy(v) for v in node)
        return items
    return node


def _remove(tree: Any, path: tuple[Any, ...]) -> bool:
    """Remove ``path`` from ``tree`` with its positions; False if it is no longer there."""
    parent = tree
    for step in path[:-1]:
        if isinstance(parent, dict) and step in parent:
            parent = parent[step]
        elif isinstance(parent, list) and isinstance(step, int) and 0 <= step < len(parent):
            parent = parent[step]
        else:
            return False
    last = path[-1]
    if isinstance(parent, LocDict) and last in parent:
        del parent[last]
        parent.key_marks.pop(last, None)
        parent.value_marks.pop(last, None)
        return True
    if isinstance(parent, LocList) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
        del parent.item_marks[last]
        return True
    return False


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
