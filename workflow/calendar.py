"""The assessment's stage calendar and the office's holiday overrides, audited.

Stages: 自评提交截止 (submit), 初审截止 (review), 核实截止 (verify), 评分截止 (score) are rows of
`stage_deadlines`; 公示 and the appeal window are the assessment's publication fields
(`published_at`, `appeal_opens_at`, `appeal_closes_at`), shown here, set by publishing. A
deadline is a date, or N Chinese working days after the previous stage's deadline.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import unicodedata
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.assessments import assessment_status
from workflow.audit import canonical_json, record_event
from workflow.db import lock_key, lock_row, serialise
from workflow.errors import BadRequest, Conflict, Forbidden, InvalidValue, NotFound
from workflow.fingerprints import check_seen, fingerprint
from workflow.holiday_notice import Arrangement, read_arrangement
from workflow.messages import N_, Note, Phrase, Term
from workflow.models import Assessment, CalendarOverride, Item, StageDeadline, User, utcnow
from workflow.states import Role, State
from workflow.workdays import UNKNOWN_YEAR, UnknownYear, WorkCalendar, local_date

# The stages with a deadline the office sets, in order, and their Chinese names.
STAGES: tuple[tuple[str, str], ...] = (
    ("submit", N_("自评提交截止")),
    ("review", N_("初审截止")),
    ("verify", N_("核实截止")),
    ("score", N_("评分截止")),
)
STAGE_LABELS = {**dict(STAGES), "publication": "公示", "appeal": "申诉期"}
# The items a stage still waits for: those not yet past it.
PENDING_STATES: dict[str, tuple[State, ...]] = {
    "submit": (State.DRAFT, State.RETURNED),
    "review": (State.SUBMITTED,),
    "verify": (State.REVIEWED,),
    "score": (State.VERIFIED,),
}
STAGE_OF_STATE = {s: stage for stage, states in PENDING_STATES.items() for s in states}
MAX_STAGE_WORKING_DAYS = 250
#: From this day of the year (month, day; Asia/Shanghai) next year's holidays are asked for.
NEXT_YEAR_FROM = (11, 1)
MAX_REASON = 500
# Dates the calendar accepts: far enough for any assessment, never near the end of `date`.
MIN_YEAR, MAX_YEAR = 2000, 2100
YEAR_RANGE = N_("日期年份须在 %(min)s 到 %(max)s 之间")
YEARS = {"min": MIN_YEAR, "max": MAX_YEAR}
#: The refusals of an override change a working-day deadline cannot take (year: of the
#: assessment; stage: its label; missing: the year no longer known; reason: the order broken).
OVERRIDE_NEEDED_REMOVED = N_(
    "不能删除该工作日调整：%(year)s 年度考核的%(stage)s按工作日计算，要用到录入的 %(missing)s 年"
    "安排，删除后将无法计算该期限。请先修改该阶段的截止日期"
)
OVERRIDE_BREAKS_ORDER = N_(
    "该工作日调整会使 %(year)s 年度考核的%(stage)s变为 %(due_on)s，%(reason)s；未保存。"
    "请先修改该年度的阶段截止日期"
)
OVERRIDE_BREAKS_ORDER_REMOVED = N_(
    "删除该工作日调整会使 %(year)s 年度考核的%(stage)s变为 %(due_on)s，%(reason)s；未删除。"
    "请先修改该年度的阶段截止日期"
)


def _require_admin(actor: User) -> None:
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("只有管理员可以修改考核日程", code="role_required")


def parse_day(value: Any, what: str) -> dt.date | None:
    """Read `YYYY-MM-DD` (or a date) as a day; empty is None; anything else a clear refusal."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise BadRequest(
            "%(what)s须为日期文本（如 2018-10-08）", code="invalid_type", params={"what": what}
        )
    try:  # full-width digits (a Chinese input method's) read as ASCII ones
        day = dt.date.fromisoformat(unicodedata.normalize("NFKC", value).strip())
    except ValueError:
        raise InvalidValue(
            "%(what)s不是有效日期：%(value)s",
            code="bad_date",
            params={"what": what, "value": value[:20]},
        ) from None
    if not MIN_YEAR <= day.year <= MAX_YEAR:  # year 1 or 9999 overflows the working-day spans
        raise InvalidValue(
            "%(what)s的年份须在 %(min)s 到 %(max)s 之间",
            code="bad_date",
            params={"what": what, "min": MIN_YEAR, "max": MAX_YEAR},
        )
    return day


