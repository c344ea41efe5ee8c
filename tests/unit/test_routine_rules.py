"""Routine quotas at period edges, late records, suggestions, another scheme's quotas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from scoring.routine import (
    PeriodError,
    RecordFigure,
    RoutineRules,
    count_periods,
    feeding_kinds,
    parse_period,
    period_of,
    suggest,
)

SH = ZoneInfo("Asia/Shanghai")
CONFIG = {
    "counting_starts": "2018-08",
    "counting_ends": "2018-12",
    "quotas": {
        "monthly_info": {"period": "month", "minimum": 2},
        "quarterly_case": {"period": "quarter", "minimum": 1},
    },
    "suggestion": {
        "9.1": {"kind": "monthly_info", "formula": "share_of_periods", "late_deduction": "0.5"},
        "9.2": {"kind": "quarterly_case", "formula": "share_of_periods", "late_deduction": "0.5"},
        "10.1": {"kinds": ["meeting", "inspection", "task"], "formula": "share_accepted"},
    },
}
RULES = RoutineRules.from_config(CONFIG, "Asia/Shanghai")
END = dt.datetime(2019, 1, 15, tzinfo=dt.UTC)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_shanghai_edge_of_august() -> None:
    # 2018-08-31 23:30 in Shanghai is 15:30 UTC: still August.
    moment = utc(2018, 8, 31, 15, 30)
    assert period_of(moment, "month", SH).label == "2018-08"
    # 16:30 UTC is 00:30 on 1 September in Shanghai.
    assert period_of(utc(2018, 8, 31, 16, 30), "month", SH).label == "2018-09"
    assert period_of(utc(2018, 9, 30, 16, 0), "quarter", SH).label == "2018-Q4"
    assert period_of(utc(2018, 9, 30, 15, 59), "quarter", SH).label == "2018-Q3"


def test_due_times_are_local_period_ends() -> None:
    due = RULES.due_at(parse_period("2018-08"))
    assert due == utc(2018, 8, 31, 16, 0)
    assert utc(2018, 8, 31, 15, 30) < due  # the 23:30 report is on time
    assert RULES.due_at(parse_period("2018-Q4")) == utc(2018, 12, 31, 16, 0)


@pytest.mark.parametrize("text", ["2018-13", "2018-8", "18-08", "2018-Q5", "", "2018Q3"])
def test_bad_periods(text: str) -> None:
    with pytest.raises(PeriodError):
        parse_period(text)


def test_counting_window_and_quota() -> None:
    records = [
        RecordFigure("monthly_info", "2018-08", "accepted", False),
        RecordFigure("monthly_info", "2018-08", "accepted", True),  # late still counts
        RecordFigure("monthly_info", "2018-09", "accepted", False),
        RecordFigure("monthly_info", "2018-09", "rejected", False),  # rejected never counts
        RecordFigure("monthly_info", "2018-10", "submitted", False),  # pending does not count
        RecordFigure("monthly_info", "2018-07", "accepted", False),  # before the window
    ]
    lines = {c.period: c for c in count_periods(RULES, "monthly_info", records, END)}
    assert list(lines) == ["2018-08", "2018-09", "2018-10", "2018-11", "2018-12"]
    assert lines["2018-08"].is_met and lines["2018-08"].late == 1
    assert not lines["2018-09"].is_met and lines["2018-09"].rejected == 1
    assert not lines["2018-10"].is_met and lines["2018-10"].pending == 1
    assert lines["2018-11"].is_missing
    # Mid-year only the periods that have begun are counted.
    mid = count_periods(RULES, "monthly_info", records, utc(2018, 9, 15))
    assert [c.period for c in mid] == ["2018-08", "2018-09"]


def test_suggestion_share_of_periods_with_late_deduction() -> None:
    records = [RecordFigure("monthly_info", f"2018-{m:02d}", "accepted", False) for m in
               (8, 8, 9, 9, 10, 10, 11)]  # fmt: skip
    records.append(RecordFigure("monthly_info", "2018-12", "accepted", True))
    records.append(RecordFigure("monthly_info", "2018-12", "accepted", True))
    s = suggest(RULES, "9.1", Decimal(8), records, END)
    assert s is not None
    # 4 of 5 months met (November has 1): 8 × 4/5 = 6.40, minus 2 late × 0.5 = 5.40
    assert s.points == Decimal("5.40")
    assert s.breakdown["periods_met"] == 5 - 1 and s.breakdown["late"] == 2
    assert s.breakdown["short"] == ["2018-11"]  # the month the reason names


def test_suggestion_quarters_and_floor() -> None:
    records = [RecordFigure("quarterly_case", "2018-Q3", "accepted", True)] * 20
    s = suggest(RULES, "9.2", Decimal(7), records, END)
    assert s is not None and s.points == Decimal("0.00")  # never below zero
    s2 = suggest(RULES, "9.2", Decimal(7), [], END)
    assert s2 is not None and s2.points == Decimal("0.00")
    assert suggest(RULES, "1.1", Decimal(5), [], END) is None


def test_suggestion_10_1_counts_only_what_the_department_did() -> None:
    # The case: the office registered one meeting and one inspection after their
    # month (office registrations carry no lateness), plus two duplicates it then rejected.
    recs = [
        RecordFigure("meeting", "2018-09", "accepted", False, "done"),
        RecordFigure("inspection", "2018-10", "accepted", False, "done"),
        RecordFigure("meeting", "2018-09", "rejected", False, "done"),
        RecordFigure("inspection", "2018-10", "rejected", False, "done"),
    ]
    s = suggest(RULES, "10.1", Decimal(5), recs, END)
    assert s is not None and s.points == Decimal("5.00")
    assert s.breakdown["counted"] == 2 and s.breakdown["rejected"] == 2
    assert s.breakdown["no_records"] is False
    # A withdrawn registration and a pending one change nothing either.
    more = [
        *recs,
        RecordFigure("meeting", "2018-11", "withdrawn", False, "missed"),
        RecordFigure("task", "2018-11", "submitted", False, "missed"),
    ]
    s = suggest(RULES, "10.1", Decimal(5), more, END)
    assert s is not None and s.points == Decimal("5.00") and s.breakdown["pending"] == 1


def test_suggestion_10_1_missed_and_late_tasks() -> None:
    recs = [
        RecordFigure("meeting", "2018-09", "accepted", False, "done"),
        RecordFigure("meeting", "2018-10", "accepted", False, "missed"),  # 缺席
        RecordFigure("task", "2018-11", "accepted", False, "late"),  # 逾期完成
        RecordFigure("inspection", "2018-12", "accepted", False, "done"),
    ]
    s = suggest(RULES, "10.1", Decimal(5), recs, END)
    assert s is not None and s.points == Decimal("3.75")  # 3 of 4 done; no late deduction
    assert s.breakdown["late"] == 1 and s.breakdown["late_deduction"] == Decimal(0)
    strict = RoutineRules.from_config(
        {
            **CONFIG,
            "suggestion": {
                "10.1": {
                    "kinds": ["meeting", "inspection", "task"],
                    "formula": "share_completed",
                    "late_deduction": "0.5",
                }
            },
        },
        "Asia/Shanghai",
    )
    s = suggest(strict, "10.1", Decimal(5), recs, END)
    assert s is not None and s.points == Decimal("3.25")  # another scheme may deduct for late


def test_suggestion_10_1_without_records_is_full_and_flagged() -> None:
    none = suggest(RULES, "10.1", Decimal(5), [], END)
    assert none is not None and none.points == Decimal("5.00")
    assert none.breakdown["no_records"] is True
    only_rejected = [RecordFigure("meeting", "2018-09", "rejected", False, "done")]
    s = suggest(RULES, "10.1", Decimal(5), only_rejected, END)
    assert s is not None and s.points == Decimal("5.00") and s.breakdown["no_records"] is True


def test_another_scheme_quota() -> None:
    other = RoutineRules.from_config(
        {**CONFIG, "quotas": {"monthly_info": {"period": "month", "minimum": 3}}}, "Asia/Shanghai"
    )
    recs = [RecordFigure("monthly_info", "2018-08", "accepted", False)] * 2
    lines = count_periods(other, "monthly_info", recs, END)
    assert lines[0].minimum == 3 and not lines[0].is_met
    assert count_periods(RULES, "monthly_info", recs, END)[0].is_met


def test_a_running_month_is_not_held_against_the_department() -> None:
    """Scored on 5 December with every month to November met: December is still running, so
    it is not "not met" (8 of 8, not 6.40); once met early it counts like any other."""
    met = [RecordFigure("monthly_info", f"2018-{m:02d}", "accepted", False) for m in
           (8, 8, 9, 9, 10, 10, 11, 11)]  # fmt: skip
    december_5 = utc(2018, 12, 5)
    s = suggest(RULES, "9.1", Decimal(8), met, december_5)
    assert s is not None and s.points == Decimal("8.00")
    assert (s.breakdown["periods"], s.breakdown["running"]) == (4, ["2018-12"])
    assert s.breakdown["pending"] == 0
    early = [*met, *[RecordFigure("monthly_info", "2018-12", "accepted", False)] * 2]
    s = suggest(RULES, "9.1", Decimal(8), early, december_5)
    assert s is not None and (s.breakdown["periods"], s.breakdown["running"]) == (5, [])
    # November unmet and over: it counts against them, running or not.
    short = [r for r in met if r.period != "2018-11"]
    s = suggest(RULES, "9.1", Decimal(8), short, december_5)
    assert s is not None and s.points == Decimal("6.00")  # 3 of 4
    # After the year, the unmet December counts: 4 of 5.
    s = suggest(RULES, "9.1", Decimal(8), met, END)
    assert s is not None and s.points == Decimal("6.40")


def test_one_choice_of_the_kinds_a_rule_counts() -> None:
    """`kinds`, else `kind`, else the point's own kind (the evidence of a point without a
    rule); the item's evidence and the watch over scored items read the same answer."""
    assert feeding_kinds(CONFIG["suggestion"]["10.1"], "task") == ["meeting", "inspection", "task"]
    assert feeding_kinds({"kind": "monthly_info", "kinds": []}, "task") == ["monthly_info"]
    assert feeding_kinds({"formula": "share_completed"}, "quarterly_case") == ["quarterly_case"]
    assert feeding_kinds(None, "quarterly_case") == ["quarterly_case"]
    assert feeding_kinds({"formula": "share_completed"}) == []


