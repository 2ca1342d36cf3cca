"""Stage 1 of loading a workflow: untrusted YAML text → plain values with positions.

Supervisor YAML is untrusted, so this reader is deliberately narrow:

* size, nesting depth, alias count and total expansion are limited *before*
  anything is built (the scanner is iterative, so a 1,100-level nesting or
  5,000 ``[`` cannot exhaust the stack);
* no tags at all (``!!python/object/apply:os.system`` is a located error, not
  an object); scalars are resolved with YAML 1.2 core rules, so ``on``,
  ``off``, ``yes`` and ``no`` stay strings;
* duplicate keys and non-string keys are errors.

The result is made of :class:`LocDict`, :class:`LocList` and plain scalars;
each container remembers where its keys and items were, so later stages can
report ``file:line:column`` for any path.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from engine.errors import Problem

__all__ = ["Limits", "LocDict", "LocList", "ParseFailed", "locate", "parse_yaml"]

_BaseLoader: Any = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


class Limits:
    """Bounds on what a workflow file may be; generous for real workflows."""

    max_bytes = 512 * 1024
    max_depth = 24
    max_aliases = 64
    max_nodes = 50_000


class ParseFailed(Exception):
    """Raised with the located problems that stopped parsing."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(map(str, problems)))


Mark = tuple[int, int]