def parse_working_days(value: Any) -> int | None:
    """Read a working-day count (1 … 250) from a form; empty is None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()  # １０ typed full-width is 10
        digits = text[1:] if text[:1] in ("-", "+") else text
        if digits.isascii() and digits.isdecimal() and len(digits) <= 18:
            value = int(text)  # "-1" is a number out of range, not "not a number"
    return check_working_days(value)


def check_working_days(value: Any) -> int | None:
    """Return a working-day count if it is an integer in 1 … 250 (None stays None); refuse
    anything else with a clear message, before any count is attempted."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("工作日数须为整数", code="invalid_type")
    if not 1 <= value <= MAX_STAGE_WORKING_DAYS:
        raise InvalidValue(
            "工作日数须在 1 到 %(max)s 之间",
            code="bad_working_days",
            params={"max": MAX_STAGE_WORKING_DAYS},
        )
    return value


def work_calendar(session: Session) -> WorkCalendar:
    """Return the working-day calendar with the office's overrides."""
    rows = session.execute(select(CalendarOverride.day, CalendarOverride.is_workday)).all()
    return WorkCalendar({day: is_workday for day, is_workday in rows})


def year_known(calendar: WorkCalendar, year: int) -> bool:
    """Tell whether the calendar can count the working days of `year`: the holiday package
    knows it, or the office entered it (`UnknownYear` otherwise)."""
    try:
        calendar.is_workday(dt.date(year, 6, 1))
    except UnknownYear:
        return False
    return True


def next_year_needed(calendar: WorkCalendar, today: dt.date) -> int | None:
    """From 1 November (the State Council's notice is out about then, the package learns it a
    release later), next year when the calendar does not know it yet; else None."""
    if (today.month, today.day) >= NEXT_YEAR_FROM and not year_known(calendar, today.year + 1):
        return today.year + 1
    return None


def today_of(assessment: Assessment, now: dt.datetime | None = None) -> dt.date:
    """Return today's date in the assessment's time zone (Asia/Shanghai)."""
    return local_date(now or utcnow(), ZoneInfo(assessment.timezone))


def stage_rows(session: Session, assessment: Assessment) -> dict[str, StageDeadline]:
    """Return the stored deadline rules of an assessment by stage."""
    rows = session.execute(
        select(StageDeadline).where(StageDeadline.assessment_id == assessment.id)
    ).scalars()
    return {r.stage: r for r in rows}


@dataclass(frozen=True)
class Deadline:
    """A stage's resolved dates and how its deadline was given."""

    stage: str
    starts_on: dt.date | None
    due_on: dt.date | None
    working_days: int | None = None
    #: What a count of working days runs from: "previous" (the last deadline before the
    #: stage) or "start" (the stage's own start date, when no earlier stage has a deadline).
    counts_from: str | None = None


def counts_from(rows: dict[str, StageDeadline], stage: str) -> str | None:
    """Tell what a stage's working-day count runs from ("start" or "previous"; None for a
    date): the previous deadline, or the stage's own start when no stage before has one."""
    row = rows.get(stage)
    if row is None or row.working_days is None:
        return None
    names = [name for name, _label in STAGES]
    earlier = names[: names.index(stage)]
    if any(e in rows and (rows[e].due_on or rows[e].working_days) for e in earlier):
        return "previous"
    return "start"


def resolve_deadlines(
    rows: dict[str, StageDeadline], calendar: WorkCalendar
) -> dict[str, Deadline]:
    """Turn the stored rules into dates, stage by stage; raise UnknownYear when it cannot."""
    out: dict[str, Deadline] = {}
    previous_due: dt.date | None = None
    for stage, _label in STAGES:
        row = rows.get(stage)
        starts = row.starts_on if row is not None else None
        if starts is None and previous_due is not None:
            starts = previous_due + dt.timedelta(days=1)
        due = row.due_on if row is not None else None
        count = row.working_days if row is not None else None
        if due is None and count is not None:
            base = previous_due if previous_due is not None else row.starts_on if row else None
            if base is not None:
                due = calendar.add_working_days(base, count)
        out[stage] = Deadline(stage, starts, due, count, counts_from(rows, stage))
        previous_due = due or previous_due
    return out


def deadlines_of(session: Session, assessment: Assessment) -> dict[str, Deadline]:
    """Return the assessment's resolved stage deadlines (raises UnknownYear)."""
    return resolve_deadlines(stage_rows(session, assessment), work_calendar(session))


def _last_day(closes_at: dt.datetime, tz: ZoneInfo) -> dt.date:
    # A window closing at midnight ends with the day before.
    return local_date(closes_at - dt.timedelta(microseconds=1), tz)


