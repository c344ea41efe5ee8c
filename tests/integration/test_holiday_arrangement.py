"""A year's holidays entered from the pasted State Council notice: previewed, then entered as
one audited override per day, all or nothing (workflow.calendar.enter_arrangement)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.factories import World, at_once, make_world, mini_scheme
from tests.unit.test_holiday_notice import NOTICE_2026
from workflow.audit import payload_of, verify_chain
from workflow.calendar import (
    enter_arrangement,
    entries_besides,
    plan_arrangement,
    plan_fingerprint,
    set_calendar_override,
    set_stage_deadline,
    work_calendar,
)
from workflow.db import make_sessionmaker
from workflow.errors import Conflict, DomainError, Forbidden
from workflow.holiday_notice import read_arrangement
from workflow.models import AuditEvent, CalendarOverride, User
from workflow.reconcile import reconcile
from workflow.workdays import package_years

D = dt.date
WEEKDAYS = "一二三四五六日"


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session, mini_scheme(("1", "3")))


def _label(day: dt.date) -> str:
    return f"{day.month}月{day.day}日（周{WEEKDAYS[day.weekday()]}）"


def _weekend_after(day: dt.date) -> dt.date:
    day += dt.timedelta(days=8)
    while day.weekday() < 5:
        day += dt.timedelta(days=1)
    return day


def notice_for(year: int) -> tuple[str, set[dt.date], set[dt.date]]:
    """A notice for a year the package does not know, in the State Council's form, with its
    days off and make-up days (weekdays as that year has them)."""
    breaks = [("元旦", D(year, 1, 1), 1), ("春节", D(year, 2, 10), 7),
              ("劳动节", D(year, 5, 1), 5), ("国庆节", D(year, 10, 1), 7)]  # fmt: skip
    numerals = "一二三四"
    lines = [f"国务院办公厅关于{year}年部分节假日安排的通知", "经国务院批准，现将安排通知如下。"]
    off: set[dt.date] = set()
    on: set[dt.date] = set()
    for n, (name, first, days) in enumerate(breaks):
        last = first + dt.timedelta(days=days - 1)
        off.update(first + dt.timedelta(days=k) for k in range(days))
        if days == 1:
            lines.append(f"{numerals[n]}、{name}：{_label(first)}放假1天，不调休。")
            continue
        makeup = _weekend_after(last)
        on.add(makeup)
        lines.append(
            f"{numerals[n]}、{name}：{_label(first)}至{last.day}日（周{WEEKDAYS[last.weekday()]}）"
            f"放假调休，共{days}天。{_label(makeup)}上班。"
        )
    lines.append("国务院办公厅")
    return "\n".join(lines), off, on


def test_a_year_the_package_does_not_know_is_entered_from_its_notice(
    session: Session, world: World
) -> None:
    w = world
    year = package_years()[1] + 1
    text, off, on = notice_for(year)
    plan = plan_arrangement(session, read_arrangement(text))
    weekday_off = {d for d in off if d.weekday() < 5}
    assert {p.day for p in plan if p.action == "add"} == weekday_off | on
    assert {p.day for p in plan if p.action == "unneeded"} == off - weekday_off
    events_before = session.scalar(select(func.count()).select_from(AuditEvent))
    enter_arrangement(session, text, actor=w.admin, seen=plan_fingerprint(plan))
    session.commit()
    rows = session.execute(select(CalendarOverride)).scalars().all()
    assert {r.day: r.is_workday for r in rows} == {
        **dict.fromkeys(weekday_off, False),
        **dict.fromkeys(on, True),
    }
    spring = next(r for r in rows if r.day.month == 2)
    assert spring.reason.startswith(f"国务院办公厅关于{year}年部分节假日安排的通知：春节")
    events = session.execute(
        select(AuditEvent).where(AuditEvent.seq > events_before).order_by(AuditEvent.seq)
    ).scalars().all()  # fmt: skip
    assert [e.action for e in events] == ["calendar_override_set"] * len(rows)
    assert {payload_of(e)["day"] for e in events} == {r.day.isoformat() for r in rows}
    assert verify_chain(session).ok and reconcile(session).ok
    # The year now counts: five working days after 9月30日 skip the whole 国庆 break.
    assert work_calendar(session).add_working_days(D(year, 9, 30), 1) == min(
        d for d in (D(year, 10, 8) + dt.timedelta(days=k) for k in range(7))
        if d.weekday() < 5 or d in on
    )  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(year, 3, 1), due_on=None,
        working_days=5, actor=w.admin,
    )  # fmt: skip
    # Pasted again: entered already, nothing written.
    again = plan_arrangement(session, read_arrangement(text))
    assert {p.action for p in again} == {"entered", "unneeded"}
    count = session.scalar(select(func.count()).select_from(AuditEvent))
    enter_arrangement(session, text, actor=w.admin, seen=plan_fingerprint(again))
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == count


def test_a_preview_gone_stale_enters_nothing(session: Session, world: World) -> None:
    """Between the preview and the confirmation another admin entered one of its days the
    other way: the confirmation writes nothing (409), the preview is to be made again."""
    w = world
    year = package_years()[1] + 1
    text, _off, on = notice_for(year)
    seen = plan_fingerprint(plan_arrangement(session, read_arrangement(text)))
    makeup = min(on)
    set_calendar_override(session, makeup, False, "本地放假", actor=w.admin)
    local = next(D(year, 3, d) for d in range(1, 8) if D(year, 3, d).weekday() < 5)
    set_calendar_override(session, local, False, "市政府通知：本地放假", actor=w.admin)
    session.commit()
    # The office's own day the notice does not name is shown, and kept.
    besides = entries_besides(session, read_arrangement(text))
    assert [(o.day, o.reason) for o in besides] == [(local, "市政府通知：本地放假")]
    with pytest.raises(Conflict) as info:
        enter_arrangement(session, text, actor=w.admin, seen=seen)
    assert info.value.code == "arrangement_changed"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(CalendarOverride)) == 2
    # Previewed again: that day is to be replaced, and the replacement says what it was.
    plan = plan_arrangement(session, read_arrangement(text))
    assert [p.action for p in plan if p.day == makeup] == ["replace"]
    enter_arrangement(session, text, actor=w.admin, seen=plan_fingerprint(plan))
    session.commit()
    event = session.execute(
        select(AuditEvent).where(AuditEvent.target_id == makeup.isoformat())
        .order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one()  # fmt: skip
    assert payload_of(event)["before"] == {"is_workday": False, "reason": "本地放假"}
    assert session.get_one(CalendarOverride, besides[0].id).day == local  # kept
    assert reconcile(session).ok


def test_a_year_the_package_knows_needs_no_entry_and_only_admins_enter(
    session: Session, world: World
) -> None:
    w = world
    plan = plan_arrangement(session, read_arrangement(NOTICE_2026))
    assert {p.action for p in plan} == {"unneeded"}
    enter_arrangement(session, NOTICE_2026, actor=w.admin, seen=plan_fingerprint(plan))
    assert session.scalar(select(func.count()).select_from(CalendarOverride)) == 0
    with pytest.raises(Forbidden):
        enter_arrangement(session, NOTICE_2026, actor=w.reviewer)


def test_two_admins_entering_one_notice_at_once_enter_it_once(
    engine: Engine, session: Session, world: World
) -> None:
    """Both confirm the same preview at the same moment: they queue on the calendar's lock;
    the first enters the days, the second finds nothing left to enter (no error, no
    duplicate row or event)."""
    w = world
    year = package_years()[1] + 1
    text, off, on = notice_for(year)
    seen = plan_fingerprint(plan_arrangement(session, read_arrangement(text)))
    session.commit()
    factory = make_sessionmaker(engine)
    outcomes: list[object] = []

    def confirm() -> None:
        with factory() as s:
            try:
                _, plan = enter_arrangement(s, text, actor=s.get_one(User, w.admin.id), seen=seen)
                s.commit()
                outcomes.append(sum(1 for p in plan if p.changes))
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(confirm, confirm)
    adds = len({d for d in off if d.weekday() < 5} | on)
    assert sorted(outcomes, key=str) == [0, adds]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(CalendarOverride)) == adds
    events = select(func.count()).where(AuditEvent.action == "calendar_override_set")
    assert session.scalar(events) == adds
