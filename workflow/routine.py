"""Routine assessment records (平时考核): submit, review, count against quotas, suggest scores."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from scoring.routine import (
    KIND_LABELS,
    KINDS,
    OUTCOMES,
    Period,
    PeriodCount,
    PeriodError,
    RecordFigure,
    RoutineRules,
    Suggestion,
    count_periods,
    feeding_kinds,
    parse_period,
    suggest,
)
from storage.base import ObjectStore
from storage.ingest import ingest_upload
from workflow.assessments import assessment_status, ensure_not_final, hold_publication
from workflow.audit import record_event
from workflow.calendar import work_calendar
from workflow.db import lock_key, lock_row, serialise
from workflow.errors import BadRequest, Conflict, Forbidden, InvalidValue, NotFound
from workflow.fingerprints import check_seen, fields_of, fingerprint
from workflow.maintenance import keep_objects
from workflow.messages import N_, Phrase, Term
from workflow.models import (
    Assessment,
    AuditEvent,
    Department,
    Indicator,
    Item,
    NotInvolvedClaim,
    RoutineFile,
    RoutineRecord,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.permissions import can_read_department, department_id_for, is_own_department
from workflow.security_log import hidden_from
from workflow.states import Role
from workflow.workdays import UNKNOWN_YEAR, UnknownYear

DEPARTMENT_KINDS = frozenset({"monthly_info", "quarterly_case", "task"})
STAFF_KINDS = frozenset({"meeting", "inspection", "task"})
OFFICE_ROLES = (Role.REVIEWER, Role.ADMIN)
MAX_TITLE = 300
#: A record's statuses, with the words people read.
ROUTINE_STATUS_LABELS = {
    "submitted": N_("待审核"),
    "accepted": N_("已采纳"),
    "rejected": N_("已退回"),
    "withdrawn": N_("已撤销"),
}
ROUTINE_STATUSES = frozenset(ROUTINE_STATUS_LABELS)


#: The working-day calendar's `add_working_days(day, n)`.
AddWorkingDays = Callable[[dt.date, int], dt.date]
#: The due day of a period the calendar cannot count (its year unknown: no report of it can
#: be filed, `calendar_unknown_year`): not due within any assessment's life.
NOT_YET_COUNTABLE = dt.date(9999, 12, 30)


def rules_of(
    assessment: Assessment, add_working_days: AddWorkingDays | None = None
) -> RoutineRules:
    """Return the routine rules held in the assessment's scheme; `add_working_days` is the
    calendar their working-day due rules count with (`due_calendar`)."""
    config = assessment.routine_config or {}
    return RoutineRules.from_config(
        config, assessment.timezone, assessment.year, add_working_days=add_working_days
    )


def due_calendar(session: Session, assessment: Assessment) -> AddWorkingDays | None:
    """The working-day calendar a suggestion needs to tell which periods are due, when the
    assessment's rules make some kind due N working days after its period (one query); None
    (no query) when every period is due at its end, as in 2018.

    A period whose due day falls in a year the calendar does not know is not due yet: no
    report of it can be filed until that year is entered, so it is not held against anyone.
    """
    if not rules_of(assessment).counts_working_days:
        return None
    calendar = work_calendar(session)

    def add_working_days(day: dt.date, count: int) -> dt.date:
        try:
            return calendar.add_working_days(day, count)
        except UnknownYear:
            return NOT_YET_COUNTABLE

    return add_working_days


def _department(session: Session, assessment: Assessment, department_id: int) -> Department:
    dep = session.get(Department, department_id)
    if dep is None or dep.assessment_id != assessment.id:
        raise NotFound("部门不存在", code="department_not_found")
    return dep


def reports_closed(assessment: Assessment) -> bool:
    """Tell whether a department's own reports of the year are closed: its results are
    published (公示 and after) and not reopened. They could no longer change a score; the
    office still registers, reviews and corrects records (an appeal may need it)."""
    return assessment.published_at is not None and assessment.reopened_at is None


def _ensure_reports_open(assessment: Assessment) -> None:
    if reports_closed(assessment):
        raise Conflict(
            "%(year)s年度考核结果已公示，不再接受该年度的平时考核报送",
            code="routine_closed",
            params={"year": assessment.year},
        )


def submit_routine(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    user: User,
    *,
    kind: str,
    period: str,
    title: str,
    stream: BinaryIO | None,
    filename: str | None,
    department_id: int | None = None,
    note: str | None = None,
    outcome: str | None = None,
    max_size: int,
    now: dt.datetime | None = None,
) -> RoutineRecord:
    """Record a routine submission: a department its own reports, the office meetings etc.

    A department's own report is late when it comes after the end of its period. The
    office's registration of a meeting or an inspection is never the department's late
    report: how the department did is its `outcome` (done, late, missed; default done).
    """
    now = now or utcnow()
    ensure_not_final(assessment, now)
    if kind not in KINDS:
        raise InvalidValue(
            "未知的平时考核类型：%(kind)s", code="unknown_kind", params={"kind": kind}
        )
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidValue("完成情况须为按时完成、逾期完成或未完成", code="bad_outcome")
    is_office = user.has_role(*OFFICE_ROLES)
    registered_by = "office"
    own_id = department_id_for(user, assessment.id)
    if user.has_role(Role.DEPARTMENT) and (department_id is None or department_id == own_id):
        registered_by = "department"
        department_id = own_id
        if department_id is None:
            raise Forbidden("只有本部门的填报人员可以执行此操作", code="not_own_department")
        if kind not in DEPARTMENT_KINDS:
            raise Forbidden("参会、督查检查记录由市职转办登记", code="office_kind")
        if stream is None:
            raise InvalidValue("请上传报送材料", code="file_required")
        _ensure_reports_open(assessment)
    elif is_office:
        if department_id is None:
            raise InvalidValue("请指定部门", code="department_required")
        if kind not in STAFF_KINDS:
            raise Forbidden("信息和案例由部门自行报送", code="department_kind")
        if is_own_department(user, department_id):  # the rule of the items' office actions
            raise Forbidden("不能以市职转办人员身份为本部门登记平时考核记录", code="own_department")
    else:
        raise Forbidden("无权登记平时考核记录", code="forbidden")
    if department_id is None:
        raise InvalidValue("请指定部门", code="department_required")
    dep = _department(session, assessment, department_id)
    title = (title or "").translate(INVISIBLE).strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidValue(
            "标题不能为空，且不超过 %(max)s 字", code="bad_title", params={"max": MAX_TITLE}
        )
    rules = rules_of(assessment)
    try:
        parsed = parse_period(period)
    except PeriodError as exc:
        raise _bad_period(exc) from exc
    _check_window(rules, kind, parsed, now)
    try:
        due = rules.due_at(parsed, kind, work_calendar(session).add_working_days)
    except UnknownYear as exc:
        raise InvalidValue(
            UNKNOWN_YEAR, code="calendar_unknown_year", params={"year": exc.year}
        ) from None
    _ensure_no_twin(session, dep.id, kind, parsed.label, title)  # before the file streams
    is_late = registered_by == "department" and now >= due
    if kind in STAFF_KINDS:
        if registered_by == "department":
            outcome = "late" if is_late else "done"
        outcome = outcome or "done"
    else:
        outcome = None
    # The file is stored before any row is written: no write lock is held while it streams.
    stored = (
        ingest_upload(store, stream, filename or "未命名文件", max_size=max_size)
        if stream is not None
        else None
    )
    # Under the lock of this department's kind and period, with the file stored: two posts of
    # one form at once (a double click) make one record.
    _ensure_no_twin(session, dep.id, kind, parsed.label, title, lock=True)
    if stored is not None and not stored.is_new:  # found stored: no gc deletes it under us
        keep_objects(session, store, [stored.key])
    if registered_by == "department":  # again, now the file is stored: a publication since?
        hold_publication(session, assessment)
        _ensure_reports_open(assessment)
    record = RoutineRecord(
        assessment_id=assessment.id,
        department_id=dep.id,
        kind=kind,
        period=parsed.label,
        title=title,
        note=(note or "").strip() or None,
        due_at=due,
        submitted_at=now,
        is_late=is_late,
        status="submitted",
        outcome=outcome,
        registered_by=registered_by,
        created_by_id=user.id,
    )
    session.add(record)
    session.flush()
    hashes = []
    if stored is not None:
        record.files.append(
            RoutineFile(
                filename=stored.filename,
                size=stored.size,
                sha256=stored.sha256,
                content_type=stored.content_type,
                storage_key=stored.key,
                uploaded_by_id=user.id,
            )
        )
        hashes.append(stored.sha256)
        session.flush()
    record_event(
        session,
        actor=user,
        action="routine_submitted",
        target_type="routine",
        target_id=record.id,
        department_id=dep.id,
        payload={
            "kind": kind,
            "period": record.period,
            "title": title,
            "due_at": due,
            "is_late": record.is_late,
            "outcome": outcome,
            "registered_by": registered_by,
            "sha256": hashes,
        },
    )
    return record


#: Characters that show nothing (zero-width spaces and joiners, the byte-order mark).
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def same_title_key(title: str) -> str:
    """What makes two titles the same to a reader: full-width and half-width forms, runs of
    spaces and invisible characters aside (１２月 is 12月)."""
    return " ".join(unicodedata.normalize("NFKC", title.translate(INVISIBLE)).split())


#: Records that count: waiting for review or accepted (not rejected, not withdrawn).
LIVE = ("submitted", "accepted")


def _ensure_no_twin(
    session: Session,
    department_id: int,
    kind: str,
    period: str,
    title: str,
    *,
    lock: bool = False,
    other_than: int | None = None,
) -> None:
    """Refuse a record the department already has live: the same kind, period and title.

    The same form posted twice (a double click, a refresh that posts again) would count one
    meeting or one report twice. Another meeting in the same month has its own title (its
    date or its number); a department replaces a report by withdrawing it first.
    """
    if lock:
        serialise(session, lock_key("routine", department_id, kind, period))
    live = session.execute(
        select(RoutineRecord.id, RoutineRecord.title).where(
            RoutineRecord.department_id == department_id,
            RoutineRecord.kind == kind,
            RoutineRecord.period == period,
            RoutineRecord.status.in_(LIVE),
            RoutineRecord.id != (other_than or 0),
        )
    ).all()
    key = same_title_key(title)
    twin = next((r for r in live if same_title_key(r.title) == key), None)
    if twin is not None:
        raise Conflict(
            "该部门%(period)s已有同名的%(kind)s记录（#%(id)s）：同一记录不重复登记；"
            "如确为另一次，请在标题中注明日期或次数",
            code="routine_duplicate",
            params={"period": period, "kind": Term(KIND_LABELS[kind]), "id": twin.id},
        )


def _check_window(rules: RoutineRules, kind: str, parsed: Period, now: dt.datetime) -> None:
    """Refuse a period of the wrong unit for the kind, one outside the counting window, or one
    that has not begun (a December report filed in August would count, on time, towards a
    quota the department has not yet had to meet)."""
    unit, _minimum = rules.quotas.get(kind, ("month", 0))
    if kind in rules.quotas and (parsed.months == 1) != (unit == "month"):
        want = N_("月份（如 2018-08）") if unit == "month" else N_("季度（如 2018-Q3）")
        raise InvalidValue("该类型按%(unit)s计数", code="bad_period", params={"unit": Term(want)})
    first = parsed.year * 12 + parsed.start_month
    last = first + parsed.months - 1
    window_first = rules.counting_starts.year * 12 + rules.counting_starts.start_month
    window_last = rules.counting_ends.year * 12 + rules.counting_ends.start_month
    if last < window_first or first > window_last:  # a period must overlap the window
        raise InvalidValue("期间不在本年度考核计数范围内", code="period_out_of_window")
    if parsed.starts_at(rules.tz) > now:
        raise InvalidValue(
            "%(period)s 尚未开始，不能提前报送或登记",
            code="period_not_started",
            params={"period": parsed.label},
        )


def get_routine(session: Session, record_id: int, user: User) -> RoutineRecord:
    """Load a routine record the user may read (another department's is a 404)."""
    record = session.get(RoutineRecord, record_id)
    if record is not None and not can_read_department(user, record.department_id):
        hidden_from(user, "routine_record", record.id, department_id=record.department_id)
        raise NotFound("平时考核记录不存在", code="routine_not_found")
    if record is None:
        raise NotFound("平时考核记录不存在", code="routine_not_found")
    return record


def _locked_record(session: Session, record: RoutineRecord) -> RoutineRecord:
    """Lock the record's row and read it again: two reviews (or a review and a withdrawal)
    of one record queue here, and the second sees what the first did."""
    lock_row(session, RoutineRecord, record.id)
    session.refresh(record)
    return record


def own_report(user: User, record: RoutineRecord) -> bool:
    """Whether the record is the user's own report for their department: a member given
    office roles later (which clears their unit) must still not accept or reject it."""
    return record.registered_by == "department" and record.created_by_id == user.id


def review_routine(
    session: Session,
    record_id: int,
    user: User,
    status: Any,
    reason: Any = None,
    *,
    expected_status: Any = None,
    now: dt.datetime | None = None,
) -> RoutineRecord:
    """Accept or reject a routine record (the office); a rejection needs a reason.

    `expected_status` is the status the reviewer saw (the page's, or an API client's): when
    the record changed since (another reviewer came first), the review is refused (409
    `routine_changed`) rather than overwriting a decision nobody saw. The same decision twice
    is refused too (`routine_already_reviewed`).
    """
    now = now or utcnow()
    record = get_routine(session, record_id, user)
    if not user.has_role(*OFFICE_ROLES):
        raise Forbidden("只有初审员或管理员可以审核平时考核记录", code="role_required")
    if is_own_department(user, record.department_id):
        raise Forbidden("不能审核本部门的记录", code="own_department")
    if own_report(user, record):
        raise Forbidden("不能审核本人报送的平时考核记录", code="own_routine_record")
    if status not in ("accepted", "rejected"):
        raise BadRequest("status 须为 accepted 或 rejected", code="bad_status")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason 必须是文本", code="invalid_type")
    reason = (reason or "").strip() or None
    if status == "rejected" and not reason:
        raise InvalidValue("退回平时考核记录须说明理由", code="reason_required")
    if expected_status is not None and expected_status not in ROUTINE_STATUSES:
        raise BadRequest("expected_status 无效", code="bad_status")
    _locked_record(session, record)
    if record.status == "withdrawn":
        raise Conflict("该记录已撤销，不能再审核", code="routine_withdrawn")
    if expected_status is not None and record.status != expected_status:
        raise Conflict(
            "该记录已被他人处理（现为：%(status)s），请刷新页面后再审核",
            code="routine_changed",
            params={"status": Term(ROUTINE_STATUS_LABELS[record.status])},
        )
    if record.status == status and record.reason == reason:
        raise Conflict(
            "该记录已是“%(status)s”，无需重复审核",
            code="routine_already_reviewed",
            params={"status": Term(ROUTINE_STATUS_LABELS[status])},
        )
    assessment = session.get_one(Assessment, record.assessment_id)
    ensure_not_final(assessment, now)
    watched = _watch_scored(session, record, now)
    before = record.status
    record.status = status
    record.reason = reason
    record.reviewed_by_id = user.id
    record.reviewed_at = now
    session.flush()
    _tell_scorers(session, watched, record, ROUTINE_STATUS_LABELS[status], user, now)
    record_event(
        session,
        actor=user,
        action="routine_reviewed",
        target_type="routine",
        target_id=record.id,
        department_id=record.department_id,
        from_state=before,
        to_state=status,
        comment=reason,
        payload={"kind": record.kind, "period": record.period},
    )
    if status == "rejected" and record.registered_by == "department":
        # The department hears of its own report sent back (it reports again); an office
        # registration rejected as made in error is nothing for it to act on.
        from workflow import notify  # notify imports the models routine uses

        notify.routine_rejected(session, record, user, now)
    return record


def _office_record(session: Session, record_id: int, user: User, now: dt.datetime) -> RoutineRecord:
    """Load an office-registered record the user may change (reviewer or admin, not own)."""
    record = get_routine(session, record_id, user)
    if not user.has_role(*OFFICE_ROLES):
        raise Forbidden("只有初审员或管理员可以更正或撤销平时考核记录", code="role_required")
    if is_own_department(user, record.department_id):
        raise Forbidden("不能更正本部门的记录", code="own_department")
    if record.registered_by != "office":
        raise Forbidden(
            "部门自行报送的记录不能由市职转办更正，请退回后由部门重新报送",
            code="department_record",
        )
    if record.status == "withdrawn":
        raise Conflict("该记录已撤销", code="routine_withdrawn")
    ensure_not_final(session.get_one(Assessment, record.assessment_id), now)
    return record


def _bad_period(exc: PeriodError) -> InvalidValue:
    return InvalidValue(
        "期间应写作“年-月”（如 2019-03）或“年-季度”（如 2019-Q1），“%(text)s”无效",
        code="bad_period",
        params={"text": exc.text},
    )


def _reason(reason: Any, missing: str) -> str:
    """Return the stripped reason; `missing` is the refusal's message when there is none."""
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason 必须是文本", code="invalid_type")
    text = (reason or "").strip()
    if not text:
        raise InvalidValue(missing, code="reason_required")
    if len(text) > 2000:
        raise InvalidValue("理由不超过 2000 字", code="reason_too_long")
    return text


#: The fields of the portal's correction form (`correction_seen`).
CORRECTION_FIELDS = ("period", "title", "outcome")


def correction_seen(record: RoutineRecord) -> str:
    """The fingerprint of a record's period, title and outcome as they are now (the
    correction form's `seen`)."""
    return fingerprint(fields_of(record, CORRECTION_FIELDS))


def correct_routine(
    session: Session,
    record_id: int,
    user: User,
    *,
    reason: Any,
    period: Any = None,
    title: Any = None,
    note: Any = None,
    outcome: Any = None,
    seen: str | None = None,
    now: dt.datetime | None = None,
) -> RoutineRecord:
    """Correct an office-registered record (period, title, note, outcome), with a reason.

    `seen` (`correction_seen` when the form was opened): a record another reviewer corrected
    (or withdrew) since is refused, 409 `changed_since_opened` (`routine_withdrawn`)."""
    now = now or utcnow()
    record = _office_record(session, record_id, user, now)
    if seen is not None:
        if _locked_record(session, record).status == "withdrawn":
            raise Conflict("该记录已撤销", code="routine_withdrawn")
        check_seen(seen, fields_of(record, CORRECTION_FIELDS))
    text = _reason(reason, N_("更正平时考核记录须说明理由"))
    watched = _watch_scored(session, record, now)
    for name, value in (("period", period), ("title", title), ("note", note), ("outcome", outcome)):
        if value is not None and not isinstance(value, str):
            raise BadRequest("%(name)s 必须是文本", code="invalid_type", params={"name": name})
    changes: dict[str, Any] = {}
    if period is not None and period.strip() and period.strip() != record.period:
        assessment = session.get_one(Assessment, record.assessment_id)
        rules = rules_of(assessment)
        try:
            parsed = parse_period(period)
        except PeriodError as exc:
            raise _bad_period(exc) from exc
        _check_window(rules, record.kind, parsed, now)
        changes["period"] = (record.period, parsed.label)
        record.period = parsed.label
        try:
            record.due_at = rules.due_at(
                parsed, record.kind, work_calendar(session).add_working_days
            )
        except UnknownYear as exc:
            raise InvalidValue(
                UNKNOWN_YEAR, code="calendar_unknown_year", params={"year": exc.year}
            ) from None
    if title is not None and title.strip() and title.strip() != record.title:
        if len(title.strip()) > MAX_TITLE:
            raise InvalidValue("标题不超过 %(max)s 字", code="bad_title", params={"max": MAX_TITLE})
        changes["title"] = (record.title, title.strip())
        record.title = title.strip()
    if note is not None and (note.strip() or None) != record.note:
        changes["note"] = (record.note, note.strip() or None)
        record.note = note.strip() or None
    if outcome is not None and outcome != "" and outcome != record.outcome:
        if outcome not in OUTCOMES:
            raise InvalidValue("完成情况须为按时完成、逾期完成或未完成", code="bad_outcome")
        changes["outcome"] = (record.outcome, outcome)
        record.outcome = outcome
    if not changes:
        raise InvalidValue("没有需要更正的内容", code="nothing_changed")
    if "period" in changes or "title" in changes:
        _ensure_no_twin(
            session, record.department_id, record.kind, record.period, record.title,
            lock=True, other_than=record.id,
        )  # fmt: skip
    session.flush()
    moved = changes.get("period", (record.period,))  # a period corrected: both are named
    _tell_scorers(session, watched, record, N_("已更正"), user, now, periods=moved)
    record_event(
        session,
        actor=user,
        action="routine_corrected",
        target_type="routine",
        target_id=record.id,
        department_id=record.department_id,
        comment=text,
        payload={
            "kind": record.kind,
            "period": record.period,  # as corrected: which period a drift names
            "changes": {k: {"from": a, "to": b} for k, (a, b) in changes.items()},
        },
    )
    return record


def withdraw_routine(
    session: Session, record_id: int, user: User, *, reason: Any, now: dt.datetime | None = None
) -> RoutineRecord:
    """Withdraw an office-registered record (kept, no longer counted), with a reason."""
    now = now or utcnow()
    record = _office_record(session, record_id, user, now)
    text = _reason(reason, N_("撤销平时考核记录须说明理由"))
    if _locked_record(session, record).status == "withdrawn":  # another withdrawal came first
        raise Conflict("该记录已撤销", code="routine_withdrawn")
    watched = _watch_scored(session, record, now)
    before = record.status
    record.status = "withdrawn"
    record.reason = text
    record.reviewed_by_id = user.id
    record.reviewed_at = now
    session.flush()
    _tell_scorers(session, watched, record, ROUTINE_STATUS_LABELS["withdrawn"], user, now)
    record_event(
        session,
        actor=user,
        action="routine_withdrawn",
        target_type="routine",
        target_id=record.id,
        department_id=record.department_id,
        from_state=before,
        to_state="withdrawn",
        comment=text,
        payload={"kind": record.kind, "period": record.period, "title": record.title},
    )
    return record


#: What counting reads of a record (`RecordFigure`'s fields, in order).
FIGURE_COLUMNS = (
    RoutineRecord.kind,
    RoutineRecord.period,
    RoutineRecord.status,
    RoutineRecord.is_late,
    RoutineRecord.outcome,
)


def _figures(session: Session, assessment_id: int, department_id: int) -> list[RecordFigure]:
    rows = session.execute(
        select(*FIGURE_COLUMNS).where(
            RoutineRecord.assessment_id == assessment_id,
            RoutineRecord.department_id == department_id,
        )
    ).all()
    return [RecordFigure(*row) for row in rows]


@dataclass(frozen=True)
class RoutineOverview:
    """A department's routine records, counts per period and suggested scores."""

    records: list[RoutineRecord]
    counts: dict[str, list[PeriodCount]]
    suggestions: dict[str, Suggestion]


def suggestions_for(
    session: Session, assessment: Assessment, department_id: int, now: dt.datetime
) -> dict[str, Suggestion]:
    """Suggested scores of the routine scoring points (9.1, 9.2, 10.1 in 2018)."""
    rules = rules_of(assessment, due_calendar(session, assessment))
    figures = _figures(session, assessment.id, department_id)
    points = session.execute(
        select(ScoringPoint.code, ScoringPoint.max_points)
        .join(Item, Item.indicator_id == ScoringPoint.indicator_id)
        .where(Item.assessment_id == assessment.id, Item.department_id == department_id)
    ).all()
    out = {}
    for code, maximum in points:
        s = suggest(rules, code, maximum, figures, now)
        if s is not None:
            out[code] = s
    return out


def suggestions_for_points(
    session: Session, item: Item, points: list[ScoringPoint], now: dt.datetime
) -> dict[str, Decimal]:
    """Suggested scores of one item's routine points; no query when it has none.

    Only routine-fed points have suggestions (the scheme loader refuses a rule for another).
    """
    if not any(p.routine for p in points):
        return {}
    assessment = item.assessment
    if not any(p.code in rules_of(assessment).suggestions for p in points):
        return {}
    return suggest_points(
        assessment,
        points,
        _figures(session, assessment.id, item.department_id),
        now,
        add_working_days=due_calendar(session, assessment),
    )


def suggest_points(
    assessment: Assessment,
    points: list[ScoringPoint],
    figures: list[RecordFigure],
    now: dt.datetime,
    *,
    add_working_days: AddWorkingDays | None = None,
) -> dict[str, Decimal]:
    """Suggested scores of the routine points among `points`, from the department's records
    (`figures`: at least those of the kinds that feed the points); no query.
    `add_working_days`: the calendar of working-day due rules (`due_calendar`)."""
    rules = rules_of(assessment, add_working_days)
    out = {}
    for p in points:
        if not p.routine:
            continue
        s = suggest(rules, p.code, p.max_points, figures, now)
        if s is not None:
            out[p.code] = s.points
    return out


def figures_of(records: list[RoutineRecord]) -> list[RecordFigure]:
    """What counting needs of loaded records."""
    return [RecordFigure(r.kind, r.period, r.status, r.is_late, r.outcome) for r in records]


# --- the routine basis of a score: has it changed since? ----------------------------------

#: The actions that record scores with the suggestions they were given with.
SCORE_ACTIONS = ("score", "rescore")
#: Item states whose scores stand (given, and not yet decided again).
SCORED_STATES = ("scored", "appealed")
#: What the office can do about a changed basis, by the assessment's status (`drift_remedy`).
REMEDY_TEXTS = {
    "rescore": N_("可由原评分人以外的评分员“复核改分”，按现在的记录更正评分或说明维持的理由。"),
    "appeal": N_(
        "评分后不能直接改分：公示期内部门可提出申诉，由原评分人以外的评分员复核改分；"
        "结果最终确定后也可由管理员重新开启考核后复核改分。"
    ),
    "after_publication": N_(
        "评分后不能直接改分：考核结果公示后部门可提出申诉，由原评分人以外的评分员复核改分；"
        "结果最终确定后也可由管理员重新开启考核后复核改分。"
    ),
    "reopen": N_(
        "评分后不能直接改分：须待考核结果最终确定后由管理员重新开启考核，"
        "再由原评分人以外的评分员复核改分。"
    ),
}
REMEDIES = tuple(REMEDY_TEXTS)


#: The months and quarters in words (`period_words`), translated where they are shown.
MONTH_NAMES = (
    N_("1月"), N_("2月"), N_("3月"), N_("4月"), N_("5月"), N_("6月"),
    N_("7月"), N_("8月"), N_("9月"), N_("10月"), N_("11月"), N_("12月"),
)  # fmt: skip
QUARTER_NAMES = (N_("第一季度"), N_("第二季度"), N_("第三季度"), N_("第四季度"))


def period_words(label: str) -> str:
    """A period as people say it: `2018-03` → 2018年3月 (March 2018), `2018-Q3` →
    2018年第三季度 (Q3 2018), a `Phrase` translated where it is shown; a label that is no
    period, as it is."""
    try:
        period = parse_period(label)
    except PeriodError:
        return label
    names = MONTH_NAMES if period.months == 1 else QUARTER_NAMES
    part = names[(period.start_month - 1) // period.months]
    return Phrase(N_("%(year)s年%(part)s"), {"year": period.year, "part": Term(part)})


#: The deduction reason a suggestion below the maximum gives (`suggested_reason`): kept in
#: Chinese, never translated. The reason is stored with the score and read by the department
#: in the official language; an English-interface scorer saved an English one before.
SUGGESTED_REASON = "平时考核：%(parts)s"
SUGGESTED_REASON_PARTS = {
    "short": "%(periods)s未达到报送要求（达标 %(met)s/%(n)s 期）",
    "missed": "未完成 %(missed)s 件（计入 %(counted)s 件）",
    "late": "迟报 %(late)s 篇，每篇扣 %(deduction)s 分",
}


def suggested_reason(suggestion: Suggestion) -> str | None:
    """The deduction reason the records give a suggestion below the maximum, in Chinese
    whatever the reader's interface language (the score form prefills it, editable):
    「平时考核：2018年9月、2018年12月未达到报送要求（达标 3/5 期）」, for 10.1 「平时考核：未完成
    1 件（计入 4 件）」, a late deduction after 「；」. None at the maximum, or when the
    breakdown names no shortfall."""
    if suggestion.points >= suggestion.max_points:
        return None
    b = suggestion.breakdown
    parts: list[str] = []
    if b.get("formula") == "share_of_periods" and b.get("short"):
        periods = "、".join(str(period_words(p)) for p in b["short"])
        parts.append(
            SUGGESTED_REASON_PARTS["short"]
            % {"periods": periods, "met": b["periods_met"], "n": b["periods"]}
        )
    elif b.get("formula") != "share_of_periods" and b.get("missed"):
        parts.append(
            SUGGESTED_REASON_PARTS["missed"] % {"missed": b["missed"], "counted": b["counted"]}
        )
    if b.get("late") and b.get("late_deduction"):
        parts.append(
            SUGGESTED_REASON_PARTS["late"] % {"late": b["late"], "deduction": b["late_deduction"]}
        )
    return SUGGESTED_REASON % {"parts": "；".join(parts)} if parts else None


#: What moved a point's suggestion after its score (`DriftCause.change`), in words.
DRIFT_CHANGES = {
    # A record of the period was reviewed, corrected or withdrawn after the score.
    "record_changed": N_("%(period)s%(kind)s记录有变化"),
    # The period was still running at the score (not held against the department), has
    # ended since and falls short of its quota.
    "period_ended": N_("%(period)s%(kind)s期间已结束且未达要求"),
}


@dataclass(frozen=True, order=True)
class DriftCause:
    """Which record kind and period moved a point's suggestion, and how (`DRIFT_CHANGES`)."""

    period: str  # the label: 2018-03, 2018-Q3
    kind: str
    change: str

    @property
    def phrase(self) -> Phrase:
        """The cause in words: 2018年9月“放管服”信息（月报）记录有变化."""
        kind = Term(KIND_LABELS.get(self.kind, self.kind))
        return Phrase(
            DRIFT_CHANGES[self.change], {"period": period_words(self.period), "kind": kind}
        )


def _joined(phrases: Sequence[str]) -> str:
    """Phrases one after another (；), each translated where it is shown."""
    if len(phrases) == 1:
        return phrases[0]
    return Phrase(N_("%(first)s；%(rest)s"), {"first": phrases[0], "rest": _joined(phrases[1:])})


@dataclass(frozen=True)
class PointDrift:
    """A routine point whose suggestion is no longer the one its score was given with."""

    code: str
    #: The suggestion recorded with the latest score or rescore.
    suggested_then: Decimal
    #: The suggestion the records give now.
    suggested_now: Decimal
    #: The score given (None: no score row, which a scored item does not have).
    score: Decimal | None
    #: Which record kinds and periods moved it (`drift_causes`; empty: not looked for).
    causes: tuple[DriftCause, ...] = ()

    @property
    def causes_phrase(self) -> Phrase | None:
        """What moved it, in words (变化所在：2018年9月“放管服”信息（月报）记录有变化); None
        without causes."""
        if not self.causes:
            return None
        return Phrase(
            N_("变化所在：%(causes)s"), {"causes": _joined([c.phrase for c in self.causes])}
        )


@dataclass(frozen=True)
class RoutineDrift:
    """The routine basis of an item's score changed after it was given: per point, the
    suggestion then and now and the score; the scoring event; what can be done."""

    points: list[PointDrift]
    action: str  # score / rescore
    scored_at: dt.datetime
    remedy: str  # one of REMEDIES

    @property
    def remedy_text(self) -> str:
        """What the office can do, in Chinese (a msgid: translated where it is shown)."""
        return REMEDY_TEXTS[self.remedy]


def latest_score_event(session: Session, item_id: int) -> AuditEvent | None:
    """The item's latest score or rescore event: one query (the item's events by sequence)."""
    return session.execute(
        select(AuditEvent)
        .where(AuditEvent.item_id == item_id, AuditEvent.action.in_(SCORE_ACTIONS))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).scalar_one_or_none()


def drifted_points(
    event: AuditEvent | None, current: Mapping[str, Decimal], scores: Mapping[str, Decimal]
) -> list[PointDrift]:
    """The points whose suggestion `current` differs from the one recorded in `event` (a
    score or rescore event's payload `suggested`); a point recorded without one is passed
    over (scored before the suggestions were recorded, or not routine then)."""
    if event is None:
        return []
    try:
        payload = json.loads(event.payload or "{}")
    except ValueError:
        return []
    recorded = payload.get("suggested") if isinstance(payload, dict) else None
    if not isinstance(recorded, dict):
        return []
    out = []
    for code, now_value in current.items():
        then = recorded.get(code)
        if then is None:
            continue
        try:
            then_value = Decimal(str(then))
        except ArithmeticError:
            continue
        if then_value != now_value:
            out.append(PointDrift(code, then_value, now_value, scores.get(code)))
    return out


def suggested_at(event: AuditEvent) -> dt.datetime:
    """When the suggestions recorded with a score or rescore event were computed: its
    payload's `suggested_at` (the command's time), else, for events before it was recorded,
    the event's own time."""
    try:
        payload = json.loads(event.payload or "{}")
        return dt.datetime.fromisoformat(str(payload["suggested_at"]))
    except (ValueError, TypeError, KeyError):
        return event.at


def drift_causes(
    assessment: Assessment,
    drift: Sequence[PointDrift],
    points: Sequence[ScoringPoint],
    figures: list[RecordFigure],
    scored_at: dt.datetime,
    now: dt.datetime,
    changed: Iterable[tuple[str, str]] = (),
    *,
    add_working_days: AddWorkingDays | None = None,
) -> list[PointDrift]:
    """The drift with what moved each point (`PointDrift.causes`), no query: the records
    changed since the score (`changed`: their (kind, period)) of the kinds that feed the
    point, and each period of a `share_of_periods` point's kind that was not yet due when
    the score's suggestions were computed (`scored_at`, `suggested_at`; not held against the
    department then), has come due since and falls short of its quota now (`figures`: the
    department's records now). `add_working_days`: as for `suggest_points`."""
    rules = rules_of(assessment, add_working_days)
    by_code = {p.code: p for p in points}
    touched = set(changed)
    out = []
    for d in drift:
        spec = rules.suggestions.get(d.code) or {}
        point = by_code.get(d.code)
        kinds = feeding_kinds(spec, point.routine if point is not None else None)
        causes = {DriftCause(period, kind, "record_changed") for kind, period in touched
                  if kind in kinds}  # fmt: skip
        kind = str(spec.get("kind") or "")
        if spec.get("formula", "share_of_periods") == "share_of_periods" and kind in rules.quotas:
            short = {c.period for c in count_periods(rules, kind, figures, now) if not c.is_met}
            causes.update(
                DriftCause(p.label, kind, "period_ended")
                for p in rules.counted_periods(kind, now)
                if p.label in short
                and scored_at < rules.due_at(p, kind) <= now
                and (kind, p.label) not in touched
            )
        out.append(replace(d, causes=tuple(sorted(causes))))
    return out


#: The routine events that can move a suggestion: a review (a record counts once accepted),
#: a correction of its period or outcome, a withdrawal. A new record waits for review.
_MOVING_EVENTS = ("routine_reviewed", "routine_corrected", "routine_withdrawn")


def records_changed_since(
    session: Session,
    department_id: int,
    seq: int,
    records: Sequence[RoutineRecord] = (),
) -> set[tuple[str, str]]:
    """The (kind, period) of the department's routine records changed by an event after
    `seq` (a score's): one query (the events by department and sequence). A corrected
    period names both; a correction recorded before the events named the record's period
    takes it from `records` (the loaded ones), else names none."""
    period_of = {str(r.id): r.period for r in records}
    out: set[tuple[str, str]] = set()
    for target, action, payload in session.execute(
        select(AuditEvent.target_id, AuditEvent.action, AuditEvent.payload).where(
            AuditEvent.department_id == department_id,
            AuditEvent.seq > seq,
            AuditEvent.target_type == "routine",
            AuditEvent.action.in_(_MOVING_EVENTS),
        )
    ):
        try:
            p = json.loads(payload or "{}")
            kind, changes = str(p["kind"]), p.get("changes") or {}
            if action != "routine_corrected":
                periods = {p.get("period")}
            elif "period" in changes:
                periods = {changes["period"].get("from"), changes["period"].get("to")}
            elif "outcome" in changes:
                periods = {p.get("period") or period_of.get(str(target))}
            else:  # a title or a note: nothing counted moves
                periods = set()
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # an event this cannot read names no period (the drift still shows)
        out.update((kind, str(period)) for period in periods if period)
    return out


def drift_remedy(item: Item, now: dt.datetime) -> str:
    """What lets the office correct a score: `rescore` (the item is appealed, or the results
    were reopened), `appeal` (the 公示 runs and the department has its appeal left),
    `after_publication` (not yet published: an appeal once it is, or a reopen once final),
    `reopen` (the admin must reopen the final results first)."""
    assessment = item.assessment
    status = assessment_status(assessment, now)
    if item.state == "appealed" or status == "reopened":
        return "rescore"
    if status == "open":
        return "after_publication"
    if status == "published" and item.appeal_count == 0:
        return "appeal"
    return "reopen"


def routine_drift(
    session: Session,
    item: Item,
    points: list[ScoringPoint],
    now: dt.datetime,
    *,
    event: AuditEvent | None = None,
    records: list[RoutineRecord] | None = None,
    excluded: frozenset[str] = frozenset(),
) -> RoutineDrift | None:
    """Tell whether the routine suggestions of a scored item differ from those its latest
    score or rescore was given with (None: no difference, not scored, no routine point).

    One query for the latest score event (none when `event` is given: the history the
    caller loaded) and the suggestion computation (no query when `records` are the
    department's loaded records of the points' kinds). `excluded`: points whose score is
    not the scorer's (a not-involved claim upheld: full marks whatever the records say).
    """
    if item.state not in SCORED_STATES or not any(p.routine for p in points):
        return None
    if not any(p.code in rules_of(item.assessment).suggestions for p in points):
        return None
    if event is None:
        event = latest_score_event(session, item.id)
        if event is None:
            return None
    figures = (
        figures_of(records)
        if records is not None
        else _figures(session, item.assessment_id, item.department_id)
    )
    routine = [p for p in points if p.routine and p.code not in excluded]
    calendar = due_calendar(session, item.assessment)
    current = suggest_points(item.assessment, routine, figures, now, add_working_days=calendar)
    by_id = {p.id: p.code for p in points}
    scores = {
        by_id[s.scoring_point_id]: s.points for s in item.scores if s.scoring_point_id in by_id
    }
    drift = drifted_points(event, current, scores)
    if not drift:
        return None
    changed = records_changed_since(session, item.department_id, event.seq, records or ())
    at = suggested_at(event)
    drift = drift_causes(
        item.assessment, drift, routine, figures, at, now, changed, add_working_days=calendar
    )
    return RoutineDrift(drift, event.action, event.at, drift_remedy(item, now))


def routine_overview(
    session: Session, assessment: Assessment, department_id: int, user: User, now: dt.datetime
) -> RoutineOverview:
    """Everything the routine page and endpoint show for one department."""
    if not can_read_department(user, department_id):
        hidden_from(user, "department", department_id, department_id=department_id)
        raise NotFound("部门不存在", code="department_not_found")
    _department(session, assessment, department_id)
    rules = rules_of(assessment)
    records = list(
        session.execute(
            select(RoutineRecord)
            .where(
                RoutineRecord.assessment_id == assessment.id,
                RoutineRecord.department_id == department_id,
            )
            .options(selectinload(RoutineRecord.files))
            .order_by(RoutineRecord.period, RoutineRecord.id)
        ).scalars()
    )
    figures = figures_of(records)
    counts = {kind: count_periods(rules, kind, figures, now) for kind in rules.quotas}
    return RoutineOverview(
        records=records,
        counts=counts,
        suggestions=suggestions_for(session, assessment, department_id, now),
    )


def quota_matrix(
    session: Session, assessment: Assessment, kind: str, now: dt.datetime
) -> list[tuple[Department, list[PeriodCount]]]:
    """Every department × period of a kind: who met the quota, who was late, who sent nothing."""
    rules = rules_of(assessment)
    if kind not in rules.quotas:
        raise InvalidValue("该类型没有配额：%(kind)s", code="unknown_kind", params={"kind": kind})
    rows = session.execute(
        select(
            RoutineRecord.department_id,
            RoutineRecord.kind,
            RoutineRecord.period,
            RoutineRecord.status,
            RoutineRecord.is_late,
        ).where(RoutineRecord.assessment_id == assessment.id, RoutineRecord.kind == kind)
    ).all()
    by_dep: dict[int, list[RecordFigure]] = {}
    for dep_id, k, period, status, late in rows:
        by_dep.setdefault(dep_id, []).append(RecordFigure(k, period, status, late))
    deps = session.execute(
        select(Department)
        .where(Department.assessment_id == assessment.id)
        .order_by(Department.position)
    ).scalars()
    return [(d, count_periods(rules, kind, by_dep.get(d.id, []), now)) for d in deps]


def drifted_items(session: Session, assessment: Assessment, now: dt.datetime) -> set[int]:
    """The assessment's scored items whose routine suggestions differ from those their latest
    score or rescore was given with (`routine_drift` of each, for the progress matrix): at most
    five queries for the whole assessment, none when no indicator is routine-fed."""
    return set(item_drifts(session, assessment, now))


@dataclass(frozen=True)
class ItemDrift:
    """A scored item whose routine suggestion moved (`item_drifts`): the sequence number of
    its latest score or rescore event and the points that moved (`score` left None)."""

    item_id: int
    event_seq: int
    points: list[PointDrift]

    @property
    def signature(self) -> str:
        """The figures, as one text (the same for the same drift of the same score)."""
        figures = ";".join(
            f"{d.code}={d.suggested_then}>{d.suggested_now}"
            for d in sorted(self.points, key=lambda d: d.code)
        )
        return f"e{self.event_seq}:{figures}"


def item_drifts(session: Session, assessment: Assessment, now: dt.datetime) -> dict[int, ItemDrift]:
    """`drifted_items` with the drift of each (item id → `ItemDrift`): the same five queries
    at most for the whole assessment (six when a rule counts working days: the calendar),
    none when no indicator is routine-fed."""
    if not rules_of(assessment).suggestions:
        return {}
    points = list(
        session.execute(
            select(ScoringPoint)
            .join(Indicator, Indicator.id == ScoringPoint.indicator_id)
            .where(Indicator.assessment_id == assessment.id, ScoringPoint.routine.is_not(None))
        ).scalars()
    )
    if not points:
        return {}
    items = session.execute(
        select(Item.id, Item.department_id, Item.indicator_id).where(
            Item.assessment_id == assessment.id,
            Item.state.in_(SCORED_STATES),
            Item.indicator_id.in_({p.indicator_id for p in points}),
        )
    ).all()
    if not items:
        return {}
    ids = [i.id for i in items]
    latest = (
        select(func.max(AuditEvent.seq))
        .where(AuditEvent.item_id.in_(ids), AuditEvent.action.in_(SCORE_ACTIONS))
        .group_by(AuditEvent.item_id)
    )
    events = {
        e.item_id: e
        for e in session.execute(select(AuditEvent).where(AuditEvent.seq.in_(latest))).scalars()
    }
    upheld = {
        (item_id, point_id)
        for item_id, point_id in session.execute(
            select(NotInvolvedClaim.item_id, NotInvolvedClaim.scoring_point_id).where(
                NotInvolvedClaim.item_id.in_(ids), NotInvolvedClaim.is_upheld.is_(True)
            )
        )
    }
    calendar = due_calendar(session, assessment)
    figures: dict[int, list[RecordFigure]] = {}
    for dep_id, kind, period, status, is_late, outcome in session.execute(
        select(RoutineRecord.department_id, *FIGURE_COLUMNS).where(
            RoutineRecord.assessment_id == assessment.id
        )
    ):
        figures.setdefault(dep_id, []).append(RecordFigure(kind, period, status, is_late, outcome))
    out: dict[int, ItemDrift] = {}
    for item_id, department_id, indicator_id in items:
        mine = [
            p for p in points
            if p.indicator_id == indicator_id and (item_id, p.id) not in upheld
        ]  # fmt: skip
        theirs = figures.get(department_id, [])
        current = suggest_points(assessment, mine, theirs, now, add_working_days=calendar)
        event = events.get(item_id)
        drift = drifted_points(event, current, {})
        if drift and event is not None:
            drift = drift_causes(
                assessment, drift, mine, theirs, suggested_at(event), now,
                add_working_days=calendar,
            )  # fmt: skip
            out[item_id] = ItemDrift(item_id, event.seq, drift)
    return out


# --- telling the scorers: a routine change that moves a scored item's suggestion -------------

#: A department's scored items with routine points, each with its points and suggestions.
Watched = list[tuple[Item, list[ScoringPoint], dict[str, Decimal]]]


def _feeding_kinds(assessment: Assessment) -> set[str]:
    """The record kinds any suggestion counts (`feeding_kinds` of each rule: a point without
    a rule has no suggestion for a record to move)."""
    return {k for spec in rules_of(assessment).suggestions.values() for k in feeding_kinds(spec)}


def _watch_scored(session: Session, record: RoutineRecord, now: dt.datetime) -> Watched:
    """Before a record changes: the department's scored items whose suggestions the record's
    kind feeds, with those suggestions. No query when the kind feeds none."""
    assessment = session.get_one(Assessment, record.assessment_id)
    if record.kind not in _feeding_kinds(assessment):
        return []
    # The department's scoring takes a share of this lock before it reads the suggestions
    # (workflow/pipeline.py): a score in flight commits first and is watched here; one that
    # starts later waits for this change and is given the suggestions it leaves.
    session.execute(
        select(Department.id)
        .where(Department.id == record.department_id)
        .with_for_update(key_share=True)
    ).all()
    items = list(
        session.execute(
            select(Item)
            .where(
                Item.assessment_id == record.assessment_id,
                Item.department_id == record.department_id,
                Item.state.in_(SCORED_STATES),
                Item.indicator_id.in_(
                    select(ScoringPoint.indicator_id).where(ScoringPoint.routine.is_not(None))
                ),
            )
            .options(selectinload(Item.scores), selectinload(Item.claims))
        ).scalars()
    )
    if not items:
        return []
    points = list(
        session.execute(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id.in_({i.indicator_id for i in items}))
            .order_by(ScoringPoint.position)
        ).scalars()
    )
    figures = _figures(session, record.assessment_id, record.department_id)
    calendar = due_calendar(session, assessment)
    watched: Watched = []
    for item in items:
        upheld = {c.scoring_point_id for c in item.claims if c.is_upheld}
        mine = [p for p in points if p.indicator_id == item.indicator_id and p.id not in upheld]
        suggested = suggest_points(assessment, mine, figures, now, add_working_days=calendar)
        watched.append((item, mine, suggested))
    return watched


def _tell_scorers(
    session: Session, watched: Watched, record: RoutineRecord, what: str, actor: User,
    now: dt.datetime, *, periods: Sequence[str] = (),
) -> None:  # fmt: skip
    """After a record changed: the scorers of each watched item whose suggestion moved (and
    the admins) hear of it, in the same transaction; `what` names the change (a Chinese
    word, a msgid), `periods` the periods it touched (the record's, by default)."""
    changed = [(record.kind, period) for period in (periods or (record.period,))]
    if not watched:
        return
    figures = _figures(session, record.assessment_id, record.department_id)
    from workflow import notify  # notify imports the models routine uses

    calendar = due_calendar(session, watched[0][0].assessment)
    for item, points, before in watched:
        after = suggest_points(item.assessment, points, figures, now, add_working_days=calendar)
        if after == before:
            continue
        by_id = {p.id: p.code for p in points}
        scores = {by_id[s.scoring_point_id]: s.points for s in item.scores
                  if s.scoring_point_id in by_id}  # fmt: skip
        event = latest_score_event(session, item.id)
        if event is None:
            continue
        drift = drifted_points(event, after, scores)
        at = suggested_at(event)
        drift = drift_causes(
            item.assessment, drift, points, figures, at, now, changed, add_working_days=calendar
        )
        notify.routine_basis_changed(
            session, item, record, what, drift, drift_remedy(item, now), actor, now
        )
