"""Evidence operations: attach (stream to the object store, then the row) and remove."""

from __future__ import annotations

from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.ingest import ingest_upload
from workflow.actions import get_readable_item
from workflow.audit import record_event
from workflow.errors import Conflict, Forbidden, InvalidValue, NotFound
from workflow.models import Evidence, Item, ScoringPoint, User, utcnow
from workflow.permissions import can_read_item
from workflow.states import Role, State

PURPOSES = ("evidence", "not_involved_proof")
EDITABLE_STATES = (State.DRAFT.value, State.RETURNED.value)


def _check_editable(item: Item, user: User) -> None:
    """Only the item's department, only while draft or returned."""
    if not user.has_role(Role.DEPARTMENT) or user.department_id != item.department_id:
        raise Forbidden("只有本部门的填报人员可以管理佐证材料", code="not_own_department")
    if item.state not in EDITABLE_STATES:
        raise Conflict("只有草稿或已退回的事项可以修改佐证材料", code="invalid_state")


def attach_evidence(
    session: Session,
    store: ObjectStore,
    item_id: int,
    user: User,
    stream: BinaryIO,
    filename: str,
    *,
    sub_item: str | None = None,
    purpose: str = "evidence",
    note: str | None = None,
    max_size: int,
) -> Evidence:
    """Store an upload and record it on the item; the row is written only after the object."""
    item = get_readable_item(session, item_id, user)
    _check_editable(item, user)
    if purpose not in PURPOSES:
        raise InvalidValue(f"未知的材料用途：{purpose}", code="bad_purpose")
    point_id = None
    if sub_item:
        point = session.execute(
            select(ScoringPoint).where(
                ScoringPoint.indicator_id == item.indicator_id, ScoringPoint.code == sub_item
            )
        ).scalar_one_or_none()
        if point is None:
            raise InvalidValue(f"评分项 {sub_item} 不属于本指标", code="unknown_sub_item")
        point_id = point.id
    elif purpose == "not_involved_proof":
        raise InvalidValue("不涉及证明材料须指定评分项", code="sub_item_required")
    if note is not None and len(note) > 2000:
        raise InvalidValue("备注过长（最多 2000 字）", code="too_long")
    stored = ingest_upload(store, stream, filename, max_size=max_size)
    row = Evidence(
        item_id=item.id,
        scoring_point_id=point_id,
        purpose=purpose,
        filename=stored.filename,
        note=(note or "").strip() or None,
        size=stored.size,
        sha256=stored.sha256,
        content_type=stored.content_type,
        storage_key=stored.key,
        uploaded_by_id=user.id,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor=user,
        action="evidence_uploaded",
        target_type="evidence",
        target_id=row.id,
        item_id=item.id,
        department_id=item.department_id,
        payload={
            "evidence_id": row.id,
            "filename": row.filename,
            "size": row.size,
            "sha256": row.sha256,
            "content_type": row.content_type,
            "sub_item": sub_item,
            "purpose": purpose,
        },
    )
    return row


def get_readable_evidence(session: Session, evidence_id: int, user: User) -> Evidence:
    """Load an evidence row the user may read (another department's is a 404)."""
    row = session.get(Evidence, evidence_id)
    if row is None or not can_read_item(user, row.item):
        raise NotFound("材料不存在", code="evidence_not_found")
    return row


def remove_evidence(session: Session, evidence_id: int, user: User) -> Evidence:
    """Mark an evidence row removed (the object is kept for the record), audited."""
    row = get_readable_evidence(session, evidence_id, user)
    if row.removed_at is not None:
        raise NotFound("材料不存在或已删除", code="evidence_not_found")
    _check_editable(row.item, user)
    row.removed_at = utcnow()
    row.removed_by_id = user.id
    session.flush()
    record_event(
        session,
        actor=user,
        action="evidence_removed",
        target_type="evidence",
        target_id=row.id,
        item_id=row.item_id,
        department_id=row.item.department_id,
        payload={"evidence_id": row.id, "filename": row.filename, "sha256": row.sha256},
    )
    return row