def test_the_engine_and_the_watch_share_the_choice_of_kinds() -> None:
    """`pipeline.routine_kinds` (a point's evidence) and the kinds `routine` watches for
    scored items (every rule's) are the same function's answers."""
    from workflow.models import Assessment, ScoringPoint
    from workflow.pipeline import routine_kinds
    from workflow.routine import _feeding_kinds

    assessment = Assessment(routine_config=CONFIG, timezone="Asia/Shanghai", year=2018)
    points = {
        code: ScoringPoint(code=code, routine=kind)
        for code, kind in (("9.1", "monthly_info"), ("9.2", "quarterly_case"), ("10.1", "task"),
                           ("9.3", "quarterly_case"))
    }  # fmt: skip
    ruled = {k for code in CONFIG["suggestion"] for k in routine_kinds(assessment, points[code])}
    assert _feeding_kinds(assessment) == ruled == {
        "monthly_info", "quarterly_case", "meeting", "inspection", "task"
    }  # fmt: skip
    assert routine_kinds(assessment, points["9.3"]) == ["quarterly_case"]  # no rule: its own
    assert routine_kinds(assessment, ScoringPoint(code="1.1", routine=None)) == []


def test_a_drift_names_the_record_kinds_and_periods_that_moved_it() -> None:
    """Scored on 5 December with August to November met: a September record changed since
    (of the point's kind; a meeting is not), and December ended short of its quota."""
    from workflow.models import Assessment, ScoringPoint
    from workflow.routine import DriftCause, PointDrift, drift_causes, period_words

    assert (str(period_words("2018-03")), str(period_words("2018-Q3"))) == (
        "2018年3月", "2018年第三季度"
    )  # fmt: skip
    assert period_words("2018-13") == "2018-13"  # no period: as it is
    assessment = Assessment(routine_config=CONFIG, timezone="Asia/Shanghai", year=2018)
    point = ScoringPoint(code="9.1", routine="monthly_info", max_points=Decimal(8))
    drift = [PointDrift("9.1", Decimal("8.00"), Decimal("6.40"), Decimal("8.00"))]
    met = [RecordFigure("monthly_info", f"2018-{m:02d}", "accepted", False) for m in
           (8, 8, 9, 9, 10, 10, 11, 11)]  # fmt: skip
    changed = [("monthly_info", "2018-09"), ("meeting", "2018-09")]
    (moved,) = drift_causes(assessment, drift, [point], met, utc(2018, 12, 5), END, changed)
    assert moved.causes == (
        DriftCause("2018-09", "monthly_info", "record_changed"),
        DriftCause("2018-12", "monthly_info", "period_ended"),
    )
    assert str(moved.causes_phrase) == (
        "变化所在：2018年9月“放管服”信息（月报）记录有变化；"
        "2018年12月“放管服”信息（月报）期间已结束且未达要求"
    )
    # Scored after December ended: its end moved nothing.
    (later,) = drift_causes(assessment, drift, [point], met, utc(2019, 1, 5), END)
    assert later.causes == () and later.causes_phrase is None


