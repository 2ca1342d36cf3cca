"""Refusals in the words of the web pages (Chinese), from the engine's code and facts.

The engine's message names no page or button; here each code gets a sentence
a clerk reads: what was wrong, and what would be right. A code without its
own wording falls back on a general sentence plus the engine's message, so a
refusal is never shown without its reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine import CaseworkError, Code

__all__ = ["WORDS", "word"]

Wording = Callable[[Mapping[str, Any]], str]


class _Facts(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "…"


def _text(template: str) -> Wording:
    return lambda facts: template.format_map(_Facts(_joined(facts)))


def _joined(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Lists as 、-joined text, for a sentence."""
    return {k: "、".join(map(str, v)) if isinstance(v, (list, tuple)) else v for k, v in facts.items()}


def _locked(facts: Mapping[str, Any]) -> str:
    minutes = max(1, (int(facts.get("retry_after", 60)) + 59) // 60)
    who = "该账号" if facts.get("locked") == "user" else "本机地址"
    return f"{who}登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试。"


def _problems(facts: Mapping[str, Any]) -> str:
    problems = facts.get("problems") or []
    parts = [f"{p.get('label') or p.get('field')}：{p.get('message')}" for p in problems if isinstance(p, Mapping)]
    return "填写的内容有误，未保存：" + "；".join(parts) if parts else "填写的内容有误，未保存。"


#: code -> its wording for a page
WORDS: dict[Code, Wording] = {
    Code.LOGIN_FAILED: _text("用户名或密码错误。"),
    Code.LOGIN_LOCKED: _locked,
    Code.WEAK_PASSWORD: _text(
        "新密码太弱：至少 {min_length} 个字符，不能包含用户名，也不能是同一个字符重复。密码未修改。"
    ),
    Code.USER_DISABLED: _text("账号 {user} 已停用，不能登录或办理。如有误，请联系管理员重新启用。"),
    Code.CASE_NOT_FOUND: _text("没有编号为 {case} 的案件，或您无权查看。"),
    Code.CONFLICT: _text("案件 {case} 已被他人修改，您的修改未保存。请刷新页面查看最新内容后重试。"),
    Code.FOUR_EYES: _text("不能由同一人完成：您已办理过本案件的上一步骤，按“双人审核”规定须由其他人办理。"),
    Code.COMMENT_REQUIRED: _text("此步骤必须填写意见，未办理。请填写意见后再提交。"),
    Code.ROLE_NEEDED: _text("您的角色不能办理此步骤（需要：{needed}）。"),
    Code.SCOPE_NOT_COVERED: _text("此案件不在您负责的范围内。"),
    Code.INVALID_DATA: _problems,
    Code.MISSING_FIELDS: _text("还有必填项未填写：{labels}。请补全后再提交。"),
}


def word(exc: CaseworkError) -> str:
    """The refusal ``exc`` as a page shows it."""
    wording = WORDS.get(exc.code)
    if wording is not None:
        return wording(exc.facts)
    return f"操作未完成，未作任何更改：{exc.message}"
