"""Items: detail, evidence upload/removal/download, transitions and history."""

from __future__ import annotations

from typing import Any, BinaryIO, cast

from flask import Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore, content_disposition
from storage.errors import ObjectNotFound
from web.api import schemas as s
from web.api.assessments import item_summary
from web.api.blueprint import bp
from web.api.common import (
    MAX_ID,
    UnsupportedMediaType,
    bad_text,
    decode_cursor,
    encode_cursor,
    event_body,
    evidence_body,
    form_text,
    idempotency_key,
    iso,
    json_response,
    points,
    query_limit,
    refuse_unknown_parts,
)
from web.api.contract import ANY_FILE, NOT_MODIFIED, contract, parse_body
from web.auth import api_user
from web.common.stored_files import etag_of, open_as_recorded, unchanged_answer
from web.db import discard_on_error, get_db
from workflow.actions import (
    TransitionRequest,
    get_readable_item,
    transition_command,
)
from workflow.errors import BadRequest, NotFound
from workflow.evidence import attach_evidence, get_readable_evidence, remove_evidence
from workflow.models import AuditEvent, Item, User
from workflow.notices import scores_visible_to, without_scores
from workflow.permissions import can_read_all
from workflow.pipeline import run_command
from workflow.read import ItemDetail, item_detail

IID = f"<int(max={MAX_ID}):iid>"
EID = f"<int(max={MAX_ID}):eid>"
MAX_NOTE = 2000


def item_body(db: Session, item: Item, user: User) -> dict[str, Any]:
    """Return the item with its sub-items, live evidence, total and the caller's actions.

    Rendered from the engine's read model (`item_detail`). A department user sees no score,
    deduction reason or total before publication when the assessment hides them
    (`scores_hidden` says so).
    """
    detail = item_detail(db, item.id, user, history=False)
    return detail_body(detail)


def detail_body(detail: ItemDetail) -> dict[str, Any]:
    """The API's shape of an item's detail."""
    item, hide = detail.item, detail.scores_hidden
    failed = None if detail.checks is None else [c.code for c in detail.checks if c.answer == "no"]
    body = item_summary(item, hide_scores=hide, failed_checks=failed)
    sub_items = []
    for p in detail.points:
        score = None if hide else p.score
        sub_items.append(
            {
                "code": p.point.code,
                "title": p.point.title,
                "max_points": points(p.point.max_points),
                "score": points(score.points) if score is not None else None,
                "deduction_reason": score.deduction_reason if score is not None else None,
                "not_involved": p.is_claimed,
                "not_involved_upheld": p.is_upheld,
            }
        )
    body.update(
        {
            "sub_items": sub_items,
            "evidence": [
                evidence_body(
                    ev,
                    ev.scoring_point.code if ev.scoring_point is not None else None,
                    ev.uploaded_by.username,
                )
                for ev in detail.evidence
            ],
            "return_reason": item.return_reason,
            "appeal_reason": item.appeal_reason,
            "appeal_count": item.appeal_count,
            "allowed_actions": detail.actions,
            "round_changes": _round_changes_body(detail),
            "check_points": [
                {"code": c["code"], "text": c["text"], "method": c["method"]}
                for c in detail.check_points
            ],
            "checks": None
            if detail.checks is None
            else [
                {
                    "code": c.code,
                    "text": c.text,
                    "method": c.method,
                    "answer": c.answer,
                    "note": c.note,
                }
                for c in detail.checks
            ],
            "scores_hidden": hide,
            "routine_drift": _drift_body(detail),
        }
    )
    return body


def _drift_body(detail: ItemDetail) -> dict[str, Any] | None:
    drift = detail.routine_drift
    if drift is None:
        return None
    return {
        "action": drift.action,
        "scored_at": iso(drift.scored_at),
        "remedy": drift.remedy,
        "points": [
            {
                "code": d.code,
                "suggested_then": points(d.suggested_then),
                "suggested_now": points(d.suggested_now),
                "score": points(d.score),
                "causes": [
                    {"kind": c.kind, "period": c.period, "change": c.change} for c in d.causes
                ],
            }
            for d in drift.points
        ],
    }


def _round_changes_body(detail: ItemDetail) -> dict[str, Any] | None:
    changes = detail.round_changes
    if changes is None:
        return None

    def files(rows: list[Any]) -> list[dict[str, Any]]:
        return [
            evidence_body(
                ev,
                ev.scoring_point.code if ev.scoring_point is not None else None,
                ev.uploaded_by.username,
            )
            for ev in rows
        ]

    return {
        "round": changes.round,
        "previous_round": changes.previous_round,
        "change_note": changes.change_note,
        "ended_by": changes.ended_by,
        "ended_reason": changes.ended_reason,
        "added": files(changes.added),
        "removed": files(changes.removed),
    }


@bp.get(f"/items/{IID}")
@contract("items", ok={200: (s.Item, "The item.")}, errors=(404,))
def get_item(iid: int) -> Response:
    """Return one item the caller may read (another department's is a 404)."""
    user = api_user()
    return json_response(detail_body(item_detail(get_db(), iid, user, history=False)))


