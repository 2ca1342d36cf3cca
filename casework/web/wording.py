"""Refusals in the words of the web pages (Chinese), from the engine's code and facts.

The engine's message names no page or button; here each code gets a sentence
a clerk reads: what was wrong, and what would be right, in the voice of the
union office's system (您…；请…). Steps, states, fields and roles are named by
their labels in the workflow (审核通过, 审核, 公民身份号码, 县级工会审核人) when
the page passes the case's :class:`~engine.WorkflowDef`, or when the facts
carry them (``state_label``, ``labels``); otherwise by their names.

A field problem (:class:`engine.FieldProblem`) is worded from its ``kind``
and ``params`` (:func:`field_problem`); one without a kind this module knows
is shown with the engine's English message, so a refusal is never shown
without its reason. A code without its own wording (none today: a unit test
keeps it so) falls back on a general sentence plus the engine's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from engine import LINKED_FROM, CaseworkError, Code

if TYPE_CHECKING:
    from engine import WorkflowDef

__all__ = ["FIELD_WORDS", "WORDS", "field_problem", "field_problems", "word"]

#: the roles of the bundled workflows, for a refusal worded without its workflow
_ROLES = {"clerk": "经办人", "reviewer": "审核人", "approver": "审批人", "supervisor": "负责人", "system": "系统"}
#: fields of a user (the administration pages), for INVALID_USER
_USER_FIELDS = {"username": "用户名", "name": "姓名", "email": "电子邮箱", "roles": "角色", "scopes": "负责范围"}
_OBJECTION_STATUS = {"upheld": "异议成立", "dismissed": "异议不成立", "open": "待处理"}
_OUTBOX_STATUS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "dead": "已放弃"}


def _list(values: Iterable[Any]) -> str:
    return "、".join(str(v) for v in values)


def _quoted(values: Iterable[str]) -> str:
    return "、".join(f"“{v}”" for v in values)


class Say:
    """The facts of one refusal, with the workflow's labels for what they name."""

    def __init__(self, facts: Mapping[str, Any], workflow: WorkflowDef | None = None) -> None:
        self.facts = facts
        self.wf = workflow

    def __getitem__(self, key: str) -> Any:
        return self.facts[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A fact, or ``default``."""
        return self.facts.get(key, default)

    def case(self) -> str:
        """The case's reference, or "本案件"."""
        ref = self.facts.get("case")
        return f"案件 {ref} " if ref else "本案件"

    def step(self, name: str | None = None) -> str:
        """A step (trigger) by its label, quoted: “审核通过”."""
        name = name if name is not None else self.facts.get("trigger")
        if not name:
            return "此步骤"
        t = self.wf.transitions.get(name) if self.wf is not None else None
        return f"“{t.label if t is not None else name}”"

    def steps(self, names: Iterable[str]) -> str:
        """Several steps by their labels."""
        return "、".join(self.step(n) for n in names)

    def state(self, name: str | None = None) -> str:
        """A state by its label, quoted: “审核”."""
        if name is None:
            name = self.facts.get("state")
            if self.facts.get("state_label") and (self.wf is None or name not in self.wf.states):
                return f"“{self.facts['state_label']}”"
        if not name:
            return "当前状态"
        s = self.wf.states.get(name) if self.wf is not None else None
        return f"“{s.label if s is not None else name}”"

    def states(self, names: Iterable[str]) -> str:
        """Several states by their labels."""
        return "、".join(self.state(n) for n in names)

    def field(self, name: str | None = None) -> str:
        """A field by its label: 公民身份号码."""
        name = name if name is not None else self.facts.get("field")
        if not name:
            return "此项"
        f = self.wf.fields.get(name) if self.wf is not None else None
        if f is not None:
            return f.label
        labels = self.facts.get("labels")
        if isinstance(labels, Mapping) and labels.get(name):
            return str(labels[name])
        return str(name)

    def fields(self, names: Iterable[str]) -> str:
        """Several fields by their labels."""
        return "、".join(self.field(n) for n in names)

    def role(self, name: str) -> str:
        """A role by its label: 县级工会审核人."""
        if self.wf is not None and name in self.wf.roles:
            return self.wf.roles[name]
        return _ROLES.get(name, name)

    def roles(self, names: Iterable[str]) -> str:
        """Several roles by their labels."""
        return "、".join(self.role(n) for n in names)


Wording = Callable[[Say], str]


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value]
    return [str(value)]


