"""A routine change after scoring: the scorer and the office see that a score's basis moved.

Indicator 9's points are scored from the routine records (9.1: ≥ 2 monthly reports a month,
August to December 2018). When the office rejects, corrects or withdraws a record after the
item was scored and the suggestion moves, the item page (office and department), the API's
item detail and a notification to the scorer and the admins say so, naming the record kind
and period that moved it; nothing changes silently. Time alone moves it too (a counting
period running at scoring ends): the daily reminders tell that once, naming the period.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from storage.local import LocalStore
from tests.concurrency import one_behind_the_other
from tests.factories import World, add_evidence
from tests.web.conftest import text
from workflow import actions, reminders
from workflow.calendar import set_stage_deadline
from workflow.demo import demo_pdf
from workflow.models import Item, Notification, OutboxMessage, RoutineRecord, utcnow
from workflow.notify import set_preferences
from workflow.read import item_detail
from workflow.routine import (
    DriftCause,
    correct_routine,
    review_routine,
    submit_routine,
    suggestions_for_points,
    withdraw_routine,
)
from workflow.users import issue_token

Login = Callable[[str], FlaskClient]
NOTICE = "评分后平时考核记录有变化"
DRIFT = "9.1 评分时建议 3.20，现建议 1.60，已评 3.20"
SEPTEMBER = "2018年9月“放管服”信息（月报）记录有变化"
SEPTEMBER_EN = "“Fang-Guan-Fu” information (monthly report), September 2018: a record changed"


def _report(session: Session, store: LocalStore, w: World, period: str, title: str) -> int:
    record = submit_routine(
        session, store, w.assessment, w.member_a, kind="monthly_info", period=period,
        title=title, stream=io.BytesIO(demo_pdf(title)), filename=f"{title}.pdf",
        max_size=1 << 20,
    )  # fmt: skip
    review_routine(session, record.id, w.reviewer, "accepted")
    return record.id


def _verified(session: Session, store: LocalStore, w: World) -> tuple[Item, dict[str, int]]:
    """Item 9 of department A verified, its monthly reports accepted: August and September
    met, October one report of two, November and December none."""
    ids = {
        title: _report(session, store, w, period, title)
        for period, title in (
            ("2018-08", "八月一"), ("2018-08", "八月二"), ("2018-09", "九月一"),
            ("2018-09", "九月二"), ("2018-10", "十月一"),
        )
    }  # fmt: skip
    item = w.item(session, w.dep_a, "9")
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    return item, ids


def _scored_with_suggestion(
    session: Session, store: LocalStore, w: World
) -> tuple[Item, dict[str, int]]:
    """Item 9 of department A scored with the suggestions: 9.1 = 8 × 2/5 = 3.20 (August and
    September met, October one report of two, November and December none)."""
    item, ids = _verified(session, store, w)
    points = actions.scoring_points_of(session, item)
    suggested = suggestions_for_points(session, item, points, utcnow())
    assert suggested["9.1"] == Decimal("3.20")
    actions.score_item(
        session, item.id, w.scorer, item.version,
        scores={code: str(value) for code, value in suggested.items()},
        deductions=dict.fromkeys(suggested, "平时考核：部分期间未完成报送任务"),
    )  # fmt: skip
    session.commit()
    return item, ids


def _messages(session: Session, item: Item) -> list[Notification]:
    session.expire_all()
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.kind == "routine_basis_changed", Notification.item_id == item.id)
            .order_by(Notification.id)
        )
    )


def test_a_rejected_record_after_scoring_is_told_on_the_page_the_api_and_the_inbox(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    w = world
    item, ids = _scored_with_suggestion(session, store, w)
    scorer_page = text(login("scorer").get(f"/review/items/{item.id}"))
    assert NOTICE not in scorer_page  # scored with the suggestion that stands
    assert item_detail(session, item.id, w.scorer).routine_drift is None

    # The office rejects an accepted September report: September is short, 8 × 1/5 = 1.60.
    reviewer = login("reviewer")
    rejected = reviewer.post(
        f"/review/routine/{ids['九月二']}/review",
        data={"status": "rejected", "reason": "与放管服无关"},
    )
    assert rejected.status_code == 303
    session.expire_all()
    assert session.get_one(Item, item.id).total is not None  # the score itself is untouched

    page = text(login("scorer").get(f"/review/items/{item.id}"))
    assert NOTICE in page and DRIFT in page
    # The message names the year: last year's scores drift while this year's items move.
    told = _messages(session, item)
    assert told and all(n.title.startswith(f"2018年度{NOTICE}：") for n in told)
    assert all("的2018年度考核事项“指标9 " in n.body for n in told)
    assert f"{DRIFT}（变化所在：{SEPTEMBER}）" in page  # which record kind and period
    assert "考核结果公示后部门可提出申诉" in page  # not yet published: what the office can do
    office = text(login("admin").get(f"/review/items/{item.id}"))
    assert DRIFT in office
    matrix = text(login("scorer").get("/progress/"))  # the item's cell is marked
    assert "1 个已评分事项评分后平时考核记录有变化" in matrix
    assert re.search(
        rf'items/{item.id}"[^>]*>[^<]*(<span[^>]*>[^<]*</span>)*<span class="drift-mark"', matrix
    )

    # The department sees no score before the 公示, so no notice either; once it may, it does.
    assert NOTICE not in text(login("member_a").get(f"/portal/items/{item.id}"))
    w.assessment.hide_scores_until_published = False
    session.commit()
    assert DRIFT in text(login("member_a").get(f"/portal/items/{item.id}"))

    token = issue_token(session, w.scorer)[0]
    session.commit()
    body = (
        app.test_client()
        .get(f"/api/v1/items/{item.id}", headers={"Authorization": f"Bearer {token}"})
        .get_json()
    )
    drift = body["routine_drift"]
    assert drift["action"] == "score" and drift["remedy"] == "after_publication"
    assert drift["points"] == [
        {
            "code": "9.1", "suggested_then": "3.20", "suggested_now": "1.60", "score": "3.20",
            "causes": [{"kind": "monthly_info", "period": "2018-09", "change": "record_changed"}],
        }
    ]  # fmt: skip

    # The scorer and the admins are told, in the transaction of the rejection; nobody else.
    told = _messages(session, item)
    assert sorted(n.user_id for n in told) == sorted([w.scorer.id, w.admin.id])
    assert all(DRIFT in n.body and "九月" not in n.title for n in told)
    assert all(f"变化所在：{SEPTEMBER}" in n.body and "2018年9月 已退回" in n.body for n in told)
    assert told[0].body_i18n is not None and told[0].link == f"/review/items/{item.id}"
    scorer = login("scorer")
    scorer.set_cookie("lang", "en")  # stored as msgids: read in the reader's language
    english = text(scorer.get("/me/messages"))
    assert "9.1 suggested 3.20 when scored, now 1.60; scored 3.20" in english
    assert f"What changed: {SEPTEMBER_EN}" in english
    assert DRIFT not in english and "2018年9月" not in english
    page = text(scorer.get(f"/review/items/{item.id}"))
    assert f"(What changed: {SEPTEMBER_EN})" in page and SEPTEMBER not in page

    # Accepted again: the suggestion is back to what the score was given with.
    again = reviewer.post(f"/review/routine/{ids['九月二']}/review", data={"status": "accepted"})
    assert again.status_code == 303
    assert NOTICE not in text(login("scorer").get(f"/review/items/{item.id}"))
    assert "drift-mark" not in text(login("scorer").get("/progress/"))
    told = _messages(session, item)
    assert len(told) == 4 and "现建议分已与评分时一致" in told[-1].body


def test_a_routine_change_that_moves_no_suggestion_tells_nobody(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    w = world
    item, ids = _scored_with_suggestion(session, store, w)
    # October had one report of two: rejecting it leaves October short, as it was.
    review_routine(session, ids["十月一"], w.reviewer, "rejected", "重复报送")
    # An office registration of a meeting feeds 10.1, not item 9; correcting and withdrawing
    # it moves nothing of item 9 (item 10 is not scored).
    meeting = submit_routine(
        session, store, w.assessment, w.reviewer, kind="meeting", period="2018-09",
        title="推进会", stream=None, filename=None, department_id=w.dep_a.id,
    max_size=1 << 20)  # fmt: skip
    review_routine(session, meeting.id, w.reviewer, "accepted")
    correct_routine(session, meeting.id, w.reviewer, reason="迟到", outcome="late")
    withdraw_routine(session, meeting.id, w.reviewer, reason="登记错误")
    session.commit()
    assert _messages(session, item) == []
    assert session.scalar(
        select(RoutineRecord.status).where(RoutineRecord.id == ids["十月一"])
    ) == ("rejected")
    assert item_detail(session, item.id, w.scorer).routine_drift is None
    assert NOTICE not in text(login("scorer").get(f"/review/items/{item.id}"))
    assert "drift-mark" not in text(login("scorer").get("/progress/"))


# --- time alone: a counting period running at scoring ends --------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCORED_AT = dt.datetime(2018, 12, 14, 10, tzinfo=SHANGHAI).astimezone(dt.UTC)
ENDED = "计数期间结束后建议分有变化"


def _scored_in_december(session: Session, store: LocalStore, w: World) -> Item:
    """Item 9 of department A scored on 14 December 2018 with the suggestion of that day: August
    and September met, October one report of two, November none, December (running on 14
    December: not held against the department) none."""
    item, _ids = _verified(session, store, w)
    points = actions.scoring_points_of(session, item)
    suggested = suggestions_for_points(session, item, points, SCORED_AT)
    actions.transition_item(
        session, item.id, w.scorer,
        actions.TransitionRequest(
            "score", item.version,
            scores={code: str(value) for code, value in suggested.items()},
            deductions=dict.fromkeys(suggested, "平时考核：部分期间未完成报送任务"),
        ),
        now=SCORED_AT,
    )  # fmt: skip
    session.commit()
    return item


def _remind(engine: Engine, day: dt.date) -> None:
    reminders.send_reminders(sessionmaker(engine), day)


def test_a_counting_period_that_ended_after_scoring_is_told_once(
    session: Session, engine: Engine, world: World, login: Login, store: LocalStore
) -> None:
    w = world
    item = _scored_in_december(session, store, w)
    before = suggestions_for_points(session, item, actions.scoring_points_of(session, item),
                                    SCORED_AT)  # fmt: skip
    after = suggestions_for_points(session, item, actions.scoring_points_of(session, item),
                                   utcnow())  # fmt: skip
    assert before["9.1"] != after["9.1"] == Decimal("3.20")  # December now counts against

    _remind(engine, dt.date(2018, 12, 17))  # December still running: nothing moved
    assert _messages(session, item) == []

    _remind(engine, dt.date(2019, 1, 2))  # December has ended without a report
    told = _messages(session, item)
    assert sorted(n.user_id for n in told) == sorted([w.scorer.id, w.admin.id])
    line = f"9.1 评分时建议 {before['9.1']}，现建议 3.20，已评 {before['9.1']}"
    december = "变化所在：2018年12月“放管服”信息（月报）期间已结束且未达要求"
    for note in told:
        assert note.title.startswith(f"2018年度{ENDED}：") and f"{line}\n{december}" in note.body
        assert "的2018年度考核事项“指标9 " in note.body  # the year, in January 2019
        assert "平时考核记录没有变化" in note.body and note.link == f"/review/items/{item.id}"
        assert note.body_i18n is not None and note.dedup_key is not None
    scorer = login("scorer")
    scorer.set_cookie("lang", "en")  # stored as msgids: read in the reader's language
    english = text(scorer.get("/me/messages"))
    assert "counting period" in english and ENDED not in english
    assert "December 2018: the period has ended short of its quota" in english
    # The item page names the period too: no record changed, December ended.
    drift = item_detail(session, item.id, w.scorer).routine_drift
    assert drift is not None
    assert drift.points[0].causes == (DriftCause("2018-12", "monthly_info", "period_ended"),)

    # The next day, and a second run the same day: the same drift is not told again.
    _remind(engine, dt.date(2019, 1, 3))
    _remind(engine, dt.date(2019, 1, 3))
    assert len(_messages(session, item)) == 2


def test_drift_notices_respect_preferences(
    session: Session, engine: Engine, world: World, store: LocalStore
) -> None:
    w = world
    set_preferences(session, w.scorer, {"channels": {"routine_basis_changed": []}})
    session.commit()
    item = _scored_in_december(session, store, w)
    _remind(engine, dt.date(2019, 1, 2))
    assert [n.user_id for n in _messages(session, item)] == [w.admin.id]


def test_no_drift_and_a_drift_told_already_tell_nobody_at_the_reminders(
    app: Flask, session: Session, engine: Engine, world: World, login: Login, store: LocalStore
) -> None:
    w = world
    # Scored after December ended: the suggestion the score was given with still stands.
    item, ids = _scored_with_suggestion(session, store, w)
    _remind(engine, dt.date(2019, 1, 2))
    assert _messages(session, item) == []

    # A rejection moves it and is told at once; the reminders do not tell it again.
    reviewer = login("reviewer")
    rejected = reviewer.post(
        f"/review/routine/{ids['九月二']}/review",
        data={"status": "rejected", "reason": "与放管服无关"},
    )
    assert rejected.status_code == 303
    assert len(_messages(session, item)) == 2
    _remind(engine, dt.date(2019, 1, 3))
    assert len(_messages(session, item)) == 2


# --- two reminder runs at once ------------------------------------------------------------


@pytest.mark.parametrize("second_day", [dt.date(2019, 1, 2), dt.date(2019, 1, 3)])
def test_two_reminder_runs_at_once_tell_a_drift_once_and_both_finish(
    session: Session, engine: Engine, world: World, store: LocalStore, second_day: dt.date
) -> None:
    """The worker's 09:00 run and an admin's `flask notify remind` overlap: the second run
    reads before the first commits, so both would tell the drift (and the admin's digest)
    twice, or the second would fail on the drift's key and lose its own day's reminders.

    Deterministic: the first run stops just before its commit, everything written; the second
    starts then, and the first commits once the second writes or waits on a lock."""
    w = world
    set_preferences(session, w.admin, {"email": "admin@jiaohe.example", "digest": True})
    set_stage_deadline(  # the departments' drafts are overdue: each run's own day's reminders
        session, w.assessment, "submit", starts_on=dt.date(2018, 9, 1),
        due_on=dt.date(2018, 12, 28), working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    item = _scored_in_december(session, store, w)
    one, other = one_behind_the_other(
        engine,
        lambda factory: reminders.send_reminders(factory, dt.date(2019, 1, 2)),
        lambda: reminders.send_reminders(sessionmaker(engine), second_day),
    )  # the second run neither fails (a unique violation, a Conflict) nor writes twice

    told = _messages(session, item)
    assert sorted(n.user_id for n in told) == sorted([w.scorer.id, w.admin.id])
    digests = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.user_id == w.admin.id, OutboxMessage.notification_id.is_(None)
        )
    ).all()
    assert [ENDED in d.body for d in digests].count(True) == 1  # one digest tells it
    assert one.digests >= 1
    keys = [
        n.dedup_key
        for n in session.scalars(select(Notification).where(Notification.dedup_key.is_not(None)))
    ]
    assert len(keys) == len(set(keys))
    first_days = [k for k in keys if ":2019-01-02:" in k]
    second_days = [k for k in keys if f":{second_day.isoformat()}:" in k]
    assert first_days and one.notifications == len(first_days) + len(told)
    if second_day == dt.date(2019, 1, 2):
        assert other.notifications == 0 and other.digests == 0  # the same day: all written
    else:  # its own day's reminders are written, not lost to the first run's drift key
        assert len(second_days) == len(first_days) == other.notifications


def test_a_corrected_task_names_its_periods(
    session: Session, world: World, store: LocalStore
) -> None:
    """Item 10 (10.1: the share of tasks completed) scored with a meeting done in September;
    the office corrects it to missed (the suggestion moves: told, naming September), then to
    October (the suggestion stays: not told again). The page names both periods."""
    w = world
    meeting = submit_routine(
        session, store, w.assessment, w.reviewer, kind="meeting", period="2018-09",
        title="推进会", stream=None, filename=None, department_id=w.dep_a.id, max_size=1 << 20,
    )  # fmt: skip
    review_routine(session, meeting.id, w.reviewer, "accepted")
    item = w.item(session, w.dep_a, "10")
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    actions.score_item(session, item.id, w.scorer, item.version, scores={"10.1": "5.00"})
    assert item_detail(session, item.id, w.scorer).routine_drift is None

    correct_routine(session, meeting.id, w.reviewer, reason="实际缺席", outcome="missed")
    told = _messages(session, item)
    assert len(told) == 2 and all(
        "10.1 评分时建议 5.00，现建议 0.00，已评 5.00\n变化所在：2018年9月参会情况记录有变化"
        in n.body
        for n in told
    )
    correct_routine(session, meeting.id, w.reviewer, reason="月份登记错误", period="2018-10")
    session.commit()
    assert len(_messages(session, item)) == 2  # the suggestion did not move again
    drift = item_detail(session, item.id, w.scorer).routine_drift
    assert drift is not None and [d.code for d in drift.points] == ["10.1"]
    assert drift.points[0].causes == (
        DriftCause("2018-09", "meeting", "record_changed"),
        DriftCause("2018-10", "meeting", "record_changed"),
    )
