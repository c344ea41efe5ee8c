"""站内消息 in the portal: the unread count in the header, the inbox, preferences."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, submit_items
from tests.web.conftest import text
from workflow import notify, reminders
from workflow.actions import TransitionRequest, transition_item
from workflow.models import AuditEvent, Indicator, Notification
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


def test_a_message_reads_in_the_language_of_whoever_reads_it(
    app: Flask, world: World, session: Session, store: LocalStore, login: Login
) -> None:
    """The engine writes a message once; the inbox shows it in the reader's language. One
    written before the msgids were kept (plain text) is shown as it was written."""
    item = world.item(session, world.dep_a, "1")
    submit_items(session, store, world, [item, world.item(session, world.dep_b, "1")])
    transition_item(
        session, item.id, world.reviewer, TransitionRequest("return", item.version, "缺少会议记录")
    )
    session.commit()
    _send(session, world, 1)  # plain text: as an old row
    reminders.send_reminders(app.extensions["sessionmaker"], dt.date(2018, 9, 3))
    code = session.get_one(Indicator, item.indicator_id).code

    member = login("member_a")
    chinese = text(member.get("/me/messages"))
    assert f"2018年度指标{code} " in chinese and "：被退回修改</strong>" in chinese
    assert "被退回修改。\n退回原因：缺少会议记录\n请修改后重新提交。" in chinese
    assert "指标0：被退回修改" in chinese and "returned for changes" not in chinese

    member.set_cookie("lang", "en")
    english = text(member.get("/me/messages"))
    title = rf"<strong>2018 Indicator {code} [^<]*: returned for changes</strong>"
    assert re.search(title, english)
    assert "was returned for changes.\nReason: 缺少会议记录\nPlease change it" in english
    assert "退回原因：缺少会议记录" not in english and "请修改后重新提交" not in english
    assert "指标0：被退回修改" in english  # the old row: as written

    reviewer = login("reviewer")
    assert "您的待办队列：\n待初审 1 项" in text(reviewer.get("/me/messages"))
    reviewer.set_cookie("lang", "en")
    queue = text(reviewer.get("/me/messages"))
    # One item, not "1 item(s)" (the page renders the count's English form).
    assert "2018 to-do: 1 item waiting" in queue and "Your queues:\nTo review: 1 item" in queue
    assert "item(s)" not in queue
    assert "待办" not in queue


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


def test_the_e_mails_preferences_link_is_the_preferences_page(app: Flask) -> None:
    from flask import url_for

    from workflow.delivery import PREFERENCES_PATH

    with app.test_request_context():
        assert url_for("inbox.preferences_page") == PREFERENCES_PATH


def test_marking_all_read_counts_one_and_several_in_english(
    world: World, session: Session, login: Login
) -> None:
    """The flash read "Marked 1 messages as read"."""
    member = login("member_a")
    member.set_cookie("lang", "en")
    for n, words in ((1, "Marked 1 message as read"), (2, "Marked 2 messages as read")):
        _send(session, world, n)
        assert words in text(member.post("/me/messages/read-all", follow_redirects=True))