# ---------------------------------------------------------------- field problems


def _problem_id_character(p: Mapping[str, Any]) -> str:
    if p.get("full_width"):
        return "第 {position} 位是全角数字，请改用半角数字 0-9".format(**p)
    if p.get("space"):
        return "第 {position} 位是空格，请删除号码中的空格".format(**p)
    return "第 {position} 位“{character}”不是数字：前 17 位必须是数字 0-9".format(**p)


def _problem_integer(p: Mapping[str, Any]) -> str:
    if "suggestion" in p:
        return "应填写整数，请写作 {suggestion}".format(**p)
    return "应填写整数（如 4）"


def _problem_item(p: Mapping[str, Any]) -> str:
    return f"{_quoted(_names(p.get('unknown')))}不是可选项，可选：{_list(_names(p.get('items')))}"


def _problem_choice(p: Mapping[str, Any]) -> str:
    choices = _list(_names(p.get("choices")))
    if "value" in p:
        return f"“{p['value']}”不是可选项，请从 {choices} 中选择"
    return f"请从 {choices} 中选择"


#: a field problem's kind -> its wording from the problem's params
FIELD_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "required": lambda p: "必须填写",
    "unknown_field": lambda p: "没有这一项，请检查填写的项目",
    "computed": lambda p: "此项由系统自动计算，不能填写",
    "line_break": lambda p: "第 {position} 个字符是换行，此项只能填写一行".format(**p),
    "tab": lambda p: "第 {position} 个字符是制表符，请改用空格".format(**p),
    "bad_character": lambda p: "第 {position} 个字符（{code}）是不可见或不允许的字符，请删除".format(**p),
    "not_text": lambda p: "应填写文字",
    "too_long": lambda p: "共 {length} 个字，最多 {max} 个字，请删减".format(**p),
    "too_short": lambda p: "共 {length} 个字，至少需要 {min} 个字".format(**p),
    "not_email": lambda p: "不是有效的电子邮箱地址（如 lin@example.org）",
    "not_integer": _problem_integer,
    "out_of_range": lambda p: "数值过大，超出可填写的范围",
    "not_decimal": lambda p: "应填写数字（如 612.50）",
    "below_min": lambda p: "不能小于 {min}（填写的是 {value}）".format(**p),
    "above_max": lambda p: "不能大于 {max}（填写的是 {value}）".format(**p),
    "not_date": lambda p: "应填写日期，格式为 年-月-日（如 2026-01-31）",
    "not_real_date": lambda p: "{value} 不是真实存在的日期".format(**p),
    "not_a_choice": _problem_choice,
    "not_a_list": lambda p: f"请从 {_list(_names(p.get('items')))} 中勾选",
    "not_an_item": _problem_item,
    "id_not_text": lambda p: "公民身份号码须填写为 18 位文字",
    "id_old_form": lambda p: "这是 15 位的旧号码，请填写 18 位公民身份号码",
    "id_length": lambda p: "共 {length} 位，公民身份号码应为 18 位".format(**p),
    "id_character": _problem_id_character,
    "id_last_character": lambda p: "最后一位“{character}”不允许，只能是数字 0-9 或 X".format(**p),
    "id_province": lambda p: "前两位 {province} 不是有效的省级行政区代码（如福建为 35）".format(**p),
    "id_birth_date": lambda p: "第 7–14 位的出生日期 {born} 不是真实日期，请核对".format(**p),
    "id_birth_early": lambda p: "出生日期 {born} 早于 1900 年，请核对第 7–14 位".format(**p),
    "id_birth_future": lambda p: "出生日期 {born} 晚于今天，请核对第 7–14 位".format(**p),
    "id_check_digit": lambda p: "校验位应为 {expected}，不是 {found}：前 17 位中可能有输错的数字，请核对".format(**p),
}


