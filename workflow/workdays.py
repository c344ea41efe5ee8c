"""Chinese working days: statutory holidays and 调休 make-up days, plus the office's overrides.

Pure: no Flask, no database. The State Council's yearly arrangement comes from the
`chinesecalendar` package; an admin's overrides (a local holiday, a changed make-up day)
win over it. A year the package does not know and that has no override is refused with a
clear message: a deadline is never counted on a guess.

Days are calendar days in Asia/Shanghai; callers pass `today` so tests can fix it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import chinese_calendar

from workflow.messages import N_

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Longer than any deadline a scheme sets; stops a runaway count on absurd input.
MAX_WORKING_DAYS = 1000
# The calendar takes years 2000–2100 (workflow.calendar): any two of its days can be counted
# (a span past the package's years ends at its first unknown day, UnknownYear, at once).
MAX_SPAN_DAYS = 366 * 101


#: The refusal of a count in a year the calendar does not know (parameter `year`).
UNKNOWN_YEAR = N_(
    "系统尚未收录 %(year)s 年的法定节假日和调休安排，无法按工作日计算期限；请管理员在“考核日程”页的"
    "“按国务院通知录入全年安排”中粘贴国务院办公厅的通知全文，录入 %(year)s 年的安排后再试"
)
#: What it said before: enter the year under 工作日调整 (one day at a time; the pasted notice
#: enters the whole year at once). Kept in the catalog for texts stored with it (an alert's
#: problem, a job's refusal).
EARLIER_UNKNOWN_YEAR = (
    N_(
        "系统尚未收录 %(year)s 年的法定节假日和调休安排，无法按工作日计算期限；"
        "请管理员在“工作日调整”中录入 %(year)s 年的安排后再试"
    ),
)


class UnknownYear(ValueError):
    """The holiday arrangement of a year is not known: neither the package nor an override."""

    def __init__(self, year: int) -> None:
        self.year = year
        super().__init__(UNKNOWN_YEAR % {"year": year})


def local_date(moment: dt.datetime, tz: ZoneInfo = SHANGHAI) -> dt.date:
    """Return the calendar day of a moment in the given time zone (Asia/Shanghai)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; use timezone-aware times")
    return moment.astimezone(tz).date()


@functools.cache
def package_years() -> tuple[int, int]:
    """Return the first and last year the holiday package knows."""
    known = [d.year for d in chinese_calendar.holidays] + [
        d.year for d in chinese_calendar.workdays
    ]
    return min(known), max(known)


@dataclass(frozen=True)
class WorkCalendar:
    """Working days: the package's arrangement, corrected by overrides (date → is a workday)."""

    overrides: Mapping[dt.date, bool] = field(default_factory=dict)

    def _override_years(self) -> frozenset[int]:
        return frozenset(d.year for d in self.overrides)

    def entered_years(self) -> frozenset[int]:
        """The years counted on the office's own entries: the package does not know them.

        Such a year is weekends plus the entered days only, so one local holiday entered for
        it makes every statutory holiday of that year a working day until the rest is entered.
        """
        years = self._override_years()
        if not years:
            return frozenset()
        first, last = package_years()
        return frozenset(y for y in years if not first <= y <= last)

    def is_workday(self, day: dt.date) -> bool:
        """Tell whether `day` is a working day; raise UnknownYear for an unknown year."""
        if day in self.overrides:
            return self.overrides[day]
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year in self._override_years():
                # The office entered this year's arrangement itself: weekends plus its dates.
                return day.weekday() < 5
            raise UnknownYear(day.year) from None

    def add_working_days(self, start: dt.date, count: int) -> dt.date:
        """Return the `count`-th working day after `start` (`start` itself when count is 0)."""
        if count < 0 or count > MAX_WORKING_DAYS:
            raise ValueError(f"工作日数须在 0 到 {MAX_WORKING_DAYS} 之间")
        day = start
        while count:
            day += dt.timedelta(days=1)
            if self.is_workday(day):
                count -= 1
        return day

    def working_days_between(self, start: dt.date, end: dt.date) -> int:
        """Count working days in (start, end]; negative, counted the other way, if end < start."""
        if end < start:
            return -self.working_days_between(end, start)
        if (end - start).days > MAX_SPAN_DAYS:
            raise ValueError("日期跨度过大（超过 100 年）")
        return sum(
            1
            for n in range(1, (end - start).days + 1)
            if self.is_workday(start + dt.timedelta(days=n))
        )

    def working_days_left(self, today: dt.date, due: dt.date) -> int:
        """Working days left up to and including `due`, today included when it is one.

        After the deadline the number is negative: minus the working days since `due`.
        """
        if today > due:
            return -self.working_days_between(due, today)
        return self.working_days_between(today - dt.timedelta(days=1), due)

    def nth_working_day_after_month(self, year: int, month: int, count: int) -> dt.date:
        """Return the `count`-th working day after the last day of a month."""
        first_next = dt.date(year + month // 12, month % 12 + 1, 1)
        return self.add_working_days(first_next - dt.timedelta(days=1), count)
