"""Assessment-level operations: appeal window, publication (公示), finalisation and reopening.

Status is derived from times and the items' states, so it holds across processes without a
scheduler: open → published (appeal window running) → appeals_pending (window closed, some
appeal not yet decided) → final (window closed, every appeal decided) → reopened (admin, with
a reason) → published again. Once published, the window moves only through reopen and a new
publication, both audited.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session

from scoring.totals import DepartmentResult
from workflow.audit import record_event
from workflow.db import lock_row
from workflow.errors import BadRequest, Conflict, Forbidden, InvalidValue
from workflow.fingerprints import check_row_seen, check_seen, fields_of, fingerprint
from workflow.messages import Np_
from workflow.models import Assessment, Item, User, utcnow
from workflow.states import Role, State

MAX_PUBLICATION_DAYS = 60
#: Counted refusals (`Np_`: 1 item, 3 items in English).
NOT_ALL_SCORED = Np_("尚有 %(n)s 个考核事项未评分，不能公示")
APPEALS_PENDING = Np_("尚有 %(n)s 件申诉待决定，结果尚未最终确定，不能重新开启")


def pending_appeals(session: Session, assessment: Assessment) -> int:
    """Count the assessment's items whose appeal awaits a decision."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Item)
            .where(Item.assessment_id == assessment.id, Item.state == State.APPEALED.value)
        )
        or 0
    )


def assessment_status(assessment: Assessment, now: dt.datetime | None = None) -> str:
    """Return `open`, `published`, `appeals_pending`, `final` or `reopened`.

    After the window closes the results are final only once every appeal is decided.
    """
    now = now or utcnow()
    if assessment.reopened_at is not None:
        return "reopened"
    if assessment.published_at is None or assessment.appeal_closes_at is None:
        return "open"
    if now < assessment.appeal_closes_at:
        return "published"
    session = object_session(assessment)
    if session is not None and pending_appeals(session, assessment):
        return "appeals_pending"
    return "final"


def is_final(assessment: Assessment, now: dt.datetime | None = None) -> bool:
    """Tell whether results are locked (window closed and every appeal decided)."""
    return assessment_status(assessment, now) == "final"


def ensure_not_final(assessment: Assessment, now: dt.datetime | None = None) -> None:
    """Refuse a change to a finalised assessment (only `reopen` may follow)."""
    if is_final(assessment, now):
        raise Conflict("考核结果已最终确定，修改须由管理员重新开启", code="assessment_final")


def local_minute(moment: dt.datetime, timezone: str) -> str:
    """A moment as people there read it: 2018-12-28 09:30 (the assessment's time zone)."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _lock(session: Session, assessment: Assessment) -> None:
    """Lock the assessment row so two admins' changes of its status queue up."""
    lock_row(session, Assessment, assessment.id)


#: The assessment's columns its publication status is read from (`assessment_status`).
PUBLICATION_COLUMNS = (
    "published_at",
    "appeal_opens_at",
    "appeal_closes_at",
    "reopened_at",
    "finalised_at",
    "hide_scores_until_published",
)


def hold_publication(session: Session, assessment: Assessment) -> None:
    """Key-share lock the assessment and read its publication status again.

    For a change judged on the publication (an appeal's window, a correction after a reopen,
    a department's routine report). A publication or reopen locks the row FOR UPDATE
    (`_lock`): one in flight commits first and the change is judged on what it wrote; one that
    comes later waits for the change. Such changes do not wait for each other (key-share locks
    do not conflict), nor for a plain update of the assessment's settings.
    """
    session.refresh(
        assessment,
        attribute_names=PUBLICATION_COLUMNS,
        with_for_update={"read": True, "key_share": True},
    )


def _require_admin(actor: User) -> None:
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("只有管理员可以执行此操作", code="role_required")


#: The fields of the appeal window's form (`appeal_window_seen`).
APPEAL_WINDOW_FIELDS = ("appeal_opens_at", "appeal_closes_at")
#: The field of the 公示 page's audience form (`publication_page_seen`).
PUBLICATION_PAGE_FIELDS = ("publication_page",)


def appeal_window_seen(assessment: Assessment) -> str:
    """The fingerprint of the appeal window as it is now (a window form's `seen`)."""
    return fingerprint(fields_of(assessment, APPEAL_WINDOW_FIELDS))


