"""Case lists page by cursor, and a cursor tells nothing about cases the caller may not see."""

from __future__ import annotations

import base64

from tests.e2e.api.conftest import ApiClient, id_number


def _cursor(ref: str) -> str:
    return base64.urlsafe_b64encode(ref.encode()).decode().rstrip("=")


def test_a_list_pages_by_cursor_to_its_end(api: ApiClient) -> None:
    refs = [api.site.open_case("lin", id_number=id_number(n)) for n in range(1, 6)]
    seen, cursor, pages = [], None, 0
    while True:
        answer = api.call("GET", "/cases?limit=2" + (f"&cursor={cursor}" if cursor else ""), "lin")
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [c["ref"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert (seen, pages) == (refs, 3)


def test_a_cursor_naming_another_countys_case_answers_as_one_naming_no_case(api: ApiClient) -> None:
    mine = api.site.open_case("lin")
    theirs = api.site.open_case("chen", county="龙文区", id_number=id_number(7, "350603"))
    api.site.open_case("lin", id_number=id_number(8))
    answers = {ref: api.call("GET", f"/cases?cursor={_cursor(ref)}", "lin") for ref in (theirs, "ZZ-2026-999999")}
    for answer in answers.values():
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_input"
    hidden, missing = (a.json() for a in answers.values())
    assert hidden["detail"] == missing["detail"]
    assert {k: v for k, v in hidden["facts"].items() if k != "value"} == {
        k: v for k, v in missing["facts"].items() if k != "value"
    }
    # a cursor the list gave works
    assert api.call("GET", f"/cases?cursor={_cursor(mine)}", "lin").status_code == 200


def test_a_token_limited_to_one_county_sees_no_message_about_another(api: ApiClient) -> None:
    from notifications import NotificationConfig, Relay, default_channels

    site = api.site
    theirs = site.open_case("chen", county="龙文区", id_number=id_number(9, "350603"))
    site.svc.fire(theirs, "submit", "chen")
    mine = site.open_case("lin", id_number=id_number(10))
    site.svc.fire(mine, "submit", "lin")
    config = NotificationConfig()
    Relay(site.svc.engine, site.svc, default_channels(config), config, clock=site.clock).run_once()
    api.tokens["wu-xc"] = site.svc.tokens.create("wu", "xiangcheng-portal", scopes=["芗城区"])[0]
    everything = api.call("GET", "/messages", "wu").json()
    assert {m["case_ref"] for m in everything} == {theirs, mine}  # wu's own token: both counties
    limited = api.call("GET", "/messages", "wu-xc")
    assert [m["case_ref"] for m in limited.json()] == [mine]
    assert "龙文区" not in limited.text
    (hidden,) = [m["id"] for m in everything if m["case_ref"] == theirs]
    refused = api.call("POST", f"/messages/{hidden}/read", "wu-xc")
    missing = api.call("POST", "/messages/999999/read", "wu-xc")
    assert (refused.status_code, missing.status_code) == (404, 404)
    assert refused.json()["detail"] == missing.json()["detail"].replace("999999", str(hidden))
    assert api.call("GET", "/messages?unread=true", "wu").json()[-1]["read_at"] is None  # nothing was marked
