"""The edges of what goes in and comes out of the ``casework`` command (issue 11, section E).

Import files read as written (a stale ``.xlsx`` dimension, a line separator in
a CSV cell, a cell too long, a DTD); hostile or broken input as one line and
the right exit code, never a traceback (a 4,301-digit YAML integer, bytes
from a GBK terminal, a corrupt SQLite file: exit 3, naming the file); stored
free text shown so it cannot forge a line or steer the terminal, with
ID-number-shaped digits masked; one text policy for every field; and a
household filed in another county refused without telling that county's case.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from engine.idnumber import check_digit
from tests.e2e.conftest import Seeded
from tests.e2e.test_cli import casework, full_household, ok, ok_json, refused, sets

WF = "poverty_archive"
# an event line of 'case history': "  2  2026-11-30T09:00:00+08:00  lin (clerk)  submit: apply → review"
EVENT_LINE = re.compile(r"^\s*\d+  \d{4}-\d{2}-\d{2}T")


def id_number(n: int, born: str = "19900101") -> str:
    first17 = f"350602{born}{n:03d}"
    return first17 + check_digit(first17)


def cases_named(seeded: Seeded) -> list[str]:
    return sorted(str(c.data.get("applicant_name")) for c in seeded.svc.list_cases())


# ----------------------------------------------------------------- import files


def test_a_line_separator_in_a_csv_cell_is_refused_by_field_not_imported_as_half_a_name(
    sqlite_seeded: Seeded, tmp_path: Path
) -> None:
    path = tmp_path / "archives.csv"
    path.write_text(
        "applicant_name,id_number,county,cause\n"
        f"张三,{id_number(1)},芗城区,失业\n"
        f"王\u2028五,{id_number(2)},芗城区,因病\n"
        f'李四,{id_number(3)},芗城区,"因病致困\n住院三个月"\n'
        f"赵\x1e六,{id_number(4)},芗城区,意外\n",
        encoding="utf-8",
    )
    r = casework(sqlite_seeded.url, "case", "import", WF, str(path), "--as", "lin", "--skip-invalid", "--quiet")
    assert r.rc == 0, r
    assert r.err.splitlines() == [
        "skipped line 3: applicant_name: contains a control character (U+2028) at position 2; remove it",
        "skipped line 6: applicant_name: contains a control character (U+001E) at position 2; remove it",
    ]
    assert cases_named(sqlite_seeded) == ["张三", "李四"]
    (li,) = [c for c in sqlite_seeded.svc.list_cases() if c.data["applicant_name"] == "李四"]
    assert li.data["cause"] == "因病致困\n住院三个月"  # the quoted cell kept its line break


def test_an_xlsx_with_a_stale_dimension_imports_every_row(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    path = tmp_path / "archives.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["申请人姓名", "公民身份号码", "所属县区"])
    names = ["张三", "李四", "王五", "赵六", "钱七"]
    for i, name in enumerate(names, start=1):
        sheet.append([name, id_number(i), "芗城区"])
    book.save(path)
    with zipfile.ZipFile(path) as source:
        items = [(info, source.read(info.filename)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, data in items:
            if info.filename == "xl/worksheets/sheet1.xml":
                assert b'<dimension ref="A1:C6"/>' in data
                data = data.replace(b'<dimension ref="A1:C6"/>', b'<dimension ref="A1:C2"/>')
            target.writestr(info, data)
    done = ok_json(casework(sqlite_seeded.url, "case", "import", WF, str(path), "--as", "lin", "--json", "--quiet"))
    assert done["imported"] == 5
    assert cases_named(sqlite_seeded) == sorted(names)


def test_a_huge_csv_cell_and_a_workbook_with_a_dtd_are_one_line_each(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    huge.write_text(
        f"applicant_name,id_number,county,cause\n张三,{id_number(1)},芗城区," + "长" * 140_000 + "\n", encoding="utf-8"
    )
    refused(
        casework(sqlite_seeded.url, "case", "import", WF, str(huge), "--as", "lin", "--quiet"),
        f"{huge}, line 2: a cell longer than 131,072 characters",
        rc=2,
    )
    dtd = tmp_path / "dtd.xlsx"
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["applicant_name", "id_number", "county"])
    sheet.append(["张三", id_number(1), "芗城区"])
    book.save(dtd)
    with zipfile.ZipFile(dtd) as source:
        items = [(info, source.read(info.filename)) for info in source.infolist()]
    entities = [b'<!ENTITY e0 "0123456789">']
    entities += [b'<!ENTITY e%d "%s">' % (i, (b"&e%d;" % (i - 1)) * 10) for i in range(1, 9)]
    bomb = b"<!DOCTYPE worksheet [" + b"".join(entities) + b"]>"
    with zipfile.ZipFile(dtd, "w") as target:
        for info, data in items:
            if info.filename == "xl/worksheets/sheet1.xml":
                data = bomb + data.replace(b"&#24352;&#19977;", b"&e8;")
            target.writestr(info, data)
    refused(
        casework(sqlite_seeded.url, "case", "import", WF, str(dtd), "--as", "lin", "--quiet"),
        f"{dtd}: part xl/worksheets/sheet1.xml of the workbook declares a DTD",
        rc=2,
    )
    assert cases_named(sqlite_seeded) == []


# ----------------------------------------------------------------- one line, the right exit code


def test_a_workflow_integer_of_4301_digits_is_a_located_problem(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    source = Path("workflows/poverty_archive.yaml").read_text(encoding="utf-8")
    assert "household_size:    {type: integer, label: 家庭人口, min: 1, max: 20}" in source
    bad = tmp_path / "big.yaml"
    bad.write_text(source.replace("min: 1, max: 20}", "min: 1, max: " + "9" * 4301 + "}"), encoding="utf-8")
    for command in ("validate", "load"):
        r = casework(sqlite_seeded.url, "workflow", command, str(bad))
        assert r.rc == 2, r
        assert "Traceback" not in r.err
        assert f"{bad}:" in r.err and "a number of 4,301 digits is too long (at most 30)" in r.err, r.err


GBK = "王五".encode("gbk").decode("utf-8", "surrogateescape")  # what Python makes of a GBK terminal's bytes


def test_an_argument_that_is_not_utf8_is_refused_naming_it(sqlite_seeded: Seeded) -> None:
    ref = sqlite_seeded.svc.create_case(WF, "lin", full_household(id_number=id_number(1))).ref
    before = ok(casework(sqlite_seeded.url, "case", "history", ref, "--json"))
    for args, name in [
        (["case", "fire", ref, "withdraw", "--as", "lin", "--comment", GBK], "the value of --comment"),
        (["case", "fire", ref, "withdraw", "--as", "lin", f"--comment={GBK}"], "--comment"),
        (["case", "update", ref, "--as", "lin", "--set", f"cause={GBK}"], "the value of --set"),
        (["case", "show", GBK], "argument 5"),
    ]:
        line = refused(casework(sqlite_seeded.url, *args), rc=2)
        assert line == (
            f"error: {name} is not UTF-8 text (byte 0xCD at character {len(args[-1]) - len(GBK) + 1}); the terminal "
            "sends another encoding (GBK?): set it to UTF-8 (e.g. LANG=zh_CN.UTF-8) and type it again"
        ), line
    assert ok(casework(sqlite_seeded.url, "case", "history", ref, "--json")) == before


def _scribble(url: str, *, keep: int) -> Path:
    path = Path(url.removeprefix("sqlite:///"))
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(keep)
        f.write(b"\xa5" * (size - keep))
    return path


@pytest.mark.parametrize(
    ("keep", "detail"), [(0, "file is not a database"), (4096, "database disk image is malformed")]
)
def test_a_corrupt_sqlite_file_exits_3_naming_the_file(sqlite_seeded: Seeded, keep: int, detail: str) -> None:
    sqlite_seeded.svc.create_case(WF, "lin", full_household(id_number=id_number(1)))
    sqlite_seeded.svc.engine.dispose()
    path = _scribble(sqlite_seeded.url, keep=keep)
    for args in (["case", "list"], ["case", "history", "ZZ-2026-000001"], ["audit", "verify"]):
        line = refused(casework(sqlite_seeded.url, *args), rc=3)
        assert line == (
            f"error: the database file {path} is not a SQLite database or is corrupt ({detail}); "
            "restore it from a backup, or give the right file with --db"
        ), line
    r = casework(sqlite_seeded.url, "case", "list", "--json")
    assert r.rc == 3
    assert json.loads(r.out) == {
        "error": {
            "code": "database_unusable",
            "message": f"the database file {path} is not a SQLite database or is corrupt ({detail}); "
            "restore it from a backup, or give the right file with --db",
            "facts": {"database": str(path), "detail": detail},
        }
    }


def test_a_database_that_cannot_be_opened_or_reached_exits_3(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "office.db"
    refused(
        casework(f"sqlite:///{missing}", "case", "list"),
        f"the database file {missing} cannot be opened (unable to open database file)",
        rc=3,
    )
    line = refused(casework("postgresql://clerk:s3cret@127.0.0.1:1/casework", "case", "list"), rc=3)
    assert line.startswith("error: the database postgresql://clerk:***@127.0.0.1:1/casework could not be used: ")
    assert "s3cret" not in line


# ----------------------------------------------------------------- stored text, shown


def test_a_line_break_in_a_comment_or_cause_cannot_forge_a_history_line(seeded: Seeded) -> None:
    svc = seeded.svc
    forged = "  9  2026-12-01T09:00:00+08:00  su (approver)  grant: approve → enter"
    ref = svc.create_case(WF, "lin", full_household(id_number=id_number(1), cause=f"失业\n{forged}")).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "return", "wu", comment=f"材料不全\n{forged}")
    out = ok(casework(seeded.url, "case", "history", ref))
    events = [line for line in out.splitlines() if EVENT_LINE.match(line)]
    assert len(events) == 3, out
    assert not any("grant" in line for line in events)
    assert f"       comment: 材料不全\\n{forged}" in out.splitlines()
    assert any(line.startswith("       cause: ∅ → 失业\\n  9  2026-12-01") for line in out.splitlines()), out
    # --json keeps the text as stored: JSON escapes the line break
    trail = ok_json(casework(seeded.url, "case", "history", ref, "--json"))
    assert [e["comment"] for e in trail if e.get("trigger") == "return"] == [f"材料不全\n{forged}"]


def test_stored_text_is_shown_escaped_in_every_table(sqlite_seeded: Seeded) -> None:
    svc = sqlite_seeded.svc
    ref = svc.create_case(WF, "lin", full_household(id_number=id_number(1), cause="第一行\n第二行")).ref
    out = ok(casework(sqlite_seeded.url, "case", "show", ref))
    assert "第一行\\n第二行" in out and "第一行\n" not in out


def test_id_numbers_in_comments_and_objections_are_masked_when_shown(sqlite_seeded: Seeded) -> None:
    svc = sqlite_seeded.svc
    own, other = id_number(1), id_number(2)
    ref = svc.create_case(WF, "lin", full_household(id_number=own)).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu", comment=f"已核对身份证{own}")
    svc.add_objection(ref, "wu", f"举报人称其亲属{other}有工作", channel="电话")
    masked_own, masked_other = own[:6] + "*" * 8 + own[-4:], other[:6] + "*" * 8 + other[-4:]

    history = ok(casework(sqlite_seeded.url, "case", "history", ref))
    assert f"comment: 已核对身份证{masked_own}" in history and own not in history.replace(masked_own, "")
    trail = ok_json(casework(sqlite_seeded.url, "case", "history", ref, "--json"))
    assert [e["comment"] for e in trail if e.get("trigger") == "pass_review"] == [f"已核对身份证{masked_own}"]

    shown = ok(casework(sqlite_seeded.url, "case", "show", ref))
    assert f"举报人称其亲属{masked_other}有工作" in shown and other not in shown
    doc = ok_json(casework(sqlite_seeded.url, "case", "show", ref, "--json"))
    assert doc["objections"][0]["text"] == f"举报人称其亲属{masked_other}有工作"
    assert doc["data"]["id_number"] == own  # the case's own field is the handler's to see, as before
    # what is stored is not changed (the engine's views mask it too)
    with svc.engine.connect() as conn:
        assert conn.execute(text("SELECT text FROM objections")).scalar_one() == f"举报人称其亲属{other}有工作"
    assert svc.objections(ref)[0].text == f"举报人称其亲属{masked_other}有工作"


# ----------------------------------------------------------------- one text policy


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\ufeff王五", "applicant_name: contains a control character (U+FEFF) at position 1; remove it"),
        ("王\U000e0041五", "applicant_name: contains a control character (U+E0041) at position 2; remove it"),
        ("王\ue000五", "applicant_name: contains a private-use character (U+E000) at position 2; remove it"),
        ("王\t五", "applicant_name: contains a tab (U+0009) at position 2; use spaces"),
        ("王\n五", "applicant_name: contains a line break (U+000A) at position 2; this field is one line"),
    ],
)
def test_a_text_field_refuses_invisible_characters_naming_field_character_and_position(
    sqlite_seeded: Seeded, value: str, message: str
) -> None:
    args = ["case", "new", WF, "--as", "lin", *sets(applicant_name=value, id_number=id_number(1), county="芗城区")]
    line = refused(casework(sqlite_seeded.url, *args))
    assert line == f"error: invalid case data: {message}"
    assert cases_named(sqlite_seeded) == []


def test_esc_in_a_users_name_is_refused_and_not_echoed(sqlite_seeded: Seeded) -> None:
    r = casework(
        sqlite_seeded.url,
        "user",
        "add",
        "mallory",
        "--name",
        "林\x1b[2J\x1b]0;pwned\x07晓",
        "--role",
        "clerk",
        "--scope",
        "芗城区",
    )
    line = refused(r, rc=2)
    assert line == "error: --name contains a control character (U+001B) at position 2; remove it"
    assert "\x1b" not in r.out + r.err
    assert "mallory" not in [u.username for u in sqlite_seeded.svc.users()]


# ----------------------------------------------------------------- a household filed in another county


def test_a_duplicate_from_another_county_tells_neither_ref_nor_state_also_in_json(seeded: Seeded) -> None:
    svc = seeded.svc
    ref = svc.create_case(WF, "lin", full_household(id_number=id_number(1))).ref
    svc.fire(ref, "submit", "lin")
    args = ["case", "new", WF, "--as", "chen", *sets(applicant_name="王五", id_number=id_number(1), county="龙文区")]
    r = casework(seeded.url, *args, "--json")
    line = refused(r)
    assert line == (
        "error: a household with this id_number is already filed in another county (a household is filed once); "
        "ask the county union office or your supervisor"
    )
    doc = json.loads(r.out)["error"]
    assert doc["code"] == "duplicate" and doc["facts"] == {"field": "id_number", "elsewhere": True}
    for secret in (ref, "芗城区", "review"):
        assert secret not in r.out + r.err
    # lin, who covers 芗城区, is still told which case it is
    args = ["case", "new", WF, "--as", "lin", *sets(applicant_name="王五", id_number=id_number(1), county="芗城区")]
    refused(casework(seeded.url, *args), f"id_number is already on case {ref} (state review)")


def test_a_ref_from_a_refs_file_is_not_echoed_raw(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    refs = tmp_path / "refs.txt"
    refs.write_text("ZZ-2026-\x1b[2J000001\n", encoding="utf-8")
    r = casework(sqlite_seeded.url, "case", "fire-many", "submit", "--refs-file", str(refs), "--as", "lin", "--quiet")
    assert r.rc == 1, r
    assert "\x1b" not in r.out + r.err
    assert "refused ZZ-2026-\\x1b[2J000001: no case ZZ-2026-\\x1b[2J000001" in r.err, r.err
