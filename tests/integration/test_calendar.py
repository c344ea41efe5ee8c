"""The stage calendar in the engine: deadlines in working days, overrides, late submissions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import (
    _RAW_2018,
    World,
    add_evidence,
    at_once,
    make_world,
    mini_scheme,
    moved_to_year,
)
from workflow import actions
from workflow.audit import payload_of, verify_chain
from workflow.calendar import (
    deadline_notes,
    parse_working_days,
    remove_calendar_override,
    set_calendar_override,
    set_stage_deadline,
    stage_calendar,
    submission_lateness,
)
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    InvalidValue,
    SchemeError,
)
from workflow.models import Assessment, AuditEvent, CalendarOverride, Item, StageDeadline, User
from workflow.routine import review_routine, routine_overview, submit_routine
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


def test_a_start_or_deadline_before_the_assessments_year_is_refused(
    session: Session, world: World
) -> None:
    """A clerk typing last year's date (2017-10-31 for 2018) saved it: every item of the stage
    was overdue the moment it was saved. Later years stay allowed (results run into next year)."""
    w = world
    cases = [
        ({"starts_on": None, "due_on": D(2017, 10, 31)}, "自评提交截止 2017-10-31 早于 2018 年度"),
        ({"starts_on": D(2017, 12, 1), "due_on": D(2018, 3, 1)}, "开始日期 2017-12-01 早于"),
    ]
    for days, message in cases:
        with pytest.raises(InvalidValue, match=message) as refused:
            set_stage_deadline(
                session, w.assessment, "submit", working_days=None, actor=w.admin, **days
            )
        assert refused.value.code == "deadline_before_year"
        session.rollback()
    assert session.scalars(select(StageDeadline)).all() == []
    assert session.scalar(
        select(AuditEvent).where(AuditEvent.action == "stage_deadline_set")
    ) is None  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(2018, 1, 1), due_on=D(2019, 1, 15),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    assert session.scalars(select(StageDeadline.due_on)).all() == [D(2019, 1, 15)]


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


def test_a_month_not_yet_due_is_not_held_against_the_department(
    session: Session, store: LocalStore
) -> None:
    """Reports due by the 5th working day after the month: scored on 10 October, a department
    with one September report is still on time for the second. The suggestion (and the
    scorer's duty to explain a deviation from it) does not count September as missed until
    it is due: 8.00, not 8 × 1/2 = 4.00."""
    base = mini_scheme(("1", "9"))
    routine = {**base.routine, "quotas": {**base.routine["quotas"]}}
    routine["quotas"]["monthly_info"] = {"period": "month", "minimum": 2, "due_working_days": 5}
    w = make_world(session, dataclasses.replace(base, routine=routine))
    for period, at, title in (
        ("2018-08", shanghai(2018, 8, 20, 9, 0), "八月一"),
        ("2018-08", shanghai(2018, 8, 21, 9, 0), "八月二"),
        ("2018-09", shanghai(2018, 9, 20, 9, 0), "九月一"),
    ):
        record = submit_routine(
            session, store, w.assessment, w.member_a, kind="monthly_info", period=period,
            title=title, stream=io.BytesIO(demo_pdf(title)), filename="信息.pdf",
            max_size=1 << 20, now=at,
        )  # fmt: skip
        review_routine(session, record.id, w.reviewer, "accepted", now=at)
    session.commit()
    october_10 = shanghai(2018, 10, 10, 10, 0)
    overview = routine_overview(session, w.assessment, w.dep_a.id, w.admin, october_10)
    assert overview.suggestions["9.1"].points == Decimal("8.00")
    assert overview.suggestions["9.1"].breakdown["running"] == ["2018-09", "2018-10"]
    after_due = routine_overview(session, w.assessment, w.dep_a.id, w.admin,
                                 shanghai(2018, 10, 13, 9, 0))  # fmt: skip
    assert after_due.suggestions["9.1"].points == Decimal("4.00")
    # The engine's score guard reads the same suggestion: full marks need no reason on 10 October.
    item = w.item(session, w.dep_a, "9")
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    request = actions.TransitionRequest(
        "score", item.version, scores={"9.1": 8, "9.2": 0},
        deductions={"9.2": "第三季度未报送案例"},
    )  # fmt: skip
    actions.transition_item(session, item.id, w.scorer, request, now=october_10)
    event = session.execute(
        select(AuditEvent).where(AuditEvent.item_id == item.id, AuditEvent.action == "score")
    ).scalar_one()
    assert payload_of(event)["suggested"]["9.1"] == "8.00"


def test_a_month_whose_due_day_the_calendar_cannot_count_is_not_due(
    session: Session,
) -> None:
    """December of the package's last year, due 5 working days later, in a year nobody
    entered: no December report can be filed (calendar_unknown_year), so December is not
    held against the department; the suggestion neither guesses its due day nor fails."""
    year = package_years()[1]
    data = moved_to_year(_RAW_2018, year)
    data["code"] = f"unknown-due-{year}"
    data["routine"]["due_working_days"] = 5
    w = make_world(session, parse_scheme(data))
    later = shanghai(year + 1, 3, 1, 9, 0)
    overview = routine_overview(session, w.assessment, w.dep_a.id, w.admin, later)
    assert overview.suggestions["9.1"].breakdown["running"] == [f"{year}-12"]
    assert overview.suggestions["9.1"].breakdown["periods"] == 4  # August to November


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


def test_a_working_day_count_out_of_range_is_refused_not_a_crash(
    session: Session, world: World
) -> None:
    """The API passed any integer through: 1001 reached the counter's guard (a 500)."""
    w = world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    for count in (1001, -1, 0, 100_000, 251):
        with pytest.raises(InvalidValue, match="工作日数须在 1 到 250 之间") as info:
            set_stage_deadline(
                session, w.assessment, "verify", starts_on=None, due_on=None,
                working_days=count, actor=w.admin,
            )  # fmt: skip
        assert info.value.code == "bad_working_days"
        session.rollback()
    with pytest.raises(BadRequest):
        set_stage_deadline(
            session, w.assessment, "verify", starts_on=None, due_on=None,
            working_days=True, actor=w.admin,
        )  # fmt: skip
    session.rollback()
    assert session.execute(select(StageDeadline.stage)).scalars().all() == ["submit"]
    # The form's text: a minus sign is a number out of range, not "not a number".
    for raw in ("-1", "1001", " 0 "):
        with pytest.raises(InvalidValue) as info:
            parse_working_days(raw)
        assert info.value.code == "bad_working_days"
    assert parse_working_days(" 20 ") == 20 and parse_working_days("") is None
    with pytest.raises(BadRequest):
        parse_working_days("二十")


def _autumn_2020(session: Session, w: World) -> None:
    # 20 working days after Tuesday 1 September 2020: Monday 28 September (Sunday 27 worked).
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(2020, 9, 1), due_on=None,
        working_days=20, actor=w.admin,
    )  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2020, 10, 1),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()


