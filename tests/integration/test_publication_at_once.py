"""A publication (公示) at once with a change that publication forbids: a correction after
reopen (rescore of a scored item) and a preliminary notice (初步结果). Each must either come
before the publication or be refused after it, never be applied after it on what it read
before.

Deterministic (tests/concurrency.py): one side stops at its commit, the other runs until it
writes or waits on a lock, then the first commits. Both backends; the races were real on
PostgreSQL only (SQLite takes its write lock before anything is read).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from storage.local import LocalStore
from tests.concurrency import one_behind_the_other
from tests.integration import test_routine
from tests.integration.test_routine import Cast, _all_scored, shanghai
from workflow import actions
from workflow.assessments import publish_assessment, reopen_assessment
from workflow.audit import verify_chain
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import DomainError
from workflow.models import (
    Assessment,
    AuditEvent,
    Department,
    Item,
    Notice,
    RoutineRecord,
    User,
    utcnow,
)
from workflow.notices import issue_notice, set_result_settings
from workflow.routine import submit_routine

cast = test_routine.cast

FIX = {
    "scores": {"1.1": 4, "1.2": 5},
    "deductions": {"1.1": "更正录入错误"},
    "comment": "更正录入错误",
}


def _outcome(fn: Callable[[Session], Any], factory: sessionmaker[Session]) -> str:
    """Run `fn` in a transaction of its own: "done" when it commits, else the refusal's code."""
    with factory() as s:
        try:
            fn(s)
            s.commit()
            return "done"
        except DomainError as exc:
            s.rollback()
            return exc.code


def _publish(admin_id: int, aid: int) -> Callable[[Session], Any]:
    def run(s: Session) -> None:
        publish_assessment(s, s.get_one(Assessment, aid), 5, actor=s.get_one(User, admin_id))

    return run


def _reopened(session: Session, store: LocalStore, c: Cast) -> Item:
    """Every item scored, published, the window closed, reopened: a scored item to correct."""
    items = _all_scored(session, store, c)
    publish_assessment(session, c.a, 5, actor=c.admin)
    c.a.appeal_closes_at = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    reopen_assessment(session, c.a, "发现评分录入错误", actor=c.admin)
    session.commit()
    return items[0]


def _actions(session: Session, item_id: int) -> list[str]:
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where((AuditEvent.item_id == item_id) | (AuditEvent.action == "assessment_published"))
            .order_by(AuditEvent.seq)
        )
    )


def test_a_correction_in_flight_when_results_are_published_again_is_refused(
    engine: Engine, session: Session, store: LocalStore, cast: Cast
) -> None:
    """A scorer corrects a scored item of a reopened year while an admin publishes it again:
    the correction read "reopened" before the publication committed. It must be refused
    (409 `invalid_state`), not change a score during the 公示 behind the publication."""
    c = cast
    item = _reopened(session, store, c)
    item_id, version, scorer2 = item.id, item.version, c.scorer2.id
    factory = make_sessionmaker(engine)

    def correct() -> str:
        def run(s: Session) -> None:
            actions.rescore_item(s, item_id, s.get_one(User, scorer2), version, **FIX)

        return _outcome(run, factory)

    published, corrected = one_behind_the_other(
        engine, lambda held: _outcome(_publish(c.admin.id, c.a.id), held), correct
    )
    assert (published, corrected) == ("done", "invalid_state")
    session.expire_all()
    after = session.get_one(Item, item_id)
    assert after.version == version and _actions(session, item_id)[-1] == "assessment_published"
    assert verify_chain(session).ok


def test_results_published_while_a_correction_is_in_flight_follow_it(
    engine: Engine, session: Session, store: LocalStore, cast: Cast
) -> None:
    """The other order: the correction holds the item when the admin publishes; the
    publication waits for it, and the correction comes before it in the trail."""
    c = cast
    item = _reopened(session, store, c)
    item_id, version, scorer2 = item.id, item.version, c.scorer2.id
    factory = make_sessionmaker(engine)

    def correct(held: sessionmaker[Session]) -> str:
        def run(s: Session) -> None:
            actions.rescore_item(s, item_id, s.get_one(User, scorer2), version, **FIX)

        return _outcome(run, held)

    corrected, published = one_behind_the_other(
        engine, correct, lambda: _outcome(_publish(c.admin.id, c.a.id), factory)
    )
    assert (corrected, published) == ("done", "done")
    session.expire_all()
    assert _actions(session, item_id)[-2:] == ["rescore", "assessment_published"]
    assert verify_chain(session).ok


RESULT_NO = "蛟市职转办〔2019〕1号"


def test_a_preliminary_notice_issued_while_results_are_published_is_refused(
    engine: Engine, session: Session, store: LocalStore, cast: Cast
) -> None:
    """A scorer issues a department's 初步结果 notice (no rank) while an admin publishes: the
    issue queues on the assessment's lock, then must see the publication (409
    `preliminary_after_publication`), not issue a rankless notice that would stand in for
    the ranked one. The request loaded the assessment before it queued (as a view does)."""
    c = cast
    _all_scored(session, store, c)
    set_result_settings(session, c.a, actor=c.admin, document_no=RESULT_NO)
    session.commit()
    aid, did, scorer = c.a.id, c.dep.id, c.scorer.id
    factory = make_sessionmaker(engine)

    def issue() -> str:
        def run(s: Session) -> None:
            assessment = s.get_one(Assessment, aid)  # loaded before the lock, as a view does
            department = s.get_one(Department, did)
            issue_notice(s, store, assessment, department, s.get_one(User, scorer),
                         preliminary=True)  # fmt: skip

        return _outcome(run, factory)

    published, issued = one_behind_the_other(
        engine, lambda held: _outcome(_publish(c.admin.id, aid), held), issue
    )
    assert (published, issued) == ("done", "preliminary_after_publication")
    session.expire_all()
    assert session.scalars(select(Notice).where(Notice.assessment_id == aid)).all() == []


def test_a_department_report_sent_while_results_are_published_is_refused(
    engine: Engine, session: Session, store: LocalStore, cast: Cast
) -> None:
    """A department sends a monthly report while an admin publishes: its year's reports close
    with the 公示 (409 `routine_closed`), also for the report whose file was streaming then."""
    c = cast
    _all_scored(session, store, c)
    aid, member = c.a.id, c.member.id
    factory = make_sessionmaker(engine)

    def send(s: Session) -> None:
        submit_routine(
            s, store, s.get_one(Assessment, aid), s.get_one(User, member), kind="monthly_info",
            period="2018-12", title="十二月信息", stream=io.BytesIO(demo_pdf("十二月信息")),
            filename="信息.pdf", max_size=1 << 20, now=shanghai(2018, 12, 10, 9, 0),
        )  # fmt: skip

    published, sent = one_behind_the_other(
        engine,
        lambda held: _outcome(_publish(c.admin.id, aid), held),
        lambda: _outcome(send, factory),
    )
    assert (published, sent) == ("done", "routine_closed")
    assert (
        session.scalars(select(RoutineRecord).where(RoutineRecord.period == "2018-12")).all() == []
    )
