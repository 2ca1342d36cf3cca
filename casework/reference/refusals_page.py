"""``docs/refusals.md``: how refusals work, and one table of every code of :data:`engine.errors.CODES`."""

from __future__ import annotations

from casework.reference.markdown import GENERATED, cell, code

__all__ = ["STORAGE", "UNUSABLE_INPUT", "refusals_page"]

#: Codes of input a command cannot use at all (exit 2); every other code is a refusal by the rules (exit 1).
#: Kept beside the page: :class:`engine.errors.InputError` and :class:`~engine.errors.DefinitionError`
#: raise these, :class:`~engine.errors.RefusedError` the rest.
UNUSABLE_INPUT = ("invalid_input", "invalid_user", "invalid_definition")
#: Codes of a database that could not be used (exit 3; :class:`engine.errors.StorageError`).
STORAGE = ("database_unusable",)

_REFUSALS_INTRO = """\
A refusal is how casework says no. Whatever refused — a rule of the workflow, a
concurrent change, a value that cannot be used — the engine raises one error
that carries:

* a **code**: a stable name a program can branch on (the table below); codes
  are only ever added;
* its **facts**: what the decision was about, as JSON values (the case, its
  state, the trigger, the roles held and needed …); a fact without a value is
  left out;
* a **default message** in plain words: what was wrong and what would be
  right. It names no command, flag or page, because a web page or an API
  client shows it as well as the CLI.

A refused action changes nothing. The CLI prints the refusal as one line on
stderr, `error: …`, in its own words where a command or flag would help
(`casework/cli/wording.py`: a missing comment says `add --comment "..."`, a
conflict says to look at the case with `casework case show REF` and retry,
an unknown user points at `casework user add`); for every other code it
prints the engine's message. With `--json` the refusal is also printed on
stdout:

```json
{"error": {"code": "scope_not_covered",
           "message": "lin covers 芗城区, not 龙文区, where case ZZ-2026-000038 belongs; ask a colleague who covers it",
           "facts": {"case": "ZZ-2026-000038", "user": "lin", "scopes": ["芗城区"], "scope": "龙文区"}}}
```

Exit codes (the `exit` column): **1** — refused by the rules, nothing changed
(`audit verify` and `check` also exit 1 when they find a break); **2** — input
the command cannot use: {unusable}, and also usage errors, an unreadable file,
an argument that is not UTF-8 text, and a database without the casework
schema; **3** — the database could not be used (`database_unusable`: the
server is unreachable or refused, the SQLite file cannot be opened, is not a
database or is corrupt), the message naming the file. A workflow file's
problems are printed one per line as `FILE:LINE:COL: message` (`facts.problems`
lists them with `file`, `line`, `column` and `message`). `case fire-many`
lists each refused case with its code and facts and goes on with the others.
Examples of the CLI's lines are in the [guide](guide.md#exit-codes-and-errors);
everything else `--json` prints is in [JSON output](json.md).
"""


def refusals_page() -> str:
    """``docs/refusals.md``: how refusals work, and one table of every code."""
    from engine.errors import CODES

    codes = [str(code) for code in CODES]
    missing = [c for c in (*UNUSABLE_INPUT, *STORAGE) if c not in codes]
    if missing:
        raise SystemExit(
            f"casework/reference/refusals_page.py: UNUSABLE_INPUT or STORAGE names codes that do not exist: {missing}"
        )
    unusable = ", ".join(code(c) for c in UNUSABLE_INPUT)
    lines = [
        "# Refusal codes",
        "",
        GENERATED.format(source="`engine.errors.CODES`"),
        "",
        _REFUSALS_INTRO.replace("{unusable}", unusable).rstrip("\n"),
        "",
        "| code | exit | meaning | facts |",
        "| --- | --- | --- | --- |",
    ]
    for name, info in CODES.items():
        exit_code = 2 if str(name) in UNUSABLE_INPUT else 3 if str(name) in STORAGE else 1
        facts = ", ".join(code(f) for f in info.facts)
        lines.append(f"| {code(str(name))} | {exit_code} | {cell(info.meaning)} | {cell(facts)} |")
    return "\n".join(lines) + "\n"