#: The 2018 quotas with monthly reports due by the 5th working day after their month.
DUE_IN_WORKING_DAYS = {
    "monthly_info": {"period": "month", "minimum": 2, "due_working_days": 5},
    "quarterly_case": {"period": "quarter", "minimum": 1},
}


def _due_in_working_days(
    add_working_days: Callable[[dt.date, int], dt.date] | None = None,
) -> RoutineRules:
    """The 2018 rules with monthly reports due by the 5th working day after their month."""
    return RoutineRules.from_config(
        {**CONFIG, "quotas": DUE_IN_WORKING_DAYS}, "Asia/Shanghai",
        add_working_days=add_working_days,
    )  # fmt: skip


def test_a_period_not_yet_due_is_not_held_against_the_department() -> None:
    """Reports due by the 5th working day after the month (September 2018: Friday 12 October,
    1–7 October off): on 10 October a department with one September report is still on
    time for the second, so September is not "not met" yet (8.00, not 8 × 1/2 = 4.00); from
    13 October it is."""
    from workflow.workdays import WorkCalendar

    rules = _due_in_working_days(WorkCalendar().add_working_days)
    records = [
        RecordFigure("monthly_info", "2018-08", "accepted", False),
        RecordFigure("monthly_info", "2018-08", "accepted", False),
        RecordFigure("monthly_info", "2018-09", "accepted", False),
    ]
    s = suggest(rules, "9.1", Decimal(8), records, utc(2018, 10, 10, 2))
    assert s is not None and s.points == Decimal("8.00")
    assert (s.breakdown["periods"], s.breakdown["running"]) == (1, ["2018-09", "2018-10"])
    # 12 October 23:59 in Shanghai: still due; 13 October 00:01: September counts, unmet.
    s = suggest(rules, "9.1", Decimal(8), records, utc(2018, 10, 12, 15, 59))
    assert s is not None and s.points == Decimal("8.00")
    s = suggest(rules, "9.1", Decimal(8), records, utc(2018, 10, 12, 16, 1))
    assert s is not None and s.points == Decimal("4.00")
    assert (s.breakdown["periods"], s.breakdown["running"]) == (2, ["2018-10"])
    # The second September report, on time on 12 October: September is met.
    done = [*records, RecordFigure("monthly_info", "2018-09", "accepted", False)]
    s = suggest(rules, "9.1", Decimal(8), done, utc(2018, 10, 12, 16, 1))
    assert s is not None and s.points == Decimal("8.00")
    # Quarterly cases keep the 2018 rule: due when the quarter ends.
    s = suggest(rules, "9.2", Decimal(7), [], utc(2018, 10, 10, 2))
    assert s is not None and s.points == Decimal("0.00") and s.breakdown["running"] == ["2018-Q4"]


