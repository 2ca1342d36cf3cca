"""A workflow version drawn as SVG by Graphviz's ``dot``: states in Chinese, steps, deadlines and timeouts.

:func:`dot_source` writes the graph (every id quoted, every label escaped);
:func:`svg` runs ``dot`` on it — a subprocess with the source on stdin, no
shell, a time limit — and keeps the result per (workflow, version, source,
highlighted state) in this process: a stored version never changes, so a
drawing never goes stale. When ``dot`` is missing :class:`DiagramUnavailable`
is raised and the pages show the Mermaid text (:func:`mermaid_text`) instead.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass

from engine.definition import Duration, WorkflowDef
from engine.definition.model import SYSTEM_ROLE

__all__ = ["DOT_TIMEOUT", "DiagramUnavailable", "dot_available", "dot_source", "mermaid_text", "svg"]

#: how long ``dot`` may take for one drawing (the bundled workflow takes ~50 ms)
DOT_TIMEOUT = 10.0
#: the largest SVG kept (a hostile workflow of hundreds of states would still be far under it)
MAX_SVG_BYTES = 4_000_000

_FONT = "WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"
_CURRENT_FILL = "#ffe08a"
_FINAL_FILL = "#edf7ee"
_VOID_FILL = "#eeeeee"
_UNITS = {"working_days": "个工作日", "days": "天", "hours": "小时"}
# what a DOT double-quoted string must not hold as is; control characters are dropped
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class DiagramUnavailable(Exception):
    """``dot`` could not draw the diagram (missing, failed or too slow); the reason is in Chinese."""


def dot_available(dot: str) -> bool:
    """Whether the ``dot`` program at ``dot`` (a path or a name on PATH) can be run."""
    return shutil.which(dot) is not None


def _quote(text: str) -> str:
    """``text`` as a DOT double-quoted string: backslash and quote escaped, line breaks as DOT's ``\\n``."""
    text = _CONTROL.sub("", text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n") + '"'


def _duration(d: Duration) -> str:
    return f"{d.amount} {_UNITS.get(d.unit, d.unit)}"


def _role(wf: WorkflowDef, role: str) -> str:
    if role == SYSTEM_ROLE:
        return "系统"
    return wf.roles.get(role, role)


def _state_lines(wf: WorkflowDef, name: str) -> list[str]:
    """The state's label, then its deadline, reminders, escalation, timeout and publicity period."""
    st = wf.states[name]
    lines = [st.label]
    if st.initial:
        lines.append("（起始）")
    if st.deadline is not None:
        lines.append(f"办理期限：{_duration(st.deadline)}")
    for remind in st.remind:
        lines.append(f"到期前 {_duration(remind.before)} 提醒{_role(wf, remind.to)}")
    if st.escalate is not None:
        lines.append(f"超期 {_duration(st.escalate.after)} 上报{_role(wf, st.escalate.to)}")
    if wf.publicity is not None and wf.publicity.state == name:
        period = f"：{_duration(st.timeout.after)}" if st.timeout is not None else ""
        lines.append(f"公示期{period}（自公示名单发布起）")
    if st.timeout is not None:
        step = wf.transitions.get(st.timeout.fire)
        label = step.label if step is not None else st.timeout.fire
        lines.append(f"{_duration(st.timeout.after)}后自动：{label}")
    if st.final:
        lines.append("（作废）" if st.void else "（终结）")
    return lines


def dot_source(wf: WorkflowDef, current: str | None = None) -> str:
    """The DOT graph of ``wf``; ``current`` (a state name of ``wf``) is filled and thickened."""
    out = [
        "digraph workflow {",
        f"  graph [rankdir=LR, bgcolor=white, fontname={_quote(_FONT)}, labelloc=t, "
        f"label={_quote(f'{wf.title}（第 {wf.version} 版）')}];",
        f'  node [shape=box, style="rounded,filled", fillcolor=white, fontname={_quote(_FONT)}, fontsize=11];',
        f'  edge [fontname={_quote(_FONT)}, fontsize=9, color="#52606d"];',
        '  "__start" [shape=point, width=0.18, label="", fillcolor=black];',
        f'  "__start" -> {_quote(wf.initial_state)} [id="start"];',
    ]
    for name, st in wf.states.items():
        attrs = [f"id={_quote('state-' + name)}", f"label={_quote(chr(10).join(_state_lines(wf, name)))}"]
        fill = _VOID_FILL if st.void else _FINAL_FILL if st.final else "white"
        if st.final:
            attrs.append("peripheries=2")
        if st.initial:
            attrs.append("penwidth=2")
        if name == current:
            fill = _CURRENT_FILL
            attrs.append("penwidth=3")
            attrs.append('color="#b71c1c"')
        attrs.append(f"fillcolor={_quote(fill)}")
        out.append(f"  {_quote(name)} [{', '.join(attrs)}];")
    for t in wf.transitions.values():
        who = "、".join(_role(wf, r) for r in t.by)
        for src in t.sources:
            lines = [t.label, f"（{who}）"]
            timeout = wf.states[src].timeout if src in wf.states else None
            if timeout is not None and timeout.fire == t.name:
                lines.append(f"{_duration(timeout.after)}后自动")
            if t.comment_required:
                lines.append("须填意见")
            attrs = [f"id={_quote(f'step-{t.name}-{src}')}", f"label={_quote(chr(10).join(lines))}"]
            if timeout is not None and timeout.fire == t.name:
                attrs.append("style=dashed")
            out.append(f"  {_quote(src)} -> {_quote(t.dest)} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class _Drawing:
    """What a drawing depends on (hashable, for the cache): the version's identity, not the whole definition."""

    name: str
    version: int
    source_hash: str
    current: str | None
    dot: str
    wf: WorkflowDef

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.source_hash, self.current, self.dot))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Drawing):
            return NotImplemented
        mine = (self.name, self.version, self.source_hash, self.current, self.dot)
        return mine == (other.name, other.version, other.source_hash, other.current, other.dot)


