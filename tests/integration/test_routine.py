"""Routine records, quotas and suggestions in the engine; publication, appeals, final lock."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import add_evidence, at_once, mini_scheme
from workflow import actions
from workflow.assessments import (
    assessment_status,
    publish_assessment,
    reopen_assessment,
    set_appeal_window,
)
from workflow.audit import payload_of, verify_chain
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import BadRequest, Conflict, Forbidden, InvalidValue, NotFound
from workflow.models import (
    Assessment,
    AuditEvent,
    Department,
    Item,
    Notification,
    RoutineRecord,
    User,
    utcnow,
)
from workflow.reconcile import reconcile
from workflow.routine import (
    correct_routine,
    review_routine,
    routine_overview,
    submit_routine,
    withdraw_routine,
)
from workflow.setup import install_scheme
from workflow.users import create_user


@dataclass
class Cast:
    a: Assessment
    dep: Department
    other: Department
    member: User
    member_b: User
    office: User
    reviewer2: User
    verifier: User
    scorer: User
    scorer2: User
    admin: User


@pytest.fixture
def cast(session: Session) -> Cast:
    return make_cast(session)


def make_cast(session: Session) -> Cast:
    """A two-department assessment and its people, one of each role (two reviewers, scorers)."""
    a = install_scheme(session, mini_scheme(("1", "9")))
    d0, d1 = a.departments
    users = {
        name: create_user(session, name, roles, department=dep)
        for name, roles, dep in [
            ("member", ["department"], d0),
            ("member_b", ["department"], d1),
            ("office", ["reviewer"], None),
            ("reviewer2", ["reviewer"], None),
            ("verifier", ["verifier"], None),
            ("scorer", ["scorer"], None),
            ("scorer2", ["scorer"], None),
            ("admin", ["admin"], None),
        ]
    }
    session.commit()
    return Cast(a=a, dep=d0, other=d1, **users)


def shanghai(*args: int) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)


def report(session: Session, store: LocalStore, c: Cast, period: str, at: dt.datetime, **kw):  # type: ignore[no-untyped-def]
    kind = kw.pop("kind", "monthly_info")
    user = kw.pop("user", c.member)
    return submit_routine(
        session, store, c.a, user, kind=kind, period=period, title=kw.pop("title", "信息"),
        stream=io.BytesIO(demo_pdf(f"{period}{at}{kind}")), filename="信息.pdf",
        max_size=1 << 20, now=at, **kw,
    )  # fmt: skip


def test_report_at_shanghai_month_end_is_on_time(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    on_time = report(session, store, c, "2018-08", shanghai(2018, 8, 31, 23, 30))
    late = report(session, store, c, "2018-08", shanghai(2018, 9, 1, 0, 30), title="信息二")
    assert on_time.submitted_at == dt.datetime(2018, 8, 31, 15, 30, tzinfo=dt.UTC)
    assert not on_time.is_late and late.is_late
    assert on_time.due_at == dt.datetime(2018, 8, 31, 16, 0, tzinfo=dt.UTC)
    ev = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "routine_submitted"))
        .scalars()
        .first()
    )
    assert ev is not None and payload_of(ev)["sha256"] == [on_time.files[0].sha256]


def test_permissions_and_validation(session: Session, store: LocalStore, cast: Cast) -> None:
    c = cast
    at = shanghai(2018, 9, 10, 9, 0)
    with pytest.raises(Forbidden):  # meetings are recorded by the office
        report(session, store, c, "2018-09", at, kind="meeting")
    with pytest.raises(Forbidden):  # not for another department
        report(session, store, c, "2018-09", at, department_id=c.other.id)
    with pytest.raises(InvalidValue):
        report(session, store, c, "2018-9", at)
    with pytest.raises(InvalidValue):
        report(session, store, c, "2018-Q3", at)  # monthly kind counts by month
    with pytest.raises(InvalidValue):
        report(session, store, c, "2017-09", at)  # outside the counting window
    with pytest.raises(InvalidValue):
        report(session, store, c, "2018-09", at, title="  ")
    with pytest.raises(InvalidValue):
        report(session, store, c, "2018-09", at, kind="pigeon")
    meeting = report(
        session, store, c, "2018-09", at, kind="meeting", user=c.office, department_id=c.other.id
    )
    assert meeting.department_id == c.other.id
    with pytest.raises(InvalidValue):
        report(session, store, c, "2018-09", at, kind="meeting", user=c.office)
    rec = report(session, store, c, "2018-09", at)
    with pytest.raises(InvalidValue):
        review_routine(session, rec.id, c.office, "rejected", "")
    with pytest.raises(BadRequest):
        review_routine(session, rec.id, c.office, "maybe")
    with pytest.raises(Forbidden):
        review_routine(session, rec.id, c.member, "accepted")
    with pytest.raises(NotFound):
        review_routine(session, rec.id, c.member_b, "accepted")
    review_routine(session, rec.id, c.office, "rejected", "与放管服无关")
    assert rec.status == "rejected" and rec.reason == "与放管服无关"


def _year_of_reports(session: Session, store: LocalStore, c: Cast) -> None:
    """Aug–Dec monthly reports: November short by one, one late report in December."""
    for month in range(8, 13):
        for n in range(1 if month == 11 else 2):
            at = shanghai(2018, month, 20, 10, 0)
            if month == 12 and n == 1:
                at = shanghai(2019, 1, 2, 10, 0)
            rec = report(session, store, c, f"2018-{month:02d}", at, title=f"信息{month}-{n}")
            review_routine(session, rec.id, c.office, "accepted")
    for quarter, month in (("2018-Q3", 9), ("2018-Q4", 12)):
        rec = report(session, store, c, quarter, shanghai(2018, month, 25), kind="quarterly_case")
        review_routine(session, rec.id, c.office, "accepted")


def test_overview_counts_and_suggestions(session: Session, store: LocalStore, cast: Cast) -> None:
    c = cast
    _year_of_reports(session, store, c)
    ov = routine_overview(session, c.a, c.dep.id, c.member, utcnow())
    months = {line.period: line for line in ov.counts["monthly_info"]}
    assert not months["2018-11"].is_met and months["2018-12"].late == 1
    # 8 × 4/5; the late December report costs nothing: the 2018 rules define no deduction
    assert ov.suggestions["9.1"].points == Decimal("6.40")
    assert ov.suggestions["9.1"].breakdown["late"] == 1
    assert ov.suggestions["9.2"].points == Decimal("7.00")
    with pytest.raises(NotFound):
        routine_overview(session, c.a, c.dep.id, c.member_b, utcnow())


def _to_verified(session: Session, store: LocalStore, c: Cast, item: Item, member: User) -> None:
    add_evidence(session, store, item, member)
    actions.submit_item(session, item.id, member, item.version)
    actions.review_item(session, item.id, c.office, item.version)
    actions.verify_item(session, item.id, c.verifier, item.version)


def _items(session: Session, c: Cast) -> list[Item]:
    return list(
        session.execute(select(Item).where(Item.assessment_id == c.a.id).order_by(Item.id))
        .scalars()
        .all()
    )


def test_scorer_sees_suggestion_and_deviates_with_reason(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    _year_of_reports(session, store, c)
    item = next(i for i in _items(session, c) if i.department_id == c.dep.id and
                i.indicator.code == "9")  # fmt: skip
    _to_verified(session, store, c, item, c.member)
    with pytest.raises(InvalidValue) as err:
        actions.score_item(session, item.id, c.scorer, item.version,
                           scores={"9.1": 8, "9.2": 7})  # fmt: skip
    assert err.value.code == "deviation_reason_required"
    actions.score_item(
        session, item.id, c.scorer, item.version, scores={"9.1": 8, "9.2": 7},
        deductions={"9.1": "11月信息已纸质报送，予以认可"},
    )  # fmt: skip
    ev = session.execute(
        select(AuditEvent).where(AuditEvent.item_id == item.id, AuditEvent.action == "score")
    ).scalar_one()
    assert payload_of(ev)["suggested"] == {"9.1": "6.40", "9.2": "7.00"}


def _all_scored(session: Session, store: LocalStore, c: Cast) -> list[Item]:
    items = _items(session, c)
    for it in items:
        member = c.member if it.department_id == c.dep.id else c.member_b
        _to_verified(session, store, c, it, member)
        scores = {p.code: p.max_points for p in actions.scoring_points_of(session, it)}
        deductions = dict.fromkeys(scores, "平时考核记录不足")  # routine points deviate
        actions.score_item(session, it.id, c.scorer, it.version, scores=scores,
                           deductions=deductions)  # fmt: skip
    session.commit()
    return items


def test_the_publication_tells_the_departments_until_when_they_may_appeal(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    """It said 「如有异议，请在申诉期内提出」 and never when that was: a department reading the
    e-mail or the robot's message a day later could not tell whether it was still open."""
    c = cast
    _all_scored(session, store, c)
    now = dt.datetime(2018, 12, 28, 9, 30, tzinfo=dt.UTC)  # 17:30 in Beijing
    # A window set ahead of the 公示 does not make the first publication a second one.
    set_appeal_window(session, c.a, now, now + dt.timedelta(days=2), actor=c.admin)
    publish_assessment(session, c.a, 5, actor=c.admin, now=now)
    told = session.scalars(
        select(Notification).where(Notification.kind == "results_published")
    ).all()
    assert {n.user_id for n in told} >= {c.member.id, c.member_b.id}
    assert {n.title for n in told} == {"2018年度考核结果公示"}  # as every other title: 2018年度
    assert {n.body for n in told} == {
        f"{c.a.title}的考核结果已公示。如有异议，请在申诉期内提出申诉："
        "2018-12-28 17:30 至 2019-01-02 17:30（北京时间）。"
    }
    # Published again after a reopen for correction: the departments are told it is the
    # corrected results and a new window (it read exactly as the first 公示).
    reopen_assessment(session, c.a, "更正评分", actor=c.admin, now=now + dt.timedelta(days=6))
    again = now + dt.timedelta(days=7)
    publish_assessment(session, c.a, 3, actor=c.admin, now=again)
    retold = session.scalars(
        select(Notification).where(
            Notification.kind == "results_published", Notification.created_at >= again
        )
    ).all()
    assert {n.user_id for n in retold} >= {c.member.id, c.member_b.id}
    assert {n.title for n in retold} == {"2018年度考核结果重新公示"}
    assert {n.body for n in retold} == {
        f"{c.a.title}的考核结果已于更正后重新公示。如有异议，请在新的申诉期内提出申诉："
        "2019-01-04 17:30 至 2019-01-07 17:30（北京时间）。"
    }