def test_a_working_day_due_rule_without_a_calendar_is_refused_not_guessed() -> None:
    """Counting such a rule from the period's end would hold a period against a department
    that is still on time: without the calendar the suggestion is refused, not guessed."""
    with pytest.raises(ValueError, match="working-day calendar"):
        suggest(_due_in_working_days(), "9.1", Decimal(8), [], utc(2018, 10, 10))


def test_a_drift_names_a_period_once_it_is_due() -> None:
    """Scored on 10 October (September not yet due), a September short of its quota moves the
    suggestion once it is due (13 October), not when the month ended."""
    from workflow.models import Assessment, ScoringPoint
    from workflow.routine import DriftCause, PointDrift, drift_causes
    from workflow.workdays import WorkCalendar

    assessment = Assessment(
        routine_config={**CONFIG, "quotas": DUE_IN_WORKING_DAYS},
        timezone="Asia/Shanghai",
        year=2018,
    )
    point = ScoringPoint(code="9.1", routine="monthly_info", max_points=Decimal(8))
    drift = [PointDrift("9.1", Decimal("8.00"), Decimal("4.00"), Decimal("8.00"))]
    short = [RecordFigure("monthly_info", "2018-08", "accepted", False)] * 2 + [
        RecordFigure("monthly_info", "2018-09", "accepted", False)
    ]
    calendar = WorkCalendar().add_working_days
    (moved,) = drift_causes(
        assessment, drift, [point], short, utc(2018, 10, 2), utc(2018, 10, 14),
        add_working_days=calendar,
    )  # fmt: skip
    assert moved.causes == (DriftCause("2018-09", "monthly_info", "period_ended"),)