@dataclass(frozen=True)
class StageView:
    """One line of the calendar as the portal and the API show it."""

    name: str
    label: str
    starts_on: dt.date | None
    due_on: dt.date | None
    working_days: int | None
    working_days_left: int | None
    overdue: bool
    pending: int | None
    is_running: bool
    #: Why the working days cannot be counted (a year the calendar does not know), a
    #: `Phrase` read in the page's language; `unknown_year`, that year.
    problem: str | None = None
    unknown_year: int | None = None
    #: What `working_days` counts from: "start" (the stage's start) or "previous" (the
    #: previous deadline); None for a date.
    counts_from: str | None = None
    #: The year of the office's own arrangement (not the State Council's, which the system
    #: does not have yet) that this stage's dates are counted on, if any.
    entered_year: int | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the API's representation."""
        return {
            "name": self.name,
            "label": self.label,
            "starts_on": self.starts_on.isoformat() if self.starts_on else None,
            "due_on": self.due_on.isoformat() if self.due_on else None,
            "working_days": self.working_days,
            "counts_from": self.counts_from,
            "working_days_left": self.working_days_left,
            "overdue": self.overdue,
            "pending": self.pending,
            "is_running": self.is_running,
            "problem": self.problem,
            "entered_year": self.entered_year,
        }


def _pending_counts(session: Session, assessment: Assessment) -> dict[str, int]:
    counts = dict(
        session.execute(
            select(Item.state, func.count())
            .where(Item.assessment_id == assessment.id)
            .group_by(Item.state)
        ).all()
    )
    return {
        stage: sum(counts.get(s.value, 0) for s in states)
        for stage, states in PENDING_STATES.items()
    }


def stage_calendar(
    session: Session, assessment: Assessment, now: dt.datetime | None = None
) -> list[StageView]:
    """Return every stage with its dates, working days left and whether it is overdue."""
    now = now or utcnow()
    tz = ZoneInfo(assessment.timezone)
    today = local_date(now, tz)
    calendar = work_calendar(session)
    problem: str | None = None
    unknown: int | None = None
    try:
        deadlines = resolve_deadlines(stage_rows(session, assessment), calendar)
    except UnknownYear as exc:
        problem, unknown = Phrase(UNKNOWN_YEAR, {"year": exc.year}), exc.year
        rows = stage_rows(session, assessment)
        deadlines = {
            stage: Deadline(
                stage,
                rows[stage].starts_on if stage in rows else None,
                rows[stage].due_on if stage in rows else None,
                rows[stage].working_days if stage in rows else None,
                counts_from(rows, stage),
            )
            for stage, _label in STAGES
        }
    pending = _pending_counts(session, assessment)
    views = []
    status = assessment_status(assessment, now)
    for stage, label in STAGES:
        d = deadlines[stage]
        left, stage_problem, stage_unknown = _left(calendar, today, d.due_on)
        resolving = bool(d.working_days and not d.due_on)
        running = (d.starts_on is None or d.starts_on <= today) and (
            d.due_on is None or today <= d.due_on
        )
        views.append(
            StageView(
                name=stage,
                label=label,
                starts_on=d.starts_on,
                due_on=d.due_on,
                working_days=d.working_days,
                counts_from=d.counts_from,
                working_days_left=left,
                overdue=d.due_on is not None and today > d.due_on and pending[stage] > 0,
                pending=pending[stage],
                is_running=running and pending[stage] > 0,
                problem=stage_problem or (problem if resolving else None),
                unknown_year=stage_unknown or (unknown if resolving else None),
            )
        )
    windows = (
        ("publication", assessment.published_at, assessment.appeal_closes_at),
        ("appeal", assessment.appeal_opens_at, assessment.appeal_closes_at),
    )
    for stage, opens_at, closes_at in windows:
        starts = local_date(opens_at, tz) if opens_at else None
        due = _last_day(closes_at, tz) if closes_at else None
        if stage == "publication" and assessment.published_at is None:
            due = None
        left, stage_problem, stage_unknown = _left(calendar, today, due)
        running = status == "published" and opens_at is not None and opens_at <= now
        views.append(
            StageView(
                name=stage,
                label=STAGE_LABELS[stage],
                starts_on=starts,
                due_on=due,
                working_days=None,
                working_days_left=left if running else None,
                overdue=False,
                pending=None,
                is_running=running,
                problem=stage_problem if running else None,
                unknown_year=stage_unknown if running else None,
            )
        )
    entered = calendar.entered_years()
    if entered:
        views = [
            dataclasses.replace(v, entered_year=_entered_year(v, today, entered)) for v in views
        ]
    return views


def _entered_year(view: StageView, today: dt.date, entered: frozenset[int]) -> int | None:
    """The first entered year between the stage's start (or today) and its deadline."""
    if view.due_on is None:
        return None
    start = min(view.starts_on or today, today, view.due_on)
    return next((y for y in range(start.year, view.due_on.year + 1) if y in entered), None)


@dataclass(frozen=True)
class EnteredYear:
    """A year counted on the office's own entries, and what was entered for it."""

    year: int
    holidays: int
    workdays: int


def entered_years(session: Session) -> list[EnteredYear]:
    """The years the package does not know that have overrides, with their counts."""
    calendar = work_calendar(session)
    years = calendar.entered_years()
    return [
        EnteredYear(
            year,
            sum(1 for d, w in calendar.overrides.items() if d.year == year and not w),
            sum(1 for d, w in calendar.overrides.items() if d.year == year and w),
        )
        for year in sorted(years)
    ]


