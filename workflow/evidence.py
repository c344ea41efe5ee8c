"""Evidence operations: attach (stream to the object store, then the row) and remove.

An upload is stored first, holding no lock and writing nothing to the database, however long
the file takes. Only then is the item row locked (the same lock the transitions take), its
state and version checked again, and the rows written with their audit events in one
transaction. An item that moved on meanwhile (submitted, reviewed, …) refuses the upload with
`item_state_changed`; the stored object is left for `storage gc`. Removal takes the same lock,
so a submit never counts a file that is being removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.ingest import StoredFile, ingest_upload
from workflow.actions import get_item, get_readable_item
from workflow.audit import record_event
from workflow.errors import Conflict, Forbidden, InvalidValue, NotFound
from workflow.models import Evidence, Item, ScoringPoint, User, utcnow
from workflow.permissions import can_read_item
from workflow.security_log import hidden_from
from workflow.states import Role, State

# "appeal": a file supporting the department's appeal, attached while the appeal is pending.
PURPOSES = ("evidence", "not_involved_proof", "appeal")
EDITABLE_STATES = (State.DRAFT.value, State.RETURNED.value)
MAX_NOTE = 2000

#: One upload: the client's stream and file name.
Upload = tuple[BinaryIO, str]


def _check_editable(item: Item, user: User, purpose: str = "evidence") -> None:
    """Only the item's department, only while draft or returned (appeal files: while appealed)."""
    if not user.has_role(Role.DEPARTMENT) or user.department_id != item.department_id:
        raise Forbidden("只有本部门的填报人员可以管理佐证材料", code="not_own_department")
    if purpose == "appeal":
        if item.state != State.APPEALED.value:
            raise Conflict("申诉材料只能在申诉处理期间上传", code="invalid_state")
        return
    if item.state not in EDITABLE_STATES:
        raise Conflict("只有草稿或已退回的事项可以修改佐证材料", code="invalid_state")


def _lock_item(session: Session, item_id: int, user: User) -> Item:
    """Lock the item row for this transaction (the lock the transitions take)."""
    item = get_item(session, item_id, for_update=True)
    if not user.is_active or not can_read_item(user, item):
        raise NotFound("考核事项不存在", code="item_not_found")
    return item


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
    """Store one upload and record it on the item (see `attach_evidence_files`)."""
    rows = attach_evidence_files(
        session,
        store,
        item_id,
        user,
        [(stream, filename)],
        sub_item=sub_item,
        purpose=purpose,
        note=note,
        max_size=max_size,
    )
    return rows[0]


def attach_evidence_files(
    session: Session,
    store: ObjectStore,
    item_id: int,
    user: User,
    uploads: Sequence[Upload],
    *,
    sub_item: str | None = None,
    purpose: str = "evidence",
    note: str | None = None,
    max_size: int,
) -> list[Evidence]:
    """Store uploads, then record them all on the item under its lock, or none of them.

    Refuse before reading any file when the user, state, purpose, scoring point or note is
    wrong. Every file is streamed, hashed, sniffed and stored with no lock held; then the item
    is locked and checked again: when its state or version changed meanwhile, raise Conflict
    `item_state_changed` and write no row (the objects stay for `storage gc`).
    """
    item = get_readable_item(session, item_id, user)
    seen_version = item.version
    if purpose not in PURPOSES:
        raise InvalidValue(
            "未知的材料用途：%(purpose)s", code="bad_purpose", params={"purpose": purpose}
        )
    _check_editable(item, user, purpose)
    point_id = None
    if sub_item:
        point = session.execute(
            select(ScoringPoint).where(
                ScoringPoint.indicator_id == item.indicator_id, ScoringPoint.code == sub_item
            )
        ).scalar_one_or_none()
        if point is None:
            raise InvalidValue(
                "评分项 %(sub_item)s 不属于本指标",
                code="unknown_sub_item",
                params={"sub_item": sub_item},
            )
        point_id = point.id
    elif purpose == "not_involved_proof":
        raise InvalidValue("不涉及证明材料须指定评分项", code="sub_item_required")
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidValue("备注过长（最多 %(max)s 字）", code="too_long", params={"max": MAX_NOTE})
    if not uploads:
        raise InvalidValue("请选择要上传的文件", code="file_required")

    # No lock and no write while the bytes stream: other requests on this item (and the
    # audit chain) are not held up by a slow upload.
    stored = [ingest_upload(store, stream, name, max_size=max_size) for stream, name in uploads]

    item = _lock_unchanged_item(session, item_id, user, seen_version, purpose)
    return [
        _record_upload(session, item, user, f, point_id, sub_item, purpose, note) for f in stored
    ]


def _lock_unchanged_item(
    session: Session, item_id: int, user: User, seen_version: int, purpose: str = "evidence"
) -> Item:
    """Lock the item and require the state and version seen before the upload streamed."""
    item = _lock_item(session, item_id, user)
    try:
        _check_editable(item, user, purpose)
    except Conflict as exc:
        raise _state_changed() from exc
    if item.version != seen_version:
        raise _state_changed()
    return item


def _state_changed() -> Conflict:
    return Conflict(
        "上传期间事项状态已变化（已提交或已处理），本次上传的文件未保存，请刷新后重试",
        code="item_state_changed",
    )


def _record_upload(
    session: Session,
    item: Item,
    user: User,
    stored: StoredFile,
    point_id: int | None,
    sub_item: str | None,
    purpose: str,
    note: str | None,
) -> Evidence:
    """Write one evidence row and its audit event (the item is locked by the caller)."""
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
    if row is not None and not can_read_item(user, row.item):
        hidden_from(user, "evidence", row.id, department_id=row.item.department_id)
        raise NotFound("材料不存在", code="evidence_not_found")
    if row is None:
        raise NotFound("材料不存在", code="evidence_not_found")
    return row


def remove_evidence(session: Session, evidence_id: int, user: User) -> Evidence:
    """Mark an evidence row removed (the object is kept for the record), audited.

    The item is locked first, as a submit locks it, so the two queue up: a submit either
    counts the file and the removal is refused, or runs after it and sees the file gone.
    """
    row = get_readable_evidence(session, evidence_id, user)
    item = _lock_item(session, row.item_id, user)
    session.refresh(row)  # read again: what was committed before the lock was ours
    if row.removed_at is not None:
        raise NotFound("材料不存在或已删除", code="evidence_not_found")
    _check_editable(item, user)
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
        department_id=item.department_id,
        payload={"evidence_id": row.id, "filename": row.filename, "sha256": row.sha256},
    )
    return row