def field_problem(problem: Mapping[str, Any]) -> str:
    """One field problem (``FieldProblem.to_json()``) in Chinese; the engine's message if its kind is not known."""
    wording = FIELD_WORDS.get(str(problem.get("kind")))
    if wording is not None:
        try:
            return wording(problem.get("params") or {})
        except (KeyError, IndexError):  # a problem without the params its kind promises: the engine's words
            pass
    return str(problem.get("message", ""))


def field_problems(exc: CaseworkError) -> dict[str, str]:
    """Field id → its problem in Chinese, for the per-field spans of a form (empty unless ``exc`` has problems)."""
    out: dict[str, str] = {}
    for p in exc.facts.get("problems") or []:
        if isinstance(p, Mapping) and "field" in p:
            text = field_problem(p)
            out[str(p["field"])] = f"{out[str(p['field'])]}；{text}" if p["field"] in out else text
    return out


def _problems(s: Say) -> str:
    parts = []
    for p in s.get("problems") or []:
        if isinstance(p, Mapping):
            parts.append(f"{p.get('label') or s.field(str(p.get('field', '')))}：{field_problem(p)}")
    if not parts:
        return "填写的内容有误，未保存。请检查后重新提交。"
    return "填写的内容有误，未保存：" + "；".join(parts) + "。请改正后重新提交。"


def _user_problems(s: Say) -> str:
    parts = []
    for p in s.get("problems") or []:
        if isinstance(p, Mapping):
            name = str(p.get("field", ""))
            parts.append(f"{_USER_FIELDS.get(name, name)}：{field_problem(p)}")
    return "用户信息有误，未保存：" + "；".join(parts) + "。请改正后重新提交。" if parts else "用户信息有误，未保存。"


# ---------------------------------------------------------------- refusals


def _workflow_not_found(s: Say) -> str:
    version = f" 第 {s['version']} 版" if s.get("version") is not None else ""
    head = f"没有名为 {s.get('workflow', '')}{version} 的业务流程。"
    if s.get("suggestion"):
        return head + f"您要找的是否是 {s['suggestion']}？"
    if s.get("known"):
        return head + f"已加载的有：{_list(s['known'])}。请从中选择。"
    return head + "请核对流程名称。"


def _duplicate(s: Say) -> str:
    what = s.field()
    if s.get("elsewhere"):
        return f"该{what}已在其他县区建档（同一户只能建档一次），本次未保存。如有疑问，请联系该县区工会或您的负责人。"
    if s.get("existing_case"):
        return (
            f"该{what}已登记在案件 {s['existing_case']}（{s.state(s.get('existing_state'))}）上，同一户只能建档一次，"
            "本次未保存。请继续办理该案件，或先将其撤回。"
        )
    return f"该{what}正被另一份同时提交的申请使用（同一户只能建档一次），本次未保存。请稍后查看后再办理。"


def _wrong_state(s: Say) -> str:
    text = f"{s.case()}当前处于{s.state()}，不能办理{s.step()}"
    if s.get("sources"):
        text += f"（此步骤只能在{s.states(s['sources'])}时办理）"
    text += "，未作任何更改。"
    if s.get("possible"):
        return text + f"当前可办理：{s.steps(s['possible'])}。请刷新页面查看最新状态。"
    return text + "请刷新页面查看最新状态。"


def _role_needed(s: Say) -> str:
    held = f"您的角色（{s.roles(_names(s.get('roles')))}）" if s.get("roles") else "您"
    needed = s.roles(_names(s.get("needed"))) or "其他角色"
    return f"{held}不能办理{s.step()}，此步骤须由{needed}办理。请交由相应人员办理。"


