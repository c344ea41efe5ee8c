"""Items: detail, evidence upload/removal/download, transitions and history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, BinaryIO, cast

from flask import Response, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from storage.base import ObjectStore, content_disposition
from storage.errors import ObjectNotFound
from web.api import bp
from web.api.assessments import item_summary
from web.api.common import (
    MAX_ID,
    UnsupportedMediaType,
    bad_text,
    check_fields,
    decode_cursor,
    encode_cursor,
    event_body,
    evidence_body,
    form_text,
    json_body,
    json_response,
    points,
    query_limit,
)
from web.app import get_db
from web.auth import api_user
from workflow.actions import (
    MAX_IDEMPOTENCY_KEY,
    TransitionRequest,
    actions_for,
    get_readable_item,
    scoring_points_of,
    transition_item,
)
from workflow.errors import BadRequest, Conflict, NotFound
from workflow.evidence import attach_evidence, get_readable_evidence, remove_evidence
from workflow.models import AuditEvent, Evidence, Item, ScoringPoint, User
from workflow.notices import scores_visible_to, without_scores
from workflow.permissions import can_read_all

IID = f"<int(max={MAX_ID}):iid>"
EID = f"<int(max={MAX_ID}):eid>"
TRANSITION_FIELDS = (
    "action",
    "version",
    "comment",
    "scores",
    "deductions",
    "not_involved",
    "rulings",
)
MAX_NOTE = 2000
STALE_MESSAGE = "事项已被他人更新，请刷新后重试"


def item_body(db: Session, item: Item, user: User) -> dict[str, Any]:
    """Return the item with its sub-items, live evidence, total and the caller's actions.

    A department user sees no score, deduction reason or total before publication when the
    assessment hides them (`scores_hidden` says so).
    """
    hide = not scores_visible_to(user, item.assessment)
    body = item_summary(item, hide_scores=hide)
    scores = {s.scoring_point_id: s for s in item.scores}
    claims = {c.scoring_point_id: c for c in item.claims}
    sub_items = []
    for p in scoring_points_of(db, item):
        score = scores.get(p.id)
        claim = claims.get(p.id)
        sub_items.append(
            {
                "code": p.code,
                "title": p.title,
                "max_points": points(p.max_points),
                "score": points(score.points) if score is not None and not hide else None,
                "deduction_reason": (
                    score.deduction_reason if score is not None and not hide else None
                ),
                "not_involved": claim is not None,
                "not_involved_upheld": claim.is_upheld if claim is not None else None,
            }
        )
    rows = db.execute(
        select(Evidence, ScoringPoint.code, User.username)
        .outerjoin(ScoringPoint, ScoringPoint.id == Evidence.scoring_point_id)
        .join(User, User.id == Evidence.uploaded_by_id)
        .where(Evidence.item_id == item.id, Evidence.removed_at.is_(None))
        .order_by(Evidence.id)
    ).all()
    body.update(
        {
            "sub_items": sub_items,
            "evidence": [evidence_body(ev, code, name) for ev, code, name in rows],
            "return_reason": item.return_reason,
            "appeal_reason": item.appeal_reason,
            "appeal_count": item.appeal_count,
            "allowed_actions": actions_for(db, item, user),
            "scores_hidden": hide,
        }
    )
    return body


@bp.get(f"/items/{IID}")
def get_item(iid: int) -> Response:
    """Return one item the caller may read (another department's is a 404)."""
    user = api_user()
    db = get_db()
    item = get_readable_item(db, iid, user)
    return json_response(item_body(db, item, user))


@bp.post(f"/items/{IID}/evidence")
def upload_evidence(iid: int) -> Response:
    """Stream a multipart `file` into the store and record it on the item (201)."""
    user = api_user()
    db = get_db()
    get_readable_item(db, iid, user)  # a 404 before the body is read
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("请以 multipart/form-data 上传文件（字段 file）")
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
    db.commit()
    return json_response(evidence_body(row, sub_item, user.username), 201)


@bp.delete(f"/evidence/{EID}")
def delete_evidence(eid: int) -> Response:
    """Mark an evidence row removed (the object is kept), audited; 204."""
    user = api_user()
    db = get_db()
    remove_evidence(db, eid, user)
    db.commit()
    return Response(status=204)


@bp.get(f"/evidence/{EID}/content")
def evidence_content(eid: int) -> Response:
    """Stream an evidence file as an attachment with its original name."""
    user = api_user()
    db = get_db()
    row = get_readable_evidence(db, eid, user)
    if row.removed_at is not None and not can_read_all(user):
        raise NotFound("材料不存在或已删除", code="evidence_not_found")
    store: ObjectStore = current_app.extensions["store"]
    try:
        reader = store.open(row.storage_key)
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
    response.headers["ETag"] = f'"{row.sha256}"'
    return response


def _is_mapping_of(value: Any, ok: Any) -> bool:
    return isinstance(value, dict) and all(ok(v) for v in value.values())


def _is_points(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | str | Decimal)


def parse_transition(data: dict[str, Any]) -> TransitionRequest:
    """Check the body's fields and types (400) and build the engine's request."""
    check_fields(data, TRANSITION_FIELDS)
    action = data.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest("缺少或无效的 action（文本）", code="invalid_type")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise BadRequest("缺少或无效的 version（整数）", code="version_required")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise BadRequest("comment 须为文本", code="invalid_type")
    scores = data.get("scores") or {}
    if not _is_mapping_of(scores, _is_points):
        raise BadRequest("scores 须为 评分项 → 数字或数字文本 的对象", code="invalid_type")
    deductions = data.get("deductions") or {}
    if not _is_mapping_of(deductions, lambda v: v is None or isinstance(v, str)):
        raise BadRequest("deductions 须为 评分项 → 文本 的对象", code="invalid_type")
    not_involved = data.get("not_involved") or []
    if not isinstance(not_involved, list) or not all(isinstance(c, str) for c in not_involved):
        raise BadRequest("not_involved 须为评分项编号的数组", code="invalid_type")
    rulings = data.get("rulings") or {}
    if not _is_mapping_of(rulings, lambda v: isinstance(v, bool)):
        raise BadRequest("rulings 须为 评分项 → true/false 的对象", code="invalid_type")
    return TransitionRequest(
        action=action,
        version=version,
        comment=comment,
        scores=scores,
        deductions=deductions,
        not_involved=not_involved,
        rulings=rulings,
    )


def _idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise BadRequest(
            "Idempotency-Key 无效（1–200 个可打印 ASCII 字符）", code="bad_idempotency_key"
        )
    return key


@bp.post(f"/items/{IID}/transitions")
def post_transition(iid: int) -> Response:
    """Apply one workflow action; a retried Idempotency-Key is not applied twice."""
    user = api_user()
    db = get_db()
    get_readable_item(db, iid, user)  # a 404 whatever the body says
    req = parse_transition(json_body())
    key = _idempotency_key()
    try:
        item = transition_item(db, iid, user, req, idempotency_key=key)
        db.commit()
    except (IntegrityError, StaleDataError):
        # A concurrent request won: it stored the same key, or moved the version (SQLite has
        # no row lock). Roll back and look again, now that its work is committed.
        db.rollback()
        if key is None:
            raise Conflict(STALE_MESSAGE, code="stale_version") from None
        try:
            item = transition_item(db, iid, user, req, idempotency_key=key)
            db.commit()
        except (IntegrityError, StaleDataError):
            db.rollback()
            raise Conflict(STALE_MESSAGE, code="stale_version") from None
    return json_response(item_body(db, item, user))


@bp.get(f"/items/{IID}/history")
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