def test_an_override_that_would_put_the_stages_out_of_order_is_refused(
    session: Session, world: World
) -> None:
    w = world
    _autumn_2020(session, w)
    now = shanghai(2020, 9, 1, 9, 0)
    assert stages(session, w, now)["submit"]["due_on"] == "2020-09-28"
    # Two local holidays still fit: 29, then 30 September.
    for day in (D(2020, 9, 2), D(2020, 9, 3)):
        set_calendar_override(session, day, False, "本地放假", actor=w.admin)
        session.commit()
    assert stages(session, w, now)["submit"]["due_on"] == "2020-09-30"
    # A third pushes 自评提交截止 past the National Day holiday, after 初审截止 (1 October).
    with pytest.raises(InvalidValue) as info:
        set_calendar_override(session, D(2020, 9, 4), False, "本地放假", actor=w.admin)
    assert info.value.code == "override_breaks_order"
    message = str(info.value)
    assert f"{w.assessment.year} 年度考核的自评提交截止变为 2020-10-09" in message
    assert "初审截止不能早于自评提交截止" in message
    session.rollback()
    days = session.execute(select(CalendarOverride.day).order_by(CalendarOverride.day))
    assert days.scalars().all() == [D(2020, 9, 2), D(2020, 9, 3)]
    assert stages(session, w, now)["submit"]["due_on"] == "2020-09-30"
    refused = session.execute(
        select(AuditEvent).where(AuditEvent.target_id == "2020-09-04")
    ).first()
    assert refused is None
    # The calendar stays consistent: saving a stage unchanged still works.
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2020, 10, 1),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    # Once the office moves 初审截止, the holiday can be entered.
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2020, 10, 16),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    set_calendar_override(session, D(2020, 9, 4), False, "本地放假", actor=w.admin)
    session.commit()
    assert stages(session, w, now)["submit"]["due_on"] == "2020-10-09"


