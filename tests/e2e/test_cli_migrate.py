"""``casework workflow migrate``: the dry-run report (table and JSON), a real run, and its refusals.

The scene (workflow versions, users, cases) is set through the engine's API;
the command is run as a user types it (:mod:`tests.e2e.runner`). The
petition workflow's versions are those of ``tests/integration/test_version_moves.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from db import make_engine
from engine import Casework
from tests.e2e.runner import casework
from tests.integration.test_version_moves import V1, V2, V3, load


@pytest.fixture
def scene(db_url: str) -> Iterator[tuple[str, Casework, dict[str, list[str]]]]:
    """Petition v1 with 4 cases in register (one lacking the phone v3 requires), 1 in handle; v2 and v3 loaded."""
    engine = make_engine(db_url)
    try:
        svc = Casework(engine)
        load(svc, V1)
        svc.add_user("lin", "林晓", ["clerk"], ["*"])
        svc.add_user("wu", "吴明辉", ["handler"], ["*"])

        def new(**data: Any) -> str:
            return svc.create_case("petition", "lin", {"petitioner": "陈志强", "county": "芗城区", **data}).ref

        ok = [new(phone="13800000000", kind="投诉") for _ in range(3)]
        no_phone = [new(kind="咨询")]
        handled = new(phone="13800000000")
        svc.fire(handled, "submit", "lin")
        load(svc, V2)
        load(svc, V3)
        yield db_url, svc, {"ok": ok, "no_phone": no_phone, "handled": [handled]}
    finally:
        engine.dispose()


def test_dry_run_table_counts_per_state_and_names_why(scene: Any) -> None:
    url, svc, refs = scene
    r = casework(url, "workflow", "migrate", "petition", "--to", "3", "--map", "register=intake", "--dry-run")
    assert r.rc == 0, r.err
    print(r.out)
    assert "dry run: petition → version 3 (map register=intake)" in r.out
    lines = r.out.splitlines()
    register = next(line for line in lines if "│ register" in line)
    assert "intake" in register and "│ 4 " in register and "│ 3 " in register and "│ 1 " in register
    assert "required_field: phone (1)" in register and refs["no_phone"][0] in r.out
    assert "4 of 5 cases would move; nothing was changed (dry run)" in r.out
    assert "陈志强" not in r.out and "13800000000" not in r.out  # refs only, never personal data
    # nothing changed
    assert all(svc.get_case(ref).workflow_version == 1 for group in refs.values() for ref in group)


def test_dry_run_json(scene: Any) -> None:
    url, _, refs = scene
    r = casework(url, "workflow", "migrate", "petition", "--to", "3", "--map", "register=intake", "--dry-run", "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["workflow"] == "petition" and doc["to_version"] == 3 and doc["dry_run"] is True
    assert doc["mapping"] == {"register": "intake"}
    assert (doc["cases"], doc["movable"], doc["moved"], doc["strands"]) == (5, 4, 0, [])
    register = next(g for g in doc["groups"] if g["state"] == "register")
    assert register == {
        "from_version": 1,
        "state": "register",
        "to_state": "intake",
        "cases": 4,
        "movable": 3,
        "moved": 0,
        "blocked": [{"reason": "required_field", "detail": "phone", "cases": 1, "refs": refs["no_phone"]}],
    }


def test_a_real_run_moves_the_movable_and_check_passes(scene: Any) -> None:
    url, svc, refs = scene
    r = casework(url, "workflow", "migrate", "petition", "--to", "3", "--map", "register=intake", "--batch", "2")
    assert r.rc == 0, r.err
    assert "moved 4 of 5 cases to version 3" in r.out
    assert [svc.get_case(ref).state for ref in refs["ok"]] == ["intake"] * 3
    assert svc.get_case(refs["no_phone"][0]).workflow_version == 1
    assert svc.get_case(refs["handled"][0]).workflow_version == 3
    assert casework(url, "check").rc == 0
    assert casework(url, "audit", "verify").rc == 0
    history = casework(url, "case", "history", refs["ok"][0], "--json")
    last = json.loads(history.out)[-1]
    assert last["action"] == "migrated" and last["to_state"] == "intake"
    # the same again: nothing more to move but the one that stays
    again = casework(url, "workflow", "migrate", "petition", "--to", "3", "--json")
    assert json.loads(again.out)["movable"] == 0


def test_without_a_mapping_the_renamed_state_stays(scene: Any) -> None:
    url, _, _ = scene
    r = casework(url, "workflow", "migrate", "petition", "--to", "3", "--dry-run")
    assert r.rc == 0
    assert "unmapped_state: register (4)" in r.out


@pytest.mark.parametrize(
    ("args", "rc", "words"),
    [
        (["--to", "1"], 1, "petition version 1 is the oldest loaded version; cases move only forward"),
        (["--to", "9"], 1, "'petition' version 9"),
        (["--to", "3", "--map", "regster=intake"], 2, "has a state 'regster' to map; did you mean 'register'?"),
        (["--to", "3", "--map", "closed=intake"], 2, "no case of petition on a version older than 3 is in closed"),
        (["--to", "3", "--map", "register=intak"], 1, "has no state 'intak' (did you mean 'intake'?)"),
        (["--to", "3", "--map", "register=closed"], 1, "closed (办结) is final in version 3"),
        (["--to", "3", "--map", "register"], 2, "write OLD=NEW"),
    ],
)
def test_refusals_say_what_is_wrong_and_move_nothing(scene: Any, args: list[str], rc: int, words: str) -> None:
    url, svc, refs = scene
    r = casework(url, "workflow", "migrate", "petition", *args)
    assert r.rc == rc, (r.out, r.err)
    assert words in r.err
    assert all(svc.get_case(ref).workflow_version == 1 for ref in refs["ok"])


def test_a_refused_real_run_with_json_prints_the_refusal(scene: Any) -> None:
    url, _, _ = scene
    r = casework(url, "workflow", "migrate", "petition", "--to", "3", "--map", "register=closed", "--json")
    assert r.rc == 1
    doc = json.loads(r.out)["error"]
    assert doc["code"] == "migration_strands" and doc["facts"]["states"] == ["closed"]


def test_unknown_workflow_suggests_the_near_name(scene: Any) -> None:
    url, _, _ = scene
    r = casework(url, "workflow", "migrate", "petiton", "--to", "2", "--dry-run")
    assert r.rc == 1 and "did you mean 'petition'?" in r.err


def test_the_command_and_the_engine_agree_on_the_batch() -> None:
    from casework.cli import workflow as cli_workflow
    from engine import version_moves

    assert cli_workflow.DEFAULT_MOVE_BATCH == version_moves.DEFAULT_MOVE_BATCH
