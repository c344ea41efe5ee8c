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

from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.errors import IngestRejected
from storage.ingest import StoredFile, ingest_upload
from workflow.errors import InvalidValue, NotFound
from workflow.machine import PURPOSES
from workflow.maintenance import keep_objects
from workflow.messages import N_, Phrase
from workflow.models import Evidence, User
from workflow.payloads import MAX_NOTE, StoredObject
from workflow.permissions import can_read_item
from workflow.pipeline import Command, check, execute, readable_item
from workflow.security_log import hidden_from
from workflow.states import State

EDITABLE_STATES = (State.DRAFT.value, State.RETURNED.value)

#: One upload: the client's stream and file name.
Upload = tuple[BinaryIO, str]

__all__ = ["EDITABLE_STATES", "MAX_NOTE", "PURPOSES", "attach_evidence", "attach_evidence_files"]


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
    wrong (the pipeline's check). Every file is streamed, hashed, sniffed and stored with no
    lock held; then the command runs through the pipeline, which locks the item and requires
    the version seen before the upload: when it moved meanwhile, Conflict `item_state_changed`
    and no row (the objects stay for `storage gc`).
    """
    item = readable_item(session, item_id, user)
    seen_version = item.version
    action = "attach_appeal_evidence" if purpose == "appeal" else "attach_evidence"
    raw = {"sub_item": sub_item, "purpose": purpose, "note": note}
    check(session, item, user, action, raw)
    if not uploads:
        raise InvalidValue("请选择要上传的文件", code="file_required")

    # No lock and no write while the bytes stream: other requests on this item (and the
    # audit chain) are not held up by a slow upload.
    stored = [_ingest(store, stream, name, max_size, len(uploads)) for stream, name in uploads]
    keep_objects(session, store, [f.key for f in stored if not f.is_new])
    files = [StoredObject(f.key, f.filename, f.size, f.sha256, f.content_type) for f in stored]
    command = Command(action, item_id, user, seen_version, {**raw, "files": files})
    return list(execute(session, command).written)


def _ingest(
    store: ObjectStore, stream: BinaryIO, name: str, max_size: int, count: int
) -> StoredFile:
    """Store one of the uploads; a refused one among several is named, and the refusal says
    that none of them was kept (all or none), so the user knows which file to change."""
    try:
        return ingest_upload(store, stream, name, max_size=max_size)
    except IngestRejected as exc:
        if count > 1:
            exc.params = {
                "name": name,
                "reason": Phrase(exc.template, exc.params),
                "count": count,
            }
            exc.template = N_(
                "“%(name)s”：%(reason)s。本次选择的 %(count)s 个文件均未上传，"
                "请更换或去掉该文件后重新上传"
            )
        raise


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

    The pipeline locks the item first, as a submit locks it, so the two queue up: a submit
    either counts the file and the removal is refused, or runs after it and sees it gone.
    """
    row = get_readable_evidence(session, evidence_id, user)
    command = Command("remove_evidence", row.item_id, user, None, {"evidence_id": row.id})
    written = execute(session, command).written
    return written[0] if written else row
