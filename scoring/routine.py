"""Routine assessment (平时考核): periods, due dates, quotas and suggested scores.

Pure functions over plain data. Periods are cut in the scheme's time zone (Asia/Shanghai):
a report made at 2018-08-31 23:30 in Shanghai (15:30 UTC) belongs to August.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from scoring.totals import quantize

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")
KINDS = ("monthly_info", "quarterly_case", "meeting", "inspection", "task")
KIND_LABELS = {
    "monthly_info": "“放管服”信息（月报）",
    "quarterly_case": "经验做法/典型案例（季报）",
    "meeting": "参会情况",
    "inspection": "督查检查/迎检",
    "task": "临时性工作",
}


class PeriodError(ValueError):
    """A period text that is neither `YYYY-MM` nor `YYYY-Qn`; `text` is what was given."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"期间格式应为 2018-08 或 2018-Q3：“{text}”")


@dataclass(frozen=True, order=True)
class Period:
    """A month (`2018-08`) or a quarter (`2018-Q3`)."""

    year: int
    start_month: int
    months: int  # 1 for a month, 3 for a quarter

    @property
    def label(self) -> str:
        """Return the period as text, the way the API writes it."""
        if self.months == 1:
            return f"{self.year}-{self.start_month:02d}"
        return f"{self.year}-Q{(self.start_month - 1) // 3 + 1}"

    def starts_at(self, tz: ZoneInfo) -> dt.datetime:
        """Return the first instant of the period, in UTC."""
        return dt.datetime(self.year, self.start_month, 1, tzinfo=tz).astimezone(dt.UTC)

    def ends_at(self, tz: ZoneInfo) -> dt.datetime:
        """Return the first instant after the period (its due time), in UTC."""
        month = self.start_month + self.months
        year = self.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        return dt.datetime(year, month, 1, tzinfo=tz).astimezone(dt.UTC)


def parse_period(text: str) -> Period:
    """Parse `2018-08` or `2018-Q3`."""
    text = (text or "").strip()
    m = MONTH_RE.match(text)
    if m:
        return Period(int(m.group(1)), int(m.group(2)), 1)
    q = QUARTER_RE.match(text)
    if q:
        return Period(int(q.group(1)), (int(q.group(2)) - 1) * 3 + 1, 3)
    raise PeriodError(text)