def _scope(s: Say) -> str:
    scopes = f"（{_list(_names(s.get('scopes')))}）" if s.get("scopes") else ""
    where = f"属于{s['scope']}，" if s.get("scope") else ""
    return f"{s.case()}{where}不在您负责的范围{scopes}内，未作任何更改。请交由负责该县区的同事办理。"


def _four_eyes(s: Say) -> str:
    earlier = s.step(s.get("earlier")) if s.get("earlier") else "上一步骤"
    return (
        f"按“双人审核”规定，您已办理过{s.case()}的{earlier}（或在此之前填写、修改过其内容），"
        f"不能再办理{s.step()}，未作任何更改。请交由其他同事办理。"
    )


def _guard(s: Say, verb: str) -> str:
    why = s.get("explain") or s.get("guard")
    reason = f"（{why}）" if why else ""
    return f"{s.step()}的办理条件{verb}{reason}，未办理。"


def _guard_failed(s: Say) -> str:
    return _guard(s, "未满足") + "请补齐所需内容后再办理。"


def _guard_held(s: Say) -> str:
    return _guard(s, "暂不允许") + "请先处理完相关事项（如尚未处理的异议）后再办理。"


def _missing(s: Say) -> str:
    names = _names(s.get("fields"))
    listed = s.fields(names) if names else "必填项"
    return f"办理{s.step()}前还须填写：{listed}，未办理。请补全后再提交。"


def _not_editable(s: Say) -> str:
    fields = s.fields(_names(s.get("fields"))) or "这些内容"
    text = f"{s.case()}处于{s.state()}时，您不能修改{fields}，未保存。"
    if s.get("corrections"):
        return text + f"如需更正，请先办理{s.steps(_names(s['corrections']))}（须填写意见）后再修改。"
    return text


def _limit(s: Say) -> str:
    period = s.get("period")
    span = "累计" if period in (None, "all") else f"{period} 年度"
    label = f"“{s['label']}”" if s.get("label") else "限额"
    return (
        f"办理{s.step()}将超过{label}：{span}上限 {s.get('max', '')}，其他案件已用 {s.get('used', '')}，"
        f"本案件将计入 {s.get('asked', '')}，尚余 {s.get('left', '')}，未办理。请核对金额或次数。"
    )


def _linked_not_found(s: Say) -> str:
    ref = f" {s['linked_case']} " if s.get("linked_case") else ""
    workflow = f" {s['linked_workflow']} 流程的" if s.get("linked_workflow") else ""
    return (
        f"{s.field()}中填写的案件编号{ref}找不到对应的{workflow}案件（或未填写），未作任何更改。请核对关联案件的编号。"
    )


def _objection_closed(s: Say) -> str:
    status = _OBJECTION_STATUS.get(str(s.get("status")), str(s.get("status", "已处理")))
    by = f"，处理人 {s['resolved_by']}" if s.get("resolved_by") else ""
    return f"该异议已处理（{status}{by}），不能再次处理。请刷新页面查看处理结果。"


def _campaign_ran(s: Say) -> str:
    when = f"已于 {str(s['ran_at'])[:10]} 办理" if s.get("ran_at") else "已办理"
    return f"{s.get('year', '')} 年度的集中办理活动{when}（每年一次），不能再设置、取消或重新办理。"


def _strands(s: Say) -> str:
    states = s.states(_names(s.get("states"))) or "部分状态"
    why = s.get("why")
    reason = f"（{_list(why.values()) if isinstance(why, Mapping) else why}）" if why else ""
    return (
        f"迁移到第 {s.get('version', '')} 版会使处于{states}的案件无法继续办理{reason}，未迁移任何案件。"
        "请在新版本中保留这些状态，或指定它们对应的新状态。"
    )


def _invalid_input(s: Say) -> str:
    if s.get("option"):
        value = f"“{s['value']}”" if s.get("value") is not None else ""
        return f"{s['option']} 的值{value}无法使用，未作任何更改。请改正后重试。"
    return "填写的内容无法使用，未作任何更改。请改正后重试。"


