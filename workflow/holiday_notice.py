"""A year's holiday arrangement read from the State Council's notice, as the office pastes it.

Every November the 国务院办公厅 publishes 《关于 YYYY 年部分节假日安排的通知》; the
`chinesecalendar` package learns it only in its next release. Until then an admin would enter
some thirty days one by one (workflow/calendar.py overrides). Instead the office pastes the
notice; this module reads it into days, and the calendar page previews them before they are
entered (`workflow.calendar.enter_arrangement`).

Pure: no Flask, no database. The notice's form, year after year:

    一、元旦：1月1日（周五）放假，与周末连休。
    二、春节：2月6日（农历腊月二十九、周六）至14日（农历正月初八、周日）放假调休，共9天。
    2月20日（周六）上班。

Each numbered section names a holiday; in each sentence, the dates before 放假 are days off (a
range 至 …, or single dates), the dates of a sentence with 上班 and without 放假 are make-up
working days. What is read is checked against its own words, so that a wrong year or a typo
is refused rather than counted: the weekday in brackets must be the date's weekday, a range's
共 N 天 must be its length, and a make-up day falls on a weekend.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from workflow.errors import InvalidValue
from workflow.messages import N_, Term

#: The most text the reader takes (a notice is under 1,000 characters).
MAX_NOTICE_CHARS = 5000
MIN_YEAR, MAX_YEAR = 2000, 2100
#: The longest break a range may span (the longest so far: 9 days).
MAX_HOLIDAY_DAYS = 31

_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
WEEKDAY_NAMES = (
    N_("周一"),
    N_("周二"),
    N_("周三"),
    N_("周四"),
    N_("周五"),
    N_("周六"),
    N_("周日"),
)
_NUMERALS = "一二三四五六七八九十"

_TITLE_YEAR = re.compile(r"([0-9]{4})\s*年\s*(?:部分)?节假日")
_ANY_YEAR = re.compile(r"([0-9]{4})\s*年")
# The title with its issuer (国务院办公厅, or a province's office pasting its own notice).
_TITLE = re.compile(r"[^\s，。、：:；;]{0,30}?关于\s*[0-9]{4}\s*年部分节假日安排的通知")
_SECTION = re.compile(rf"(?:^|\n)\s*[{_NUMERALS}]+\s*[、.．]\s*([^：:\n]{{1,20}})\s*[：:]")
_DATE = re.compile(
    r"(?:(?P<y>[0-9]{4})\s*年\s*)?(?:(?P<m>[0-9]{1,2})\s*月\s*)?(?P<d>[0-9]{1,2})\s*日"
    r"\s*(?:[（(](?P<note>[^）)]{0,30})[）)])?"
)
_RANGE_JOIN = re.compile(r"^\s*(?:至|到|-|—|－|~|～)\s*$")
_TOTAL = re.compile(r"共\s*([0-9]{1,2})\s*天")
_WEEKDAY_NOTE = re.compile(r"(?:周|星期)([一二三四五六日天])")


@dataclass(frozen=True)
class ArrangedDay:
    """One day of the arrangement: off (放假) or a make-up working day (调休上班)."""

    day: dt.date
    is_workday: bool
    holiday: str


@dataclass(frozen=True)
class Arrangement:
    """What a notice arranges for its year, in date order, and where it came from."""

    year: int
    source: str
    days: tuple[ArrangedDay, ...]
    holidays: tuple[str, ...] = field(default=())


def _normalise(text: str) -> str:
    """Full-width digits and spaces as ASCII ones; line ends as \\n."""
    table = {ord("０") + n: ord("0") + n for n in range(10)}
    table[ord("\u3000")] = ord(" ")
    return text.translate(table).replace("\r\n", "\n").replace("\r", "\n")


def notice_year(text: str) -> int:
    """The year the notice arranges: 关于2027年部分节假日安排, else the first 4-digit 年."""
    match = _TITLE_YEAR.search(text) or _ANY_YEAR.search(text)
    if match is None:
        raise InvalidValue(
            "未能从通知中读出年份：请粘贴包括标题（关于 XXXX 年部分节假日安排的通知）的全文",
            code="arrangement_no_year",
        )
    year = int(match.group(1))
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidValue(
            "通知的年份 %(year)s 不在 %(min)s 到 %(max)s 之间",
            code="arrangement_no_year",
            params={"year": year, "min": MIN_YEAR, "max": MAX_YEAR},
        )
    return year


@dataclass
class _Date:
    day: dt.date
    note: str | None
    start: int
    end: int
    explicit_year: bool


def _dates(sentence: str, year: int, holiday: str) -> list[_Date]:
    """The dates of a sentence, in order; a date without its month takes the one before it
    (2月15日至23日). 元旦 may begin in the December of the year before (12月30日至1月1日)."""
    found: list[_Date] = []
    for match in _DATE.finditer(sentence):
        text = match.group(0).strip()
        if match["m"]:
            month = int(match["m"])
        elif found:
            month = found[-1].day.month
        else:
            raise InvalidValue(
                "%(holiday)s：日期“%(text)s”没有月份",
                code="arrangement_unreadable",
                params={"holiday": holiday, "text": text},
            )
        if match["y"]:
            day_year = int(match["y"])
            if abs(day_year - year) > 1:
                raise InvalidValue(
                    "%(holiday)s：日期“%(text)s”不属于 %(year)s 年的安排",
                    code="arrangement_inconsistent",
                    params={"holiday": holiday, "text": text, "year": year},
                )
        elif not match["m"] and found:
            day_year = found[-1].day.year
        elif month == 12 and "元旦" in holiday:
            day_year = year - 1
        else:
            day_year = year
        try:
            day = dt.date(day_year, month, int(match["d"]))
        except ValueError:
            raise InvalidValue(
                "%(holiday)s：没有“%(text)s”这一天",
                code="arrangement_unreadable",
                params={"holiday": holiday, "text": text},
            ) from None
        found.append(_Date(day, match["note"], match.start(), match.end(), bool(match["y"])))
    return found


def _check_weekday(found: _Date, holiday: str) -> None:
    """The weekday the notice prints must be the date's: else the year or the date is wrong."""
    match = _WEEKDAY_NOTE.search(found.note or "")
    if match is None:
        return
    said = _WEEKDAYS[match.group(1)]
    if said != found.day.weekday():
        raise InvalidValue(
            "%(holiday)s：%(date)s 在通知中为%(said)s，实为%(actual)s；请核对通知的年份和日期",
            code="arrangement_inconsistent",
            params={
                "holiday": holiday,
                "date": found.day.isoformat(),
                "said": Term(WEEKDAY_NAMES[said]),
                "actual": Term(WEEKDAY_NAMES[found.day.weekday()]),
            },
        )