def period_of(moment: dt.datetime, unit: str, tz: ZoneInfo) -> Period:
    """Return the month or quarter containing a moment, in the scheme's time zone."""
    local = moment.astimezone(tz)
    if unit == "month":
        return Period(local.year, local.month, 1)
    return Period(local.year, (local.month - 1) // 3 * 3 + 1, 3)


def periods_between(first: Period, last: Period, unit: str) -> list[Period]:
    """Return every month or quarter from the one containing `first` to `last`."""
    step = 1 if unit == "month" else 3
    start = first.start_month if unit == "month" else (first.start_month - 1) // 3 * 3 + 1
    current = Period(first.year, start, step)
    out = []
    while (current.year, current.start_month) <= (last.year, last.start_month):
        out.append(current)
        month = current.start_month + step
        current = Period(current.year + (month - 1) // 12, (month - 1) % 12 + 1, step)
    return out


# How an office-registered task went for the department (参会准时/迟到/缺席 and the like).
OUTCOMES = ("done", "late", "missed")
OUTCOME_LABELS = {
    "done": "按时完成（准时参会）",
    "late": "逾期完成（迟到）",
    "missed": "未完成（缺席）",
}


def feeding_kinds(spec: Mapping[str, Any] | None, own: str | None = None) -> list[str]:
    """The record kinds a suggestion rule (a scheme's `routine.suggestion.<code>`) counts:
    its `kinds`, else its `kind`; without either, `own` (the routine kind the scoring point
    itself names, whose records stand as its evidence), else none.

    The one choice of kinds: the evidence of a routine point (`workflow.pipeline`), the
    records whose change is watched for scored items (`workflow.routine`) and the counting
    of `suggest` all read it here.
    """
    spec = spec or {}
    kinds = spec.get("kinds") or ([spec["kind"]] if spec.get("kind") else [own])
    return [str(k) for k in kinds if k]


@dataclass(frozen=True)
class RecordFigure:
    """What counting needs of one routine record."""

    kind: str
    period: str
    status: str  # submitted / accepted / rejected / withdrawn
    is_late: bool  # the department's own report came after its due time
    outcome: str | None = None  # tasks: done / late / missed (None: done)


@dataclass(frozen=True)
class PeriodCount:
    """One period's line: accepted against the quota, late and rejected counts."""

    period: str
    accepted: int
    late: int
    rejected: int
    pending: int
    minimum: int

    @property
    def is_met(self) -> bool:
        """Tell whether the accepted records meet the quota."""
        return self.accepted >= self.minimum

    @property
    def is_missing(self) -> bool:
        """Tell whether nothing at all was submitted for the period."""
        return self.accepted + self.rejected + self.pending == 0


@dataclass(frozen=True)
class Suggestion:
    """A suggested score for a scoring point and how it was reached."""

    code: str
    max_points: Decimal
    points: Decimal
    breakdown: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutineRules:
    """The routine part of a scheme: counting window, quotas, suggestion formulas."""

    counting_starts: Period
    counting_ends: Period
    quotas: Mapping[str, tuple[str, int]]  # kind -> (unit, minimum)
    suggestions: Mapping[str, Mapping[str, Any]]  # code -> {kind(s), formula, late_deduction}
    tz: ZoneInfo
    # `due_working_days: N`: due at the end of the Nth working day after the period; per kind
    # in its quota, or for every kind. Absent: due when the period ends (the 2018 rules).
    due_working_days: Mapping[str, int] = field(default_factory=dict)
    default_due_working_days: int | None = None
    # The working-day calendar (`add_working_days(day, n)`) the due times of such a rule are
    # counted with; the engine gives its own (`workflow.routine.due_calendar`).
    add_working_days: Callable[[dt.date, int], dt.date] | None = field(
        default=None, compare=False, repr=False
    )

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        timezone: str,
        year: int = 2018,
        add_working_days: Callable[[dt.date, int], dt.date] | None = None,
    ) -> RoutineRules:
        """Read the `routine` section of a scheme file; no window: all of `year`."""
        quotas = {
            kind: (str(q.get("period", "month")), int(q.get("minimum", 1)))
            for kind, q in (config.get("quotas") or {}).items()
        }
        due_days = {
            kind: int(q["due_working_days"])
            for kind, q in (config.get("quotas") or {}).items()
            if q.get("due_working_days") is not None
        }
        default_due = config.get("due_working_days")
        return cls(
            counting_starts=parse_period(str(config.get("counting_starts", f"{year}-01"))),
            counting_ends=parse_period(str(config.get("counting_ends", f"{year}-12"))),
            quotas=quotas,
            suggestions=dict(config.get("suggestion") or {}),
            tz=ZoneInfo(timezone),
            due_working_days=due_days,
            default_due_working_days=int(default_due) if default_due is not None else None,
            add_working_days=add_working_days,
        )

    @property
    def counts_working_days(self) -> bool:
        """Tell whether some kind is due a number of working days after its period."""
        return bool(self.due_working_days) or self.default_due_working_days is not None

    def working_days_rule(self, kind: str | None) -> int | None:
        """Return N of a kind's "Nth working day after the period" rule, None without one."""
        if kind is not None and kind in self.due_working_days:
            return self.due_working_days[kind]
        return self.default_due_working_days

    def due_at(
        self,
        period: Period,
        kind: str | None = None,
        add_working_days: Callable[[dt.date, int], dt.date] | None = None,
    ) -> dt.datetime:
        """Return when a record is due: the end of its period, or of the Nth working day after.

        `add_working_days(day, n)` is the working-day calendar (default: the rules' own).
        """
        count = self.working_days_rule(kind)
        if count is None:
            return period.ends_at(self.tz)
        add_working_days = add_working_days or self.add_working_days
        if add_working_days is None:
            raise ValueError("a working-day due rule needs the working-day calendar")
        last_day = period.ends_at(self.tz).astimezone(self.tz).date() - dt.timedelta(days=1)
        due_day = add_working_days(last_day, count) + dt.timedelta(days=1)
        return dt.datetime.combine(due_day, dt.time(0), tzinfo=self.tz).astimezone(dt.UTC)

    def counted_periods(self, kind: str, now: dt.datetime) -> list[Period]:
        """Return the periods of a kind inside the counting window that have begun by `now`."""
        unit, _minimum = self.quotas[kind]
        return [
            p
            for p in periods_between(self.counting_starts, self.counting_ends, unit)
            if p.starts_at(self.tz) <= now
        ]


def count_periods(
    rules: RoutineRules, kind: str, records: Iterable[RecordFigure], now: dt.datetime
) -> list[PeriodCount]:
    """Count a kind's records per period of the counting window against its quota."""
    _unit, minimum = rules.quotas[kind]
    lines: dict[str, dict[str, int]] = {
        p.label: {"accepted": 0, "late": 0, "rejected": 0, "pending": 0}
        for p in rules.counted_periods(kind, now)
    }
    for r in records:
        if r.kind != kind or r.period not in lines or r.status == "withdrawn":
            continue
        line = lines[r.period]
        if r.status == "accepted":
            line["accepted"] += 1
            if r.is_late:
                line["late"] += 1
        elif r.status == "rejected":
            line["rejected"] += 1
        else:
            line["pending"] += 1
    return [PeriodCount(period=p, minimum=minimum, **c) for p, c in lines.items()]


def suggest(
    rules: RoutineRules,
    code: str,
    max_points: Decimal,
    records: Iterable[RecordFigure],
    now: dt.datetime,
) -> Suggestion | None:
    """Turn routine counts into a suggested score for a scoring point (None if not routine).

    share_of_periods: max × (periods meeting the quota / periods counted) − late deductions; a
    period not yet due at `now` (still running, or within the working days a `due_working_days`
    rule gives after it) is counted only when its quota is already met (`running` names the
    others): the department may still report on time.
    share_completed: max × (tasks completed / tasks counted) − late deductions, counting only
    accepted records: rejected ones (duplicates, mistakes) and withdrawn ones are left out, not
    held against the department. A task done late (迟到, 逾期) counts as completed and as
    late; a missed one (缺席, 未完成) as not completed. No task recorded: full marks, since
    nothing was missed (flagged `no_records` so the scorer sees it). `share_accepted` is the
    old name of the same formula. The late deduction defaults to 0: the 2018 rules define none.
    """
    spec = rules.suggestions.get(code)
    if spec is None:
        return None
    records = [r for r in records if r.status != "withdrawn"]
    late_deduction = Decimal(str(spec.get("late_deduction", "0")))
    formula = spec.get("formula", "share_of_periods")
    if formula == "share_of_periods":
        kind = str(spec["kind"])
        # A period not yet due counts once its quota is met, and is not held against the
        # department before its reports are due: scored on 5 December, December is not yet
        # "not met"; with reports due by the 5th working day after the month, scored on 10
        # October, neither is September (due on 12 October), whose end has passed.
        running = {p.label for p in rules.counted_periods(kind, now) if rules.due_at(p, kind) > now}
        lines = [
            line
            for line in count_periods(rules, kind, records, now)
            if line.is_met or line.period not in running
        ]
        met = sum(1 for line in lines if line.is_met)
        late = sum(line.late for line in lines)
        share = Decimal(met) / Decimal(len(lines)) if lines else Decimal(1)
        breakdown: dict[str, Any] = {
            "formula": formula,
            "periods": len(lines),
            "periods_met": met,
            # Which periods fell short: what the score deducts for, named to the department.
            "short": [line.period for line in lines if not line.is_met],
            "running": sorted(running - {line.period for line in lines}),
            # Sent but not yet reviewed: not counted until accepted (the scorer should know).
            "pending": sum(line.pending for line in lines),
            "late": late,
            "late_deduction": late_deduction,
        }
    elif formula in ("share_completed", "share_accepted"):
        kinds = set(feeding_kinds(spec))
        mine = [r for r in records if r.kind in kinds]
        counted = [r for r in mine if r.status == "accepted"]
        missed = sum(1 for r in counted if r.outcome == "missed")
        late = sum(1 for r in counted if r.outcome == "late" or (r.outcome is None and r.is_late))
        completed = len(counted) - missed
        share = Decimal(completed) / Decimal(len(counted)) if counted else Decimal(1)
        breakdown = {
            "formula": "share_completed",
            "counted": len(counted),
            "completed": completed,
            "missed": missed,
            "late": late,
            "rejected": sum(1 for r in mine if r.status == "rejected"),
            "pending": sum(1 for r in mine if r.status == "submitted"),
            "no_records": not counted,
            "late_deduction": late_deduction,
        }
    else:
        raise ValueError(f"unknown suggestion formula {formula!r} for {code}")
    raw = max_points * share - late_deduction * late
    points = quantize(min(max(raw, Decimal(0)), max_points))
    breakdown["share"] = quantize(share * 100)
    return Suggestion(code=code, max_points=max_points, points=points, breakdown=breakdown)
