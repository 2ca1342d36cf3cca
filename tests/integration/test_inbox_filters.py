"""The inbox's filters (``waiting_for(state=, scope=, ref=)``), in the engine's SQL, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from engine import Casework, Code, InputError, PermissionDenied
from tests.integration.test_inbox import inbox, new_case


@pytest.fixture
def scene(svc: Casework) -> dict[str, str]:
    """Cases waiting in both counties, in apply and in review."""
    cases = {
        "xc_apply": new_case(svc),
        "xc_review": new_case(svc),
        "xc_review2": new_case(svc),
        "lw_review": new_case(svc, "龙文区", "chen"),
    }
    for key in ("xc_review", "xc_review2"):
        svc.fire(cases[key], "submit", "lin")
    svc.fire(cases["lw_review"], "submit", "chen")
    return cases


def test_state_narrows_the_inbox(svc: Casework, scene: dict[str, str]) -> None:
    # ye is clerk and reviewer of 芗城区: apply and review cases both wait for them
    assert sorted(inbox(svc, "ye")) == sorted([scene["xc_apply"], scene["xc_review"], scene["xc_review2"]])
    assert inbox(svc, "ye", state="review") == [scene["xc_review"], scene["xc_review2"]]
    assert inbox(svc, "ye", state="apply", workflow="poverty_archive") == [scene["xc_apply"]]
    # a state that exists but waits for someone else: nothing
    assert inbox(svc, "ye", state="approve") == []


def test_scope_narrows_the_inbox_within_the_users_scopes(svc: Casework, scene: dict[str, str]) -> None:
    assert inbox(svc, "wu", scope="芗城区") == [scene["xc_review"], scene["xc_review2"]]
    assert inbox(svc, "wu", scope="龙文区") == [scene["lw_review"]]
    assert inbox(svc, "su", state="review") == []  # su approves; review waits for reviewers
    assert inbox(svc, "xu", scope="龙文区") == [scene["lw_review"]]  # scope *: any county
    with pytest.raises(PermissionDenied) as refused:
        svc.waiting_for("lin", scope="龙文区")
    assert refused.value.code == Code.SCOPE_NOT_COVERED


def test_ref_finds_a_whole_reference_or_a_part(svc: Casework, scene: dict[str, str]) -> None:
    ref = scene["xc_review2"]
    assert inbox(svc, "wu", ref=ref) == [ref]
    assert inbox(svc, "wu", ref=ref.lower()) == [ref]
    assert inbox(svc, "wu", ref=ref[-4:]) == [ref]
    assert sorted(inbox(svc, "wu", ref="ZZ-")) == sorted([scene["xc_review"], ref, scene["lw_review"]])
    # a whole reference of a case that does not wait for the user finds nothing
    assert inbox(svc, "wu", ref=scene["xc_apply"]) == []
    # % and _ are matched as themselves, not as wildcards
    assert inbox(svc, "wu", ref="%") == [] and inbox(svc, "wu", ref="_") == []
    # every filter at once
    assert inbox(svc, "wu", workflow="poverty_archive", state="review", scope="芗城区", ref=ref[-4:]) == [ref]
    assert inbox(svc, "wu", scope="龙文区", ref=ref) == []


@pytest.mark.parametrize(
    ("filters", "option", "suggestion"),
    [
        ({"state": "reveiw"}, "state", "review"),
        ({"scope": "芗城"}, "county", "芗城区"),
        ({"ref": "   "}, "ref", None),
        ({"ref": "x" * 101}, "ref", None),
    ],
)
def test_an_unknown_filter_is_refused_with_a_suggestion(
    svc: Casework, scene: dict[str, str], filters: dict[str, Any], option: str, suggestion: str | None
) -> None:
    with pytest.raises(InputError) as refused:
        svc.waiting_for("wu", **filters)
    assert refused.value.facts["option"] == option
    assert refused.value.facts.get("suggestion") == suggestion


def test_the_filters_page_like_the_whole_inbox(svc: Casework, scene: dict[str, str]) -> None:
    more = [new_case(svc) for _ in range(3)]
    for ref in more:
        svc.fire(ref, "submit", "lin")
    everything = inbox(svc, "wu", scope="芗城区", state="review", per_page=500)
    pages = [inbox(svc, "wu", scope="芗城区", state="review", page=p, per_page=2) for p in (1, 2, 3)]
    assert [ref for page in pages for ref in page] == everything and len(everything) == 5


def _statements(svc: Casework, **filters: Any) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "UNION ALL" in statement:
            seen.append((statement, parameters))

    event.listen(svc.engine, "before_cursor_execute", capture)
    try:
        svc.waiting_for("wu", **filters)
    finally:
        event.remove(svc.engine, "before_cursor_execute", capture)
    assert len(seen) == 1
    return seen


@pytest.mark.parametrize("exact", [False, True], ids=["part", "whole"])
def test_filtered_reads_stay_on_their_index_ranges(
    svc: Casework, scene: dict[str, str], backend: str, exact: bool
) -> None:
    """State and county choose the ranges; the reference is a condition on them: no scan, no sort of a range."""
    ref = scene["xc_review"] if exact else "000"
    [(statement, parameters)] = _statements(svc, state="review", scope="芗城区", ref=ref)
    if backend == "sqlite":
        with svc.engine.connect() as conn:
            plan = list(conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters))
        found = [(parent, what) for _, parent, _, what in plan if "cases" in what.split()]
        # a whole reference is one probe of the unique index on ref; a part walks the county's range
        wanted: tuple[str, ...] = (
            "SEARCH cases USING INDEX ix_cases_inbox_scope (",
            "SEARCH cases USING COVERING INDEX ix_cases_inbox_scope (",
        )
        if exact:
            wanted += ("SEARCH cases USING INDEX sqlite_autoindex_cases_1 (ref=?)",)
        assert found and all(what.startswith(wanted) for _, what in found), plan
        if not exact:
            # ref is the index's last column: the part of a reference is matched without reading a row
            assert all("COVERING INDEX" in what for _, what in found), plan
        assert not [w for _, parent, _, w in plan if parent in {p for p, _ in found} and "TEMP B-TREE" in w], plan
        assert not [w for *_, w in plan if w.startswith("SCAN cases")], plan
    else:
        with svc.engine.begin() as conn:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
                conn.exec_driver_sql(f"SET LOCAL {setting} = off")
            plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
        reads: list[str] = []

        def walk(node: dict[str, Any]) -> None:
            if node.get("Relation Name") == "cases":
                assert node["Node Type"] in ("Index Scan", "Index Only Scan"), node
                reads.append(node["Index Name"])
            for child in node.get("Plans", []):
                walk(child)

        walk(plan[0]["Plan"])
        assert reads and all(i in ("ix_cases_inbox_scope", "ix_cases_inbox", "cases_ref_key") for i in reads), reads
