"""站内消息 in the portal: the unread count in the header, the inbox, preferences."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import text
from workflow import notify
from workflow.models import AuditEvent, Notification
from workflow.notify import Message

Login = Callable[[str], FlaskClient]


def _send(session: Session, world: World, n: int, link: str | None = "/portal/") -> None:
    people = notify.recipients(session, user_ids=[world.member_a.id])
    for k in range(n):
        notify.send(
            session,
            people,
            Message("item_returned", f"指标{k}：被退回修改", f"退回原因：第{k}条", link),
        )
    session.commit()


def test_header_counts_unread_and_the_inbox_marks_read(
    world: World, session: Session, login: Login
) -> None:
    _send(session, world, 2)
    member = login("member_a")
    home = text(member.get("/portal/"))
    assert re.search(r'class="inbox-link">站内消息 <span class="badge"[^>]*>2</span>', home)
    page = text(member.get("/me/messages"))
    assert "指标1：被退回修改" in page and "退回原因：第0条" in page and "未读 2 条" in page
    newest = session.scalars(
        select(Notification)
        .where(Notification.user_id == world.member_a.id)
        .order_by(Notification.id.desc())
    ).first()
    assert newest is not None
    opened = member.post(f"/me/messages/{newest.id}/read", data={"open": "1"})
    assert opened.status_code == 303 and opened.headers["Location"].endswith("/portal/")
    assert "未读 1 条" in text(member.get("/me/messages"))
    assert "指标1" not in text(member.get("/me/messages?unread=1"))
    # Another person's message is not theirs to mark.
    other = login("member_b")
    assert other.post(f"/me/messages/{newest.id}/read").status_code == 404
    assert member.post("/me/messages/read-all").status_code == 303
    assert 'class="badge"' not in text(member.get("/me/messages")).split("</header>")[0]


def test_a_link_to_another_site_is_never_followed(
    world: World, session: Session, login: Login
) -> None:
    _send(session, world, 1, link="//evil.example/")
    note = session.scalars(select(Notification)).one()
    member = login("member_a")
    assert "查看" not in text(member.get("/me/messages")).split('class="messages"')[1]
    opened = member.post(f"/me/messages/{note.id}/read", data={"open": "1"})
    assert opened.headers["Location"].endswith("/me/messages")


def test_preferences_form_saves_and_refuses_in_chinese(
    world: World, session: Session, login: Login
) -> None:
    member = login("member_a")
    form = text(member.get("/me/notifications"))
    assert "通知设置" in form and "截止提醒" in form
    refused = member.post(
        "/me/notifications",
        data={"email": "不是地址", "remind_days": "3", "item_returned:inbox": "1"},
    )
    assert refused.status_code == 422
    assert "电子邮件地址格式不正确" in text(refused)
    assert 'value="不是地址"' in text(refused)  # what was typed is kept
    assert notify.preferences(session, world.member_a).email is None
    saved = member.post(
        "/me/notifications",
        data={
            "email": "a@jiaohe.example",
            "remind_days": "5",
            "digest": "1",
            "item_returned:inbox": "1",
            "item_returned:email": "1",
        },
    )
    assert saved.status_code == 303
    session.expire_all()
    prefs = notify.preferences(session, world.member_a)
    assert prefs.email == "a@jiaohe.example" and prefs.remind_days == 5 and prefs.digest
    assert prefs.channels["item_returned"] == ["inbox", "email"]
    assert prefs.channels["overdue"] == []  # unticked boxes mean "not this way"
    assert prefs.channels["audit_alert"] == ["inbox", "email", "webhook"]  # not offered: kept
    assert session.scalars(
        select(AuditEvent).where(AuditEvent.action == "notification_preferences_changed")
    ).one()
    bad_days = member.post("/me/notifications", data={"remind_days": "abc"})
    assert bad_days.status_code == 422 and "提前提醒的工作日数须为整数" in text(bad_days)
    # −1 is a whole number: the refusal says the range, not "must be a whole number".
    negative = member.post("/me/notifications", data={"remind_days": "-1"})
    assert negative.status_code == 422 and "提前提醒的工作日数须在 0 到 20 之间" in text(negative)
