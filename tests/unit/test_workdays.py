"""Chinese working days: National Day and Spring Festival 2018, unknown years, overrides."""

from __future__ import annotations

import datetime as dt

import pytest

from workflow.workdays import UnknownYear, WorkCalendar, local_date, package_years

D = dt.date
CAL = WorkCalendar()


def test_2018_national_day_holidays_and_make_up_weekend() -> None:
    # 1–7 October off; Saturday 29 and Sunday 30 September worked instead.
    assert D(2018, 9, 29).weekday() == 5 and D(2018, 9, 30).weekday() == 6
    assert CAL.is_workday(D(2018, 9, 29)) and CAL.is_workday(D(2018, 9, 30))
    assert [CAL.is_workday(D(2018, 10, d)) for d in range(1, 8)] == [False] * 7
    assert CAL.is_workday(D(2018, 10, 8))
    # Friday 28 September + 1 working day is the Saturday, + 3 skips the whole holiday.
    assert CAL.add_working_days(D(2018, 9, 28), 1) == D(2018, 9, 29)
    assert CAL.add_working_days(D(2018, 9, 28), 3) == D(2018, 10, 8)
    assert CAL.add_working_days(D(2018, 9, 30), 5) == D(2018, 10, 12)
    # After Friday 21 Sept up to 12 Oct: 24 Sept is 中秋节, so 25–28, 29, 30 Sept, 8–12 Oct.
    assert not CAL.is_workday(D(2018, 9, 24))
    assert CAL.working_days_between(D(2018, 9, 21), D(2018, 10, 12)) == 11
    # The 5th working day after September ends is 12 October, not 5 October.
    assert CAL.nth_working_day_after_month(2018, 9, 5) == D(2018, 10, 12)


def test_2018_spring_festival() -> None:
    # 15–21 February off; Sunday 11 and Saturday 24 February worked.
    assert CAL.is_workday(D(2018, 2, 11)) and CAL.is_workday(D(2018, 2, 24))
    assert not any(CAL.is_workday(D(2018, 2, d)) for d in range(15, 22))
    assert CAL.add_working_days(D(2018, 2, 14), 1) == D(2018, 2, 22)
    # January ends on a Wednesday: the 3rd working day after is Monday 5 February.
    assert CAL.nth_working_day_after_month(2018, 1, 3) == D(2018, 2, 5)
    # 1, 2, 5–9, Sunday 11, 12, 13, 14 February are the first 11; the 12th jumps the holiday.
    assert CAL.nth_working_day_after_month(2018, 1, 11) == D(2018, 2, 14)
    assert CAL.nth_working_day_after_month(2018, 1, 12) == D(2018, 2, 22)
    assert CAL.nth_working_day_after_month(2018, 12, 1) == D(2019, 1, 2)  # 1 January is off


def test_working_days_left_counts_today_and_goes_negative_after_the_deadline() -> None:
    due = D(2018, 10, 8)
    assert CAL.working_days_left(D(2018, 10, 8), due) == 1
    assert CAL.working_days_left(D(2018, 9, 29), due) == 3  # 29, 30 Sept and 8 Oct
    assert CAL.working_days_left(D(2018, 10, 3), due) == 1  # a holiday: only the 8th is left
    assert CAL.working_days_left(D(2018, 10, 9), due) == -1
    assert CAL.working_days_left(D(2018, 10, 13), due) == -4  # 9..12 Oct; 13th is Saturday


def test_an_unknown_year_is_refused_in_chinese_never_guessed() -> None:
    first, last = package_years()
    year = last + 3
    with pytest.raises(UnknownYear) as info:
        CAL.is_workday(D(year, 3, 2))
    assert str(year) in str(info.value) and "节假日" in str(info.value)
    with pytest.raises(UnknownYear):
        CAL.add_working_days(D(year, 1, 1), 2)
    with pytest.raises(UnknownYear):
        CAL.is_workday(D(first - 1, 6, 1))


def test_overrides_of_an_unknown_year_make_it_countable() -> None:
    year = package_years()[1] + 3
    jan1 = D(year, 1, 1)
    cal = WorkCalendar({jan1: False})
    assert not cal.is_workday(jan1)
    weekday = next(D(year, 1, d) for d in range(2, 9) if D(year, 1, d).weekday() == 2)
    weekend = next(D(year, 1, d) for d in range(2, 9) if D(year, 1, d).weekday() == 6)
    assert cal.is_workday(weekday) and not cal.is_workday(weekend)


def test_an_override_changes_the_count() -> None:
    # A local holiday on Tuesday 9 October 2018 and a working Sunday 14 October.
    assert CAL.add_working_days(D(2018, 9, 30), 2) == D(2018, 10, 9)
    cal = WorkCalendar({D(2018, 10, 9): False, D(2018, 10, 14): True})
    assert cal.add_working_days(D(2018, 9, 30), 2) == D(2018, 10, 10)
    assert cal.working_days_between(D(2018, 10, 7), D(2018, 10, 14)) == 5  # 8,10,11,12,14
    assert CAL.working_days_between(D(2018, 10, 7), D(2018, 10, 14)) == 5  # 8,9,10,11,12


def test_bad_counts_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="工作日数"):
        CAL.add_working_days(D(2018, 1, 1), -1)
    with pytest.raises(ValueError, match="naive"):
        local_date(dt.datetime(2018, 1, 1, 12))


def test_local_date_is_the_shanghai_calendar_day() -> None:
    # 16:30 UTC on 30 September is 00:30 on 1 October in Shanghai.
    moment = dt.datetime(2018, 9, 30, 16, 30, tzinfo=dt.UTC)
    assert local_date(moment) == D(2018, 10, 1)
