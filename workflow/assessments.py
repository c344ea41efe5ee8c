"""Assessment-level operations: appeal window, publication (公示), finalisation and reopening.

Status is derived from times, so it holds across processes without a scheduler:
open → published (appeal window running) → final (window closed) → reopened (admin, with a
reason) → published again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.audit import record_event
from workflow.errors import BadRequest, Conflict, Forbidden, InvalidValue
from workflow.models import Assessment, Item, User, utcnow
from workflow.states import Role, State

MAX_PUBLICATION_DAYS = 60


def assessment_status(assessment: Assessment, now: dt.datetime | None = None) -> str:
    """Return `open`, `published`, `final` or `reopened`."""
    now = now or utcnow()
    if assessment.reopened_at is not None:
        return "reopened"
    if assessment.published_at is None or assessment.appeal_closes_at is None:
        return "open"
    if now < assessment.appeal_closes_at:
        return "published"
    return "final"


def is_final(assessment: Assessment, now: dt.datetime | None = None) -> bool:
    """Tell whether results are locked (published and the appeal window has closed)."""
    return assessment_status(assessment, now) == "final"


def ensure_not_final(assessment: Assessment, now: dt.datetime | None = None) -> None:
    """Refuse a change to a finalised assessment (only `reopen` may follow)."""
    if is_final(assessment, now):
        raise Conflict("考核结果已最终确定，修改须由管理员重新开启", code="assessment_final")


def _require_admin(actor: User) -> None:
    if not actor.has_role(Role.ADMIN):
        raise Forbidden("只有管理员可以执行此操作", code="role_required")


def set_appeal_window(
    session: Session,
    assessment: Assessment,
    opens_at: dt.datetime,
    closes_at: dt.datetime,
    *,
    actor: User | None,
) -> None:
    """Open (or move) the window in which departments may appeal their scores, audited."""
    if closes_at <= opens_at:
        raise InvalidValue("申诉截止时间须晚于开始时间", code="bad_window")
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
) -> Assessment:
    """Publish the results (公示) for `days` once every item is scored; appeals open."""
    _require_admin(actor)
    now = now or utcnow()
    if isinstance(days, bool) or not isinstance(days, int):
        raise BadRequest("days 须为整数", code="invalid_type")
    if not 1 <= days <= MAX_PUBLICATION_DAYS:
        raise InvalidValue(f"公示天数须在 1 到 {MAX_PUBLICATION_DAYS} 之间", code="bad_days")
    status = assessment_status(assessment, now)
    if status == "published":
        raise Conflict("考核结果正在公示中", code="already_published")
    if status == "final":
        raise Conflict("考核结果已最终确定，须先重新开启", code="assessment_final")
    # Lock the assessment row so two admins cannot publish twice at once.
    session.execute(
        select(Assessment.id).where(Assessment.id == assessment.id).with_for_update()
    ).all()
    pending = session.scalar(
        select(func.count())
        .select_from(Item)
        .where(Item.assessment_id == assessment.id, Item.state != State.SCORED.value)
    )
    if pending:
        raise Conflict(f"尚有 {pending} 个考核事项未评分，不能公示", code="not_all_scored")
    assessment.published_at = now
    assessment.reopened_at = None
    assessment.reopen_reason = None
    assessment.finalised_at = None
    assessment.appeal_opens_at = now
    assessment.appeal_closes_at = now + dt.timedelta(days=days)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="assessment_published",
        target_type="assessment",
        target_id=assessment.id,
        payload={"days": days, "opens_at": now, "closes_at": assessment.appeal_closes_at},
    )
    return assessment


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
    if not is_final(assessment, now):
        raise Conflict("只有已最终确定的考核可以重新开启", code="not_final")
    assessment.finalised_at = assessment.appeal_closes_at
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
        payload={"finalised_at": assessment.finalised_at},
    )
    return assessment