def test_removing_an_override_that_would_put_the_stages_out_of_order_is_refused(
    session: Session, world: World
) -> None:
    w = world
    worked = set_calendar_override(session, D(2020, 9, 5), True, "补班", actor=w.admin)
    session.commit()
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(2020, 9, 1), due_on=None,
        working_days=20, actor=w.admin,
    )  # fmt: skip
    # With Saturday 5 September worked, the 20th working day is Sunday 27 (a make-up day):
    # 初审 runs from the 28th, its last day.
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2020, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    with pytest.raises(InvalidValue, match="删除该工作日调整会使") as info:
        remove_calendar_override(session, worked.id, actor=w.admin)
    assert info.value.code == "override_breaks_order"
    assert "自评提交截止变为 2020-09-28，初审截止早于该阶段的开始日期" in str(info.value)
    session.rollback()
    assert session.get(CalendarOverride, worked.id) is not None


def test_an_override_a_deadline_counts_on_cannot_be_removed(
    session: Session, world: World, store: LocalStore
) -> None:
    """Removing the only entry of a year the package does not know left a deadline uncountable:
    every department's submit was then refused (系统尚未收录 … 年)."""
    w = world
    year = package_years()[1] + 1
    new_year = set_calendar_override(session, D(year, 1, 1), False, "元旦", actor=w.admin)
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(year, 3, 1), due_on=None,
        working_days=5, actor=w.admin,
    )  # fmt: skip
    session.commit()
    with pytest.raises(InvalidValue) as info:
        remove_calendar_override(session, new_year.id, actor=w.admin)
    assert info.value.code == "override_in_use"
    assert f"{w.assessment.year} 年度考核的自评提交截止" in str(info.value)
    assert f"录入的 {year} 年安排" in str(info.value)
    session.rollback()
    assert session.get(CalendarOverride, new_year.id) is not None
    # Submitting still works (the deadline can still be counted).
    item = _submit(session, store, w, w.item(session, w.dep_a, "1"), shanghai(2018, 9, 3, 9, 0))
    assert item.state == "submitted" and not item.is_submitted_late
    # Another entry of that year may go: the year stays entered.
    other = set_calendar_override(session, D(year, 1, 2), False, "元旦调休", actor=w.admin)
    session.commit()
    remove_calendar_override(session, other.id, actor=w.admin)
    session.commit()
    # A deadline given as a date needs no count: the entry can go once the count is gone.
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(year, 3, 1), due_on=D(year, 3, 9),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    remove_calendar_override(session, new_year.id, actor=w.admin)
    session.commit()


def test_counts_say_what_they_run_from(session: Session, world: World) -> None:
    w = world
    _autumn_2020(session, w)
    set_stage_deadline(
        session, w.assessment, "verify", starts_on=None, due_on=None, working_days=3,
        actor=w.admin,
    )  # fmt: skip
    session.commit()
    cal = stages(session, w, shanghai(2020, 9, 1, 9, 0))
    assert cal["submit"]["counts_from"] == "start"
    assert cal["review"]["counts_from"] is None  # a date
    assert cal["verify"]["counts_from"] == "previous"
    # 3 working days after 1 October 2020 (1–8 October off, Saturday 10 worked).
    assert cal["verify"]["due_on"] == "2020-10-12"