def svg(wf: WorkflowDef, current: str | None, dot: str) -> bytes:
    """``wf`` as SVG, ``current`` highlighted; :class:`DiagramUnavailable` when ``dot`` cannot draw it.

    ``current`` must be one of the workflow's states (the route answers 404 otherwise).
    """
    if current is not None and current not in wf.states:
        raise ValueError(f"{wf.name} v{wf.version} has no state {current!r}")
    return _draw(_Drawing(wf.name, wf.version, wf.source_hash, current, dot, wf))


@functools.lru_cache(maxsize=512)
def _draw(key: _Drawing) -> bytes:
    # a failure raises, and lru_cache keeps no result of a call that raised: dot installed later is used
    source = dot_source(key.wf, key.current)
    try:
        done = subprocess.run(
            [key.dot, "-Tsvg"],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        raise DiagramUnavailable("服务器未安装 Graphviz（dot 程序），无法绘制流程图；下面是流程的文字描述。") from None
    except subprocess.TimeoutExpired:
        raise DiagramUnavailable(f"绘制流程图超过 {DOT_TIMEOUT:.0f} 秒，已放弃；下面是流程的文字描述。") from None
    if done.returncode != 0 or not done.stdout:
        raise DiagramUnavailable("绘制流程图失败（dot 程序报错）；下面是流程的文字描述。")
    body = done.stdout
    # dot writes no script; a drawing that held one (or grew past reason) is not served
    if b"<script" in body.lower() or len(body) > MAX_SVG_BYTES:
        raise DiagramUnavailable("流程图的输出不符合要求，未显示；下面是流程的文字描述。")
    return body


def mermaid_text(wf: WorkflowDef) -> str:
    """The workflow as Mermaid text (what ``casework workflow show --mermaid`` prints), shown when dot is missing."""
    from casework.cli.workflow import mermaid

    return mermaid(wf)