class LocDict(dict):  # type: ignore[type-arg]
    """A mapping that knows the position of itself, each key and each value."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.key_marks: dict[str, Mark] = {}
        self.value_marks: dict[str, Mark] = {}


class LocList(list):  # type: ignore[type-arg]
    """A sequence that knows the position of itself and each item."""

    def __init__(self, mark: Mark) -> None:
        super().__init__()
        self.mark = mark
        self.item_marks: list[Mark] = []


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"

# YAML 1.2 core schema: only these plain scalars are not strings.
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9]+$")
#: the most digits a plain integer may have (deadlines, amounts and limits need far fewer)
_MAX_INT_DIGITS = 30
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")

_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _mark(m: Any) -> Mark:
    return (m.line + 1, m.column + 1)


def _prescan(text: str, file: str) -> None:
    """Bound depth and aliases using the token stream, before composing."""
    depth = 0
    aliases = 0
    loader = _BaseLoader(text)
    try:
        while True:
            token = loader.get_token()
            if token is None:
                break
            if isinstance(token, _OPEN):
                depth += 1
                if depth > Limits.max_depth:
                    line, col = _mark(token.start_mark)
                    raise ParseFailed(
                        [
                            Problem(
                                file,
                                line,
                                col,
                                f"nesting deeper than {Limits.max_depth} levels; a workflow needs only a few levels",
                            )
                        ]
                    )
            elif isinstance(token, _CLOSE):
                depth -= 1
            elif isinstance(token, yaml.AliasToken):
                aliases += 1
                if aliases > Limits.max_aliases:
                    line, col = _mark(token.start_mark)
                    raise ParseFailed(
                        [
                            Problem(
                                file,
                                line,
                                col,
                                f"more than {Limits.max_aliases} aliases (*name); write the values out instead",
                            )
                        ]
                    )
            elif isinstance(token, yaml.TagToken):
                line, col = _mark(token.start_mark)
                if isinstance(token.value, tuple):  # (handle, suffix); verbatim tags have no handle
                    tag = "".join(part or "" for part in token.value)
                else:
                    tag = str(token.value)
                raise ParseFailed(
                    [
                        Problem(
                            file,
                            line,
                            col,
                            f"YAML tags such as {tag!r} are not allowed in a workflow; write a plain value",
                        )
                    ]
                )
    finally:
        loader.dispose()


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.nodes = 0

    def build(self, node: Any) -> Any:
        self.nodes += 1
        if self.nodes > Limits.max_nodes:
            line, col = _mark(node.start_mark)
            raise ParseFailed(
                [
                    Problem(
                        self.file,
                        line,
                        col,
                        f"the document expands to more than {Limits.max_nodes} values "
                        "(an alias bomb?); write a smaller workflow",
                    )
                ]
            )
        if node.tag not in (_STR, _SEQ, _MAP):
            line, col = _mark(node.start_mark)
            raise ParseFailed([Problem(self.file, line, col, f"YAML tag {node.tag!r} is not allowed")])
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            seq = LocList(_mark(node.start_mark))
            for item in node.value:
                seq.append(self.build(item))
                seq.item_marks.append(_mark(item.start_mark))
            return seq
        return self._scalar(node)

    def _mapping(self, node: Any) -> LocDict:
        out = LocDict(_mark(node.start_mark))
        for key_node, value_node in node.value:
            line, col = _mark(key_node.start_mark)
            if key_node.tag == "tag:yaml.org,2002:merge" or (
                isinstance(key_node, yaml.ScalarNode) and key_node.value == "<<" and not key_node.style
            ):
                raise ParseFailed([Problem(self.file, line, col, "merge keys (<<) are not allowed")])
            if not isinstance(key_node, yaml.ScalarNode):
                raise ParseFailed([Problem(self.file, line, col, "a key must be a plain name, not a collection")])
            key = key_node.value
            if key in out:
                first = out.key_marks[key]
                raise ParseFailed(
                    [
                        Problem(
                            self.file,
                            line,
                            col,
                            f"duplicate key {key!r} (first at line {first[0]}); each key may appear once",
                        )
                    ]
                )
            out[key] = self.build(value_node)
            out.key_marks[key] = (line, col)
            out.value_marks[key] = _mark(value_node.start_mark)
        return out

    def _scalar(self, node: Any) -> Any:
        text = node.value
        if node.style:  # quoted or block scalar: always a string
            return text
        if _NULL.match(text):
            return None
        if text in _BOOL:
            return _BOOL[text]
        if _INT.match(text):
            digits = len(text.lstrip("+-"))
            if digits > _MAX_INT_DIGITS:
                # Python would refuse past 4,300 digits anyway (a raw ValueError); no workflow number is near this
                line, col = _mark(node.start_mark)
                raise ParseFailed(
                    [
                        Problem(
                            self.file,
                            line,
                            col,
                            f"a number of {digits:,} digits is too long (at most {_MAX_INT_DIGITS}); "
                            "quote it if it is meant as text",
                        )
                    ]
                )
            return int(text)
        if _FLOAT.match(text):
            return float(text)
        return text


def parse_yaml(text: str | bytes, file: str = "<workflow>") -> Any:
    """Parse untrusted YAML into located plain values.

    Args:
        text: the file's content.
        file: the name used in problem locations.

    Raises:
        ParseFailed: with one located problem saying what is wrong.
    """
    if isinstance(text, bytes):
        if len(text) > Limits.max_bytes:
            raise ParseFailed([_too_big(file, len(text))])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseFailed(
                [Problem(file, 1, 1, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8")]
            ) from exc
    size = len(text.encode("utf-8"))
    if size > Limits.max_bytes:
        raise ParseFailed([_too_big(file, size)])
    try:
        _prescan(text, file)
        loader = _BaseLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise ParseFailed([_syntax_problem(exc, text, file)]) from exc
    except yaml.YAMLError as exc:
        raise ParseFailed([Problem(file, 1, 1, f"YAML syntax: {exc}")]) from exc
    if node is None:
        raise ParseFailed([Problem(file, 1, 1, "the file is empty; expected a workflow mapping")])
    return _Builder(file).build(node)


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """Turn a YAML parser error into one located message a supervisor can act on."""
    mark = exc.problem_mark or exc.context_mark
    line, col = _mark(mark) if mark else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    lines = text.splitlines()
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = current[: len(current) - len(current.lstrip(" \t"))]
    if "\t" in indent:
        return Problem(file, line, col, "YAML syntax: a tab cannot be used for indentation; indent with spaces")
    if "maximum nesting depth" in problem or "nesting" in problem:
        return Problem(
            file, line, col, f"nesting deeper than {Limits.max_depth} levels; a workflow needs only a few levels"
        )
    context = exc.context or ""
    if "quoted scalar" in context and exc.context_mark is not None:
        qline, qcol = _mark(exc.context_mark)
        where = "the file ends before it" if "end of stream" in problem else f"{problem} at line {line}"
        return Problem(file, qline, qcol, f"YAML syntax: the quote opened here is never closed ({where}); close it")
    if context and exc.context_mark is not None and exc.context_mark is not mark:
        cline, _ = _mark(exc.context_mark)
        problem = f"{problem} ({context} at line {cline})"
        if "expected key" in problem:
            problem += f"; check that line {line} is indented like the other keys of that block"
    return Problem(file, line, col, f"YAML syntax: {problem}")


def _too_big(file: str, size: int) -> Problem:
    return Problem(
        file,
        1,
        1,
        f"file is {size:,} bytes; a workflow may be at most {Limits.max_bytes:,} bytes",
    )


def locate(tree: Any, path: tuple[Any, ...], *, key: bool = False) -> Mark:
    """Return the (line, column) of ``path`` in a parsed tree.

    Walks as far as the path exists; a missing tail reports its nearest
    existing parent, which is where a supervisor would add the missing part.
    With ``key=True`` the last step points at the key rather than its value.
    """
    node = tree
    mark: Mark = getattr(tree, "mark", (1, 1))
    for i, step in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, LocDict) and isinstance(step, str) and step in node:
            mark = node.key_marks[step] if (key and last) else node.value_marks[step]
            node = node[step]
        elif isinstance(node, LocList) and isinstance(step, int) and 0 <= step < len(node):
            mark = node.item_marks[step]
            node = node[step]
        else:
            break
    return mark
