"""Notifications against real peers: the outbox written with the change, SMTP (aiosmtpd),
webhooks that fail then succeed, an SMTP outage, a worker killed mid-delivery, reminders."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.support import Translations
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from storage.local import LocalStore
from tests.concurrency import one_behind_the_other
from tests.factories import World, submit_items
from tests.peers import free_port, smtp_server, webhook_receiver
from workflow import notify, reminders
from workflow.actions import TransitionRequest, transition_item
from workflow.audit import verify_chain
from workflow.calendar import set_stage_deadline
from workflow.db import make_sessionmaker, unit_of_work
from workflow.delivery import DeliverySettings, MailSettings, backoff, deliver_due
from workflow.errors import InvalidValue, NotFound
from workflow.messages import render_stored
from workflow.models import (
    AuditEvent,
    DeliveryAttempt,
    Item,
    Notification,
    OutboxMessage,
    utcnow,
)
from workflow.routine import review_routine, submit_routine
from workflow.workdays import package_years

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def in_english(kept: object) -> str:
    """A stored title or body as the English inbox shows it."""
    english = Translations.load(str(ROOT / "web" / "portal" / "translations"), ["en"])
    return render_stored(kept, english.ugettext, english.ungettext)


def shanghai(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SHANGHAI).astimezone(dt.UTC)


def mail_settings(port: int, **extra: object) -> DeliverySettings:
    return DeliverySettings(
        mail=MailSettings(host="127.0.0.1", port=port, sender="kaohe@jiaohe.example", timeout=5),
        webhook_timeout=5,
        **extra,  # type: ignore[arg-type]
    )


def submitted(session: Session, world: World, tmp_path: Path, code: str = "1") -> Item:
    item = world.item(session, world.dep_a, code)
    submit_items(session, LocalStore(tmp_path / "store"), world, [item])
    return item


def return_item(session: Session, world: World, item: Item, reason: str = "材料不全") -> None:
    transition_item(
        session, item.id, world.reviewer, TransitionRequest("return", item.version, reason)
    )


def test_return_writes_inbox_and_outbox_in_the_same_transaction(
    session: Session, world: World, tmp_path: Path
) -> None:
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example"})
    item = submitted(session, w, tmp_path)
    return_item(session, w, item)
    session.rollback()  # the change is undone: so are its notifications
    assert session.scalar(select(func.count()).select_from(Notification)) == 0
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0

    item = session.get_one(Item, item.id)
    return_item(session, w, item, "缺少会议记录")
    session.commit()
    notes = session.scalars(select(Notification)).all()
    assert [(n.user_id, n.kind) for n in notes] == [(w.member_a.id, "item_returned")]
    assert "缺少会议记录" in notes[0].body and notes[0].link == f"/portal/items/{item.id}"
    # Quoted in the body, the indicator's own quotes turn single (“…‘放管服’…”, not “…“放管服”…”);
    # the title, unquoted, keeps them.
    assert notes[0].body.startswith(
        f"{w.dep_a.name}的2018年度考核事项“指标1 成立‘放管服’工作领导小组；指定专人负责”"
    )
    assert notes[0].title == "2018年度指标1 成立“放管服”工作领导小组；指定专人负责：被退回修改"
    # The reviewer who returned it, and the other department, hear nothing.
    outbox = session.scalars(select(OutboxMessage)).all()
    assert [(o.channel, o.target, o.status) for o in outbox] == [
        ("email", "a@jiaohe.example", "pending")
    ]
    assert outbox[0].subject.startswith("【事项被退回】")
    assert notify.unread_count(session, w.member_a) == 1
    assert notify.unread_count(session, w.member_b) == 0


def test_email_over_real_smtp_with_chinese_subject_and_body(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example"})
    item = submitted(session, w, tmp_path)
    return_item(session, w, item, "请补充“双随机一公开”抽查记录")
    session.commit()
    factory = sessionmaker(engine)
    with smtp_server() as (port, box):
        report = deliver_due(factory, settings=mail_settings(port))
        again = deliver_due(factory, settings=mail_settings(port))
    assert (report.sent, report.retried, again.total) == (1, 0, 0)
    assert len(box.raw) == 1
    raw = box.raw[0]
    assert b"=?utf-8?" in raw.lower()  # the subject is RFC 2047-encoded, not raw bytes
    message = box.messages()[0]
    assert str(message["Subject"]).startswith("【事项被退回】")
    assert "被退回修改" in str(message["Subject"])
    assert message["To"] == "a@jiaohe.example"
    body = message.get_content()
    assert "请补充“双随机一公开”抽查记录" in body
    # Without PUBLIC_BASE_URL the system does not know its address: the path, and what to do
    # with it (a bare "/portal/items/5" in an e-mail opened nothing); who sent it, no replies.
    assert f"查看详情：请登录考核系统后打开 /portal/items/{item.id}" in body
    assert "本邮件由“放管服”工作考核系统自动发送，请勿直接回复。" in body
    row = session.scalars(select(OutboxMessage)).one()
    session.refresh(row)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None
    assert message["Message-ID"] == f"<outbox-{row.id}@jiaohe.example>"


def test_email_and_robot_links_are_full_addresses_with_the_public_base_url(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    base = "https://kh.jiaohe.example"
    factory = sessionmaker(engine)
    with webhook_receiver() as (url, hook), smtp_server() as (port, box):
        notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example",
                                                     "webhook_url": url})  # fmt: skip
        item = submitted(session, w, tmp_path)
        return_item(session, w, item, "缺少盖章页")
        session.commit()
        report = deliver_due(factory, settings=mail_settings(port, base_url=base))
    assert report.sent == 2
    body = box.messages()[0].get_content()
    assert f"查看详情：{base}/portal/items/{item.id}" in body
    assert f"提醒方式（站内消息、邮件、群机器人）：{base}/me/notifications" in body
    content = hook.accepted[0]["text"]["content"]
    assert f"查看详情：{base}/portal/items/{item.id}" in content


def test_webhook_failing_three_times_gets_the_message_once(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    factory = sessionmaker(engine)
    with webhook_receiver(fail=3) as (url, hook):
        notify.set_preferences(session, w.member_a, {"webhook_url": url})
        item = submitted(session, w, tmp_path)
        return_item(session, w, item)
        session.commit()
        now = utcnow()
        passes = []
        for _ in range(6):  # each pass after the backoff of the previous failure
            passes.append(deliver_due(factory, now, settings=mail_settings(free_port())))
            now += dt.timedelta(hours=7)
    assert [(p.sent, p.retried) for p in passes] == [(0, 1), (0, 1), (0, 1), (1, 0), (0, 0), (0, 0)]
    assert len(hook.requests) == 4 and len(hook.accepted) == 1
    body = hook.accepted[0]
    assert body["msgtype"] == "text" and "被退回修改" in body["text"]["content"]
    assert f"请登录考核系统后打开 /portal/items/{item.id}" in body["text"]["content"]
    row = session.scalars(select(OutboxMessage)).one()
    session.refresh(row)
    assert row.status == "sent" and row.attempts == 4
    assert {h["X-Notification-Id"] for h, _ in hook.requests} == {str(row.id)}
    attempts = session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.outbox_id == row.id)
        .order_by(DeliveryAttempt.id)
    ).all()
    assert [a.ok for a in attempts] == [False, False, False, True]
    assert "HTTP 500" in (attempts[0].error or "")


def test_smtp_down_for_a_while_then_delivered_once(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example"})
    item = submitted(session, w, tmp_path)
    return_item(session, w, item)
    session.commit()
    factory = sessionmaker(engine)
    port = free_port()  # nobody listens yet: the server is down
    now = utcnow()
    first = deliver_due(factory, now, settings=mail_settings(port))
    assert (first.sent, first.retried) == (0, 1)
    # Before the backoff has passed nothing is tried again.
    assert (
        deliver_due(factory, now + dt.timedelta(seconds=5), settings=mail_settings(port)).total == 0
    )
    second = deliver_due(factory, now + backoff(1), settings=mail_settings(port))
    assert second.retried == 1
    with smtp_server(port) as (_, box):
        later = now + backoff(1) + backoff(2)
        third = deliver_due(factory, later, settings=mail_settings(port))
        fourth = deliver_due(factory, later + dt.timedelta(hours=7), settings=mail_settings(port))
    assert (third.sent, fourth.total) == (1, 0)
    assert len(box.raw) == 1
    attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()
    assert [a.ok for a in attempts] == [False, False, True]
    assert all("邮件发送失败" in (a.error or "") for a in attempts[:2])


def test_a_message_is_given_up_after_max_attempts(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example"})
    return_item(session, w, submitted(session, w, tmp_path))
    session.commit()
    factory = sessionmaker(engine)
    settings = mail_settings(free_port(), max_attempts=2)
    now = utcnow()
    assert deliver_due(factory, now, settings=settings).retried == 1
    assert deliver_due(factory, now + dt.timedelta(hours=7), settings=settings).dead == 1
    assert deliver_due(factory, now + dt.timedelta(days=2), settings=settings).total == 0
    row = session.scalars(select(OutboxMessage)).one()
    session.refresh(row)
    assert row.status == "dead" and row.attempts == 2


_KILLED_WORKER = """
import sys
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from workflow.delivery import DeliverySettings, MailSettings, deliver_due
engine = create_engine(sys.argv[1])
settings = DeliverySettings(mail=MailSettings(host="127.0.0.1", port=int(sys.argv[2]), timeout=30))
deliver_due(sessionmaker(engine), settings=settings)
"""


def test_worker_killed_mid_delivery_loses_nothing(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    """At least once: the lease runs out and the message goes again, exactly once here."""
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example"})
    return_item(session, w, submitted(session, w, tmp_path))
    session.commit()
    factory = sessionmaker(engine)
    url = engine.url.render_as_string(hide_password=False)
    with smtp_server(delay=30) as (port, box):
        worker = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WORKER, url, str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert box.entered.wait(60), "the worker never reached the SMTP DATA phase"
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
    assert box.raw == []  # killed mid-DATA: the server never accepted it
    row = session.scalars(select(OutboxMessage)).one()
    session.refresh(row)
    assert row.status == "pending" and row.leased_until is not None and row.attempts == 0
    with smtp_server() as (port2, box2):
        # While the dead worker's lease runs, nobody else takes the message.
        assert deliver_due(factory, settings=mail_settings(port2)).total == 0
        after_lease = row.leased_until + dt.timedelta(seconds=1)
        report = deliver_due(factory, after_lease, settings=mail_settings(port2))
    assert report.sent == 1 and len(box2.raw) == 1


def test_scored_is_told_only_once_scores_are_visible(
    session: Session, world: World, tmp_path: Path
) -> None:
    """Before 公示 the department sees no score: the publication tells them, not the score."""
    from tests.integration.test_workflow import full_scores, to_verified
    from workflow import actions

    w = world
    store = LocalStore(tmp_path / "store")
    hidden = to_verified(session, store, w, "1")
    actions.score_item(
        session, hidden.id, w.scorer, hidden.version, scores=full_scores(hidden, session)
    )
    session.commit()
    assert hidden.state == "scored"
    assert "item_scored" not in session.scalars(select(Notification.kind)).all()
    # An office that shows scores before publication: the department hears of the score.
    w.assessment.hide_scores_until_published = False
    shown = to_verified(session, store, w, "3")
    actions.score_item(
        session, shown.id, w.scorer, shown.version, scores=full_scores(shown, session)
    )
    session.commit()
    scored = session.scalars(select(Notification).where(Notification.kind == "item_scored")).all()
    assert [(n.user_id, n.item_id) for n in scored] == [(w.member_a.id, shown.id)]


def test_an_appeal_decided_while_scores_are_hidden_names_no_score(
    session: Session, world: World, tmp_path: Path
) -> None:
    """An appealed item rescored while the department may not see scores yet (demo data
    spreads items over every state): the message names no score and no "可登录系统查看"."""
    from tests.integration.test_workflow import full_scores, to_verified
    from workflow import actions

    w = world
    item = to_verified(session, LocalStore(tmp_path / "store"), w, "1")
    actions.score_item(session, item.id, w.scorer, item.version, scores=full_scores(item, session))
    item.state = "appealed"  # as the demo leaves some items
    session.commit()
    assert w.assessment.hide_scores_until_published and w.assessment.published_at is None
    actions.rescore_item(
        session,
        item.id,
        w.scorer2,
        item.version,
        scores=full_scores(item, session),
        comment="材料齐全",
    )
    session.commit()
    note = session.scalars(select(Notification).where(Notification.kind == "appeal_decided")).one()
    assert note.title.endswith("：申诉已复核") and "公示后可查看" in note.body
    assert "分）" not in note.body and "可登录系统查看" not in note.body
    # Two years' appeals may run at once: the message says which year's item it is.
    year = w.assessment.year
    assert note.title.startswith(f"{year}年度指标") and f"对{year}年度考核事项“" in note.body


def test_an_appeal_tells_at_once_the_scorers_who_may_decide_it(
    session: Session, world: World, tmp_path: Path
) -> None:
    """Filed during 公示, an appeal reaches the scorers the decision's guards let act, as their
    preferences say, in the appeal's transaction (before, only the next day's 待办 told them);
    decided, it reaches the department with the reason."""
    from tests.factories import add_evidence, appealable
    from web.api.schemas import NOTIFICATION_KINDS
    from workflow import actions
    from workflow.users import create_user, set_roles

    w = world
    store = LocalStore(tmp_path / "store")
    item = w.item(session, w.dep_a, "1")
    colleague = create_user(session, "member_a2", ["department"], department=w.dep_a)
    add_evidence(session, store, item, colleague, name="纪要.pdf")  # department work on it
    appealable(session, store, w, item, w.member_a)  # scored by w.scorer
    set_roles(session, colleague, ["scorer"], actor=w.admin)  # then moved to the office
    quiet = create_user(session, "scorer3", ["scorer"])
    notify.set_preferences(session, quiet, {"channels": {"appeal_filed": []}})
    notify.set_preferences(
        session, w.scorer2,
        {"email": "s2@jiaohe.example", "channels": {"appeal_filed": ["inbox", "email"]}},
    )  # fmt: skip
    session.commit()
    reason = "第1.2项已指定专人负责，见附件会议纪要。" * 4
    actions.appeal_item(session, item.id, w.member_a, item.version, reason)
    session.rollback()  # the appeal undone: nobody was told
    assert session.scalar(select(func.count()).select_from(Notification)) == 0

    item = session.get_one(Item, item.id)
    actions.appeal_item(session, item.id, w.member_a, item.version, reason)
    session.commit()
    filed = session.scalars(select(Notification).where(Notification.kind == "appeal_filed")).all()
    # Not the original scorer, the scorer of department A, the one who worked on the item,
    # nor the one who turned the kind off: the one scorer who may decide it.
    assert [n.user_id for n in filed] == [w.scorer2.id]
    note = filed[0]
    assert note.title == f"2018年度申诉待处理：{w.dep_a.name} {note.title.split(' ', 1)[1]}"
    assert "指标1 " in note.title and note.link == f"/review/items/{item.id}"
    assert note.item_id == item.id and note.assessment_id == w.assessment.id
    assert f"{w.dep_a.name}对2018年度考核事项" in note.body
    quoted = note.body.split("申诉理由：", 1)[1]
    assert reason.startswith(quoted[:-1]) and quoted.endswith("…") and len(quoted) == 60
    (mail,) = session.scalars(select(OutboxMessage)).all()
    assert (mail.channel, mail.target) == ("email", "s2@jiaohe.example")
    assert mail.subject.startswith("【收到部门申诉】2018年度申诉待处理")
    # The kind is offered to scorers only, and the API declares it.
    assert "appeal_filed" in notify.kinds_for(["scorer"])
    assert "appeal_filed" not in notify.kinds_for(["department", "reviewer", "admin"])
    assert tuple(notify.KINDS) == NOTIFICATION_KINDS

    actions.reject_appeal_item(session, item.id, w.scorer2, item.version, "会议纪要晚于评分期")
    session.commit()
    decided = session.scalars(
        select(Notification).where(Notification.kind == "appeal_decided")
    ).all()
    assert [n.user_id for n in decided] == [w.member_a.id]
    assert decided[0].title.endswith("：申诉被驳回") and "会议纪要晚于评分期" in decided[0].body
    assert decided[0].link == f"/portal/items/{item.id}"


def test_routine_rejection_tells_the_department(
    session: Session, world: World, tmp_path: Path
) -> None:
    from workflow.demo import demo_pdf

    w = world
    record = submit_routine(
        session, LocalStore(tmp_path / "store"), w.assessment, w.member_a, kind="monthly_info",
        period="2018-08", title="八月份放管服工作信息", stream=io.BytesIO(demo_pdf("八月")),
        filename="信息.pdf", max_size=1 << 20, now=shanghai(2018, 8, 31, 10, 0),
    )  # fmt: skip
    review_routine(session, record.id, w.reviewer, "rejected", "内容与本月工作无关")
    session.commit()
    note = session.scalars(select(Notification)).one()
    assert note.user_id == w.member_a.id and note.kind == "routine_rejected"
    # It names the record's kind and its period in words, the year with it (it said the code
    # 2018-08; 2018-Q3 for a quarter), what to do, and opens the routine page of that year.
    assert note.title == "平时考核记录被退回：2018年8月“放管服”信息（月报）"
    assert note.body == (
        "2018年8月“放管服”信息（月报）记录被退回。\n理由：内容与本月工作无关\n"
        "请按理由修改后重新报送。"
    )
    assert in_english(note.title_i18n) == (
        "Routine record sent back: “Fang-Guan-Fu” information (monthly report), August 2018"
    )
    assert note.link == "/portal/routine?year=2018"


def test_preferences_are_checked_audited_and_all_or_nothing(session: Session, world: World) -> None:
    w = world
    with pytest.raises(InvalidValue) as bad:
        notify.set_preferences(session, w.member_a, {"email": "not-an-address", "digest": True})
    assert bad.value.code == "bad_email"
    assert notify.preferences(session, w.member_a).digest is False
    with pytest.raises(InvalidValue) as kind:
        notify.set_preferences(session, w.member_a, {"channels": {"nonsense": ["inbox"]}})
    assert kind.value.code == "unknown_kind"
    with pytest.raises(InvalidValue) as host:
        notify.set_preferences(
            session, w.member_a, {"webhook_url": "https://evil.example/x"},
            allowed_hosts=("qyapi.weixin.qq.com",),
        )  # fmt: skip
    assert host.value.code == "webhook_host_not_allowed"
    prefs = notify.set_preferences(
        session, w.member_a,
        {"email": "a@jiaohe.example", "channels": {"item_returned": ["email"]}, "remind_days": 5},
    )  # fmt: skip
    assert prefs.channels["item_returned"] == ["email"] and prefs.remind_days == 5
    assert prefs.channels["overdue"] == ["inbox", "email", "webhook"]
    session.commit()
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "notification_preferences_changed")
    ).one()
    assert event.target_id == str(w.member_a.id)
    assert "a@jiaohe.example" not in (event.payload or "")
    assert verify_chain(session).ok


def test_email_only_kind_stays_out_of_the_inbox(
    session: Session, world: World, tmp_path: Path
) -> None:
    w = world
    notify.set_preferences(
        session, w.member_a,
        {"email": "a@jiaohe.example", "channels": {"item_returned": ["email"]}},
    )  # fmt: skip
    return_item(session, w, submitted(session, w, tmp_path))
    session.commit()
    assert notify.unread_count(session, w.member_a) == 0
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def test_inbox_marks_only_ones_own_messages(session: Session, world: World, tmp_path: Path) -> None:
    w = world
    return_item(session, w, submitted(session, w, tmp_path))
    session.commit()
    note = session.scalars(select(Notification)).one()
    with pytest.raises(NotFound):
        notify.mark_read(session, w.member_b, note.id)
    notify.mark_read(session, w.member_a, note.id)
    assert notify.unread_count(session, w.member_a) == 0
    assert [n.id for n in notify.inbox(session, w.member_a)] == [note.id]
    assert notify.inbox(session, w.member_a, unread_only=True) == []


# --- reminders ---------------------------------------------------------------------------


def _submit_deadline(session: Session, w: World, due: dt.date) -> None:
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=dt.date(2018, 9, 1), due_on=due,
        working_days=None, actor=w.admin,
    )  # fmt: skip


def test_deadline_reminders_count_national_day_and_run_once_a_day(
    session: Session, engine: Engine, world: World
) -> None:
    """自评提交截止 Monday 8 October 2018: 1–7 October are holidays, 29–30 September work."""
    w = world
    _submit_deadline(session, w, dt.date(2018, 10, 8))
    session.commit()
    factory = sessionmaker(engine)
    # Friday 28 September: 28, 29 (Sat, 调休), 30 (Sun, 调休), 8 October = 4 working days left.
    first = reminders.send_reminders(factory, dt.date(2018, 9, 28))
    assert first.notifications == 0
    # Saturday 29 September (a working day): 3 left, within the default 3.
    second = reminders.send_reminders(factory, dt.date(2018, 9, 29))
    near = session.scalars(
        select(Notification)
        .where(Notification.kind == "deadline_near")
        .order_by(Notification.user_id)
    ).all()
    assert {n.user_id for n in near} >= {w.member_a.id, w.member_b.id}
    mine = next(n for n in near if n.user_id == w.member_a.id)
    # Today counts (29 and 30 September, 8 October), and the reminder says so.
    assert "（2018-10-08 截止，含今天剩余 3 个工作日）" in mine.body
    assert mine.title == "2018年度截止提醒：10 项考核事项待提交"  # 项, as the body and the queues
    assert second.notifications == len(near)
    # The same day again writes nothing (the job may be retried after a crash).
    assert reminders.send_reminders(factory, dt.date(2018, 9, 29)).notifications == 0
    # In the holiday (5 October) nobody is reminded; Monday 8 October is the last day.
    assert reminders.send_reminders(factory, dt.date(2018, 10, 5)).notifications == 0
    reminders.send_reminders(factory, dt.date(2018, 10, 8))
    session.expire_all()
    oct8 = session.scalars(
        select(Notification)
        .where(Notification.user_id == w.member_a.id, Notification.kind == "deadline_near")
        .order_by(Notification.id)
    ).all()
    # The deadline's own day is said to be today, not 「剩余 1 个工作日」.
    assert "（今天 2018-10-08 截止）" in oct8[-1].body and "剩余" not in oct8[-1].body
    # Tuesday 9 October: overdue by one working day.
    reminders.send_reminders(factory, dt.date(2018, 10, 9))
    late = session.scalars(
        select(Notification).where(
            Notification.user_id == w.member_a.id, Notification.kind == "overdue"
        )
    ).one()
    # The deadline once, then by how much it has passed.
    assert late.body == (
        "自评提交截止日期 2018-10-08 已过，尚有 10 项考核事项未提交（已逾期 1 个工作日）。"
    )


def test_an_overdue_reminder_under_a_scheme_without_late_submissions_says_what_to_do(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    """The scheme takes no late submissions (`blocks_late_submissions`): the reminder said the
    deadline had passed and left the department there, though submitting its drafts is now
    refused. It says so, and what to do: ask the office to move the deadline; a returned item
    may still be submitted again."""
    w = world
    _submit_deadline(session, w, dt.date(2018, 10, 8))
    item = submitted(session, w, tmp_path)  # the clock says today: late, so before the flag
    return_item(session, w, item)
    w.assessment.blocks_late_submissions = True
    session.commit()
    reminders.send_reminders(sessionmaker(engine), dt.date(2018, 10, 9))
    late = session.scalars(
        select(Notification).where(
            Notification.user_id == w.member_a.id, Notification.kind == "overdue"
        )
    ).one()
    assert late.body.splitlines() == [
        "自评提交截止日期 2018-10-08 已过，尚有 10 项考核事项未提交（已逾期 1 个工作日）。",
        "本年度考核方案不接受逾期提交，从未提交过的 9 项事项已不能提交；"
        "如确需补交，请联系市职转办，请其延后自评提交截止日期后再提交。",
        "其余 1 项（被退回或撤回的事项）不受此限，修改后仍可提交。",
    ]
    english = in_english(late.body_i18n).splitlines()
    assert english[1] == (
        "This year's scheme takes no late submissions, so the 9 items never submitted can no "
        "longer be submitted. If they must still be, ask the coordination office to move the "
        "self-assessment deadline, then submit them."
    )
    assert english[2] == (
        "The other item (returned or withdrawn) is not affected: it can still be submitted "
        "once corrected."
    )


def test_reviewers_hear_of_their_queue_without_their_own_department(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    items = [
        w.item(session, w.dep_a, "1"),
        w.item(session, w.dep_a, "2"),
        w.item(session, w.dep_b, "1"),
    ]
    submit_items(session, LocalStore(tmp_path / "s"), w, items)
    reminders.send_reminders(sessionmaker(engine), dt.date(2018, 9, 3))
    queue = {
        n.user_id: n
        for n in session.scalars(select(Notification).where(Notification.kind == "queue_waiting"))
    }
    assert "待初审 3 项" in queue[w.reviewer.id].body
    # An office reviewer who belongs to department A may act only on B's item.
    assert "待初审 1 项" in queue[w.reviewer_in_a.id].body
    assert w.verifier.id not in queue  # nothing reviewed yet
    assert w.member_a.id not in queue


def test_the_scorers_queue_says_when_the_appeal_window_closes(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    """Every other line of the queue reminder had its deadline, 申诉待处理 none: it now says
    when the appeal window closes (the results are final once it has and every appeal is
    decided), counting working days while it runs, and that it has closed after."""
    from tests.integration.test_workflow import full_scores, to_verified
    from workflow import actions

    w = world
    item = to_verified(session, LocalStore(tmp_path / "store"), w, "1")
    actions.score_item(session, item.id, w.scorer, item.version, scores=full_scores(item, session))
    item.state = "appealed"
    w.assessment.published_at = w.assessment.appeal_opens_at = shanghai(2018, 12, 21, 9, 0)
    w.assessment.appeal_closes_at = shanghai(2018, 12, 28, 17, 30)
    session.commit()
    factory = sessionmaker(engine)

    def line(day: dt.date) -> tuple[str, str]:
        reminders.send_reminders(factory, day)
        note = session.scalars(
            select(Notification)
            .where(Notification.user_id == w.scorer2.id, Notification.kind == "queue_waiting")
            .order_by(Notification.id.desc())
        ).first()
        assert note is not None
        (appeals,) = [t for t in note.body.splitlines() if t.startswith("申诉待处理")]
        return appeals, in_english(note.body_i18n).splitlines()[-1]

    # Monday 24 December: 24 to 28 December, today included.
    assert line(dt.date(2018, 12, 24)) == (
        "申诉待处理 1 项（申诉期 2018-12-28 17:30 结束，含今天剩余 5 个工作日）",
        "Appeals to decide: 1 item (the appeal period ends 2018-12-28 17:30; 5 working days "
        "left, today included)",
    )
    assert line(dt.date(2018, 12, 28))[0] == "申诉待处理 1 项（申诉期今天 2018-12-28 17:30 结束）"
    # Wednesday 2 January 2019 (1 January is a holiday): closed, the appeal still open.
    closed, english = line(dt.date(2019, 1, 2))
    assert closed == (
        "申诉待处理 1 项（申诉期已于 2018-12-28 17:30 结束，待这些申诉决定后结果才最终确定）"
    )
    assert english.endswith(
        "(the appeal period ended 2018-12-28 17:30; the results become final once these "
        "appeals are decided)"
    )


def test_digest_gathers_the_day_into_one_message(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example", "digest": True})
    item = submitted(session, w, tmp_path)
    return_item(session, w, item, "第一次退回")
    session.commit()
    assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    note = session.scalars(select(Notification)).one()
    assert note.digest_pending and note.in_inbox
    report = reminders.send_reminders(sessionmaker(engine), dt.date(2018, 9, 3))
    assert report.digests == 1
    digest = session.scalars(select(OutboxMessage)).one()
    assert digest.channel == "email" and "第一次退回" in digest.body
    # The day it gathers: read the next morning, it says which day it was.
    assert digest.subject == "【消息汇总】每日消息汇总（2018-09-03，1 条）"
    session.refresh(note)
    assert note.digest_pending is False
    assert reminders.send_reminders(sessionmaker(engine), dt.date(2018, 9, 3)).digests == 0
    # Each message in it opens its own page: a digest has no link of its own, and it had none.
    base = "https://kh.jiaohe.example"
    with smtp_server() as (port, box):
        assert deliver_due(sessionmaker(engine), settings=mail_settings(port, base_url=base)).sent
    body = box.messages()[0].get_content()
    assert f"第一次退回\n请修改后重新提交。\n查看详情：{base}/portal/items/{item.id}" in body


def test_two_reminder_runs_at_once_send_one_digest(
    session: Session, engine: Engine, world: World, tmp_path: Path
) -> None:
    """Runs of two days (the worker, and an admin catching up by hand) overlap with no key in
    common: a digest has none, so only the run lock keeps the second from mailing it again."""
    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example", "digest": True})
    return_item(session, w, submitted(session, w, tmp_path), "第一次退回")
    session.commit()
    one, other = one_behind_the_other(
        engine,
        lambda factory: reminders.send_reminders(factory, dt.date(2018, 9, 3)),
        lambda: reminders.send_reminders(sessionmaker(engine), dt.date(2018, 9, 4)),
    )
    assert (one.digests, other.digests) == (1, 0)
    digest = session.scalars(select(OutboxMessage)).one()
    assert "第一次退回" in digest.body


def test_a_day_the_calendar_does_not_know_alerts_the_admins_once(
    session: Session, engine: Engine, world: World
) -> None:
    """The admins hear once a day that the reminders were skipped; a second run that day (a
    retry, `notify remind` by hand) adds nothing and does not fail on the alert's key.

    It was an 审计核验告警 (the auditors too, who cannot enter a calendar) linked to the audit
    verification, telling first to enter the year under “工作日调整”, then to paste the
    notice; the year's problem itself was plain Chinese on the English inbox."""
    year = package_years()[1] + 1
    day = dt.date(year, 3, 2)
    factory = sessionmaker(engine)
    first = reminders.send_reminders(factory, day)
    second = reminders.send_reminders(factory, day)
    assert len(first.skipped_assessments) == len(second.skipped_assessments) == 1
    told = session.scalars(
        select(Notification).where(Notification.kind.in_(["audit_alert", "calendar_needed"]))
    ).all()
    assert [(n.user_id, n.kind) for n in told] == [(world.admin.id, "calendar_needed")]
    note = told[0]
    assert note.link == "/admin/calendar#arrangement"
    assert note.title == f"2018年度的提醒已跳过：请录入 {year} 年的节假日安排"
    assert "工作日调整" not in note.body and note.body.count("请") == 1
    assert in_english(note.body_i18n).startswith(
        f"The system does not know the statutory holidays and make-up working days of {year}"
    )