def publication_page_seen(assessment: Assessment) -> str:
    """The fingerprint of the 公示 page's audience as it is now (its form's `seen`)."""
    return fingerprint(fields_of(assessment, PUBLICATION_PAGE_FIELDS))


def set_appeal_window(
    session: Session,
    assessment: Assessment,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    *,
    actor: User | None,
    seen: str | None = None,
) -> None:
    """Set the window in which departments may appeal their scores, before publication; audited.

    Once the results are published the window is a public commitment: it moves only through
    `reopen` and a new publication (each audited), never in place. `seen`
    (`appeal_window_seen` when the form was opened): a window changed since is a 409
    `changed_since_opened`, nothing changed.
    """
    if closes_at <= opens_at:
        raise InvalidValue("申诉截止时间须晚于开始时间", code="bad_window")
    _lock(session, assessment)
    session.refresh(assessment)
    if assessment.published_at is not None:
        raise Conflict(
            "考核结果已公示，申诉期不能调整；如需更正，须待结果最终确定后由管理员重新开启并重新公示",
            code="assessment_published",
        )
    check_seen(seen, fields_of(assessment, APPEAL_WINDOW_FIELDS))
    assessment.appeal_opens_at = opens_at
    assessment.appeal_closes_at = closes_at
    session.flush()
    record_event(
        session,
        actor=actor,
        action="appeal_window_set",
        target_type="assessment",
        target_id=assessment.id,
        payload={"opens_at": opens_at, "closes_at": closes_at},
    )


def publish_assessment(
    session: Session,
    assessment: Assessment,
    days: Any,
    *,
    actor: User,
    now: dt.datetime | None = None,
    working_days: Any = False,
) -> Assessment:
    """Publish the results (公示) for `days` once every item is scored; appeals open.

    The window closes at the clock time it opened, `days` calendar days later, or with
    `working_days` on the `days`-th Chinese working day after today (holidays and 调休 as
    the stage calendar counts them): seven calendar days from 30 September are all 国庆
    holidays, a window no department can use.
    """
    _require_admin(actor)
    now = now or utcnow()
    if isinstance(days, bool) or not isinstance(days, int):
        raise BadRequest("days 须为整数", code="invalid_type")
    if not isinstance(working_days, bool):
        raise BadRequest("working_days 须为 true 或 false", code="invalid_type")
    if not 1 <= days <= MAX_PUBLICATION_DAYS:
        raise InvalidValue(
            "公示天数须在 1 到 %(max)s 之间",
            code="bad_days",
            params={"max": MAX_PUBLICATION_DAYS},
        )
    # Lock the assessment row so two admins cannot publish twice at once.
    _lock(session, assessment)
    session.refresh(assessment)
    status = assessment_status(assessment, now)
    closes = assessment.appeal_closes_at
    if status == "published" and closes is not None:  # published: the window is set
        raise Conflict(
            "考核结果正在公示中，申诉期至 %(closes)s（北京时间），不能再次公示",
            code="already_published",
            params={"closes": local_minute(closes, assessment.timezone)},
        )
    if status == "appeals_pending":
        raise Conflict("申诉期已结束，尚有申诉待决定", code="appeals_pending")
    if status == "final":
        raise Conflict("考核结果已最终确定，须先重新开启", code="assessment_final")
    previous = {"opens_at": assessment.appeal_opens_at, "closes_at": assessment.appeal_closes_at}
    pending = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.assessment_id == assessment.id, Item.state != State.SCORED.value)
    )
    if pending:
        raise Conflict(NOT_ALL_SCORED, code="not_all_scored", params={"n": pending})
    closes = _window_close(session, assessment, now, days, working_days=working_days)
    republished = assessment.reopened_at is not None  # after a reopen for correction
    assessment.published_at = now
    assessment.reopened_at = None
    assessment.reopen_reason = None
    assessment.finalised_at = None
    assessment.appeal_opens_at = now
    assessment.appeal_closes_at = closes
    session.flush()
    record_event(
        session,
        actor=actor,
        action="assessment_published",
        target_type="assessment",
        target_id=assessment.id,
        payload={
            "days": days,
            "counted_in_working_days": working_days,
            "opens_at": now,
            "closes_at": assessment.appeal_closes_at,
            # A republication after reopen moves the window: the trail keeps the old one.
            "previous_window": previous if previous["closes_at"] is not None else None,
        },
    )
    from workflow import notify  # notify reads results through notices

    notify.results_published(session, assessment, now, again=republished)
    return assessment


