"""The documentation: generated pages are current, and every link stays inside the repository and lands.

The pages ``casework.reference`` makes from the code (the CLI, the refusal
codes, the workflow schema) are checked in; a changed command, code or schema
key fails here until ``make docs`` is run. Every link in the README and in
``docs/`` must point at a file of the repository (and at a heading of it, when
it names one): the project's documentation stands alone.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from casework import reference

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", ROOT / "RELIABILITY.md", *DOCS.glob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]*)>")
_HTML_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_BARE_URL = re.compile(r"\b(?:https?://|ftp://|www\.)\S+", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_HTML_ANCHOR = re.compile(r"""<a\s[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


def _prose(text: str) -> str:
    """``text`` without fenced code blocks and with code spans blanked: what markdown reads as links."""
    text = _FENCE.sub("", text)
    return _CODE_SPAN.sub(lambda m: "code", text)


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file (and explicit ``<a id>`` anchors)."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors = set(_HTML_ANCHOR.findall(text))
    for _, heading in _HEADING.findall(text):
        plain = _INLINE_LINK.sub(lambda m: m.group(1), heading)
        plain = re.sub(r"[`*_~]|<[^>]+>", "", plain).strip().lower()
        anchor = re.sub(r"[^\w\- ]", "", plain).replace(" ", "-")
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


def _links(text: str) -> list[str]:
    prose = _prose(text)
    return [
        *(m.group(2) for m in _INLINE_LINK.finditer(prose)),
        *_REFERENCE_DEF.findall(prose),
        *_AUTOLINK.findall(prose),
        *_HTML_LINK.findall(prose),
    ]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---------------------------------------------------------------- generated pages


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_generated_page_is_what_the_code_makes_now(page: str) -> None:
    made = reference.PAGES[page]()
    file = ROOT / page
    assert file.is_file(), f"{page} is missing: run 'make docs'"
    stored = file.read_text(encoding="utf-8")
    if stored != made:
        diff = "".join(
            list(difflib.unified_diff(stored.splitlines(True), made.splitlines(True), page, "generated now"))[:60]
        )
        pytest.fail(f"{page} is out of date: run 'make docs' (python -m casework.reference)\n{diff}")


def test_check_lists_the_pages_that_are_out_of_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main(["--check", "--root", str(tmp_path)]) == 1
    reported = capsys.readouterr().err
    assert all(page in reported for page in reference.PAGES)
    assert reference.main(["--root", str(tmp_path)]) == 0
    assert reference.main(["--check", "--root", str(tmp_path)]) == 0
    (tmp_path / "docs" / "cli.md").write_text("# stale\n", encoding="utf-8")
    assert reference.stale_pages(tmp_path) == ["docs/cli.md"]


def test_generation_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    before = reference.generate()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("TERM", "dumb")
    assert reference.generate() == before


def test_every_refusal_code_and_command_is_on_its_page() -> None:
    from click import Group

    from casework.cli.app import cli
    from engine.errors import CODES

    refusals = (DOCS / "refusals.md").read_text(encoding="utf-8")
    assert all(f"| `{code}` |" in refusals for code in CODES)
    cli_md = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        assert f"## casework {name}\n" in cli_md
        if isinstance(command, Group):
            assert all(f"### casework {name} {sub}\n" in cli_md for sub in command.commands)


# ---------------------------------------------------------------- links


def test_the_pages_checked_are_the_documentation() -> None:
    assert ROOT / "README.md" in PAGES and ROOT / "docs" / "cli.md" in PAGES
    readme_links = {link.split("#")[0] for link in _links((ROOT / "README.md").read_text(encoding="utf-8"))}
    unlinked = [_name(p) for p in PAGES if p.name != "README.md" and _name(p) not in readme_links and p.parent == DOCS]
    assert unlinked == [], "the README should link every page in docs/"
    assert "RELIABILITY.md" in readme_links


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_lands_inside_the_repository(page: Path) -> None:
    problems = []
    for link in _links(page.read_text(encoding="utf-8")):
        if _SCHEME.match(link) or link.startswith("//"):
            problems.append(f"{link}: points outside the repository")
            continue
        if link.startswith("/"):
            problems.append(f"{link}: absolute path; link relative to {_name(page)}")
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_relative_to(ROOT):
            problems.append(f"{link}: outside the repository")
        elif not target.exists():
            problems.append(f"{link}: no such file {_name(target)}")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            problems.append(f"{link}: {_name(target)} has no heading #{anchor}")
    assert problems == [], f"{_name(page)}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_text_points_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text and "shared/DESIGN" not in text
    assert _BARE_URL.findall(_prose(text)) == [], "a bare URL becomes a link on GitHub; put it in `code`"


def test_the_link_checker_sees_what_it_must(tmp_path: Path) -> None:
    text = (
        "[a](docs/guide.md#using-it) ![b](x.png)\n[c]: ../shared/DESIGN.md\n<https://example.org>\n"
        '<a href="https://example.org">x</a> `[not](a-link.md)`\n```\n[not](either.md)\n```\n'
    )
    assert _links(text) == ["docs/guide.md#using-it", "x.png", "../shared/DESIGN.md", *["https://example.org"] * 2]
    assert _BARE_URL.findall(_prose("see https://example.org and `https://in.code`")) == ["https://example.org"]
    page = tmp_path / "p.md"
    page.write_text("# Time: working days, the scheduler\n## `fields.FIELD`\n## Top level\n## Top level\n")
    assert _anchors(page) == {"time-working-days-the-scheduler", "fieldsfield", "top-level", "top-level-1"}
