"""Assessment-level operations: the appeal window (publication comes with routine work)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from workflow.audit import record_event
from workflow.errors import InvalidValue
from workflow.models import Assessment, User


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