def test_the_suggested_reason_is_chinese_whatever_the_interface() -> None:
    """The reason the score form prefills is stored and read by the department: Chinese, from
    the engine, with the periods as people say them — not the page's language (an English
    interface saved an English reason before)."""
    from scoring.routine import Suggestion
    from workflow import messages
    from workflow.routine import suggested_reason

    short = Suggestion("9.1", Decimal(8), Decimal("4.80"), {
        "formula": "share_of_periods", "periods": 5, "periods_met": 3,
        "short": ["2018-09", "2018-Q4"], "late": 2, "late_deduction": Decimal("0.5"),
    })  # fmt: skip
    missed = Suggestion("10.1", Decimal(5), Decimal("3.75"), {
        "formula": "share_completed", "counted": 4, "missed": 1, "late": 0,
        "late_deduction": Decimal(0),
    })  # fmt: skip
    full = Suggestion("9.2", Decimal(7), Decimal(7), {"formula": "share_of_periods"})
    before = messages._translator
    messages.set_translator(lambda template, params, code: "English")  # an English reader
    try:
        assert suggested_reason(short) == (
            "平时考核：2018年9月、2018年第四季度未达到报送要求（达标 3/5 期）；"
            "迟报 2 篇，每篇扣 0.5 分"
        )
        assert suggested_reason(missed) == "平时考核：未完成 1 件（计入 4 件）"
        assert suggested_reason(full) is None
    finally:
        messages.set_translator(before)