@bp.post(f"/items/{IID}/evidence")
@contract(
    "evidence",
    form=s.EvidenceForm,
    ok={201: (s.Evidence, "Stored and recorded.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def upload_evidence(iid: int) -> Response:
    """Stream a multipart `file` into the store and record it on the item (201)."""
    user = api_user()
    db = get_db()
    get_readable_item(db, iid, user)  # a 404 before the body is read
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("请以 multipart/form-data 上传文件（字段 file）")
    refuse_unknown_parts(s.EvidenceForm.model_fields)
    upload = request.files.get("file")
    if upload is None:
        raise BadRequest("缺少文件（字段 file）", code="file_required")
    filename = upload.filename or ""
    if bad_text(filename):
        raise BadRequest("文件名无效", code="invalid_value")
    sub_item = form_text("sub_item", 16)
    note = form_text("note", MAX_NOTE * 2)
    purpose = form_text("purpose", 32) or "evidence"
    store: ObjectStore = current_app.extensions["store"]
    row = attach_evidence(
        db,
        store,
        iid,
        user,
        cast(BinaryIO, upload.stream),
        filename,
        sub_item=sub_item,
        purpose=purpose,
        note=note,
        max_size=int(current_app.config["MAX_UPLOAD_BYTES"]),
    )
    return json_response(evidence_body(row, sub_item, user.username), 201)


@bp.delete(f"/evidence/{EID}")
@contract("evidence", ok={204: (None, "Removed.")}, errors=(403, 404, 409))
def delete_evidence(eid: int) -> Response:
    """Mark an evidence row removed (the object is kept), audited; 204."""
    user = api_user()
    db = get_db()
    remove_evidence(db, eid, user)
    return Response(status=204)


@bp.get(f"/evidence/{EID}/content")
@contract(
    "evidence",
    headers=s.ConditionalHeaders,
    ok={200: ANY_FILE, 304: NOT_MODIFIED},
    errors=(404, 409),
)
def evidence_content(eid: int) -> Response:
    """Stream an evidence file as an attachment with its original name.

    409 `object_altered` when the stored file no longer matches the SHA-256 and size recorded
    at upload: it is withheld, never served as the file the department submitted. 304 when
    `If-None-Match` names its `ETag` (the SHA-256): the caller holds the file already.
    """
    user = api_user()
    db = get_db()
    row = get_readable_evidence(db, eid, user)
    if row.removed_at is not None and not can_read_all(user):
        raise NotFound("材料不存在或已删除", code="evidence_not_found")
    unchanged = unchanged_answer(row.sha256)
    if unchanged is not None:
        return unchanged
    store: ObjectStore = current_app.extensions["store"]
    try:
        reader = open_as_recorded(store, row, "evidence")
    except ObjectNotFound as exc:
        raise NotFound("文件在存储中不存在", code="object_not_found") from exc
    response = Response(
        reader.iter_chunks(), content_type=row.content_type, direct_passthrough=True
    )
    response.call_on_close(reader.close)
    response.headers["Content-Length"] = str(row.size)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["ETag"] = etag_of(row.sha256)
    return response


def parse_transition(data: dict[str, Any] | None = None) -> TransitionRequest:
    """Validate the body against `TransitionBody` (400) and build the engine's request."""
    body = parse_body(s.TransitionBody, data)
    return TransitionRequest(
        action=body.action,
        version=body.version,
        comment=body.comment,
        scores=dict(body.scores or {}),
        deductions=dict(body.deductions or {}),
        not_involved=list(body.not_involved or []),
        rulings=dict(body.rulings or {}),
        change_note=body.change_note,
        checks={
            code: {"answer": c.answer, "note": c.note} for code, c in (body.checks or {}).items()
        },
    )


@bp.post(f"/items/{IID}/transitions")
@contract(
    "items",
    body=s.TransitionBody,
    headers=s.TransitionHeaders,
    ok={200: (s.Item, "The item after the action (also for a replayed Idempotency-Key).")},
    errors=(403, 404, 409, 413, 415, 422),
)
def post_transition(iid: int) -> Response:
    """Apply one workflow action; a retried Idempotency-Key is not applied twice.

    Actions: submit, review, return, verify, score, appeal, rescore, reject_appeal. An optional
    `Idempotency-Key` header (1–200 printable ASCII characters) makes a retry safe.
    """
    user = api_user()
    db = get_db()
    get_readable_item(db, iid, user)  # a 404 whatever the body says
    command = transition_command(iid, user, parse_transition(), idempotency_key=idempotency_key())
    # A lost race (e.g. a concurrent request that stored the same key) is retried once after
    # the request's transaction is rolled back: a replayed key then answers as the first did.
    outcome = run_command(discard_on_error, command)
    response = json_response(item_body(db, outcome.item, user))
    if outcome.replayed:  # as Stripe says it: the action was applied by the first request
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get(f"/items/{IID}/history")
@contract("items", query=s.Page, ok={200: (s.History, "Events.")}, errors=(404,))
def item_history(iid: int) -> Response:
    """Return the item's audit events, oldest first (keyset on the sequence number)."""
    user = api_user()
    db = get_db()
    item = get_readable_item(db, iid, user)
    hide = not scores_visible_to(user, item.assessment)
    limit = query_limit()
    after = decode_cursor("history") or 0
    rows = list(
        db.execute(
            select(AuditEvent)
            .where(AuditEvent.item_id == iid, AuditEvent.seq > after)
            .order_by(AuditEvent.seq)
            .limit(limit + 1)
        ).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("history", rows[-1].seq) if more and rows else None
    events = [event_body(e) for e in rows]
    if hide:
        for event in events:
            event["payload"] = without_scores(event["payload"])
    return json_response({"events": events, "next_cursor": next_cursor})