def test_a_deadline_on_a_day_off_is_kept_and_named(session: Session, world: World) -> None:
    w = world
    _autumn_2020(session, w)  # 初审截止 on 1 October 2020: National Day
    notes = deadline_notes(session, w.assessment)
    assert [(n.stage, n.code) for n in notes] == [("review", "deadline_not_workday")]
    assert notes[0].message == (
        "初审截止 2020-10-01 不是工作日（节假日或周末），下一个工作日是 2020-10-09"
    )
    # A working day is no note; nor is a count of working days (it always ends on one).
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2020, 10, 9),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    assert deadline_notes(session, w.assessment) == []
    # A day off before a year nobody entered: the note cannot name the next working day.
    last = D(package_years()[1], 12, 31)
    set_calendar_override(session, last, False, "本地放假", actor=w.admin)
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=last, working_days=None,
        actor=w.admin,
    )  # fmt: skip
    (note,) = deadline_notes(session, w.assessment)
    assert note.message == f"初审截止 {last.isoformat()} 不是工作日（节假日或周末）"


def test_two_overrides_entered_at_once_are_checked_one_after_the_other(
    engine: Engine, session: Session, world: World
) -> None:
    """Each of two holidays alone fits; together they put 自评提交截止 after 初审截止. Entered
    at once, each checked without the other, both were saved."""
    w = world
    _autumn_2020(session, w)
    set_calendar_override(session, D(2020, 9, 2), False, "本地放假", actor=w.admin)
    session.commit()
    factory = make_sessionmaker(engine)
    outcomes: list[str] = []

    def enter(day: dt.date) -> None:
        with factory() as s:
            try:
                set_calendar_override(s, day, False, "本地放假", actor=s.get_one(User, w.admin.id))
                s.commit()
                outcomes.append("saved")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(lambda: enter(D(2020, 9, 3)), lambda: enter(D(2020, 9, 4)))
    assert sorted(outcomes) == ["override_breaks_order", "saved"]
    session.expire_all()
    assert stages(session, w, shanghai(2020, 9, 1, 9, 0))["submit"]["due_on"] == "2020-09-30"


def test_a_deadline_and_an_override_set_at_once_are_checked_one_after_the_other(
    engine: Engine, session: Session, world: World
) -> None:
    w = world
    _autumn_2020(session, w)
    for day in (D(2020, 9, 2), D(2020, 9, 3)):
        set_calendar_override(session, day, False, "本地放假", actor=w.admin)
    # 初审截止 later: a third holiday fits (自评提交截止 9 October) ...
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=D(2020, 10, 16),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    factory = make_sessionmaker(engine)
    outcomes: list[str] = []

    def run(change: Callable[[Session, User], object]) -> None:
        with factory() as s:
            try:
                change(s, s.get_one(User, w.admin.id))
                s.commit()
                outcomes.append("saved")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    # ... and so does 初审截止 back on 1 October without it; not both.
    def holiday(s: Session, admin: User) -> object:
        return set_calendar_override(s, D(2020, 9, 4), False, "本地放假", actor=admin)

    def earlier_review(s: Session, admin: User) -> object:
        assessment = s.get_one(Assessment, w.assessment.id)
        return set_stage_deadline(
            s, assessment, "review", starts_on=None, due_on=D(2020, 10, 1), working_days=None,
            actor=admin,
        )  # fmt: skip

    at_once(lambda: run(holiday), lambda: run(earlier_review))
    assert sorted(outcomes) in (
        ["deadline_order", "saved"],
        ["override_breaks_order", "saved"],
    )
    session.expire_all()
    cal = stages(session, w, shanghai(2020, 9, 1, 9, 0))
    assert str(cal["submit"]["due_on"]) < str(cal["review"]["due_on"])
