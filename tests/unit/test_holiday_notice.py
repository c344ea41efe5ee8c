"""Reading the State Council's 节假日安排 notice: checked against the package's own data."""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.errors import InvalidValue
from workflow.holiday_notice import MAX_NOTICE_CHARS, read_arrangement

D = dt.date

NOTICE_2026 = """国务院办公厅关于2026年部分节假日安排的通知
国办发明电〔2025〕7号
各省、自治区、直辖市人民政府，国务院各部委、各直属机构：
　　经国务院批准，现将2026年元旦、春节、清明节、劳动节、端午节、中秋节和国庆节放假调休日期的具体安排通知如下。
　　一、元旦：1月1日（周四）至3日（周六）放假调休，共3天。1月4日（周日）上班。
　　二、春节：2月15日（农历腊月二十八、周日）至23日（农历正月初七、周一）放假调休，共9天。2月14日（周六）、2月28日（周六）上班。
　　三、清明节：4月4日（周六）至6日（周一）放假，共3天。
　　四、劳动节：5月1日（周五）至5日（周二）放假调休，共5天。5月9日（周六）上班。
　　五、端午节：6月19日（周五）至21日（周日）放假，共3天。
　　六、中秋节：9月25日（周五）至27日（周日）放假，共3天。
　　七、国庆节：10月1日（周四）至7日（周三）放假调休，共7天。9月20日（周日）、10月10日（周六）上班。
　　节假日期间，各地区、各部门要妥善安排好值班和安全、保卫等工作，遇有重大突发事件，要按规定及时报告并妥善处置，确保人民群众祥和平安度过节日假期。
国务院办公厅
2025年11月4日
"""

NOTICE_2025 = """国务院办公厅关于2025年部分节假日安排的通知
一、元旦：1月1日（周三）放假1天，不调休。
二、春节：1月28日（农历除夕、周二）至2月4日（农历正月初七、周二）放假调休，共8天。1月26日（周日）、2月8日（周六）上班。
三、清明节：4月4日（周五）至6日（周日）放假，共3天。
四、劳动节：5月1日（周四）至5日（周一）放假调休，共5天。4月27日（周日）上班。
五、端午节：5月31日（周六）至6月2日（周一）放假，共3天。
六、国庆节、中秋节：10月1日（周三）至8日（周三）放假调休，共8天。9月28日（周日）、10月11日（周六）上班。
国务院办公厅
2024年11月12日
"""

# 2019's: 元旦 begins in the December before, with the years written out; 与周末连休.
NOTICE_2019 = """国务院办公厅关于2019年部分节假日安排的通知
一、元旦：2018年12月30日至2019年1月1日放假调休，共3天。2018年12月29日（星期六）上班。
二、春节：2月4日至10日放假调休，共7天。2月2日（星期六）、2月3日（星期日）上班。
三、清明节：4月5日放假，与周末连休。
四、劳动节：5月1日至4日放假调休，共4天。4月28日（星期日）、5月5日（星期日）上班。
五、端午节：6月7日放假，与周末连休。
六、中秋节：9月13日放假，与周末连休。
七、国庆节：10月1日至7日放假调休，共7天。9月29日（星期日）、10月12日（星期六）上班。
"""

# 2023's: 元旦 from the December before; 2024's: a date (除夕) in a sentence that arranges nothing.
NOTICE_2023 = """国务院办公厅关于2023年部分节假日安排的通知
一、元旦：2022年12月31日至2023年1月2日放假调休，共3天。
二、春节：1月21日至27日放假调休，共7天。1月28日（星期六）、1月29日（星期日）上班。
三、清明节：4月5日放假，共1天。
四、劳动节：4月29日至5月3日放假调休，共5天。4月23日（星期日）、5月6日（星期六）上班。
五、端午节：6月22日至24日放假调休，共3天。6月25日（星期日）上班。
六、中秋节、国庆节：9月29日至10月6日放假调休，共8天。10月7日（星期六）、10月8日（星期日）上班。
"""

NOTICE_2024 = """国务院办公厅关于2024年部分节假日安排的通知
一、元旦：1月1日放假，与周末连休。
二、春节：2月10日至17日放假调休，共8天。2月4日（星期日）、2月18日（星期日）上班。鼓励各单位结合带薪年休假等制度落实，安排职工在除夕（2月9日）休息。
三、清明节：4月4日至6日放假调休，共3天。4月7日（星期日）上班。
四、劳动节：5月1日至5日放假调休，共5天。4月28日（星期日）、5月11日（星期六）上班。
五、端午节：6月10日放假，与周末连休。
六、中秋节：9月15日至17日放假调休，共3天。9月14日（星期六）上班。
七、国庆节：10月1日至7日放假调休，共7天。9月29日（星期日）、10月12日（星期六）上班。
"""


def working(arrangement_days: dict[dt.date, bool], day: dt.date) -> bool:
    """A day as an office counts a year it entered itself: weekends off, plus its entries."""
    return arrangement_days.get(day, day.weekday() < 5)


