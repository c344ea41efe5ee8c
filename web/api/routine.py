"""Routine records (平时考核), publication (公示) and reopening: the routine endpoints."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, BinaryIO, cast

from flask import Response, current_app, request

from scoring.routine import KIND_LABELS, Suggestion
from storage.base import ObjectStore
from web.api import schemas as s
from web.api.assessments import AID, assessment_body, get_assessment
from web.api.blueprint import bp
from web.api.common import (
    MAX_ID,
    UnsupportedMediaType,
    bad_text,
    form_text,
    iso,
    json_response,
    points,
    refuse_unknown_parts,
)
from web.api.contract import contract, parse_body
from web.auth import api_user
from web.db import get_db
from workflow.assessments import assessment_status, publish_assessment, reopen_assessment
from workflow.errors import BadRequest
from workflow.models import RoutineRecord, utcnow
from workflow.routine import (
    correct_routine,
    get_routine,
    review_routine,
    routine_overview,
    submit_routine,
    withdraw_routine,
)

RID = f"<int(max={MAX_ID}):rid>"
DID = f"<int(max={MAX_ID}):did>"


def routine_body(record: RoutineRecord) -> dict[str, Any]:
    """Serialise a routine record."""
    return {
        "id": record.id,
        "assessment_id": record.assessment_id,
        "department_id": record.department_id,
        "kind": record.kind,
        "kind_label": KIND_LABELS.get(record.kind, record.kind),
        "period": record.period,
        "title": record.title,
        "note": record.note,
        "due_at": iso(record.due_at),
        "submitted_at": iso(record.submitted_at),
        "is_late": record.is_late,
        "status": record.status,
        "reason": record.reason,
        "reviewed_at": iso(record.reviewed_at),
        "outcome": record.outcome,
        "registered_by": record.registered_by,
        "files": [
            {
                "id": f.id,
                "filename": f.filename,
                "size": f.size,
                "sha256": f.sha256,
                "content_type": f.content_type,
            }
            for f in record.files
        ],
    }


@bp.post(f"/assessments/{AID}/routine")
@contract(
    "routine",
    form=s.RoutineForm,
    ok={201: (s.RoutineRecord, "Recorded.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def create_routine(aid: int) -> Response:
    """Record a routine submission (multipart: kind, period, title, file, department)."""
    user = api_user()
    db = get_db()
    assessment = get_assessment(aid)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType(
            "请以 multipart/form-data 提交（字段 kind、period、title、file）"
        )
    refuse_unknown_parts(s.RoutineForm.model_fields)
    department = form_text("department", 20)
    department_id = None
    if department is not None:
        if not department.isdecimal() or int(department) > MAX_ID:
            raise BadRequest("department 须为部门 id", code="invalid_value")
        department_id = int(department)
    upload = request.files.get("file")
    if upload is not None and bad_text(upload.filename or ""):
        raise BadRequest("文件名无效", code="invalid_value")
    store: ObjectStore = current_app.extensions["store"]
    record = submit_routine(
        db,
        store,
        assessment,
        user,
        kind=form_text("kind", 32) or "",
        period=form_text("period", 10) or "",
        title=form_text("title", 300) or "",
        note=form_text("note", 2000),
        outcome=form_text("outcome", 16),
        stream=cast(BinaryIO, upload.stream) if upload is not None else None,
        filename=upload.filename if upload is not None else None,
        department_id=department_id,
        max_size=int(current_app.config["MAX_UPLOAD_BYTES"]),
    )
    return json_response(routine_body(record), 201)


@bp.get(f"/assessments/{AID}/departments/{DID}/routine")
@contract("routine", ok={200: (s.RoutineOverview, "The overview.")}, errors=(403, 404))
def department_routine(aid: int, did: int) -> Response:
    """A department's records, per-period counts against the quota, suggested scores."""
    user = api_user()
    assessment = get_assessment(aid)
    overview = routine_overview(get_db(), assessment, did, user, utcnow())
    return json_response(
        {
            "records": [routine_body(r) for r in overview.records],
            "counts": {
                kind: [
                    {
                        "period": c.period,
                        "accepted": c.accepted,
                        "late": c.late,
                        "rejected": c.rejected,
                        "pending": c.pending,
                        "minimum": c.minimum,
                        "met": c.is_met,
                    }
                    for c in lines
                ]
                for kind, lines in overview.counts.items()
            },
            "suggested": {code: _suggestion_body(s) for code, s in overview.suggestions.items()},
        }
    )


