"""Bulk actions in the reviewer's queue: select, preview, confirm (CSRF), report; who may."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, submit_items
from tests.web.conftest import PASSWORD, csrf_token, text
from web.portal import bulk as bulk_views
from workflow import bulk
from workflow.models import AuditEvent, BulkRunItem, Item
from workflow.scheme import Scheme
from workflow.setup import install_scheme


@pytest.fixture
def csrf_app(make_app: Callable[..., Flask], world: World) -> Flask:
    """The app with CSRF checks on, as in production."""
    return make_app(WTF_CSRF_ENABLED=True)


@pytest.fixture
def submitted(session: Session, world: World, local_store: LocalStore) -> list[Item]:
    """Department B's first six items, submitted."""
    chosen = [world.item(session, world.dep_b, str(n)) for n in range(1, 7)]
    return submit_items(session, local_store, world, chosen)


def sign_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    data = {"username": username, "password": PASSWORD}
    if app.config.get("WTF_CSRF_ENABLED", True):
        data["csrf_token"] = csrf_token(text(page))
    assert client.post("/login", data=data).status_code == 302
    return client


def events(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def hidden(html: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]*)"', html)


def test_preview_then_apply_with_csrf(
    csrf_app: Flask, session: Session, world: World, submitted: list[Item]
) -> None:
    client = sign_in(csrf_app, "reviewer")
    queue = text(client.get(f"/review/?state=submitted&department={world.dep_b.id}"))
    assert 'name="item"' in queue and "批量办理" in queue and "本页全部（6 项）" in queue
    ticked = [f"{i.id}:{i.version}" for i in submitted[:3]]
    form = {
        "csrf_token": csrf_token(queue),
        "state": "submitted",
        "department": str(world.dep_b.id),
        "scope": "selected",
        "action": "review",
        "comment": "",
        "item": ticked,
    }
    assert client.post("/review/bulk/preview", data={**form, "csrf_token": ""}).status_code == 400
    before = events(session)
    page = client.post("/review/bulk/preview", data=form)
    html = text(page)
    assert page.status_code == 200, html
    assert "可以办理 3 项" in html and "确认办理" in html
    assert events(session) == before  # the preview wrote nothing
    assert hidden(html, "item") == ticked
    confirm = {
        "csrf_token": csrf_token(html),
        "key": hidden(html, "key")[0],
        "action": "review",
        "comment": "",
        "state": "submitted",
        "department": str(world.dep_b.id),
        "item": hidden(html, "item"),
    }
    done = client.post("/review/bulk/apply", data=confirm)
    assert done.status_code == 303
    assert re.search(r"/review/bulk/runs/\d+", done.headers["Location"])
    assert events(session) - before == 3
    report = text(client.get(done.headers["Location"]))
    assert "已办理 3 项" in report and "未办理 0 项" in report
    # The confirm posted twice (a second click, a reload): the same run, nothing applied again.
    again = client.post("/review/bulk/apply", data=confirm)
    assert again.headers["Location"] == done.headers["Location"]
    assert events(session) - before == 3
    states = {i.id: i.state for i in session.execute(select(Item)).scalars()}
    assert [states[i.id] for i in submitted] == ["reviewed"] * 3 + ["submitted"] * 3


def test_page_and_filter_scopes_show_each_verdict(
    app: Flask, session: Session, world: World, submitted: list[Item]
) -> None:
    client = sign_in(app, "reviewer_in_a")  # a reviewer who belongs to department A
    own = submit_items(
        session, app.extensions["store"], world, [world.item(session, world.dep_a, "1")]
    )
    base = {"state": "submitted", "action": "review", "comment": ""}
    page = client.post(
        "/review/bulk/preview",
        data={
            **base,
            "scope": "page",
            "page_item": [f"{i.id}:{i.version}" for i in [*submitted, *own]],
        },
    )
    html = text(page)
    assert "可以办理 6 项" in html and "不能办理 1 项" in html
    assert "不能以审核人员身份处理本部门的考核事项" in html
    everything = text(client.post("/review/bulk/preview", data={**base, "scope": "filter"}))
    assert "共选择 7 项" in everything
    only_b = text(
        client.post(
            "/review/bulk/preview",
            data={**base, "scope": "filter", "department": str(world.dep_b.id)},
        )
    )
    assert "共选择 6 项" in only_b