#: A deadline on a day off: accepted (the office may mean it), but said (stage, day, next).
NOT_A_WORKDAY = N_("%(stage)s %(day)s 不是工作日（节假日或周末），下一个工作日是 %(next)s")
NOT_A_WORKDAY_LAST = N_("%(stage)s %(day)s 不是工作日（节假日或周末）")


#: A note about an accepted deadline (a day off), naming its stage.
DeadlineNote = Note


def deadline_notes(session: Session, assessment: Assessment) -> list[DeadlineNote]:
    """Name every stage whose deadline, set as a date, falls on a day off, with the next
    working day. A day of a year the calendar does not know is left out: never guessed."""
    calendar = work_calendar(session)
    rows = stage_rows(session, assessment)
    notes = []
    for stage, label in STAGES:
        row = rows.get(stage)
        if row is None or row.due_on is None:
            continue  # a count of working days always ends on one
        try:
            if calendar.is_workday(row.due_on):
                continue
        except UnknownYear:
            continue
        params: dict[str, object] = {"stage": Term(label), "day": row.due_on.isoformat()}
        try:
            params["next"] = calendar.add_working_days(row.due_on, 1).isoformat()
            template = NOT_A_WORKDAY
        except UnknownYear:
            template = NOT_A_WORKDAY_LAST
        notes.append(Note("deadline_not_workday", template, params, stage=stage))
    return notes


def _left(
    calendar: WorkCalendar, today: dt.date, due: dt.date | None
) -> tuple[int | None, str | None, int | None]:
    """Working days left, or why they cannot be counted and the year the calendar lacks."""
    if due is None:
        return None, None, None
    try:
        return calendar.working_days_left(today, due), None, None
    except UnknownYear as exc:
        return None, Phrase(UNKNOWN_YEAR, {"year": exc.year}), exc.year


def _stage_values(row: StageDeadline | None) -> dict[str, Any]:
    """A stage's own fields as its form edits them (no row: all empty)."""
    return {
        "starts_on": row.starts_on if row is not None else None,
        "due_on": row.due_on if row is not None else None,
        "working_days": row.working_days if row is not None else None,
    }


def stage_seen(row: StageDeadline | None) -> str:
    """The fingerprint of one stage's deadline as it is now (its form's `seen`)."""
    return fingerprint(_stage_values(row))


def _override_values(row: CalendarOverride) -> dict[str, Any]:
    return {"day": row.day, "is_workday": row.is_workday, "reason": row.reason}


def override_seen(row: CalendarOverride) -> str:
    """The fingerprint of one override as it is now (its remove form's `seen`)."""
    return fingerprint(_override_values(row))


def _all_overrides(session: Session) -> dict[str, Any]:
    return {"overrides": [_override_values(r) for r in calendar_overrides(session)]}


def overrides_seen(session: Session) -> str:
    """The fingerprint of every override as they are now (the add form's `seen`)."""
    return fingerprint(_all_overrides(session))


def set_stage_deadline(
    session: Session,
    assessment: Assessment,
    stage: str,
    *,
    starts_on: dt.date | None,
    due_on: dt.date | None,
    working_days: int | None,
    actor: User,
    seen: str | None = None,
) -> StageDeadline:
    """Set (or clear) one stage's deadline: a date, or N working days after the stage before.

    Refused, with nothing changed: a date and a count at once, a start or deadline before the
    assessment's year, a deadline before its start or before the previous stage's, a count the
    calendar cannot resolve (an unknown year), and (`seen`: `stage_seen` when the form was
    opened) a stage another admin changed since, 409 `changed_since_opened`. Other stages'
    changes do not count.
    """
    _require_admin(actor)
    if stage not in dict(STAGES):
        raise InvalidValue(
            "未知的考核阶段：%(stage)s", code="unknown_stage", params={"stage": stage[:20]}
        )
    working_days = check_working_days(working_days)
    if due_on is not None and working_days is not None:
        raise InvalidValue("截止日期和工作日数只能填写一项", code="deadline_ambiguous")
    for day in (starts_on, due_on):
        if day is not None and not MIN_YEAR <= day.year <= MAX_YEAR:
            raise InvalidValue(YEAR_RANGE, code="bad_date", params=YEARS)
    _check_in_year(assessment, stage, starts_on, due_on)
    # Lock the assessment row: two admins editing the calendar apply one after the other.
    lock_row(session, Assessment, assessment.id)
    lock_calendar(session)
    rows = stage_rows(session, assessment)
    row = rows.get(stage)
    if seen is not None and row is not None:
        session.refresh(row)  # as the admin who came first left it
    check_seen(seen, _stage_values(row))
    before = _describe(row)
    if row is None:
        row = StageDeadline(assessment_id=assessment.id, stage=stage)
        session.add(row)
    row.starts_on, row.due_on, row.working_days = starts_on, due_on, working_days
    rows[stage] = row
    if stage == STAGES[0][0] and working_days is not None and starts_on is None:
        raise InvalidValue("按工作日计算的自评提交截止须填写开始日期", code="start_required")
    try:
        deadlines = resolve_deadlines(rows, work_calendar(session))
    except UnknownYear as exc:
        raise InvalidValue(
            UNKNOWN_YEAR, code="calendar_unknown_year", params={"year": exc.year}
        ) from None
    _check_order(deadlines)
    row.updated_by_id = actor.id
    row.updated_at = utcnow()
    session.flush()
    after = _describe(row)
    record_event(
        session,
        actor=actor,
        action="stage_deadline_set",
        target_type="assessment",
        target_id=assessment.id,
        payload={
            "stage": stage,
            "before": before,
            "after": after,
            "resolved_due_on": deadlines[stage].due_on,
        },
    )
    return row


