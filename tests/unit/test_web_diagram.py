"""The workflow diagram: the DOT graph written from a definition, and the SVG Graphviz's ``dot`` makes of it."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET  # dot's own output, in a test
from pathlib import Path

import pytest

from casework.web import diagram
from engine import load_definition, load_definition_file
from engine.definition import WorkflowDef

BUNDLED = Path(__file__).resolve().parents[2] / "workflows" / "poverty_archive.yaml"
SVG = "{http://www.w3.org/2000/svg}"
DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed (scripts/system-packages)")


@pytest.fixture(scope="module")
def wf() -> WorkflowDef:
    return load_definition_file(BUNDLED)


def _node(svg: bytes, state: str) -> ET.Element:
    root = ET.fromstring(svg)
    for g in root.iter(f"{SVG}g"):
        if g.get("id") == f"state-{state}":
            return g
    raise AssertionError(f"no node for {state}")


def _texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


def test_the_dot_source_names_states_steps_roles_and_time_limits_in_chinese(wf: WorkflowDef) -> None:
    source = diagram.dot_source(wf)
    assert '"review" [id="state-review", label="审核\\n办理期限：5 个工作日' in source
    assert "到期前 1 个工作日 提醒县级工会审核人" in source
    assert "公示期：7 天（自公示名单发布起）" in source and "7 天后自动：公示期满" in source
    assert '"publicise" -> "approve"' in source and "公示期满\\n（系统、县级工会审核人）\\n7 天后自动" in source
    assert '"__start" -> "apply"' in source
    # final states double-bordered
    assert '"exited" [id="state-exited", label="解困脱困\\n（终结）", peripheries=2' in source


def test_labels_are_escaped_and_every_id_quoted() -> None:
    text = BUNDLED.read_text(encoding="utf-8").replace(
        "title: 困难职工建档立卡", 'title: "困难\\"职工\\\\\\n<script>alert(1)</script>"', 1
    )
    hostile = load_definition(text, templates=load_definition_file(BUNDLED).templates.sources)
    source = diagram.dot_source(hostile)
    assert 'label="困难\\"职工\\\\\\n<script>alert(1)</script>（第 4 版）"' in source
    if DOT is not None:
        svg = diagram.svg(hostile, None, DOT)
        assert b"<script" not in svg and b"&lt;script&gt;" in svg


@needs_dot
def test_the_svg_has_the_chinese_labels_and_highlights_the_current_state(wf: WorkflowDef) -> None:
    assert DOT is not None
    svg = diagram.svg(wf, "review", DOT)
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"<script" not in svg
    review = _node(svg, "review")
    assert "审核" in _texts(review)
    (shape,) = _shapes(review)
    assert shape.get("fill") == "#ffe08a" and shape.get("stroke") == "#b71c1c"
    assert all(s.get("fill") != "#ffe08a" for s in _shapes(_node(svg, "apply")))
    # a final state has two borders; the others one
    assert len(_shapes(_node(svg, "exited"))) == 2 and len(_shapes(_node(svg, "filed"))) == 1


def _shapes(node: ET.Element) -> list[ET.Element]:
    return [e for e in node.iter() if e.tag in (f"{SVG}path", f"{SVG}polygon", f"{SVG}ellipse")]


@needs_dot
def test_a_drawing_is_made_once_per_version_and_state(wf: WorkflowDef) -> None:
    assert DOT is not None
    diagram._draw.cache_clear()
    first = diagram.svg(wf, "approve", DOT)
    again = diagram.svg(wf, "approve", DOT)
    assert first is again
    info = diagram._draw.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    assert diagram.svg(wf, None, DOT) != first


def test_an_unknown_state_is_refused(wf: WorkflowDef) -> None:
    with pytest.raises(ValueError, match="no state 'nowhere'"):
        diagram.svg(wf, "nowhere", "dot")


def test_without_dot_the_drawing_is_unavailable_and_not_cached(wf: WorkflowDef, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-dot")
    assert not diagram.dot_available(missing)
    with pytest.raises(diagram.DiagramUnavailable, match="未安装 Graphviz"):
        diagram.svg(wf, None, missing)
    assert "stateDiagram-v2" in diagram.mermaid_text(wf)
