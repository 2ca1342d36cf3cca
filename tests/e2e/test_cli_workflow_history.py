"""``workflow load`` refuses a version that weakens a control until each is accepted by name; ``workflow history``.

Before, a new version that dropped a ``not_by:``, a ``comment: required`` or a
``pii:`` loaded silently. Now the load is refused, naming each weakened
control and how to accept it; accepting records the controls and who loaded
the version (the operating-system user and host), shown by
``workflow history``.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.audit import origin
from tests.e2e.runner import casework
from tests.e2e.test_cli import ok, ok_json, refused

GRANTS = """\
workflow: grants
version: {version}
title: 补助
roles:
  clerk: 经办人
  boss: 审批人
fields:
  applicant: {{type: text, label: 申请人姓名}}
  address: {{type: text, label: 住址, pii: address}}
  size: {{type: integer, label: 人数}}
states:
  draft: {{label: 申请, initial: true}}
  review: {{label: 审批}}
  done: {{label: 完成, final: true}}
transitions:
  submit: {{label: 提交, from: draft, to: review, by: clerk}}
  grant: {{label: 批准, from: review, to: done, by: boss, not_by: submit, comment: required}}
"""

WEAKER = (
    GRANTS.replace(", not_by: submit, comment: required", "")
    .replace(", pii: address", "")
    .replace("title: 补助", "title: 补助（简化）")
)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def loaded_by() -> str:
    who = origin()
    return f"{who['os_user']}@{who['host']}"


def test_a_weaker_version_is_refused_until_each_control_is_named_and_history_shows_who_accepted_what(
    db_url: str, tmp_path: Path
) -> None:
    v1 = write(tmp_path, "v1.yaml", GRANTS.format(version=1))
    v2 = write(tmp_path, "v2.yaml", WEAKER.format(version=2))
    assert ok(casework(db_url, "workflow", "load", v1)).startswith("loaded grants version 1 (")

    line = refused(
        casework(db_url, "workflow", "load", v2),
        "grants version 2 weakens 3 controls of version 1: "
        "comment:grant (grant needed a comment; now it does not); "
        "not_by:grant (whoever fired submit could not take grant; now anyone may); "
        "pii:address (address was masked as pii: address; now shown unmasked). Nothing was loaded.",
        "--accept-weaker comment:grant,not_by:grant,pii:address",
    )
    assert line.endswith("load it with --accept-weaker comment:grant,not_by:grant,pii:address"), line
    # naming some is not enough, nor is a misspelt one; each time nothing is loaded
    refused(
        casework(db_url, "workflow", "load", v2, "--accept-weaker", "not_by:grant"),
        "grants version 2 weakens 2 controls of version 1: comment:grant (",
        "; pii:address (",
    )
    refused(
        casework(db_url, "workflow", "load", v2, "--accept-weaker", "not_by:grant,comment:grant,pii:adress"),
        "weakens 1 control of version 1: pii:address (",
    )
    # accepting a control it does not weaken is an error too: a stale or mistyped acceptance is noticed
    refused(
        casework(
            db_url, "workflow", "load", v2, "--accept-weaker", "not_by:grant,comment:grant,pii:address,when:grant"
        ),
        "when:grant is accepted as weakened, but grants version 2 does not weaken it "
        "(it weakens only comment:grant, not_by:grant, pii:address)",
        rc=2,
    )
    assert [v["version"] for v in ok_json(casework(db_url, "workflow", "list", "--json"))] == [1]

    out = ok(
        casework(
            db_url,
            "workflow",
            "load",
            v2,
            "--accept-weaker",
            "not_by:grant,comment:grant",
            "--accept-weaker",
            "pii:address",
        )
    )
    assert out.startswith("loaded grants version 2 (")
    assert out.rstrip().endswith("accepted weaker: not_by:grant, comment:grant, pii:address")

    history = ok_json(casework(db_url, "workflow", "history", "grants", "--json"))
    assert [(h["version"], h["loaded_by"], h["weakened"], h["cases"]) for h in history] == [
        (1, loaded_by(), [], 0),
        (2, loaded_by(), ["comment:grant", "not_by:grant", "pii:address"], 0),
    ]
    assert set(history[0]) == {
        "workflow",
        "version",
        "title",
        "source_hash",
        "loaded_at",
        "loaded_by",
        "weakened",
        "cases",
    }
    assert history[1]["workflow"] == "grants" and history[1]["title"] == "补助（简化）"

    table = ok(casework(db_url, "workflow", "history", "grants"))
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    assert [[r[0], r[2], r[3], r[4], r[5]] for r in rows] == [
        ["1", loaded_by(), history[0]["source_hash"][:12], "0", ""],
        ["2", loaded_by(), history[1]["source_hash"][:12], "0", "comment:grant, not_by:grant, pii:address"],
    ]


def test_the_same_file_again_and_a_stricter_version_need_no_acceptance(db_url: str, tmp_path: Path) -> None:
    weak = write(tmp_path, "v1.yaml", WEAKER.format(version=1))
    strict = write(tmp_path, "v2.yaml", GRANTS.format(version=2))
    ok(casework(db_url, "workflow", "load", weak))
    assert "already loaded with this content; nothing changed" in ok(casework(db_url, "workflow", "load", weak))
    assert ok(casework(db_url, "workflow", "load", strict)).startswith("loaded grants version 2 (")
    history = ok_json(casework(db_url, "workflow", "history", "grants", "--json"))
    assert [h["weakened"] for h in history] == [[], []]


def test_history_of_an_unknown_workflow_is_refused_with_a_suggestion(db_url: str, tmp_path: Path) -> None:
    ok(casework(db_url, "workflow", "load", write(tmp_path, "v1.yaml", GRANTS.format(version=1))))
    refused(casework(db_url, "workflow", "history", "grant"), "grant", "grants")
    doc = json.loads(casework(db_url, "workflow", "history", "grant", "--json").out)
    assert doc["error"]["code"] == "workflow_not_found"
