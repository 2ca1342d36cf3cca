"""Refusals in the CLI's words: the engine's code and facts, with the commands and flags that would help.

The engine's messages name no command or flag (a web page or an API client
shows them too). Here each code that a command or flag can help with gets
its CLI wording; every other refusal is shown with the engine's own message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import Code

__all__ = ["word"]

Wording = Callable[[str, Mapping[str, Any]], str]

# a user's details as the options of 'casework user add' name them
_USER_OPTIONS = {"email": "--email", "name": "--name", "role": "--role", "scope": "--scope", "username": "username"}


def _then(hint: str, joiner: str = "; ") -> Wording:
    """The engine's message, then ``hint`` (formatted with the facts)."""

    def words(message: str, facts: Mapping[str, Any]) -> str:
        return f"{message}{joiner}{hint.format_map(_Facts(facts))}"

    return words


class _Facts(dict[str, Any]):
    def __init__(self, facts: Mapping[str, Any]) -> None:
        super().__init__(facts)

    def __missing__(self, key: str) -> str:
        return "…"


def _conflict(message: str, facts: Mapping[str, Any]) -> str:
    detail = f" ({facts['detail']})" if facts.get("detail") else ""
    case = facts.get("case", "REF")
    return (
        f"case {case} was changed by someone else at the same time{detail}; "
        f"nothing was saved: look at it again with 'casework case show {case}' and retry"
    )


def _import_clash(message: str, facts: Mapping[str, Any]) -> str:
    return (
        f"while importing lines {facts.get('first_line')}–{facts.get('last_line')}, someone opened a case with "
        f"the same {facts.get('fields')} as one of them, so none of those lines was imported (the lines before "
        "were); import the file again with --skip-invalid: the rows already imported and the clashing row will "
        "be reported and skipped"
    )


def _invalid_user(message: str, facts: Mapping[str, Any]) -> str:
    return (
        "; ".join(f"{_USER_OPTIONS.get(p['field'], p['field'])} {p['message']}" for p in facts.get("problems", []))
        or message
    )


def _invalid_import(message: str, facts: Mapping[str, Any]) -> str:
    head, _, _ = message.rpartition("\n")
    return f"{head}\nfix those rows and import the file again, or add --skip-invalid to import only the valid rows"


_WORDINGS: dict[Code, Wording] = {
    Code.CASE_NOT_FOUND: _then("with 'casework case list'", " "),
    Code.USER_NOT_FOUND: _then("add them with 'casework user add' or check 'casework user list'", ": "),
    Code.WORKFLOW_NOT_FOUND: _then("load it with 'casework workflow load FILE' or check 'casework workflow list'"),
    Code.OBJECTION_NOT_FOUND: _then("see 'casework case show {case}'"),
    Code.NOTICE_NOT_FOUND: _then("see 'casework notice list'"),
    Code.MESSAGE_NOT_FOUND: _then("see 'casework inbox {user}'"),
    Code.OUTBOX_NOT_FOUND: _then("see 'casework outbox list'"),
    Code.USER_EXISTS: _then("see 'casework user list'"),
    Code.CONFLICT: _conflict,
    Code.COMMENT_REQUIRED: _then('add --comment "..."'),
    Code.MISSING_FIELDS: _then("set them with --set FIELD=VALUE"),
    Code.SYSTEM_RESERVED: _then("with --as USERNAME", " "),
    Code.OBJECTION_TEXT_REQUIRED: _then('with --text "..."', ", "),
    Code.WEAKENED_CONTROLS: lambda message, facts: (
        f"{message}: load it with --accept-weaker {','.join(facts.get('weakened', []))}"
    ),
    Code.INVALID_USER: _invalid_user,
    Code.INVALID_IMPORT: _invalid_import,
    Code.IMPORT_CLASH: _import_clash,
    Code.NOT_PUBLICISED: _then("publish it with 'casework notice publish WORKFLOW --scope SCOPE'"),
    Code.NOTICE_BACKDATED: _then("leave out --date to publish today, or give --date {today} or later"),
}


def word(code: str, message: str, facts: Mapping[str, Any]) -> str:
    """The refusal (``code``, the engine's ``message`` and ``facts``) as the CLI says it."""
    try:
        wording = _WORDINGS.get(Code(code))
    except ValueError:
        wording = None
    return wording(message, facts) if wording else message