def _definition(s: Say) -> str:
    problems = s.get("problems") or []
    return f"流程文件有 {len(problems)} 处错误（逐条列出行、列和原因），未加载。请改正后再加载。"


def _locked(s: Say) -> str:
    minutes = max(1, (int(s.get("retry_after", 60)) + 59) // 60)
    who = "该账号" if s.get("locked") == "user" else "本机地址"
    return f"{who}登录失败次数过多，已暂时锁定。请 {minutes} 分钟后再试。"


def _f(template: str) -> Wording:
    """A sentence from the facts (each named fact must be there: the unit test renders every code)."""
    return lambda s: template.format_map(s.facts)


#: code -> its wording for a page
WORDS: dict[Code, Wording] = {
    # not found
    Code.CASE_NOT_FOUND: _f("没有编号为 {case} 的案件，或您无权查看。请核对案件编号（如 ZZ-2026-000123）。"),
    Code.USER_NOT_FOUND: _f("没有用户名为 {user} 的用户。请核对用户名。"),
    Code.WORKFLOW_NOT_FOUND: _workflow_not_found,
    Code.OBJECTION_NOT_FOUND: _f("案件 {case} 没有编号为 {objection} 的异议。请刷新页面查看现有异议。"),
    Code.NOTICE_NOT_FOUND: _f("没有编号为 {notice} 的公示。请核对公示编号。"),
    Code.MESSAGE_NOT_FOUND: _f("您的消息中没有这一条（编号 {message}）。请刷新消息列表。"),
    Code.OUTBOX_NOT_FOUND: _f("没有编号为 {outbox} 的待发消息。请刷新列表。"),
    Code.TOKEN_NOT_FOUND: _f("用户 {user} 没有名为 {token} 的有效接口令牌。"),
    # data
    Code.INVALID_DATA: _problems,
    Code.DUPLICATE: _duplicate,
    Code.INVALID_IMPORT: _f(
        "导入文件共 {total} 行，其中 {invalid} 行有误，未导入任何内容。"
        "请按逐行报告改正后重新导入（或选择跳过有误的行）。"
    ),
    Code.IMPORT_CLASH: lambda s: (
        f"导入期间有人用第 {s.get('first_line', '')}–{s.get('last_line', '')} 行中的"
        f"{s.fields(_names(s.get('fields'))) or '唯一项'}建了案件，这一批未导入（之前的批次已导入）。"
        "请核对后重新导入这些行。"
    ),
    # concurrency and existence
    Code.CONFLICT: lambda s: f"{s.case()}已被他人修改，您的修改未保存。请刷新页面查看最新内容后重试。",
    Code.USER_EXISTS: _f("用户名 {user} 已存在，未添加。请换一个用户名。"),
    Code.VERSION_EXISTS: _f(
        "业务流程 {workflow} 的第 {version} 版已存在且内容不同，未加载。请将版本号改为 {next_version} 后再加载。"
    ),
    # steps
    Code.UNKNOWN_STEP: lambda s: (
        f"业务流程中没有{s.step()}这一步骤，未作任何更改。"
        + (f"您要办理的是否是{s.step(s['suggestion'])}？" if s.get("suggestion") else "请刷新页面后从按钮中选择。")
    ),
    Code.WRONG_STATE: _wrong_state,
    Code.ROLE_NEEDED: _role_needed,
    Code.SCOPE_NOT_COVERED: _scope,
    Code.SYSTEM_RESERVED: lambda s: (
        "“system”是系统自动处理的身份，任何人都不能以它的名义登录或办理。请使用您自己的账号。"
    ),
    Code.USER_DISABLED: _f("账号 {user} 已停用，不能登录或办理。如有误，请联系管理员重新启用。"),
    Code.FOUR_EYES: _four_eyes,
    Code.GUARD_FAILED: _guard_failed,
    Code.GUARD_HELD: _guard_held,
    Code.GUARD_UNCHECKABLE: lambda s: (
        f"无法根据本案件的数据判断{s.step()}的办理条件（{s.get('error', '计算出错')}），未办理。"
        "请检查案件内容，或请负责人检查流程设置。"
    ),
    Code.GUARD_TOO_COSTLY: lambda s: f"{s.step()}的办理条件计算超出系统限制，未办理。请负责人简化流程中的条件。",
    Code.MISSING_FIELDS: _missing,
    Code.COMMENT_REQUIRED: lambda s: f"办理{s.step()}必须填写意见（说明理由），未办理。请填写意见后再提交。",
    Code.FINAL_STATE: lambda s: f"{s.case()}已办结（{s.state()}），内容不能再修改。",
    Code.NOT_EDITABLE: _not_editable,
    # a step acting on a linked case
    Code.LINKED_CASE_NOT_FOUND: _linked_not_found,
    Code.LINKED_CHAIN: lambda s: (
        f"此步骤会连带办理关联案件，但关联形成循环或超过 {s.get('limit', '')} 层，未作任何更改。"
        "请负责人检查流程中的关联设置。"
    ),
    Code.LINKED_CASE_STATE: lambda s: (
        f"{s.field()}关联的案件 {s.get('linked_case', '')} 当前处于{s.state(s.get('linked_state'))}，"
        f"不在允许的状态（{_list(_names(s.get('allowed')))}）中，未作任何更改。请核对关联案件。"
    ),
    Code.LIMIT_REACHED: _limit,
    # the deadline clock
    Code.NO_DEADLINE: lambda s: f"{s.case()}当前状态（{s.state()}）没有可暂停的办理时限（公示期须足期进行）。",
    Code.ALREADY_PAUSED: lambda s: f"{s.case()}的办理时限已暂停（补正中），无需再次暂停。",
    Code.NOT_PAUSED: lambda s: f"{s.case()}的办理时限没有暂停，无需恢复。",
    # publicity
    Code.NO_PUBLICITY: _f("业务流程 {workflow} 没有公示环节（或公示设置不完整），无法办理此操作。"),
    Code.NOT_IN_PUBLICITY: lambda s: f"{s.case()}不在公示期（当前：{s.state()}），只有公示期内才能登记异议。",
    Code.NOT_PUBLICISED: lambda s: (
        f"{s.case()}进入公示后尚未列入已发布的公示，公示期还没有开始，不能办理{s.step()}。请先发布公示。"
    ),
    Code.PUBLICITY_NOT_OVER: lambda s: (
        f"{s.case()}的公示期到 {s.get('period_end', '期满')} 才结束，期满前不能办理{s.step()}"
        "（异议成立、撤回或不予通过除外）。请待公示期满后再办理。"
    ),
    Code.PUBLICITY_OVER: _f("案件 {case} 的公示期已于 {period_end} 结束，不再受理异议。"),
    Code.NOTICE_BACKDATED: _f("公示日期 {date} 早于今天（{today}），不能倒签。请选择今天或以后的日期。"),
    Code.NOT_STAFF: _f("您在业务流程 {workflow} 中没有任何角色，不能办理案件 {case}。"),
    Code.OBJECTION_TEXT_REQUIRED: lambda s: "登记异议须填写异议内容。请填写后再提交。",
    Code.OBJECTION_CLOSED: _objection_closed,
    Code.NOT_RETRYABLE: lambda s: (
        f"只有发送失败的消息才能重新发送（此消息：{_OUTBOX_STATUS.get(str(s.get('status')), s.get('status'))}）。"
    ),
    Code.TEMPLATE_TOO_COSTLY: _f("模板 {template} 生成时超出系统限制，未生成。请负责人简化模板。"),
    Code.PDF_UNAVAILABLE: lambda s: (
        f"本服务器暂时不能生成 PDF（缺少 {_list(_names(s.get('missing')))}），公示本身不受影响。"
        f"请联系管理员安装：{_list(_names(s.get('install')))}。"
    ),
    # campaigns
    Code.NO_CAMPAIGN: _f("业务流程 {workflow} 没有集中办理活动，无需设置日期。"),
    Code.CAMPAIGN_BACKDATED: _f("活动日期 {date} 早于今天（{today}）。请选择今天或以后的日期。"),
    Code.CAMPAIGN_RAN: _campaign_ran,
    Code.CAMPAIGN_NOT_SET: _f("{year} 年度的集中办理活动尚未设置日期（或已取消），没有可取消或办理的内容。"),
    Code.CAMPAIGN_NOT_DUE: _f(
        "活动日期 {date} 还没到（今天是 {today}），届时将自动办理。如需今天办理，请先将日期改为今天。"
    ),
    Code.CAMPAIGN_OUT_OF_YEAR: _f(
        "活动日期 {date} 不在 {year} 年度的办理期（{earliest} 至 {latest}）内。请选择这一期间内的日期。"
    ),
    # workflow versions
    Code.WEAKENED_CONTROLS: lambda s: (
        f"新版本放宽了原有的控制（{_list(_names(s.get('weakened')))}），未加载。如确需放宽，请逐项确认后再加载。"
    ),
    Code.VERSION_NOT_NEWER: _f("没有比第 {version} 版更早的已加载版本，没有可迁移的案件。"),
    Code.MIGRATION_STRANDS: _strands,
    Code.MIGRATION_MAP: lambda s: (
        f"状态对应关系中的{s.state()}有误（旧版本中没有、没有要迁移的案件，或重复填写），未迁移。"
        + (f"您指的是否是 {s['suggestion']}？" if s.get("suggestion") else "请改正后重试。")
    ),
    # unusable input
    Code.INVALID_INPUT: _invalid_input,
    Code.INVALID_USER: _user_problems,
    # logins
    Code.LOGIN_FAILED: lambda s: "用户名或密码错误。请重新输入。",
    Code.LOGIN_LOCKED: _locked,
    Code.WEAK_PASSWORD: _f(
        "新密码太弱：至少 {min_length} 个字符，不能包含用户名，也不能是同一个字符重复。密码未修改，请换一个密码。"
    ),
    # the HTTP API (its answers are JSON; these words serve a page that shows the same refusal)
    Code.TOKEN_INVALID: lambda s: "接口令牌无效（缺少、未知、已过期或已吊销），未作任何更改。",
    Code.TOKEN_EXISTS: _f("用户 {user} 已有名为 {token} 的有效接口令牌。请先吊销它，或换一个名称。"),
    Code.RATE_LIMITED: _f("请求过于频繁，未作任何更改。请在 {retry_after} 秒后重试。"),
    Code.IDEMPOTENCY_KEY_REUSED: lambda s: "这个幂等键已用于另一项请求，未作任何更改。新的请求请使用新的幂等键。",
    Code.PRECONDITION_REQUIRED: lambda s: (
        "修改案件时须说明所依据的版本（If-Match），未作任何更改。请重新读取案件后再提交。"
    ),
    Code.INVALID_DEFINITION: _definition,
    Code.DATABASE_UNUSABLE: lambda s: "数据库暂时无法使用，未作任何更改。请稍后重试；如仍不行，请联系管理员。",
}


def word(exc: CaseworkError, workflow: WorkflowDef | None = None) -> str:
    """The refusal ``exc`` as a page shows it; ``workflow`` (the case's) names steps, states and fields by label."""
    wording = WORDS.get(exc.code)
    if wording is not None:
        try:
            text = wording(Say(exc.facts, workflow))
        except (KeyError, IndexError, TypeError, ValueError):  # facts not as documented: the engine's own words
            pass
        else:
            return text + _linked(exc.facts.get(LINKED_FROM))
    return f"操作未完成，未作任何更改：{exc.message}"


def _linked(origin: Any) -> str:
    """Where a refused step on a linked case came from (a transition's ``then:``), or nothing."""
    if not isinstance(origin, Mapping) or not origin.get("case"):
        return ""
    return f"（此步骤由案件 {origin['case']} 的办理连带发起，该案件也未作更改。）"