def _window_close(
    session: Session, assessment: Assessment, now: dt.datetime, days: int, *, working_days: bool
) -> dt.datetime:
    """When a 公示 opened at `now` for `days` (calendar or working days) closes."""
    if not working_days:
        return now + dt.timedelta(days=days)
    from workflow.calendar import work_calendar
    from workflow.workdays import UNKNOWN_YEAR, UnknownYear

    opened = now.astimezone(ZoneInfo(assessment.timezone))
    try:
        last = work_calendar(session).add_working_days(opened.date(), days)
    except UnknownYear as exc:
        raise InvalidValue(
            UNKNOWN_YEAR, code="calendar_unknown_year", params={"year": exc.year}
        ) from exc
    return dt.datetime.combine(last, opened.timetz()).astimezone(dt.UTC)


def reopen_assessment(
    session: Session,
    assessment: Assessment,
    reason: Any,
    *,
    actor: User,
    now: dt.datetime | None = None,
) -> Assessment:
    """Reopen a finalised assessment for correction, with a reason; audited."""
    _require_admin(actor)
    now = now or utcnow()
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason 必须是文本", code="invalid_type")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidValue("重新开启须说明理由", code="reason_required")
    _lock(session, assessment)
    session.refresh(assessment)
    if not is_final(assessment, now):
        if assessment.reopened_at is not None:  # another admin came first
            raise Conflict(
                "该考核已于 %(at)s 重新开启，无需再次开启",
                code="already_reopened",
                params={"at": local_minute(assessment.reopened_at, assessment.timezone)},
            )
        status = assessment_status(assessment, now)
        pending = pending_appeals(session, assessment)
        if pending and status == "appeals_pending":
            raise Conflict(
                APPEALS_PENDING,
                code="not_final",
                params={"n": pending},
            )
        if status == "published" and assessment.appeal_closes_at is not None:
            raise Conflict(
                "考核结果正在公示中：申诉期于 %(closes)s（北京时间）结束、申诉全部决定后，"
                "结果最终确定，方可重新开启",
                code="not_final",
                params={"closes": local_minute(assessment.appeal_closes_at, assessment.timezone)},
            )
        raise Conflict(
            "考核结果尚未公示，无需重新开启；只有已最终确定的考核可以重新开启", code="not_final"
        )
    # Final since the window closed or the last appeal was decided, whichever came later.
    last_change = session.scalar(
        select(func.max(Item.updated_at)).where(Item.assessment_id == assessment.id)
    )
    closes = assessment.appeal_closes_at
    assessment.finalised_at = max(d for d in (closes, last_change) if d is not None)
    assessment.reopened_at = now
    assessment.reopen_reason = reason
    session.flush()
    record_event(
        session,
        actor=actor,
        action="assessment_reopened",
        target_type="assessment",
        target_id=assessment.id,
        comment=reason,
        payload={"finalised_at": assessment.finalised_at, "reopened_at": now},
    )
    return assessment


PUBLICATION_AUDIENCES = ("public", "signed_in")


def set_publication_page(
    session: Session,
    assessment: Assessment,
    audience: Any,
    *,
    actor: User,
    seen: str | None = None,
) -> Assessment:
    """Choose who may read the 公示 page: everyone, or signed-in users only (admin; audited).

    `seen` (`publication_page_seen` when the form was opened): an audience another admin
    changed since is a 409 `changed_since_opened`, nothing changed."""
    _require_admin(actor)
    if audience not in PUBLICATION_AUDIENCES:
        raise InvalidValue("公示页面范围须为 public 或 signed_in", code="bad_audience")
    check_row_seen(session, assessment, PUBLICATION_PAGE_FIELDS, seen)
    before = assessment.publication_page
    if before == audience:
        return assessment
    assessment.publication_page = audience
    session.flush()
    record_event(
        session,
        actor=actor,
        action="publication_page_set",
        target_type="assessment",
        target_id=assessment.id,
        payload={"from": before, "to": audience},
    )
    return assessment


def results_of(session: Session, assessment: Assessment) -> list[DepartmentResult]:
    """Totals, converted scores and ranks of every department of the assessment, best first."""
    from workflow.results import assessment_results

    return assessment_results(session, assessment).rows