def test_a_publication_counted_in_working_days_skips_the_national_day_holidays(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    """Seven calendar days from Sunday 30 September 2018 (a 调休 working day) were 国庆 from
    first to last: no department's office was open to appeal. Counted in working days, the
    window runs to the fifth working day after the holidays, at the hour it opened."""
    c = cast
    _all_scored(session, store, c)
    opened = shanghai(2018, 9, 30, 10, 0)
    publish_assessment(session, c.a, 5, actor=c.admin, now=opened, working_days=True)
    assert c.a.appeal_closes_at == shanghai(2018, 10, 12, 10, 0)  # 8–12 October
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "assessment_published")
    ).one()
    assert (payload_of(event)["days"], payload_of(event)["counted_in_working_days"]) == (5, True)
    assert reconcile(session).differences == []
    # Calendar days, as before: the same 5 end inside the holidays.
    reopen_assessment(session, c.a, "更正", actor=c.admin, now=shanghai(2018, 10, 20, 9, 0))
    publish_assessment(session, c.a, 5, actor=c.admin, now=opened + dt.timedelta(days=21))
    assert c.a.appeal_closes_at == opened + dt.timedelta(days=26)
    with pytest.raises(BadRequest) as wrong:
        publish_assessment(session, c.a, 5, actor=c.admin, working_days="yes")
    assert wrong.value.code == "invalid_type"


