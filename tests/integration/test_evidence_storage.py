"""Evidence through the real operation on both object stores and both databases.

Every test runs on the local folder and on moto's S3 server, each on SQLite and (with
TEST_DATABASE_URL) PostgreSQL: uploads, refusals that must leave nothing behind, permissions,
removal, and the S3 endpoint vanishing in the middle of an upload.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import (
    EmptyFile,
    FileTooLarge,
    ObjectStore,
    S3Store,
    StorageError,
    StorageUnavailable,
    UnsupportedFileType,
    ZipBombSuspected,
    object_key_for,
)
from storage.base import Readable
from tests.concurrency import DelegatingStore
from tests.factories import World, add_evidence
from tests.storage import samples
from tests.storage.fixtures import FaultyLink
from workflow import actions
from workflow.audit import payload_of, verify_chain
from workflow.errors import Conflict, Forbidden, NotFound
from workflow.evidence import attach_evidence, remove_evidence
from workflow.models import AuditEvent, Evidence

MIB = 1024 * 1024
LIMIT = 2 * MIB

pytestmark = pytest.mark.every_store


def pdf(label: str, padding: int = 0) -> bytes:
    """Return a small PDF whose bytes differ by *label* (and grow by *padding* bytes)."""
    body = samples.PDF.replace(b"%%EOF", f"% {label}\n".encode() + b"%" * padding + b"\n%%EOF")
    return body


def attach(
    session: Session,
    store: ObjectStore,
    world: World,
    data: bytes,
    name: str,
    *,
    code: str = "1",
    max_size: int = LIMIT,
    **options: str,
) -> Evidence:
    item = world.item(session, world.dep_a, code)
    return attach_evidence(
        session,
        store,
        item.id,
        world.member_a,
        io.BytesIO(data),
        name,
        max_size=max_size,
        **options,  # type: ignore[arg-type]
    )


def counts(session: Session) -> tuple[int, int]:
    """Return (evidence rows, audit events) as committed."""
    return (
        session.scalar(select(func.count()).select_from(Evidence)) or 0,
        session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


def objects(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list("sha256/")]


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as reader:
        return b"".join(reader)


class RowWatchingStore(DelegatingStore):
    """Delegate to a real store; on every put, record whether an evidence row already exists."""

    def __init__(self, inner: ObjectStore, session: Session) -> None:
        super().__init__(inner)
        self.session = session
        self.rows_at_put: list[int] = []

    def put(self, key: str, stream: Readable, length: int | None, content_type: str) -> None:
        pending = [o for o in self.session.new if isinstance(o, Evidence)]
        flushed = self.session.scalar(select(func.count()).select_from(Evidence)) or 0
        self.rows_at_put.append(len(pending) + flushed)
        self.inner.put(key, stream, length, content_type)


def test_attach_stores_the_object_before_the_row(
    session: Session, store: ObjectStore, world: World
) -> None:
    data = pdf("自评")
    watching = RowWatchingStore(store, session)
    row = attach(session, watching, world, data, "自评报告（2018年度）.pdf", sub_item="1.1")
    session.commit()

    assert watching.rows_at_put == [0]  # the object was stored while no row existed
    digest = hashlib.sha256(data).hexdigest()
    assert (row.filename, row.size, row.sha256) == ("自评报告（2018年度）.pdf", len(data), digest)
    assert row.content_type == "application/pdf"
    assert row.storage_key == object_key_for(digest)
    assert row.scoring_point is not None and row.scoring_point.code == "1.1"
    assert read_all(store, row.storage_key) == data

    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "evidence_uploaded")
    ).scalar_one()
    payload = payload_of(event)
    assert payload["sha256"] == digest and payload["evidence_id"] == row.id
    assert payload["size"] == len(data) and event.item_id == row.item_id
    assert verify_chain(session).ok


def test_bad_inputs_store_nothing(
    session: Session, store: ObjectStore, world: World, zip_bomb_docx: bytes
) -> None:
    data = pdf("limit")
    cases: list[tuple[str, bytes, str, int, type[StorageError], int]] = [
        ("empty", b"", "空文件.pdf", LIMIT, EmptyFile, 422),
        ("one byte over", data, "超限.pdf", len(data) - 1, FileTooLarge, 413),
        ("exe renamed pdf", samples.EXE, "通知.pdf", LIMIT, UnsupportedFileType, 415),
        ("html renamed docx", samples.HTML, "报告.docx", LIMIT, UnsupportedFileType, 415),
        ("zip bomb renamed docx", zip_bomb_docx, "材料.docx", LIMIT, ZipBombSuspected, 422),
        # U+202E makes "发票\u202efdp.exe" display as "发票exe.pdf"; without it, it is an .exe.
        ("bidi-disguised exe", samples.EXE, "发票\u202efdp.exe", LIMIT, UnsupportedFileType, 415),
        ("nul before exe", samples.EXE, "报告.pdf\x00.exe", LIMIT, UnsupportedFileType, 415),
    ]
    before = counts(session)
    for label, content, name, max_size, error, status in cases:
        with pytest.raises(error) as caught:
            attach(session, store, world, content, name, max_size=max_size)
        assert caught.value.status == status, label
        session.rollback()
        assert counts(session) == before, label
        assert objects(store) == [], label
    # The limit is inclusive: exactly max_size bytes pass.
    attach(session, store, world, data, "恰好.pdf", max_size=len(data))


def test_hostile_names_are_sanitised(session: Session, store: ObjectStore, world: World) -> None:
    long_name = "关于" + "放管服" * 100 + ".pdf"  # 304 characters, 905 UTF-8 bytes
    cases = [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\windows\\报告.pdf", "报告.pdf"),
        ("自评\x00报告.pdf", "自评报告.pdf"),
        ("\u202e自评报告.pdf", "自评报告.pdf"),
        ("合同\u202e.pdf", "合同.pdf"),
    ]
    for number, (name, expected) in enumerate(cases):
        row = attach(session, store, world, pdf(f"name-{number}"), name)
        assert row.filename == expected, name
    row = attach(session, store, world, pdf("long"), long_name)
    assert row.filename.endswith(".pdf") and row.filename.startswith("关于放管服")
    assert len(row.filename.encode("utf-8")) <= 255
    session.commit()
    # Names never reach the store: every key is content-addressed.
    assert all(key.startswith("sha256/") for key in objects(store))
    assert len(objects(store)) == len(cases) + 1


def test_same_file_twice_is_one_object_two_rows(
    session: Session, store: ObjectStore, world: World
) -> None:
    data = pdf("twice")
    first = attach(session, store, world, data, "通知.pdf")
    second = attach(session, store, world, data, "通知（副本）.pdf", code="2")
    session.commit()
    assert first.id != second.id and first.storage_key == second.storage_key
    assert objects(store) == [first.storage_key]
    uploads = session.execute(
        select(AuditEvent).where(AuditEvent.action == "evidence_uploaded")
    ).scalars()
    assert {payload_of(e)["sha256"] for e in uploads} == {first.sha256}


def test_only_the_items_department_and_only_while_editable(
    session: Session, store: ObjectStore, world: World
) -> None:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    session.commit()
    stored = objects(store)
    before = counts(session)

    def try_attach(user_name: str) -> None:
        attach_evidence(
            session,
            store,
            item.id,
            getattr(world, user_name),
            io.BytesIO(pdf(user_name)),
            "材料.pdf",
            max_size=LIMIT,
        )

    with pytest.raises(Forbidden):
        try_attach("reviewer")  # office staff may read the item but not add to it
    with pytest.raises(NotFound):
        try_attach("member_b")  # another department's item does not exist for them
    actions.submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    with pytest.raises(Conflict):
        try_attach("member_a")  # submitted: frozen
    session.rollback()
    assert objects(store) == stored
    assert counts(session) == (before[0], before[1] + 1)  # only the submission was recorded

    actions.return_item(session, item.id, world.reviewer, item.version, "请补充材料")
    try_attach("member_a")  # returned: editable again
    session.commit()
    assert counts(session)[0] == before[0] + 1


def test_removal_marks_the_row_and_keeps_the_object(
    session: Session, store: ObjectStore, world: World
) -> None:
    row = attach(session, store, world, pdf("remove"), "待删除.pdf")
    session.commit()
    with pytest.raises(NotFound):
        remove_evidence(session, row.id, world.member_b)
    with pytest.raises(Forbidden):
        remove_evidence(session, row.id, world.reviewer)
    session.rollback()

    removed = remove_evidence(session, row.id, world.member_a)
    session.commit()
    assert removed.removed_at is not None and removed.removed_by_id == world.member_a.id
    assert read_all(store, row.storage_key) == pdf("remove")
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "evidence_removed")
    ).scalar_one()
    assert payload_of(event)["sha256"] == row.sha256
    with pytest.raises(NotFound):
        remove_evidence(session, row.id, world.member_a)  # already removed


def test_removal_refused_once_submitted(session: Session, store: ObjectStore, world: World) -> None:
    item = world.item(session, world.dep_a, "1")
    row = add_evidence(session, store, item, world.member_a)
    actions.submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    with pytest.raises(Conflict):
        remove_evidence(session, row.id, world.member_a)
    session.rollback()
    assert session.get(Evidence, row.id).removed_at is None  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def zip_bomb_docx() -> bytes:
    """A DOCX-shaped ZIP whose member would inflate to 20 MB (ratio far above the limit)."""
    return samples.zip_bomb(20)


def test_s3_endpoint_lost_mid_upload_leaves_nothing(
    session: Session,
    world: World,
    make_s3_store: Callable[..., S3Store],
    faulty_link: FaultyLink,
) -> None:
    store = make_s3_store(endpoint=faulty_link.endpoint)
    store.put("warm-up", io.BytesIO(b"x"), 1, "text/plain")  # bucket made, connection pooled
    data = pdf("outage", padding=3 * MIB)  # one PUT of ~3 MiB
    key = object_key_for(hashlib.sha256(data).hexdigest())
    before = counts(session)

    faulty_link.cut_after(1 * MIB)  # the server dies a third of the way through the body
    with pytest.raises(StorageUnavailable) as caught:
        attach(session, store, world, data, "大文件.pdf", max_size=8 * MIB)
    assert caught.value.status == 503 and faulty_link.cuts == 1
    session.rollback()
    assert counts(session) == before

    faulty_link.restore()
    assert not store.exists(key)  # nothing half-written
    assert objects(store) == []
    row = attach(session, store, world, data, "大文件.pdf", max_size=8 * MIB)
    session.commit()
    assert row.storage_key == key and store.stat(key).size == len(data)
    assert hashlib.sha256(read_all(store, key)).hexdigest() == row.sha256
    assert counts(session)[0] == before[0] + 1


def test_s3_endpoint_down_before_upload(
    session: Session,
    world: World,
    make_s3_store: Callable[..., S3Store],
    faulty_link: FaultyLink,
) -> None:
    store = make_s3_store(endpoint=faulty_link.endpoint)
    faulty_link.cut()
    with pytest.raises(StorageUnavailable):
        attach(session, store, world, pdf("down"), "材料.pdf")
    session.rollback()
    assert counts(session)[0] == 0
    faulty_link.restore()
    attach(session, store, world, pdf("down"), "材料.pdf")
    session.commit()
    assert len(objects(store)) == 1


def test_large_upload_streams(session: Session, local_store: ObjectStore, world: World) -> None:
    """A file well above the spool size is stored intact (the ingest streams through disk)."""
    data = pdf("large") + os.urandom(3 * MIB)
    row = attach(session, local_store, world, data, "扫描件.pdf", max_size=8 * MIB)
    session.commit()
    assert row.size == len(data) and read_all(local_store, row.storage_key) == data


def test_an_uploads_note_is_in_its_audit_event(
    session: Session, store: ObjectStore, world: World
) -> None:
    """The note a department writes beside a file (shown to the reviewers under its name) is
    part of the upload: recorded in its event, so the audit log shows who wrote what. A file
    without a note keeps the event as it was."""
    noted = attach(session, store, world, pdf("noted"), "会议纪要.pdf", note="第3页为盖章页")
    plain = attach(session, store, world, pdf("plain"), "台账.pdf")
    session.commit()
    assert noted.note == "第3页为盖章页"
    events = {
        payload_of(e)["evidence_id"]: payload_of(e)
        for e in session.execute(
            select(AuditEvent).where(AuditEvent.action == "evidence_uploaded")
        ).scalars()
    }
    assert events[noted.id]["note"] == "第3页为盖章页"
    assert "note" not in events[plain.id]
    assert verify_chain(session).ok
