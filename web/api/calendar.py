"""The stage calendar of an assessment: deadlines, working days left, overdue stages."""

from __future__ import annotations

from flask import Response

from web.api import schemas as s
from web.api.assessments import AID, get_assessment
from web.api.blueprint import bp
from web.api.common import json_response
from web.api.contract import contract
from web.auth import api_user
from web.clock import request_now
from web.db import get_db
from workflow.assessments import assessment_status
from workflow.calendar import stage_calendar, today_of


@bp.get(f"/assessments/{AID}/calendar")
@contract("assessments", ok={200: (s.StageCalendar, "The calendar.")}, errors=(404,))
def assessment_calendar(aid: int) -> Response:
    """Return every stage with `name, starts_on, due_on, working_days_left, overdue` (any user)."""
    api_user()
    assessment = get_assessment(aid)
    now = request_now()
    views = stage_calendar(get_db(), assessment, now)
    return json_response(
        {
            "assessment_id": assessment.id,
            "today": today_of(assessment, now).isoformat(),
            "status": assessment_status(assessment, now),
            "stages": [v.as_json() for v in views],
        }
    )