def test_filter_beyond_the_limit_and_return_without_reason_are_refused(
    app: Flask,
    session: Session,
    world: World,
    submitted: list[Item],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = sign_in(app, "reviewer")
    base = {"state": "submitted", "comment": ""}
    monkeypatch.setattr(bulk_views, "MAX_BULK_ITEMS", 5)
    monkeypatch.setattr(bulk, "MAX_BULK_ITEMS", 5)
    too_many = client.post(
        "/review/bulk/preview", data={**base, "scope": "filter", "action": "review"}
    )
    assert too_many.status_code == 422
    assert "符合筛选条件的事项共 6 个，批量办理一次最多 5 个" in text(too_many)
    picked = [f"{i.id}:{i.version}" for i in submitted]
    ticked = client.post("/review/bulk/preview", data={**base, "action": "review", "item": picked})
    assert ticked.status_code == 422 and "本次选择了 6 个" in text(ticked)
    no_reason = client.post(
        "/review/bulk/preview", data={**base, "action": "return", "item": picked[:2]}
    )
    assert no_reason.status_code == 422 and "批量退回须填写统一的退回理由" in text(no_reason)
    # The ticked items are kept: the page asks for the reason and previews them again.
    page = text(no_reason)
    assert hidden(page, "item") == picked[:2] and hidden(page, "action") == ["return"]
    assert hidden(page, "scope") == ["selected"] and hidden(page, "state") == ["submitted"]
    again = client.post(
        "/review/bulk/preview",
        data={"state": "submitted", "scope": "selected", "action": "return",
              "item": hidden(page, "item"), "comment": "材料不全"},
    )  # fmt: skip
    assert again.status_code == 200 and "可以办理 2 项" in text(again)
    nothing = client.post("/review/bulk/preview", data={**base, "action": "review"})
    assert nothing.status_code == 422 and "请至少选择一个事项" in text(nothing)
    assert "bulk-retry" not in text(nothing) and "bulk-retry" not in text(ticked)


def test_bulk_return_with_one_reason(
    app: Flask, session: Session, world: World, submitted: list[Item]
) -> None:
    client = sign_in(app, "reviewer")
    data = {
        "state": "submitted",
        "action": "return",
        "comment": "请补充盖章页",
        "key": "k-return",
        "item": [f"{i.id}:{i.version}" for i in submitted[:2]],
    }
    done = client.post("/review/bulk/apply", data=data)
    assert done.status_code == 303
    report = text(client.get(done.headers["Location"]))
    assert "已办理 2 项" in report and "请补充盖章页" in report
    session.expire_all()
    assert {i.return_reason for i in submitted[:2]} == {"请补充盖章页"}


def test_an_item_changed_after_it_was_ticked_is_explained_without_versions(
    app: Flask, session: Session, world: World, submitted: list[Item]
) -> None:
    """The reviewer ticked rows in a list: the report says the item was changed since it was
    selected and to refresh, not "当前版本 5，页面上的版本 4" (a number the page never showed)."""
    from workflow.messages import STALE_VERSION_DETAIL

    client = sign_in(app, "reviewer")
    changed, fine = submitted[0], submitted[1]
    data = {
        "state": "submitted",
        "action": "review",
        "comment": "",
        "item": [f"{changed.id}:{changed.version - 1}", f"{fine.id}:{fine.version}"],
    }
    preview = text(client.post("/review/bulk/preview", data={**data, "scope": "selected"}))
    done = client.post("/review/bulk/apply", data={**data, "key": "k-changed"})
    report = text(client.get(done.headers["Location"]))
    for page in (preview, report):
        assert "该事项在选中后已被他人（或您在其他页面）更改，请刷新列表后重新选择" in page
        assert "版本" not in page
    assert "已办理 1 项" in report and "冲突 1 项" in report
    # A run stored before this wording reads the same (its row keeps the single item's msgid).
    session.execute(
        update(BulkRunItem)
        .where(BulkRunItem.item_id == changed.id)
        .values(message=STALE_VERSION_DETAIL)
    )
    session.commit()
    assert "版本" not in text(client.get(done.headers["Location"]))
    en = sign_in(app, "reviewer")
    en.set_cookie("lang", "en")
    english = text(en.get(done.headers["Location"]))
    assert "changed by someone else (or by you on another page) after it was selected" in english
    assert "version" not in english.lower()


@pytest.mark.parametrize("username", ["member_a", "scorer", "auditor", "admin"])
def test_others_get_403_and_no_checkboxes(
    app: Flask, world: World, submitted: list[Item], username: str
) -> None:
    client = sign_in(app, username)
    data = {"state": "submitted", "action": "review", "scope": "page", "page_item": ["1:1"]}
    assert client.post("/review/bulk/preview", data=data).status_code == 403
    assert client.post("/review/bulk/apply", data={**data, "key": "k"}).status_code == 403
    if username != "member_a":
        assert 'name="item"' not in text(client.get("/review/?state=submitted"))


def test_a_run_is_seen_only_by_its_user(app: Flask, world: World, submitted: list[Item]) -> None:
    client = sign_in(app, "reviewer")
    done = client.post(
        "/review/bulk/apply",
        data={
            "state": "submitted",
            "action": "review",
            "key": "k-own",
            "item": [f"{submitted[0].id}:{submitted[0].version}"],
        },
    )
    location = done.headers["Location"]
    assert client.get(location).status_code == 200
    other = sign_in(app, "reviewer_in_a")
    assert other.get(location).status_code == 404


@pytest.mark.parametrize(
    "bad",
    [
        {"item": ["x:1"]},
        {"item": ["1"]},
        {"item": ["99999999999:1"]},
        {"state": "scored"},
        {"scope": "everything"},
        {"department": "-1"},
    ],
)
def test_malformed_posts_are_400(app: Flask, world: World, bad: dict[str, object]) -> None:
    client = sign_in(app, "reviewer")
    data = {"state": "submitted", "action": "review", "scope": "selected", **bad}
    assert client.post("/review/bulk/preview", data=data).status_code == 400


def test_bulk_verify_with_the_checklist_attested(
    app: Flask, session: Session, world: World, submitted: list[Item]
) -> None:
    """Items with check points (核查要点) pass a bulk verify only when the verifier ticks that
    every check point is 是; the answers are recorded per item."""
    chosen = submitted[:2]
    for item in chosen:
        item.indicator.check_points = [
            {"code": "k-1", "text": "是否有会议记录", "method": "实地考核"}
        ]
    session.commit()
    client = sign_in(app, "reviewer")
    for item in chosen:  # reviewed by one, verified by another (four eyes)
        client.post(
            f"/review/items/{item.id}/action", data={"action": "review", "version": item.version}
        )
    session.expire_all()
    verifier = sign_in(app, "verifier")
    queue = text(verifier.get(f"/review/?state=reviewed&department={world.dep_b.id}"))
    assert 'name="all_checks_yes"' in queue and "全部核查要点均为“是”" in queue
    ticked = [f"{i.id}:{session.get_one(Item, i.id).version}" for i in chosen]
    form = {"state": "reviewed", "scope": "selected", "action": "verify", "item": ticked}
    plain = text(verifier.post("/review/bulk/preview", data=form))
    assert "不能办理 2 项" in plain and "请逐项回答核查要点：k-1 是否有会议记录" in plain
    # The preview says the way on: open each item, or go back and attest (found by a walk).
    assert 'class="notice checks-hint"' in plain and "后重新预览" in plain
    attested = text(verifier.post("/review/bulk/preview", data={**form, "all_checks_yes": "1"}))
    assert "checks-hint" not in attested
    assert "可以办理 2 项" in attested and hidden(attested, "all_checks_yes") == ["1"]
    confirm = {
        "key": hidden(attested, "key")[0],
        "action": "verify",
        "comment": "",
        "state": "reviewed",
        "item": hidden(attested, "item"),
        "all_checks_yes": "1",
    }
    assert verifier.post("/review/bulk/apply", data=confirm).status_code == 303
    session.expire_all()
    assert [session.get_one(Item, i.id).state for i in chosen] == ["verified"] * 2


def test_last_years_queue_and_its_bulk_scope_after_next_year_started(
    app: Flask, session: Session, world: World, submitted: list[Item], scheme_2018: Scheme
) -> None:
    """Next year's assessment exists while last year's items still wait (appeals during its
    公示, say): the queue opens on the newest year, switches to the other (`?year=`), and
    "all matching the filter" takes the year shown, not the newest."""
    install_scheme(session, dataclasses.replace(scheme_2018, code="jiaohe-2019", year=2019))
    session.commit()
    client = sign_in(app, "reviewer")
    newest = text(client.get("/review/?state=submitted"))
    assert "<th>事项编号</th>" in newest  # the item's id, not the indicator's 编号
    assert "2019年度</strong>" in newest and "队列为空" in newest
    assert 'href="/review/?year=2018&amp;state=submitted"' in newest
    last_year = text(client.get("/review/?state=submitted&year=2018"))
    assert "2018年度</strong>" in last_year and all(
        f'value="{i.id}:{i.version}"' in last_year for i in submitted
    )
    assert hidden(last_year, "year") == ["2018", "2018"]  # the filter form and the bulk form
    assert client.get("/review/?year=1999").status_code == 404
    base = {"state": "submitted", "action": "review", "comment": "", "scope": "filter"}
    assert "共选择 6 项" in text(client.post("/review/bulk/preview", data={**base, "year": "2018"}))
    assert "共选择 6 项" not in text(client.post("/review/bulk/preview", data=base))


def test_a_bulk_filter_scope_takes_the_year_its_page_showed(
    app: Flask, session: Session, world: World, submitted: list[Item], scheme_2018: Scheme
) -> None:
    """The queue is opened while only 2018 exists; 2019 is created before the reviewer asks
    for "all matching": the bulk form carries 2018, so the selection is 2018's items."""
    client = sign_in(app, "reviewer")
    page = text(client.get("/review/?state=submitted"))
    assert hidden(page, "year") == ["2018"]  # the bulk form's
    install_scheme(session, dataclasses.replace(scheme_2018, code="jiaohe-2019", year=2019))
    session.commit()
    form = {"state": "submitted", "action": "review", "comment": "", "scope": "filter"}
    preview = text(client.post("/review/bulk/preview", data={**form, "year": "2018"}))
    assert "共选择 6 项" in preview