def _suggestion_body(s: Suggestion) -> dict[str, Any]:
    """A suggested score with its breakdown; decimals as two-place strings."""
    breakdown = {k: points(v) if isinstance(v, Decimal) else v for k, v in s.breakdown.items()}
    return {"points": points(s.points), "max_points": points(s.max_points), "breakdown": breakdown}


@bp.get(f"/routine/{RID}")
@contract("routine", ok={200: (s.RoutineRecord, "The record.")}, errors=(404,))
def get_routine_record(rid: int) -> Response:
    """One routine record the caller may read."""
    return json_response(routine_body(get_routine(get_db(), rid, api_user())))


@bp.post(f"/routine/{RID}/review")
@contract(
    "routine",
    body=s.RoutineReviewBody,
    ok={200: (s.RoutineRecord, "The record.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def review_routine_record(rid: int) -> Response:
    """Accept or reject a routine record (reviewer, admin); a rejection needs a reason."""
    user = api_user()
    body = parse_body(s.RoutineReviewBody)
    db = get_db()
    record = review_routine(
        db, rid, user, body.status, body.reason, expected_status=body.expected_status
    )
    return json_response(routine_body(record))


@bp.post(f"/routine/{RID}/correct")
@contract(
    "routine",
    body=s.RoutineCorrectBody,
    ok={200: (s.RoutineRecord, "The corrected record.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def correct_routine_record(rid: int) -> Response:
    """Correct a record the office registered (period, title, note, outcome), with a reason."""
    user = api_user()
    body = parse_body(s.RoutineCorrectBody)
    db = get_db()
    record = correct_routine(
        db,
        rid,
        user,
        reason=body.reason,
        period=body.period,
        title=body.title,
        note=body.note,
        outcome=body.outcome,
    )
    return json_response(routine_body(record))


@bp.post(f"/routine/{RID}/withdraw")
@contract(
    "routine",
    body=s.ReasonBody,
    ok={200: (s.RoutineRecord, "The withdrawn record.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def withdraw_routine_record(rid: int) -> Response:
    """Withdraw a record the office registered; it stays on file and no longer counts."""
    user = api_user()
    body = parse_body(s.ReasonBody)
    db = get_db()
    record = withdraw_routine(db, rid, user, reason=body.reason)
    return json_response(routine_body(record))


@bp.post(f"/assessments/{AID}/publish")
@contract(
    "assessments",
    body=s.PublishBody,
    ok={200: (s.AssessmentStatus, "Published.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def publish(aid: int) -> Response:
    """Publish the results for `days` once every item is scored (admin); 409 before."""
    user = api_user()
    body = parse_body(s.PublishBody)
    db = get_db()
    assessment = publish_assessment(
        db, get_assessment(aid), body.days, actor=user, working_days=body.working_days
    )
    return json_response(_status_body(assessment))


@bp.post(f"/assessments/{AID}/reopen")
@contract(
    "assessments",
    body=s.ReasonBody,
    ok={200: (s.AssessmentStatus, "Reopened.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def reopen(aid: int) -> Response:
    """Reopen a finalised assessment for correction, with a reason (admin); audited."""
    user = api_user()
    body = parse_body(s.ReasonBody)
    db = get_db()
    assessment = reopen_assessment(db, get_assessment(aid), body.reason, actor=user)
    return json_response(_status_body(assessment))


def _status_body(assessment: Any) -> dict[str, Any]:
    return assessment_body(assessment) | {
        "status": assessment_status(assessment),
        "published_at": iso(assessment.published_at),
        "appeal_opens_at": iso(assessment.appeal_opens_at),
        "appeal_closes_at": iso(assessment.appeal_closes_at),
        "reopened_at": iso(assessment.reopened_at),
        "reopen_reason": assessment.reopen_reason,
    }