def _span(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _days_off(sentence: str, found: list[_Date], holiday: str) -> list[dt.date]:
    """The days off before 放假: ranges (A至B) and single dates."""
    off: list[dt.date] = []
    n = 0
    while n < len(found):
        first = found[n]
        last = found[n + 1] if n + 1 < len(found) else None
        if last is None or not _RANGE_JOIN.match(sentence[first.end : last.start]):
            off.append(first.day)
            n += 1
            continue
        if last.day < first.day and not last.explicit_year and last.day.month == 1:
            last.day = last.day.replace(year=last.day.year + 1)  # 12月31日至1月2日
        if last.day < first.day or (last.day - first.day).days > MAX_HOLIDAY_DAYS:
            raise InvalidValue(
                "%(holiday)s：放假时段 %(first)s 至 %(last)s 不成立；请核对",
                code="arrangement_inconsistent",
                params={
                    "holiday": holiday,
                    "first": first.day.isoformat(),
                    "last": last.day.isoformat(),
                },
            )
        off.extend(_span(first.day, last.day))
        n += 2
    return off


def _sentence_days(sentence: str, year: int, holiday: str) -> tuple[list[dt.date], list[dt.date]]:
    """The days off and the make-up working days one sentence of a section arranges."""
    off_at = sentence.find("放假")
    if off_at < 0 and "上班" not in sentence:
        return [], []
    found = _dates(sentence, year, holiday)
    if off_at < 0:  # 1月26日（周日）、2月8日（周六）上班
        working = found
        off: list[dt.date] = []
    else:
        working = []
        off = _days_off(sentence, [d for d in found if d.start < off_at], holiday)
        total = _TOTAL.search(sentence, off_at)
        if total is not None and off and int(total.group(1)) != len(off):
            raise InvalidValue(
                "%(holiday)s：通知写共 %(said)s 天，所列日期为 %(counted)s 天；请核对",
                code="arrangement_inconsistent",
                params={"holiday": holiday, "said": int(total.group(1)), "counted": len(off)},
            )
    for item in found:
        _check_weekday(item, holiday)
    for item in working:
        if item.day.weekday() < 5:
            raise InvalidValue(
                "%(holiday)s：调休上班日 %(date)s 是%(weekday)s，不是周末；请核对",
                code="arrangement_inconsistent",
                params={
                    "holiday": holiday,
                    "date": item.day.isoformat(),
                    "weekday": Term(WEEKDAY_NAMES[item.day.weekday()]),
                },
            )
    return off, [item.day for item in working]


def _source(text: str, year: int) -> str:
    """The notice's title as pasted, its issuer included; the bare title when none was."""
    match = _TITLE.search(text)
    return re.sub(r"\s+", "", match.group(0)) if match else f"关于{year}年部分节假日安排的通知"


def read_arrangement(text: str) -> Arrangement:
    """Read a pasted notice into its days; refuse (422, naming the place) what does not hold.

    A day named twice (off in one section, working in another) is refused too.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidValue("请粘贴节假日安排通知的全文", code="arrangement_empty")
    if len(text) > MAX_NOTICE_CHARS:
        raise InvalidValue(
            "粘贴的内容过长（最多 %(max)s 字），请只粘贴通知正文",
            code="arrangement_too_long",
            params={"max": MAX_NOTICE_CHARS},
        )
    text = _normalise(text)
    year = notice_year(text)
    sections = list(_SECTION.finditer(text))
    if not sections:
        raise InvalidValue(
            "未能读出节日：通知正文应为“一、元旦：……放假……”这样的逐条安排",
            code="arrangement_unreadable",
        )
    days: dict[dt.date, ArrangedDay] = {}
    names: list[str] = []
    for n, section in enumerate(sections):
        holiday = section.group(1).strip()
        end = sections[n + 1].start() if n + 1 < len(sections) else len(text)
        # A line broken inside a sentence (text copied from a PDF) is one sentence again.
        body = text[section.end() : end].replace("\n", "")
        names.append(holiday)
        for sentence in re.split(r"[。；;]", body):
            off, working = _sentence_days(sentence, year, holiday)
            for day, is_workday in [(d, False) for d in off] + [(d, True) for d in working]:
                earlier = days.get(day)
                if earlier is not None and earlier.is_workday != is_workday:
                    raise InvalidValue(
                        "%(date)s 在通知中既是放假日又是上班日；请核对",
                        code="arrangement_inconsistent",
                        params={"date": day.isoformat()},
                    )
                days[day] = ArrangedDay(day, is_workday, holiday)
    if not days:
        raise InvalidValue(
            "未能从通知中读出任何放假或上班日期：请粘贴通知的全文",
            code="arrangement_unreadable",
        )
    return Arrangement(year, _source(text, year), tuple(sorted(days.values(), key=_by_day)),
                       tuple(names))  # fmt: skip


def _by_day(day: ArrangedDay) -> dt.date:
    return day.day
