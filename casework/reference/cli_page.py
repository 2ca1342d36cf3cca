"""``docs/cli.md``: every command of the click tree, with its usage, description and options (read with click's API)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from casework.reference.markdown import GENERATED, cell, code, plain, slug

if TYPE_CHECKING:
    import click

__all__ = ["cli_page"]


def _paragraphs(help_text: str) -> list[str]:
    """A click help text as markdown paragraphs (rewrapped; ``\\b`` blocks kept as written)."""
    text = inspect.cleandoc(help_text).split("\f", 1)[0]
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if not lines:
            continue
        if lines[0].strip() == "\b":
            paragraphs.append("\n".join(["```text", *lines[1:], "```"]))
        else:
            paragraphs.append(plain(" ".join(line.strip() for line in lines)))
    return paragraphs


def _walk(
    command: click.Command, ctx: click.Context, depth: int = 0
) -> Iterator[tuple[click.Command, click.Context, int]]:
    """The root, then each command in the order it is registered, each group followed by its subcommands."""
    import click

    yield command, ctx, depth
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if sub.hidden:
                continue
            sub_ctx = click.Context(sub, parent=ctx, info_name=name, **sub.context_settings)
            yield from _walk(sub, sub_ctx, depth + 1)


def _usage(command: click.Command, ctx: click.Context) -> str:
    return " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])


def _params(command: click.Command, ctx: click.Context) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, help) of the arguments that have a help text, and of every visible option but ``--help``.

    Each as click's own help shows it (``param.get_help_record``): the option's
    flags and metavar, its help text, and what click adds (default, range, required).
    """
    import click

    help_option = command.get_help_option(ctx)
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        if help_option is not None and param.name == help_option.name:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if isinstance(param, click.Option):
            options.append((record[0], record[1]))
        elif record[1]:
            arguments.append((record[0], record[1]))
    return arguments, options


def cli_page() -> str:
    """``docs/cli.md``: every command of ``casework``, with its usage, description and options."""
    import click

    from casework.cli.app import cli

    root = click.Context(cli, info_name="casework", **cli.context_settings)
    tree = list(_walk(cli, root))
    help_names = ", ".join(code(n) for n in root.help_option_names)
    lines = [
        "# Command-line reference",
        "",
        GENERATED.format(source="the click commands in `casework/cli/`"),
        "",
        "Every command of `casework`, in the order a reader meets them: the root, then each",
        "command, each group followed by its subcommands. How the commands fit together is in",
        "the [guide](guide.md); what `--json` prints is in [JSON output](json.md); what a",
        "refusal's code means is in [refusal codes](refusals.md).",
        "",
        f"Every command also takes {help_names}, which prints its help. In a usage line,",
        "`[OPTIONS]` stands for the options listed under it, `[X]` is optional and `X...` may",
        "be given more than once. The global option `--db URL` goes before the command:",
        "`casework --db URL case list`.",
        "",
        "## Contents",
        "",
    ]
    for command, ctx, depth in tree:
        short = command.get_short_help_str(limit=1000)
        entry = f"[{ctx.command_path}](#{slug(ctx.command_path)})"
        lines.append(f"{'  ' * depth}- {entry}" + (f" — {plain(short)}" if short else ""))
    for command, ctx, depth in tree:
        lines += ["", f"{'##' if depth <= 1 else '###'} {ctx.command_path}", ""]
        lines += ["```text", _usage(command, ctx), "```", ""]
        for paragraph in _paragraphs(command.help or ""):
            lines += [paragraph, ""]
        arguments, options = _params(command, ctx)
        for kind, rows in (("argument", arguments), ("option", options)):
            if rows:
                lines += [f"| {kind} | what it does |", "| --- | --- |"]
                lines += [f"| {cell(code(name))} | {cell(plain(text))} |" for name, text in rows]
                lines.append("")
        if isinstance(command, click.Group):
            lines += ["| command | what it does |", "| --- | --- |"]
            for name, sub in command.commands.items():
                if sub.hidden:
                    continue
                path = f"{ctx.command_path} {name}"
                lines.append(f"| [{code(name)}](#{slug(path)}) | {cell(plain(sub.get_short_help_str(limit=1000)))} |")
            lines.append("")
        elif not options:
            lines += ["No options.", ""]
        lines.pop()  # the blank line after the section; the next heading brings its own
    return "\n".join(lines).rstrip("\n") + "\n"
