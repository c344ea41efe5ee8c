"""The stage calendar of an assessment: deadlines, working days left, overdue stages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, request

from web.api import schemas as s
from web.api.assessments import AID, get_assessment
from web.api.blueprint import bp
from web.api.common import decode_cursor, encode_cursor, json_body, json_response, query_limit
from web.api.contract import contract, parse_body
from web.auth import api_user
from web.clock import request_now
from web.common.ids import MAX_ID
from web.db import get_db
from workflow.assessments import assessment_status
from workflow.calendar import (
    STAGES,
    calendar_overrides,
    deadline_notes,
    enter_arrangement,
    entries_besides,
    override_seen,
    overrides_seen,
    parse_day,
    plan_fingerprint,
    preview_arrangement,
    remove_calendar_override,
    set_calendar_override,
    set_stage_deadline,
    stage_calendar,
    stage_rows,
    stage_seen,
    today_of,
)
from workflow.errors import InvalidValue, NotFound
from workflow.models import Assessment, CalendarOverride

OID = f"<int(max={MAX_ID}):oid>"


@bp.get(f"/assessments/{AID}/calendar")
@contract("assessments", ok={200: (s.StageCalendar, "The calendar.")}, errors=(404,))
def assessment_calendar(aid: int) -> Response:
    """Return every stage with `name, starts_on, due_on, working_days_left, overdue` (any user)."""
    api_user()
    return json_response(_calendar(get_assessment(aid)))


def _calendar(assessment: Assessment) -> dict[str, Any]:
    now = request_now()
    views = stage_calendar(get_db(), assessment, now)
    rows = stage_rows(get_db(), assessment)
    editable = dict(STAGES)
    return {
        "assessment_id": assessment.id,
        "today": today_of(assessment, now).isoformat(),
        "status": assessment_status(assessment, now),
        "stages": [
            {**v.as_json(), "seen": stage_seen(rows.get(v.name)) if v.name in editable else None}
            for v in views
        ],
        "warnings": [n.as_json() for n in deadline_notes(get_db(), assessment)],
    }


@bp.put(f"/assessments/{AID}/calendar/stages/<string(maxlength=16):stage>")
@contract(
    "assessments",
    body=s.StageDeadlineBody,
    ok={200: (s.StageCalendar, "The calendar after the change.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def put_stage_deadline(aid: int, stage: str) -> Response:
    """Set or clear a stage's deadline (admin): a date, or N (1 … 250) working days after the
    previous stage's deadline; checked against the other stages and the holiday calendar;
    audited. A date on a day off is kept and named in `warnings`."""
    user = api_user()
    assessment = get_assessment(aid)
    if stage not in dict(STAGES):
        raise NotFound("没有这个考核阶段", code="stage_not_found")
    body = parse_body(s.StageDeadlineBody, json_body())
    set_stage_deadline(
        get_db(),
        assessment,
        stage,
        starts_on=parse_day(body.starts_on or "", "starts_on"),
        due_on=parse_day(body.due_on or "", "due_on"),
        working_days=body.working_days,
        actor=user,
        seen=body.seen,
    )
    return json_response(_calendar(assessment))


def override_body(row: CalendarOverride) -> dict[str, Any]:
    """Serialise an override."""
    return {
        "id": row.id,
        "day": row.day.isoformat(),
        "is_workday": row.is_workday,
        "reason": row.reason,
        "seen": override_seen(row),
    }


@bp.get("/calendar/overrides")
@contract("assessments", query=s.Page, ok={200: (s.Overrides, "The overrides, by day.")})
def list_overrides() -> Response:
    """The working-day overrides the office entered, by day (any signed-in user), paginated."""
    api_user()
    limit = query_limit()
    after = decode_cursor("override")  # the day's ordinal
    rows = calendar_overrides(
        get_db(),
        after=dt.date.fromordinal(after) if after else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("override", rows[-1].day.toordinal()) if more and rows else None
    return json_response(
        {
            "overrides": [override_body(r) for r in rows],
            "next_cursor": next_cursor,
            "seen": overrides_seen(get_db()),
        }
    )


@bp.post("/calendar/overrides")
@contract(
    "assessments",
    body=s.OverrideBody,
    ok={201: (s.OverrideOut, "The override (an earlier one for the day is replaced).")},
    errors=(403, 409, 413, 415, 422),
)
def post_override() -> Response:
    """Declare a day a holiday or a working day, with the reason (admin); audited. Refused
    (422 `override_breaks_order`) when it would put a working-day deadline out of order, and
    (409 `changed_since_opened`) when it would replace the day's entry while the overrides
    changed since the list's `seen` was read."""
    user = api_user()
    body = parse_body(s.OverrideBody, json_body())
    day = parse_day(body.day, "day")
    if day is None:
        raise InvalidValue("请填写日期", code="date_required")
    row = set_calendar_override(
        get_db(), day, body.is_workday, body.reason, actor=user, seen=body.seen
    )
    return json_response(override_body(row), 201)


@bp.delete(f"/calendar/overrides/{OID}")
@contract(
    "assessments",
    query=s.OverrideDeleteQuery,
    ok={204: (None, "Removed.")},
    errors=(403, 404, 409, 422),
)
def delete_override(oid: int) -> Response:
    """Remove an override (admin); the holiday package's arrangement applies again; audited.
    Refused (422) when a deadline counted in working days needs it: `override_in_use` (its
    year would be unknown again) or `override_breaks_order` (stages out of order); with
    `?seen=` (the entry's `seen` as read), 409 `changed_since_opened` when it was replaced
    since."""
    user = api_user()
    remove_calendar_override(get_db(), oid, actor=user, seen=request.args.get("seen"))
    return Response(status=204)


@bp.post("/calendar/arrangement")
@contract(
    "assessments",
    body=s.ArrangementBody,
    ok={200: (s.ArrangementOut, "The days of the arrangement and what entering did or would do.")},
    errors=(403, 409, 413, 415, 422),
)
def post_arrangement() -> Response:
    """Enter a year's holidays from the pasted State Council notice (admin): one override and
    one audit event per day the calendar does not say already, all or nothing. `dry_run`
    previews; `seen` (a preview's `fingerprint`) refuses with 409 `arrangement_changed` when
    the overrides changed since. A notice whose dates do not hold (a weekday that is not the
    date's, 共 N 天 that is not the range) is a 422 naming the date."""
    user = api_user()
    body = parse_body(s.ArrangementBody, json_body())
    db = get_db()
    if body.dry_run:
        arrangement, plan = preview_arrangement(db, body.text, actor=user)
    else:
        arrangement, plan = enter_arrangement(db, body.text, actor=user, seen=body.seen)
    return json_response(
        {
            "year": arrangement.year,
            "source": arrangement.source,
            "days": [
                {
                    "day": p.day.isoformat(),
                    "is_workday": p.is_workday,
                    "holiday": p.holiday,
                    "action": p.action,
                }
                for p in plan
            ],
            "fingerprint": plan_fingerprint(plan),
            "dry_run": body.dry_run,
            "entered": 0 if body.dry_run else sum(1 for p in plan if p.changes),
            "kept": [override_body(row) for row in entries_besides(db, arrangement)],
        }
    )