def _check_in_year(
    assessment: Assessment, stage: str, starts_on: dt.date | None, due_on: dt.date | None
) -> None:
    """Refuse a start or deadline before the assessment's year: a year's work is done in the
    year and after it, so 2019-10-31 for 2020 is a slip of the year (every item of the stage
    would be overdue the moment it was saved). Later years stay allowed: last year's results
    are scored and published in the next one."""
    first = dt.date(assessment.year, 1, 1)
    for day, what in ((starts_on, "开始日期"), (due_on, STAGE_LABELS[stage])):
        if day is not None and day < first:
            raise InvalidValue(
                "%(what)s %(day)s 早于 %(year)s 年度：考核年度的日程不能早于 %(first)s",
                code="deadline_before_year",
                params={
                    "what": Term(what),
                    "day": day.isoformat(),
                    "year": assessment.year,
                    "first": first.isoformat(),
                },
            )


def set_deadlines(
    session: Session, assessment: Assessment, dates: dict[str, Any], *, actor: User
) -> None:
    """Set several stages' deadlines as dates at once (a new year's form), in stage order;
    each checked and audited as by `set_stage_deadline`. Unknown stages are refused."""
    unknown = sorted(set(dates) - {stage for stage, _label in STAGES})
    if unknown:
        raise InvalidValue(
            "未知的考核阶段：%(stages)s",
            code="unknown_stage",
            params={"stages": "、".join(unknown)},
        )
    for stage, label in STAGES:
        day = parse_day(dates.get(stage), label)
        if day is not None:
            set_stage_deadline(
                session, assessment, stage, starts_on=None, due_on=day, working_days=None,
                actor=actor,
            )  # fmt: skip