def test_a_working_day_publication_in_a_year_the_calendar_does_not_know_is_refused(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    _all_scored(session, store, c)
    with pytest.raises(InvalidValue) as unknown:
        publish_assessment(
            session, c.a, 5, actor=c.admin, now=shanghai(2099, 12, 28, 9, 0), working_days=True
        )
    assert unknown.value.code == "calendar_unknown_year"
    assert "2099" in unknown.value.message or "2100" in unknown.value.message
    assert c.a.published_at is None


def test_publication_appeals_and_final_lock(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    first = _items(session, c)[0]
    with pytest.raises(Conflict) as err:  # not every item scored
        publish_assessment(session, c.a, 5, actor=c.admin)
    assert err.value.code == "not_all_scored"
    items = _all_scored(session, store, c)
    item = items[0]
    assert item.id == first.id
    with pytest.raises(Conflict):  # before publication: no appeal
        actions.appeal_item(session, item.id, c.member, item.version, "不服")
    with pytest.raises(Forbidden):
        publish_assessment(session, c.a, 5, actor=c.scorer)
    with pytest.raises(InvalidValue):
        publish_assessment(session, c.a, 0, actor=c.admin)
    publish_assessment(session, c.a, 5, actor=c.admin)
    assert assessment_status(c.a) == "published"
    with pytest.raises(Conflict):
        publish_assessment(session, c.a, 5, actor=c.admin)
    # during the window: once, decided by another scorer
    actions.appeal_item(session, item.id, c.member, item.version, "已按时报送")
    with pytest.raises(Forbidden):
        actions.reject_appeal_item(session, item.id, c.scorer, item.version, "不予支持")
    actions.reject_appeal_item(session, item.id, c.scorer2, item.version, "材料不支持")
    with pytest.raises(Conflict) as err:
        actions.appeal_item(session, item.id, c.member, item.version, "再次申诉")
    assert err.value.code == "appeal_used"
    # after the window: final; nothing changes without a reopen
    later = utcnow() + dt.timedelta(days=6)
    assert assessment_status(c.a, later) == "final"
    c.a.appeal_closes_at = utcnow() - dt.timedelta(seconds=1)  # let the window pass now
    session.flush()
    other = items[2]  # the other department's indicator 1
    with pytest.raises(Conflict) as err:
        actions.appeal_item(session, other.id, c.member_b, other.version, "过期申诉")
    assert err.value.code in ("assessment_final", "appeal_window_closed")
    with pytest.raises(Conflict):  # a scored item is not rescored without a reopen
        actions.rescore_item(session, other.id, c.scorer2, other.version,
                             scores={"1.1": 4, "1.2": 5}, deductions={"1.1": "更正"})  # fmt: skip
    with pytest.raises(Conflict):
        report(session, store, c, "2018-12", utcnow())
    with pytest.raises(InvalidValue):
        reopen_assessment(session, c.a, " ", actor=c.admin)
    with pytest.raises(Forbidden):
        reopen_assessment(session, c.a, "更正", actor=c.scorer)
    reopen_assessment(session, c.a, "发现评分录入错误", actor=c.admin)
    assert assessment_status(c.a) == "reopened"
    with pytest.raises(Forbidden):  # still not by the original scorer
        actions.rescore_item(session, other.id, c.scorer, other.version,
                             scores={"1.1": 4, "1.2": 5}, deductions={"1.1": "更正"})  # fmt: skip
    actions.rescore_item(session, other.id, c.scorer2, other.version,
                         scores={"1.1": 4, "1.2": 5}, deductions={"1.1": "更正"},
                         comment="更正录入错误")  # fmt: skip
    assert other.total == Decimal("9.00")
    publish_assessment(session, c.a, 3, actor=c.admin)
    assert assessment_status(c.a) == "published"
    session.commit()
    actions_seen = [
        e.action
        for e in session.execute(
            select(AuditEvent).where(AuditEvent.target_type == "assessment")
        ).scalars()
    ]
    assert actions_seen.count("assessment_published") == 2
    assert "assessment_reopened" in actions_seen
    assert verify_chain(session).ok


def test_reopen_only_when_final(session: Session, cast: Cast) -> None:
    with pytest.raises(Conflict):
        reopen_assessment(session, cast.a, "理由", actor=cast.admin)


def test_the_same_record_twice_is_refused_and_two_at_once_make_one(
    engine: Engine, session: Session, store: LocalStore, cast: Cast
) -> None:
    c = cast
    at = shanghai(2018, 9, 10, 9, 0)
    first = report(session, store, c, "2018-09", at, title="九月信息")
    session.commit()
    with pytest.raises(Conflict) as twin:
        report(session, store, c, "2018-09", at, title="九月信息")
    assert twin.value.code == "routine_duplicate" and f"#{first.id}" in twin.value.message
    session.rollback()
    for look_alike in ("九月信息\u200b", "九月信息\u3000", " 九月信息 "):  # the same to a reader
        with pytest.raises(Conflict):
            report(session, store, c, "2018-09", at, title=look_alike)
        session.rollback()
    fullwidth = report(session, store, c, "2018-09", at, title="１２月信息")
    with pytest.raises(Conflict):
        report(session, store, c, "2018-09", at, title="12月信息")
    session.rollback()
    assert fullwidth.title == "１２月信息"  # stored as typed
    report(session, store, c, "2018-08", at, title="九月信息")  # another month is another record
    # A rejected (or withdrawn) record no longer counts: the department may send it again.
    review_routine(session, first.id, c.office, status="rejected", reason="材料不全")
    report(session, store, c, "2018-09", at, title="九月信息")
    session.commit()

    # The office's registration posted twice at once (two workers): one record, one refusal.
    factory = make_sessionmaker(engine)
    office_id, assessment_id, dep_id = c.office.id, c.a.id, c.other.id
    outcomes: list[str] = []

    def register() -> None:
        with factory() as s:
            office, a = s.get_one(User, office_id), s.get_one(Assessment, assessment_id)
            try:
                submit_routine(
                    s, store, a, office, kind="meeting", period="2018-09", title="推进会",
                    stream=None, filename=None, department_id=dep_id, max_size=1 << 20, now=at,
                )  # fmt: skip
                s.commit()
                outcomes.append("saved")
            except Conflict as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(register, register, register)
    assert sorted(outcomes) == ["routine_duplicate", "routine_duplicate", "saved"]
    session.expire_all()
    meetings = select(func.count()).where(RoutineRecord.title == "推进会")
    assert session.scalar(meetings) == 1

    # A correction that would make the pair is refused too.
    other = submit_routine(
        session, store, c.a, c.office, kind="meeting", period="2018-09", title="推进会（二）",
        stream=None, filename=None, department_id=dep_id, max_size=1 << 20, now=at,
    )  # fmt: skip
    with pytest.raises(Conflict) as renamed:
        correct_routine(session, other.id, c.office, reason="标题写错", title="推进会")
    assert renamed.value.code == "routine_duplicate"


def test_a_period_that_has_not_begun_is_refused(
    session: Session, store: LocalStore, cast: Cast
) -> None:
    """A December report filed in August would count, on time, towards a quota not yet due;
    neither the department nor the office (registering or correcting) may date one ahead."""
    c = cast
    at = shanghai(2018, 9, 10, 9, 0)
    with pytest.raises(InvalidValue) as ahead:
        report(session, store, c, "2018-10", at)
    assert ahead.value.code == "period_not_started" and "2018-10" in ahead.value.message
    session.rollback()
    # The first instant of October in Shanghai is the first moment it may be filed.
    assert report(session, store, c, "2018-10", shanghai(2018, 10, 1, 0, 0)).period == "2018-10"
    meeting = submit_routine(
        session, store, c.a, c.office, kind="meeting", period="2018-09", title="推进会",
        stream=None, filename=None, department_id=c.dep.id, max_size=1 << 20, now=at,
    )  # fmt: skip
    session.commit()
    with pytest.raises(InvalidValue) as moved:
        correct_routine(
            session, meeting.id, c.office, reason="月份写错", period="2018-11",
            now=shanghai(2018, 10, 8, 9, 0),
        )  # fmt: skip
    assert moved.value.code == "period_not_started"
    session.rollback()
    assert session.get_one(RoutineRecord, meeting.id).period == "2018-09"


def test_two_reviews_or_a_review_and_a_withdrawal_at_once_make_one_decision(
    engine: Engine, session: Session, store: LocalStore, cast: Cast
) -> None:
    """Three reviewers answering one record at once all got 200, each event claiming to start
    from 待审核, and the record kept the last write; a review racing a withdrawal accepted a
    withdrawn record. Now the row is locked: one decision, the others a 409 from the page's
    status, and the trail says what each changed."""
    c = cast
    at = shanghai(2018, 9, 10, 9, 0)
    record = report(session, store, c, "2018-08", at, title="八月信息")
    session.commit()
    factory = make_sessionmaker(engine)
    rid, reviewer_ids = record.id, (c.office.id, c.reviewer2.id, c.office.id)
    outcomes: list[str] = []

    def review(user_id: int, status: str, reason: str | None) -> Callable[[], None]:
        def run() -> None:
            with factory() as s:
                try:
                    review_routine(
                        s, rid, s.get_one(User, user_id), status, reason,
                        expected_status="submitted", now=at,
                    )  # fmt: skip
                    s.commit()
                    outcomes.append(status)
                except Conflict as exc:
                    s.rollback()
                    outcomes.append(exc.code)

        return run

    at_once(
        review(reviewer_ids[0], "accepted", None),
        review(reviewer_ids[1], "rejected", "重复"),
        review(reviewer_ids[2], "accepted", None),
    )
    decided = [o for o in outcomes if o in ("accepted", "rejected")]
    assert len(decided) == 1 and sorted(o for o in outcomes if o not in decided) == [
        "routine_changed", "routine_changed"
    ]  # fmt: skip
    session.expire_all()
    assert session.get_one(RoutineRecord, rid).status == decided[0]
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "routine_reviewed",
                                 AuditEvent.target_id == str(rid))
    ).all()  # fmt: skip
    assert [(e.from_state, e.to_state) for e in events] == [("submitted", decided[0])]

    # An office registration withdrawn while a reviewer accepts it: one of the two.
    meeting = submit_routine(
        session, store, c.a, c.office, kind="meeting", period="2018-09", title="推进会",
        stream=None, filename=None, department_id=c.dep.id, max_size=1 << 20, now=at,
    )  # fmt: skip
    session.commit()
    mid, results = meeting.id, []

    def withdraw() -> None:
        with factory() as s:
            try:
                withdraw_routine(s, mid, s.get_one(User, c.office.id), reason="登记有误", now=at)
                s.commit()
                results.append("withdrawn")
            except Conflict as exc:
                s.rollback()
                results.append(exc.code)

    def accept() -> None:
        with factory() as s:
            try:
                review_routine(s, mid, s.get_one(User, c.reviewer2.id), "accepted", now=at)
                s.commit()
                results.append("accepted")
            except Conflict as exc:
                s.rollback()
                results.append(exc.code)

    at_once(withdraw, accept)
    session.expire_all()
    final = session.get_one(RoutineRecord, mid).status
    # Withdrawn last (after the acceptance, or the acceptance refused): never accepted after.
    assert final == "withdrawn" and sorted(results) in (
        ["accepted", "withdrawn"], ["routine_withdrawn", "withdrawn"]
    )  # fmt: skip
    trail = session.scalars(
        select(AuditEvent).where(AuditEvent.target_id == str(mid),
                                 AuditEvent.target_type == "routine")
        .order_by(AuditEvent.seq)
    ).all()  # fmt: skip
    states = [(e.from_state, e.to_state) for e in trail if e.from_state]
    for (_, to), (frm, _) in itertools.pairwise(states):
        assert frm == to, states  # each event starts where the one before ended
    assert states[-1][1] == "withdrawn"