@pytest.mark.parametrize(("year", "text"), [(2025, NOTICE_2025), (2026, NOTICE_2026)])
def test_the_notice_gives_the_packages_own_arrangement(year: int, text: str) -> None:
    arrangement = read_arrangement(text)
    assert arrangement.year == year
    assert arrangement.source == f"国务院办公厅关于{year}年部分节假日安排的通知"
    off = {d.day for d in arrangement.days if not d.is_workday}
    on = {d.day for d in arrangement.days if d.is_workday}
    assert off == {d for d in chinese_calendar.holidays if d.year == year}
    assert on == {d for d in chinese_calendar.workdays if d.year == year and d.weekday() >= 5}


@pytest.mark.parametrize(
    ("year", "text"), [(2019, NOTICE_2019), (2023, NOTICE_2023), (2024, NOTICE_2024)]
)
def test_every_day_of_the_year_counts_as_the_package_counts_it(year: int, text: str) -> None:
    """Written otherwise (years in full, 与周末连休, 星期六): the same working days."""
    days = {d.day: d.is_workday for d in read_arrangement(text).days}
    day = D(year, 1, 1)
    while day.year == year:
        assert working(days, day) == chinese_calendar.is_workday(day), day
        day += dt.timedelta(days=1)


def test_new_years_day_may_begin_in_the_december_before() -> None:
    arrangement = read_arrangement(NOTICE_2019)
    days = {d.day: d.is_workday for d in arrangement.days}
    assert days[D(2018, 12, 30)] is False and days[D(2018, 12, 29)] is True
    assert [d.holiday for d in arrangement.days if d.day == D(2019, 10, 12)] == ["国庆节"]
    assert D(2024, 2, 9) not in {d.day for d in read_arrangement(NOTICE_2024).days}  # 除夕


def test_the_source_is_the_title_as_pasted() -> None:
    """Its issuer as written (never 国务院办公厅 put before a province's title)."""
    body = NOTICE_2026.split("\n", 1)[1]
    province = read_arrangement("吉林省人民政府办公厅关于2026年部分节假日安排的通知\n" + body)
    assert province.source == "吉林省人民政府办公厅关于2026年部分节假日安排的通知"
    untitled = read_arrangement(body.replace("经国务院批准，现将2026年", "现将2026年"))
    assert untitled.source == "关于2026年部分节假日安排的通知"


def test_copied_from_a_pdf_lines_break_inside_sentences() -> None:
    text = NOTICE_2026.replace("至23日", "至\n23日").replace("（周六）上班", "（周六）\n上班")
    text = text.replace("2月15日", "２月１５日")  # full-width digits
    assert read_arrangement(text).days == read_arrangement(NOTICE_2026).days


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("", "arrangement_empty", "请粘贴"),
        ("x" * (MAX_NOTICE_CHARS + 1), "arrangement_too_long", "过长"),
        ("一、元旦：1月1日（周四）放假。", "arrangement_no_year", "年份"),
        ("关于2026年部分节假日安排的通知。元旦放假。", "arrangement_unreadable", "逐条"),
        # Last year's notice with the year changed: the weekdays give it away.
        (NOTICE_2025.replace("2025年", "2026年"), "arrangement_inconsistent", "实为"),
        (NOTICE_2026.replace("共9天", "共8天"), "arrangement_inconsistent", "共 8 天"),
        (NOTICE_2026.replace("1月4日（周日）", "1月5日（周一）"), "arrangement_inconsistent",
         "不是周末"),
        (NOTICE_2026.replace("至23日（农历正月初七、周一）", "至13日"), "arrangement_inconsistent",
         "不成立"),
        (NOTICE_2026.replace("2月14日（周六）、", "2月15日（周日）、"), "arrangement_inconsistent",
         "既是放假日又是上班日"),
        (NOTICE_2026.replace("2月28日", "2月30日"), "arrangement_unreadable", "没有“2月30日"),
    ],
)  # fmt: skip
def test_what_does_not_hold_is_refused_naming_it(text: str, code: str, words: str) -> None:
    with pytest.raises(InvalidValue) as info:
        read_arrangement(text)
    assert info.value.code == code and words in info.value.message, info.value.message


PIECES = [
    "国务院办公厅关于2027年部分节假日安排的通知", "一、元旦：", "二、春节：", "\n", "。", "至",
    "、", "放假", "上班", "共3天", "1月1日", "12月31日", "2月29日", "9999年12月31日",
    "0000年1月1日", "（周五）", "（星期日）", "31日", "0月0日", "99月99日", "（", "）",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=5), max_size=40))
def test_any_pasted_text_is_read_or_refused_never_a_crash(parts: list[str]) -> None:
    try:
        arrangement = read_arrangement("".join(parts))
    except InvalidValue:
        return
    assert arrangement.days and all(
        abs(d.day.year - arrangement.year) <= 1 for d in arrangement.days
    )