def _describe(row: StageDeadline | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {"starts_on": row.starts_on, "due_on": row.due_on, "working_days": row.working_days}


def _check_order(deadlines: dict[str, Deadline]) -> None:
    previous: Deadline | None = None
    for stage, label in STAGES:
        d = deadlines[stage]
        if previous and previous.due_on and d.due_on and d.due_on < previous.due_on:
            prev_label = STAGE_LABELS[previous.stage]
            raise InvalidValue(
                "%(stage)s不能早于%(previous)s",
                code="deadline_order",
                params={"stage": Term(label), "previous": Term(prev_label)},
            )
        if d.starts_on and d.due_on and d.due_on < d.starts_on:
            raise InvalidValue(
                "%(stage)s早于该阶段的开始日期",
                code="deadline_before_start",
                params={"stage": Term(label)},
            )
        if d.working_days and not d.due_on:
            raise InvalidValue(
                "%(stage)s按工作日计算，须先设置上一阶段的截止日期",
                code="previous_deadline_required",
                params={"stage": Term(label)},
            )
        if d.due_on:
            previous = d


def lock_calendar(session: Session) -> None:
    """Queue behind any other change of a stage deadline or an override until this
    transaction ends: each is checked against the other (a deadline in working days counts
    on the overrides), so two of them must not be checked at once, each without the other."""
    serialise(session, lock_key("calendar"))


def _check_calendar_change(
    session: Session, before: WorkCalendar, after: WorkCalendar, *, removing: bool
) -> None:
    """Refuse a change of the overrides that a working-day deadline of any assessment cannot
    take: one it could no longer count (a year nobody entered), or one that would move it out
    of order (after the next stage's deadline, before its own start). All or nothing: the
    first such assessment and stage are named; deadlines the change does not move pass."""
    by_assessment: dict[int, dict[str, StageDeadline]] = {}
    for row in session.execute(select(StageDeadline)).scalars():
        by_assessment.setdefault(row.assessment_id, {})[row.stage] = row
    for aid, rows in sorted(by_assessment.items()):
        if not any(r.working_days for r in rows.values()):
            continue  # dates only: the overrides move nothing
        try:
            old: dict[str, Deadline] | None = resolve_deadlines(rows, before)
        except UnknownYear:
            old = None  # not countable before either: the change makes it no worse
        try:
            new = resolve_deadlines(rows, after)
        except UnknownYear as exc:
            if old is None:
                continue
            label = _unresolvable_stage(rows, after)
            # Only a removal can take away a year's last entry (adding one only adds days).
            raise InvalidValue(
                OVERRIDE_NEEDED_REMOVED,
                code="override_in_use",
                params={"year": _year(session, aid), "stage": Term(label), "missing": exc.year},
            ) from None
        if old is not None and new == old:
            continue
        try:
            _check_order(new)
        except InvalidValue as exc:
            if old is not None and _order_problem(old) == (exc.template, exc.params):
                continue  # out of order before in the same way: this change is not the cause
            moved = next(
                (
                    d
                    for d in new.values()
                    if d.due_on is not None
                    and (d.working_days if old is None else old[d.stage].due_on != d.due_on)
                ),
                None,
            )
            if moved is None or moved.due_on is None:
                continue  # nothing this change moved: an order broken before stays as it was
            template = OVERRIDE_BREAKS_ORDER_REMOVED if removing else OVERRIDE_BREAKS_ORDER
            raise InvalidValue(
                template,
                code="override_breaks_order",
                params={
                    "year": _year(session, aid),
                    "stage": Term(STAGE_LABELS[moved.stage]),
                    "due_on": moved.due_on.isoformat(),
                    "reason": Phrase(exc.template, exc.params),
                },
            ) from None


def _year(session: Session, assessment_id: int) -> int:
    assessment = session.get(Assessment, assessment_id)
    return assessment.year if assessment is not None else 0


def _order_problem(deadlines: dict[str, Deadline]) -> tuple[str, dict[str, object]] | None:
    """The refusal `_check_order` gives these deadlines (template, params), or None."""
    try:
        _check_order(deadlines)
    except InvalidValue as exc:
        return exc.template, exc.params
    return None


def _unresolvable_stage(rows: dict[str, StageDeadline], calendar: WorkCalendar) -> str:
    """The label of the first stage whose working-day deadline the calendar cannot count."""
    upto: dict[str, StageDeadline] = {}
    for stage, label in STAGES:
        if stage in rows:
            upto[stage] = rows[stage]
        try:
            resolve_deadlines(upto, calendar)
        except UnknownYear:
            return label
    return STAGES[-1][1]


def set_calendar_override(
    session: Session,
    day: dt.date,
    is_workday: Any,
    reason: Any,
    *,
    actor: User,
    seen: str | None = None,
) -> CalendarOverride:
    """Declare a day a holiday or a working day, with a reason; replaces an earlier entry.

    Refused, with nothing changed, when it would move an assessment's deadline counted in
    working days out of order (past the next stage's deadline, before its own start), and
    when it would replace the day's entry while the overrides changed since the form was
    opened (`seen`: `overrides_seen` then; 409 `changed_since_opened`): the entry may be one
    another admin made meanwhile. A day without an entry is added whatever changed since.
    """
    _require_admin(actor)
    if not isinstance(is_workday, bool):
        raise BadRequest("is_workday 须为 true 或 false", code="invalid_type")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("原因必须是文本", code="invalid_type")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidValue(
            "请填写调整原因（如：市政府通知 2018 年 X 月 X 日放假）", code="reason_required"
        )
    if len(reason) > MAX_REASON:
        raise InvalidValue(
            "原因过长（最多 %(max)s 字）", code="too_long", params={"max": MAX_REASON}
        )
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidValue(YEAR_RANGE, code="bad_date", params=YEARS)
    # Two admins entering one day at once queue here (FOR UPDATE holds nothing for a day that
    # has no row yet): the second replaces the first's entry instead of failing on the index.
    lock_calendar(session)
    row = session.execute(
        select(CalendarOverride).where(CalendarOverride.day == day).with_for_update()
    ).scalar_one_or_none()
    if row is not None:
        check_seen(seen, _all_overrides(session))
    before = None if row is None else {"is_workday": row.is_workday, "reason": row.reason}
    calendar = work_calendar(session)
    _check_calendar_change(
        session, calendar, WorkCalendar({**calendar.overrides, day: is_workday}), removing=False
    )
    return _put_override(session, row, day, is_workday, reason, actor, before)


def _put_override(
    session: Session,
    row: CalendarOverride | None,
    day: dt.date,
    is_workday: bool,
    reason: str,
    actor: User,
    before: dict[str, Any] | None,
) -> CalendarOverride:
    """Write one checked override (a new row, or `row` replaced) and its audit event."""
    if row is None:
        row = CalendarOverride(day=day, is_workday=is_workday, reason=reason)
        session.add(row)
    row.is_workday, row.reason, row.created_by_id = is_workday, reason, actor.id
    row.created_at = utcnow()
    session.flush()
    record_event(
        session,
        actor=actor,
        action="calendar_override_set",
        target_type="calendar",
        target_id=day.isoformat(),
        comment=reason,
        payload={"day": day, "is_workday": is_workday, "before": before},
    )
    return row


# --- a year's arrangement from the State Council's notice (workflow/holiday_notice.py) -----

#: What entering a day of a pasted arrangement does: adds an override, replaces the office's
#: opposite one, nothing (entered already), nothing (the calendar says so without an entry).
PLAN_ADD, PLAN_REPLACE, PLAN_ENTERED, PLAN_UNNEEDED = "add", "replace", "entered", "unneeded"


@dataclass(frozen=True)
class PlannedDay:
    """A day of a pasted arrangement, and what entering it would do to the overrides."""

    day: dt.date
    is_workday: bool
    holiday: str
    action: str
    reason: str

    @property
    def changes(self) -> bool:
        """Tell whether entering the arrangement writes this day."""
        return self.action in (PLAN_ADD, PLAN_REPLACE)


def _without_overrides(day: dt.date) -> bool:
    """What the calendar says of a day before any entry: the package's arrangement, or for a
    year it does not know, Monday to Friday."""
    try:
        return WorkCalendar().is_workday(day)
    except UnknownYear:
        return day.weekday() < 5


def _overrides_on(session: Session, arrangement: Arrangement) -> dict[dt.date, CalendarOverride]:
    """The office's entries on the days the arrangement names, by day (one query)."""
    days = [d.day for d in arrangement.days]
    found = session.execute(select(CalendarOverride).where(CalendarOverride.day.in_(days)))
    return {row.day: row for row in found.scalars()}


def plan_arrangement(session: Session, arrangement: Arrangement) -> list[PlannedDay]:
    """What entering a pasted arrangement would do, day by day (changes nothing)."""
    return _plan(arrangement, _overrides_on(session, arrangement))


def _plan(arrangement: Arrangement, rows: dict[dt.date, CalendarOverride]) -> list[PlannedDay]:
    plan = []
    for d in arrangement.days:
        row = rows.get(d.day)
        if row is not None:
            action = PLAN_ENTERED if row.is_workday == d.is_workday else PLAN_REPLACE
        else:
            action = PLAN_UNNEEDED if _without_overrides(d.day) == d.is_workday else PLAN_ADD
        what = "调休上班" if d.is_workday else "放假"
        reason = f"{arrangement.source}：{d.holiday}{what}"[:MAX_REASON]
        plan.append(PlannedDay(d.day, d.is_workday, d.holiday, action, reason))
    return plan


def entries_besides(session: Session, arrangement: Arrangement) -> list[CalendarOverride]:
    """The office's entries in the arrangement's year on days the notice does not name: kept
    when it is entered (a local holiday is the office's own), shown so that a wrong one is
    seen and removed."""
    named = {d.day for d in arrangement.days}
    rows = session.execute(
        select(CalendarOverride)
        .where(
            CalendarOverride.day >= dt.date(arrangement.year, 1, 1),
            CalendarOverride.day <= dt.date(arrangement.year, 12, 31),
        )
        .order_by(CalendarOverride.day)
    ).scalars()
    return [row for row in rows if row.day not in named]


def plan_fingerprint(plan: list[PlannedDay]) -> str:
    """A short fingerprint of what a plan would write: the preview's, checked on entering."""
    changes = [(p.day.isoformat(), p.is_workday, p.action) for p in plan if p.changes]
    return hashlib.sha256(canonical_json(changes).encode()).hexdigest()[:32]


def preview_arrangement(
    session: Session, text: Any, *, actor: User
) -> tuple[Arrangement, list[PlannedDay]]:
    """Read a pasted arrangement and say, day by day, what entering it would do (admin)."""
    _require_admin(actor)
    arrangement = read_arrangement(text)
    return arrangement, plan_arrangement(session, arrangement)


def enter_arrangement(
    session: Session, text: Any, *, actor: User, seen: str | None = None
) -> tuple[Arrangement, list[PlannedDay]]:
    """Enter the days of a pasted arrangement that the calendar does not say already: one
    override and one `calendar_override_set` event per day, all or nothing.

    `seen` is the fingerprint of the preview the admin confirmed; when the overrides changed
    since (another admin entered or removed a day), nothing is written: 409
    `arrangement_changed`. Refused like a single override when a working-day deadline could
    not take the change (`override_breaks_order`).
    """
    _require_admin(actor)
    arrangement = read_arrangement(text)
    lock_calendar(session)  # every change of an override queues here: the rows read stay
    rows = _overrides_on(session, arrangement)
    plan = _plan(arrangement, rows)
    changes = [p for p in plan if p.changes]
    if not changes:  # entered already (a second click of the same confirmation): nothing to do
        return arrangement, plan
    if seen is not None and seen != plan_fingerprint(plan):
        raise Conflict(
            "工作日调整在预览之后已有变化（他人录入或删除了日期），未录入；请重新预览后再确认",
            code="arrangement_changed",
        )
    calendar = work_calendar(session)
    after = {**calendar.overrides, **{p.day: p.is_workday for p in changes}}
    _check_calendar_change(session, calendar, WorkCalendar(after), removing=False)
    for p in changes:
        row = rows.get(p.day)
        before = None if row is None else {"is_workday": row.is_workday, "reason": row.reason}
        _put_override(session, row, p.day, p.is_workday, p.reason, actor, before)
    return arrangement, plan


def remove_calendar_override(
    session: Session, override_id: int, *, actor: User, seen: str | None = None
) -> None:
    """Remove an override, audited; the package's arrangement applies to that day again.

    Refused, with nothing changed, when a deadline counted in working days would then cross
    a year nobody entered, or would move out of order (see `set_calendar_override`), and
    when the entry was replaced since the page was opened (`seen`: `override_seen` then; 409
    `changed_since_opened`).
    """
    _require_admin(actor)
    lock_calendar(session)
    row = session.get(CalendarOverride, override_id)
    if row is None:
        raise NotFound("该工作日调整不存在", code="override_not_found")
    if seen is not None:
        session.refresh(row)  # replaced in place by an admin who came first
        check_seen(seen, _override_values(row))
    day = row.day
    calendar = work_calendar(session)
    remaining = {d: w for d, w in calendar.overrides.items() if d != day}
    _check_calendar_change(session, calendar, WorkCalendar(remaining), removing=True)
    payload = {"day": day, "is_workday": row.is_workday, "reason": row.reason}
    session.delete(row)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="calendar_override_removed",
        target_type="calendar",
        target_id=day.isoformat(),
        payload=payload,
    )