def test_two_failed_verifications_on_a_day_alert_once(
    session: Session, engine: Engine, world: World
) -> None:
    """The nightly verification and one an admin starts fail on the same day: the admins are
    alerted once, and neither job fails on the alert's key, one after the other or at once."""
    from web.tasks import alert_admins_hook

    def alert(factory: Callable[[], Session]) -> None:
        with unit_of_work(factory) as s:
            alert_admins_hook(s, "审计校验未通过", "第 3 号事件哈希不符")

    one_behind_the_other(engine, alert, lambda: alert(sessionmaker(engine)))
    alert(sessionmaker(engine))
    alerts = session.scalars(select(Notification).where(Notification.kind == "audit_alert")).all()
    assert sorted(n.user_id for n in alerts) == sorted([world.admin.id, world.auditor.id])


def test_cli_delivers_and_reminds(
    session: Session, db_url: str, world: World, tmp_path: Path
) -> None:
    from web.app import create_app

    w = world
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example"})
    return_item(session, w, submitted(session, w, tmp_path))
    _submit_deadline(session, w, dt.date(2018, 10, 8))
    session.commit()
    with smtp_server() as (port, box):
        app = create_app(
            {
                "DATABASE_URL": db_url,
                "INSTANCE_DIR": str(tmp_path / "instance"),
                "STORAGE": {"STORAGE_BACKEND": "local"},
                "MAIL": {"host": "127.0.0.1", "port": port, "sender": "kaohe@jiaohe.example"},
            }
        )
        runner = app.test_cli_runner()
        delivered = runner.invoke(args=["notify", "deliver"])
        assert delivered.exit_code == 0, delivered.output
        assert "已发送 1 条" in delivered.output and len(box.raw) == 1
        reminded = runner.invoke(args=["notify", "remind", "--date", "2018-09-29"])
        assert reminded.exit_code == 0, reminded.output
        assert re.search(r"已生成提醒 [1-9]\d* 条", reminded.output)
        again = runner.invoke(args=["notify", "remind", "--date", "2018-09-29"])
        assert "已生成提醒 0 条" in again.output
        app.extensions["engine"].dispose()


