"""The stage calendar in the engine: deadlines in working days, overrides, late submissions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import _RAW_2018, World, add_evidence, make_world, mini_scheme
from workflow import actions
from workflow.audit import payload_of, verify_chain
from workflow.calendar import (
    remove_calendar_override,
    set_calendar_override,
    set_stage_deadline,
    stage_calendar,
    submission_lateness,
)
from workflow.demo import demo_pdf
from workflow.errors import Conflict, Forbidden, InvalidValue, SchemeError
from workflow.models import AuditEvent, Item, StageDeadline
from workflow.routine import submit_routine
from workflow.scheme import Scheme, parse_scheme
from workflow.workdays import package_years

D = dt.date


def shanghai(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, mini_scheme(("1", "3")))


def stages(session: Session, w: World, now: dt.datetime) -> dict[str, dict[str, object]]:
    return {s.name: s.as_json() for s in stage_calendar(session, w.assessment, now)}


def test_deadlines_in_working_days_across_national_day(session: Session, world: World) -> None:
    w = world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(2018, 9, 1), due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    # 3 working days after Friday 28 September: Saturday 29, Sunday 30 (调休), then 8 October.
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=None, working_days=3,
        actor=w.admin,
    )  # fmt: skip
    session.commit()
    cal = stages(session, w, shanghai(2018, 9, 29, 10, 0))
    assert cal["submit"]["due_on"] == "2018-09-28"
    assert cal["submit"]["overdue"] is True and cal["submit"]["working_days_left"] == -1
    assert cal["submit"]["pending"] == 4  # 2 departments × 2 indicators, all drafts
    assert cal["review"]["starts_on"] == "2018-09-29" and cal["review"]["due_on"] == "2018-10-08"
    assert cal["review"]["working_days_left"] == 3 and cal["review"]["overdue"] is False
    assert cal["verify"]["due_on"] is None and cal["verify"]["working_days_left"] is None
    assert [s["name"] for s in cal.values()] == [
        "submit", "review", "verify", "score", "publication", "appeal",
    ]  # fmt: skip
    assert cal["publication"]["is_running"] is False and cal["publication"]["starts_on"] is None
    events = session.execute(
        select(AuditEvent).where(AuditEvent.action == "stage_deadline_set").order_by(AuditEvent.seq)
    ).scalars().all()  # fmt: skip
    assert [payload_of(e)["stage"] for e in events] == ["submit", "review"]
    assert payload_of(events[1])["resolved_due_on"] == "2018-10-08"
    assert verify_chain(session).ok


def test_bad_calendars_are_refused_and_change_nothing(session: Session, world: World) -> None:
    w = world
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2018, 10, 8),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    with pytest.raises(InvalidValue, match="不能早于初审截止"):
        set_stage_deadline(
            session, w.assessment, "verify", starts_on=None, due_on=D(2018, 10, 1),
            working_days=None, actor=w.admin,
        )  # fmt: skip
    session.rollback()
    with pytest.raises(InvalidValue, match="只能填写一项"):
        set_stage_deadline(
            session, w.assessment, "score", starts_on=None, due_on=D(2018, 11, 1),
            working_days=5, actor=w.admin,
        )  # fmt: skip
    session.rollback()
    with pytest.raises(Forbidden):
        set_stage_deadline(
            session, w.assessment, "score", starts_on=None, due_on=D(2018, 11, 1),
            working_days=None, actor=w.reviewer,
        )  # fmt: skip
    session.rollback()
    with pytest.raises(InvalidValue, match="须先设置上一阶段"):  # 初审截止 has no date yet
        set_stage_deadline(
            session, w.assessment, "verify", starts_on=None, due_on=None,
            working_days=None, actor=w.admin,
        )  # fmt: skip
        set_stage_deadline(
            session, w.assessment, "review", starts_on=None, due_on=None,
            working_days=None, actor=w.admin,
        )  # fmt: skip
        set_stage_deadline(
            session, w.assessment, "verify", starts_on=None, due_on=None,
            working_days=3, actor=w.admin,
        )  # fmt: skip
    session.rollback()
    rows = session.execute(select(StageDeadline.stage)).scalars().all()
    assert rows == ["review"]


def test_unknown_year_is_refused_until_the_office_enters_it(session: Session, world: World) -> None:
    w = world
    year = package_years()[1] + 3
    with pytest.raises(InvalidValue, match=f"{year} 年的法定节假日") as info:
        set_stage_deadline(
            session, w.assessment, "submit", starts_on=D(year, 3, 1), due_on=None,
            working_days=5, actor=w.admin,
        )  # fmt: skip
    assert info.value.code == "calendar_unknown_year"
    session.rollback()
    assert session.execute(select(StageDeadline)).first() is None
    set_calendar_override(session, D(year, 1, 1), False, "元旦", actor=w.admin)
    row = set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(year, 3, 1), due_on=None,
        working_days=5, actor=w.admin,
    )  # fmt: skip
    session.commit()
    assert row.working_days == 5
    expected = D(year, 3, 1)
    count = 0
    while count < 5:
        expected += dt.timedelta(days=1)
        count += expected.weekday() < 5
    submit = stages(session, w, shanghai(2018, 9, 1, 9, 0))["submit"]
    assert submit["due_on"] == expected.isoformat()
    # Counting from 2018 crosses years nobody entered: no number, the reason instead.
    assert submit["working_days_left"] is None and f"{year - 2} 年" in str(submit["problem"])


def test_an_override_moves_a_working_day_deadline_and_is_audited(
    session: Session, world: World
) -> None:
    w = world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=None, working_days=3,
        actor=w.admin,
    )  # fmt: skip
    override = set_calendar_override(
        session, D(2018, 10, 8), False, "市政府通知：10月8日补休", actor=w.admin
    )
    session.commit()
    now = shanghai(2018, 9, 29, 10, 0)
    assert stages(session, w, now)["review"]["due_on"] == "2018-10-09"
    with pytest.raises(InvalidValue):
        set_calendar_override(session, D(2018, 10, 9), True, "  ", actor=w.admin)
    session.rollback()
    with pytest.raises(Forbidden):
        set_calendar_override(session, D(2018, 10, 9), True, "x", actor=w.reviewer)
    session.rollback()
    remove_calendar_override(session, override.id, actor=w.admin)
    session.commit()
    assert stages(session, w, now)["review"]["due_on"] == "2018-10-08"
    actions_seen = session.execute(
        select(AuditEvent.action)
        .where(AuditEvent.target_type == "calendar")
        .order_by(AuditEvent.seq)
    ).scalars().all()  # fmt: skip
    assert actions_seen == ["calendar_override_set", "calendar_override_removed"]


def _submit(session: Session, store: LocalStore, w: World, item: Item, at: dt.datetime) -> Item:
    add_evidence(session, store, item, w.member_a)
    return actions.transition_item(
        session, item.id, w.member_a, actions.TransitionRequest("submit", item.version), now=at
    )


def test_late_submission_is_marked_with_the_working_days_missed(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    on_time = _submit(
        session, store, w, w.item(session, w.dep_a, "1"), shanghai(2018, 9, 28, 23, 59)
    )
    late = _submit(session, store, w, w.item(session, w.dep_a, "3"), shanghai(2018, 10, 9, 9, 0))
    session.commit()
    assert not on_time.is_submitted_late and on_time.submit_due_on == D(2018, 9, 28)
    assert late.is_submitted_late and late.state == "submitted"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.item_id == late.id, AuditEvent.action == "submit")
    ).scalar_one()
    # Saturday 29 and Sunday 30 September are make-up working days, then 8 and 9 October.
    assert payload_of(event)["working_days_late"] == 4
    assert payload_of(event)["is_late"] is True
    # A resubmission after a return keeps the first submission's verdict.
    actions.transition_item(
        session, late.id, w.reviewer,
        actions.TransitionRequest("return", late.version, comment="请补充"),
    )  # fmt: skip
    again = actions.transition_item(
        session, late.id, w.member_a,
        actions.TransitionRequest("submit", late.version, change_note="已补充"),
        now=shanghai(2018, 9, 1, 9, 0),
    )  # fmt: skip
    assert again.is_submitted_late


def test_a_scheme_may_refuse_late_submissions(session: Session, store: LocalStore) -> None:
    scheme = dataclasses.replace(mini_scheme(("1", "3")), block_late_submissions=True)
    w = make_world(session, scheme)
    assert w.assessment.blocks_late_submissions
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    item = w.item(session, w.dep_a, "1")
    with pytest.raises(Conflict, match="不接受逾期提交") as info:
        _submit(session, store, w, item, shanghai(2018, 10, 8, 9, 0))
    assert info.value.code == "submission_deadline_passed"
    session.rollback()
    item = w.item(session, w.dep_a, "1")
    assert item.state == "draft" and not item.is_submitted_late
    assert _submit(session, store, w, item, shanghai(2018, 9, 28, 9, 0)).state == "submitted"


def test_no_deadline_means_no_verdict(session: Session, world: World) -> None:
    assert submission_lateness(session, world.assessment, shanghai(2018, 9, 1, 9, 0)) is None


def test_routine_due_on_the_nth_working_day_after_the_period(
    session: Session, store: LocalStore
) -> None:
    base = mini_scheme(("1", "9"))
    routine = {**base.routine, "quotas": {**base.routine["quotas"]}}
    routine["quotas"]["monthly_info"] = {"period": "month", "minimum": 2, "due_working_days": 5}
    w = make_world(session, dataclasses.replace(base, routine=routine))

    def report(at: dt.datetime):  # type: ignore[no-untyped-def]
        return submit_routine(
            session, store, w.assessment, w.member_a, kind="monthly_info", period="2018-09",
            title=f"信息 {at:%d日%H时}", stream=io.BytesIO(demo_pdf(str(at))),
            filename="信息.pdf", max_size=1 << 20, now=at,
        )  # fmt: skip

    # The 5th working day after September 2018 is Friday 12 October (1–7 October off).
    on_time = report(shanghai(2018, 10, 12, 23, 59))
    late = report(shanghai(2018, 10, 13, 0, 1))
    assert on_time.due_at == shanghai(2018, 10, 13, 0, 0)
    assert not on_time.is_late and late.is_late
    # Quarterly cases keep the 2018 rule: due when the quarter ends.
    case = submit_routine(
        session, store, w.assessment, w.member_a, kind="quarterly_case", period="2018-Q3",
        title="案例", stream=io.BytesIO(demo_pdf("q3")), filename="案例.pdf",
        max_size=1 << 20, now=shanghai(2018, 10, 2, 9, 0),
    )  # fmt: skip
    assert case.is_late and case.due_at == shanghai(2018, 10, 1, 0, 0)


def test_scheme_loader_checks_the_new_fields(scheme_2018: Scheme) -> None:
    assert scheme_2018.block_late_submissions is False
    assert "due_working_days" not in str(scheme_2018.routine)  # 2018 keeps month-end due dates
    for patch in (
        {"deadlines": {"block_late_submissions": "yes"}},
        {"routine": {**_RAW_2018["routine"], "due_working_days": 0}},
        {
            "routine": {
                **_RAW_2018["routine"],
                "quotas": {"monthly_info": {"due_working_days": "5"}},
            }
        },
    ):
        with pytest.raises(SchemeError):
            parse_scheme({**_RAW_2018, **patch})