def calendar_overrides(
    session: Session, *, after: dt.date | None = None, limit: int | None = None
) -> list[CalendarOverride]:
    """Return the overrides by day: every one, or `limit` after the day `after`."""
    stmt = select(CalendarOverride).order_by(CalendarOverride.day).limit(limit)
    if after is not None:
        stmt = stmt.where(CalendarOverride.day > after)
    return list(session.execute(stmt).scalars())


@dataclass(frozen=True)
class Lateness:
    """Whether a submission made now misses 自评提交截止, and by how many working days."""

    due_on: dt.date
    is_late: bool
    working_days_late: int | None


def submission_lateness(
    session: Session, assessment: Assessment, now: dt.datetime
) -> Lateness | None:
    """Judge a submission made at `now` against 自评提交截止 (None when no deadline is set)."""
    rows = stage_rows(session, assessment)
    if "submit" not in rows:
        return None  # no deadline set: nothing to judge, no calendar needed
    calendar = work_calendar(session)
    try:
        due = resolve_deadlines(rows, calendar)["submit"].due_on
    except UnknownYear as exc:
        raise Conflict(
            UNKNOWN_YEAR, code="calendar_unknown_year", params={"year": exc.year}
        ) from None
    if due is None:
        return None
    today = today_of(assessment, now)
    if today <= due:
        return Lateness(due, False, None)
    try:
        late_by: int | None = calendar.working_days_between(due, today)
    except UnknownYear:
        late_by = None  # the fact "late" stands; the count waits for the year's arrangement
    return Lateness(due, True, late_by)


def ensure_submission_allowed(
    session: Session, assessment: Assessment, item: Item, now: dt.datetime
) -> Lateness | None:
    """Judge a first submission; refuse it after the deadline when the scheme says so.

    Resubmissions after a return are judged by the first submission: the office asked for them.
    """
    if item.round > 0 or State(item.state) != State.DRAFT:
        return None
    lateness = submission_lateness(session, assessment, now)
    if lateness is not None and lateness.is_late and assessment.blocks_late_submissions:
        raise Conflict(
            "已过自评提交截止日期（%(due_on)s），本年度考核方案不接受逾期提交",
            code="submission_deadline_passed",
            params={"due_on": lateness.due_on.isoformat()},
        )
    return lateness


def overdue_stages(
    session: Session, assessment: Assessment, now: dt.datetime | None = None
) -> dict[str, dt.date]:
    """Return the stages whose deadline has passed (stage → deadline), for queues and pages.

    An unknown year for a working-day deadline leaves that stage out: never guessed.
    """
    today = today_of(assessment, now)
    try:
        deadlines = deadlines_of(session, assessment)
    except UnknownYear:
        return {}
    return {
        stage: d.due_on
        for stage, d in deadlines.items()
        if d.due_on is not None and today > d.due_on
    }
