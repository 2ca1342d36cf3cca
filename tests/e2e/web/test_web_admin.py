"""The supervisor's pages over HTTP: workflows, the diagram, the YAML editor, users, the access log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from casework.web.settings import WebSettings
from engine import load_definition, load_definition_file
from tests.e2e.web.conftest import BUNDLED, PASSWORD, Site, WebClient

SOURCE = BUNDLED.read_text(encoding="utf-8")

ADMIN_GETS = [
    "/admin/workflows",
    "/admin/workflows/poverty_archive",
    "/admin/workflows/poverty_archive/migrate?to=4",
    "/admin/editor",
    "/admin/editor?workflow=poverty_archive",
    "/admin/users",
    "/admin/access-log",
]
ADMIN_POSTS = [
    "/admin/editor/validate",
    "/admin/editor/load",
    "/admin/users/add",
    "/admin/users/edit",
    "/admin/users/disable",
    "/admin/users/enable",
    "/admin/users/password",
]


def _v5(**replace: str) -> str:
    """The bundled workflow as version 5 with a new title (and any further text replaced)."""
    text = SOURCE.replace("version: 4", "version: 5", 1).replace(
        "title: 困难职工建档立卡", "title: 困难职工建档立卡（2027 修订）", 1
    )
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


# ------------------------------------------------------------------ rights


@pytest.mark.parametrize("who", ["lin", "wu", "su"])
def test_everyone_but_a_supervisor_gets_403_on_every_admin_page(web: WebClient, site: Site, who: str) -> None:
    web.login(who)
    for path in ADMIN_GETS:
        response = web.get(path)
        assert response.status_code == 403, path
        assert "仅限县级工会负责人" in response.text
    token = web.form_token(web.get("/account").text)
    before = len(site.svc.workflow_history("poverty_archive"))
    for path in ADMIN_POSTS:
        response = web.post(path, {"source": _v5(), "username": "lin", "password": "a-new-password-1"}, token=token)
        assert response.status_code == 403, path
    # nothing was done: no version, lin still enabled with her password
    assert len(site.svc.workflow_history("poverty_archive")) == before
    assert site.svc.user("lin").disabled_at is None
    assert WebClient(site.app).login("lin").status_code == 303


def test_the_admin_pages_need_a_login(web: WebClient) -> None:
    for path in ADMIN_GETS:
        assert web.get(path).status_code == 303


# ------------------------------------------------------------------ diagram


def test_the_diagram_is_svg_with_chinese_states_and_the_current_one_highlighted(web: WebClient) -> None:
    web.login("lin")  # any logged-in user
    response = web.get("/workflows/poverty_archive/v4/diagram.svg", params={"current": "publicise"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    svg = response.text
    assert "<script" not in svg
    for label in ("申请", "审核", "公示", "审批", "录入", "已建档", "审核通过", "公示期满", "办理期限：5 个工作日"):
        assert label in svg
    node = svg.split('id="state&#45;publicise"')[1].split("</g>")[0]
    assert 'fill="#ffe08a"' in node
    plain = web.get("/workflows/poverty_archive/v4/diagram.svg")
    assert plain.status_code == 200 and 'fill="#ffe08a"' not in plain.text


def test_an_unknown_state_version_or_workflow_is_404(web: WebClient) -> None:
    web.login("lin")
    assert web.get("/workflows/poverty_archive/v4/diagram.svg", params={"current": "nowhere"}).status_code == 404
    assert web.get("/workflows/poverty_archive/v9/diagram.svg").status_code == 404
    assert web.get("/workflows/no_such_flow/v1/diagram.svg").status_code == 404


def test_without_dot_the_diagram_is_503_in_chinese_and_the_page_shows_the_mermaid_text(
    site: Site, tmp_path: Path
) -> None:
    from casework.web import create_app

    client = WebClient(create_app(site.svc, WebSettings(dot=str(tmp_path / "bin" / "dot"))))
    with client.http:
        client.login("luo")
        response = client.get("/workflows/poverty_archive/v4/diagram.svg", params={"current": "review"})
        assert response.status_code == 503
        assert "未安装 Graphviz" in response.text and "stateDiagram-v2" in response.text
        shown = client.get("/admin/workflows/poverty_archive")
        assert shown.status_code == 200
        assert "diagram.svg" not in shown.text
        assert (
            '<pre class="mermaid-text">stateDiagram-v2' in shown.text and "state &#34;审核&#34; as review" in shown.text
        )


# ------------------------------------------------------------------ workflows


def test_the_workflow_pages_list_versions_and_show_the_diagram(web: WebClient) -> None:
    web.login("luo")
    listing = web.get("/admin/workflows")
    assert listing.status_code == 200
    assert 'data-workflow="poverty_archive"' in listing.text and "第 4 版" in listing.text
    one = web.get("/admin/workflows/poverty_archive")
    assert one.status_code == 200
    assert '<img src="/workflows/poverty_archive/v4/diagram.svg"' in one.text
    assert web.get("/admin/workflows/no_such_flow").status_code == 404


def test_the_migration_dry_run_shows_what_would_move_and_moves_nothing(web: WebClient, site: Site) -> None:
    bundled = load_definition_file(BUNDLED)
    ref = site.open_case("lin")
    site.svc.load_workflow(load_definition(_v5(), templates=bundled.templates.sources))
    web.login("luo")
    response = web.get("/admin/workflows/poverty_archive/migrate", params={"to": "5"})
    assert response.status_code == 200, response.text
    assert "只预演，不迁移任何案件" in response.text
    assert "旧版本上的案件</dt><dd>1" in response.text
    assert site.svc.get_case(ref).workflow_version == 4
    refused = web.get("/admin/workflows/poverty_archive/migrate", params={"to": "4"})
    assert refused.status_code == 422 and '<p class="refusal" role="alert">' in refused.text


# ------------------------------------------------------------------ the editor


def test_the_editor_starts_from_the_latest_stored_source(web: WebClient) -> None:
    web.login("luo")
    response = web.get("/admin/editor", params={"workflow": "poverty_archive"})
    assert response.status_code == 200
    assert 'hx-post="/admin/editor/validate"' in response.text
    assert 'hx-trigger="input changed delay:600ms"' in response.text
    assert "加载新版本" in response.text
    textarea = re.search(r'<textarea name="source"[^>]*>(.*?)</textarea>', response.text, re.S)
    assert textarea is not None and "workflow: poverty_archive" in textarea.group(1)
    assert "title: 困难职工建档立卡" in textarea.group(1)
    assert web.get("/admin/editor", params={"workflow": "no_such_flow"}).status_code == 404


def test_validate_lists_located_problems_with_did_you_mean(web: WebClient) -> None:
    web.login("luo")
    token = web.form_token(web.get("/admin/editor").text)
    broken = SOURCE.replace("    deadline: 5 working days", "    deadlin: 5 working days", 1)
    response = web.post("/admin/editor/validate", {"source": broken}, token=token, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "<html" not in response.text  # a partial for htmx
    problems = re.search(r'<ol id="problems" class="problems">(.*?)</ol>', response.text, re.S)
    assert problems is not None
    items = re.findall(r'<li data-line="(\d+)" data-column="(\d+)">(.*?)</li>', problems.group(1), re.S)
    line = SOURCE.splitlines().index("    deadline: 5 working days") + 1
    assert [(int(a), int(b)) for a, b, _ in items] == [(line, 5)]
    assert f"第 {line} 行第 5 列" in items[0][2] and "did you mean &#39;deadline&#39;?" in items[0][2]
    # the stored templates stand in for the files the editor cannot bring: no "no template file" problems
    ok = web.post("/admin/editor/validate", {"source": _v5()}, token=token)
    assert 'id="valid"' in ok.text and "第 5 版" in ok.text and "<li" not in ok.text


def test_a_yaml_syntax_error_is_located(web: WebClient) -> None:
    web.login("luo")
    web.get("/admin/editor")
    response = web.post("/admin/editor/validate", {"source": "workflow: x\nstates: [a\n"})
    assert re.search(r'<li data-line="\d+" data-column="\d+">第 \d+ 行第 \d+ 列：', response.text)


def test_loading_a_valid_new_version_creates_it_with_the_stored_templates(web: WebClient, site: Site) -> None:
    web.login("luo")
    web.get("/admin/editor", params={"workflow": "poverty_archive"})
    response = web.post("/admin/editor/load", {"source": _v5()})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin/workflows/poverty_archive?loaded=1"
    latest = site.svc.workflow_history("poverty_archive")[-1]
    assert (latest.version, latest.title, latest.loaded_by) == (5, "困难职工建档立卡（2027 修订）", "luo")
    stored = site.svc.workflow("poverty_archive", 5)
    assert stored.templates.sources == site.svc.workflow("poverty_archive", 4).templates.sources
    shown = web.get(response.headers["location"])
    assert "已加载新版本：第 5 版" in shown.text and "/workflows/poverty_archive/v5/diagram.svg" in shown.text
    # the same text again changes nothing
    again = web.post("/admin/editor/load", {"source": _v5()}, token=web.form_token(shown.text))
    assert again.status_code == 200 and "内容相同，未作更改" in again.text


def test_a_broken_definition_is_not_loaded(web: WebClient, site: Site) -> None:
    web.login("luo")
    web.get("/admin/editor")
    response = web.post("/admin/editor/load", {"source": _v5(**{"to: publicise\n": "to: publicse\n"})})
    assert response.status_code == 422
    assert "unknown state &#39;publicse&#39;; did you mean &#39;publicise&#39;?" in response.text
    assert [v.version for v in site.svc.workflow_history("poverty_archive")] == [4]


def test_an_existing_version_with_other_content_is_refused_with_the_next_number(web: WebClient, site: Site) -> None:
    web.login("luo")
    web.get("/admin/editor")
    changed = SOURCE.replace("title: 困难职工建档立卡", "title: 改过的标题", 1)
    response = web.post("/admin/editor/load", {"source": changed})
    assert response.status_code == 409
    assert '<p class="refusal" role="alert">' in response.text
    assert "第 4 版已经加载过" in response.text and "version 改为 5" in response.text


def test_weakened_controls_are_refused_until_each_is_accepted(web: WebClient, site: Site) -> None:
    web.login("luo")
    web.get("/admin/editor")
    weaker = _v5(**{"    not_by: pass_review\n": ""})
    refused = web.post("/admin/editor/load", {"source": weaker})
    assert refused.status_code == 409
    assert "放宽了第 4 版的 1 项控制" in refused.text
    assert '<input type="checkbox" name="accept_weaker" value="not_by:grant">' in refused.text
    assert "审批通过：双人审核规定" in refused.text
    assert [v.version for v in site.svc.workflow_history("poverty_archive")] == [4]
    accepted = web.post("/admin/editor/load", {"source": weaker, "accept_weaker": "not_by:grant"})
    assert accepted.status_code == 303, accepted.text
    assert site.svc.workflow_history("poverty_archive")[-1].weakened == ("not_by:grant",)


# ------------------------------------------------------------------ users


def test_add_a_user_then_refusals_in_chinese(web: WebClient, site: Site) -> None:
    web.login("luo")
    web.get("/admin/users")
    added = web.post(
        "/admin/users/add",
        {
            "username": "zheng",
            "name": "郑小红",
            "roles": ["clerk", "reviewer"],
            "scopes": "芗城区，龙文区",
            "email": "",
        },
    )
    assert added.status_code == 303
    user = site.svc.user("zheng")
    assert (user.roles, user.scopes) == (("clerk", "reviewer"), ("芗城区", "龙文区"))
    listed = web.get(added.headers["location"])
    assert "已添加用户" in listed.text and 'data-user="zheng"' in listed.text
    row = listed.text.split('data-user="zheng"')[1].split("</tr>")[0]
    assert "未设置" in row and "正常" in row
    bad = web.post("/admin/users/add", {"username": "qian", "name": "钱", "more_roles": "clark", "scopes": "芗城"})
    assert bad.status_code == 422
    assert "用户信息有误，未保存" in bad.text and "角色：" in bad.text and "did you mean &#39;clerk&#39;?" in bad.text
    taken = web.post(
        "/admin/users/add",
        {"username": "lin", "name": "林", "roles": "clerk", "scopes": "芗城区"},
        token=web.form_token(),
    )
    assert taken.status_code == 409 and "用户名 lin 已被使用" in taken.text


def test_edit_roles_and_scopes(web: WebClient, site: Site) -> None:
    web.login("luo")
    web.get("/admin/users")
    response = web.post(
        "/admin/users/edit", {"username": "chen", "roles": ["clerk", "reviewer"], "scopes": "龙文区 芗城区"}
    )
    assert response.status_code == 303
    user = site.svc.user("chen")
    assert (user.roles, user.scopes) == (("clerk", "reviewer"), ("龙文区", "芗城区"))


def test_disabling_a_user_ends_their_session_at_once_and_enabling_lets_them_back(web: WebClient, site: Site) -> None:
    lin = WebClient(site.app)
    with lin.http:
        assert lin.login("lin").status_code == 303
        assert lin.get("/account").status_code == 200
        web.login("luo")
        web.get("/admin/users")
        response = web.post("/admin/users/disable", {"username": "lin", "reason": "调离"})
        assert response.status_code == 303
        assert "已停用该用户" in web.get(response.headers["location"]).text
        gone = lin.get("/account")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
        refused = lin.login("lin")
        assert refused.status_code != 303 and "已停用" in refused.text
        web.post("/admin/users/enable", {"username": "lin"})
        assert lin.login("lin").status_code == 303


def test_reset_password_ends_their_sessions_and_the_new_one_works(web: WebClient, site: Site) -> None:
    chen = WebClient(site.app)
    with chen.http:
        chen.login("chen")
        web.login("luo")
        web.get("/admin/users")
        weak = web.post("/admin/users/password", {"username": "chen", "password": "short"})
        assert weak.status_code == 422 and "新密码太弱" in weak.text
        assert chen.get("/account").status_code == 200  # nothing changed
        done = web.post(
            "/admin/users/password", {"username": "chen", "password": "fresh-start-2026"}, token=web.form_token()
        )
        assert done.status_code == 303
        assert chen.get("/account").status_code == 303
        assert chen.login("chen", PASSWORD).status_code == 401
        assert chen.login("chen", "fresh-start-2026").status_code == 303
    entry = site.svc.access_log(action="set_password")[-1]
    assert entry.actor == "luo" and entry.detail["user"] == "chen"
    nobody = web.post(
        "/admin/users/password",
        {"username": "nobody", "password": "fresh-start-2026"},
        token=web.form_token(web.get("/admin/users").text),
    )
    assert nobody.status_code == 404 and "没有用户名为 nobody 的用户" in nobody.text


# ------------------------------------------------------------------ access log


def test_the_access_log_shows_logins_and_failures_newest_first(web: WebClient, site: Site) -> None:
    other = WebClient(site.app)
    with other.http:
        assert other.login("lin", "wrong-password-1").status_code == 401
        site.clock.advance(minutes=1)
        other.login("lin")
    site.clock.advance(minutes=1)
    web.login("luo")
    response = web.get("/admin/access-log")
    assert response.status_code == 200
    actions = re.findall(r'<tr data-action="([a-z_]+)">', response.text)
    assert actions[:3] == ["login", "login", "login_failed"]  # luo, lin, lin's failure
    assert "登录失败" in response.text and "lin" in response.text
    failed = web.get("/admin/access-log", params={"action": "login_failed"})
    assert re.findall(r'<tr data-action="([a-z_]+)">', failed.text) == ["login_failed"]


def test_the_access_log_is_paged(web: WebClient, site: Site) -> None:
    for _ in range(55):
        site.svc.log_access("read_case", {"refs": ["ZZ-2026-000001"]}, actor="wu")
    web.login("luo")
    first = web.get("/admin/access-log")
    assert len(re.findall(r"<tr data-action=", first.text)) == 50 and "下一页" in first.text
    second = web.get("/admin/access-log", params={"page": "2"})
    rows = re.findall(r'<tr data-action="([a-z_]+)">', second.text)
    assert 1 <= len(rows) <= 50 and "上一页" in second.text