def test_admins_hear_weekly_from_november_that_next_years_holidays_are_missing(
    engine: Engine, session: Session, world: World
) -> None:
    """The status page says it, but admins seldom look there: from 1 November, while next
    year's holidays are unknown, the admins (nobody else) hear it once a week, linked to the
    calendar's paste form; once the year is entered, nothing more."""
    from workflow.calendar import set_calendar_override

    last = package_years()[1]
    factory = make_sessionmaker(engine)

    def told() -> list[Notification]:
        session.expire_all()
        return list(
            session.scalars(select(Notification).where(Notification.kind == "calendar_needed"))
        )

    reminders.send_reminders(factory, dt.date(last, 10, 30))
    assert told() == []
    reminders.send_reminders(factory, dt.date(last, 11, 2))
    reminders.send_reminders(factory, dt.date(last, 11, 3))  # the same week: once
    first = told()
    assert {n.user_id for n in first} == {world.admin.id}
    assert first[0].title == f"请录入 {last + 1} 年的节假日安排"
    assert first[0].link == "/admin/calendar#arrangement"
    assert "按国务院通知录入全年安排" in first[0].body
    reminders.send_reminders(factory, dt.date(last, 11, 10))  # the next week: again
    assert len(told()) == 2 * len(first)
    set_calendar_override(session, dt.date(last + 1, 1, 1), False, "元旦", actor=world.admin)
    session.commit()
    reminders.send_reminders(factory, dt.date(last, 11, 17))
    assert len(told()) == 2 * len(first)
    assert "calendar_needed" in notify.kinds_for(["admin"])
    assert "calendar_needed" not in notify.kinds_for(["scorer", "auditor", "department"])
