"""The same file twice on one item: refused, for one scoring point and purpose, all or nothing.

The engine checks under the item's lock, so the API, the portal and two uploads at once all
get the same refusal. Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import io

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage import ObjectStore
from tests.concurrency import start_behind
from tests.factories import World
from workflow.audit import verify_chain
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import Conflict, InvalidValue
from workflow.evidence import attach_evidence, attach_evidence_files, remove_evidence
from workflow.models import AuditEvent, Evidence, Item, User

MAX = 10 * 1024 * 1024


def _attach(
    session: Session, store: ObjectStore, item: Item, user: User, data: bytes, name: str, **kw: str
) -> Evidence:
    return attach_evidence(
        session,
        store,
        item.id,
        user,
        io.BytesIO(data),
        name,
        max_size=MAX,
        **kw,  # type: ignore[arg-type]
    )


def _counts(session: Session, item_id: int) -> tuple[int, int]:
    """(live evidence rows, upload events) of the item, as committed."""
    rows = session.scalar(
        select(func.count())
        .select_from(Evidence)
        .where(Evidence.item_id == item_id, Evidence.removed_at.is_(None))
    )
    events = session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.item_id == item_id, AuditEvent.action == "evidence_uploaded")
    )
    return rows or 0, events or 0


def test_same_file_twice_on_one_item_is_refused_naming_the_earlier_file(
    session: Session, store: ObjectStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    data = demo_pdf("重复")
    first = _attach(session, store, item, w.member_a, data, "重复.pdf")
    session.commit()

    with pytest.raises(Conflict) as refused:
        _attach(session, store, item, w.member_a, data, "重复（副本）.pdf")
    assert refused.value.status == 409
    assert refused.value.code == "duplicate_evidence"
    assert refused.value.message == "该文件已上传（与“重复.pdf”内容相同）"
    session.rollback()
    assert _counts(session, item.id) == (1, 1)

    # Another scoring point, or another purpose, is another place: the same file is allowed.
    _attach(session, store, item, w.member_a, data, "重复.pdf", sub_item="1.1")
    _attach(
        session, store, item, w.member_a, data, "证明.pdf",
        sub_item="1.2", purpose="not_involved_proof",
    )  # fmt: skip
    with pytest.raises(Conflict):  # but not twice for 1.1
        _attach(session, store, item, w.member_a, data, "又一份.pdf", sub_item="1.1")
    session.rollback()
    _attach(session, store, item, w.member_a, data, "重复.pdf", sub_item="1.1")
    _attach(
        session, store, item, w.member_a, data, "证明.pdf",
        sub_item="1.2", purpose="not_involved_proof",
    )  # fmt: skip
    session.commit()

    # Once removed, the file may be uploaded again.
    remove_evidence(session, first.id, w.member_a)
    again = _attach(session, store, item, w.member_a, data, "重复.pdf")
    session.commit()
    assert again.id != first.id
    assert _counts(session, item.id) == (3, 4)
    # Another item of the same department takes the same file.
    other = w.item(session, w.dep_a, "3")
    _attach(session, store, other, w.member_a, data, "重复.pdf")
    session.commit()
    assert verify_chain(session).ok


def test_a_multi_file_upload_with_a_duplicate_records_nothing(
    session: Session, store: ObjectStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    _attach(session, store, item, w.member_a, demo_pdf("旧"), "旧文件.pdf")
    session.commit()

    files = [(io.BytesIO(demo_pdf("新")), "新文件.pdf"), (io.BytesIO(demo_pdf("旧")), "旧.pdf")]
    with pytest.raises(Conflict) as refused:
        attach_evidence_files(session, store, item.id, w.member_a, files, max_size=MAX)
    assert refused.value.code == "duplicate_evidence"
    assert "“旧.pdf”已上传（与“旧文件.pdf”内容相同）" in refused.value.message
    session.rollback()
    assert _counts(session, item.id) == (1, 1)

    same = [(io.BytesIO(demo_pdf("双")), "甲.pdf"), (io.BytesIO(demo_pdf("双")), "乙.pdf")]
    with pytest.raises(InvalidValue) as twice:
        attach_evidence_files(session, store, item.id, w.member_a, same, max_size=MAX)
    assert twice.value.status == 422
    assert twice.value.code == "duplicate_in_upload"
    assert "“乙.pdf”与“甲.pdf”内容相同" in twice.value.message
    session.rollback()
    assert _counts(session, item.id) == (1, 1)


def test_two_uploads_of_the_same_file_at_once_record_it_once(
    engine: Engine, session: Session, store: ObjectStore, world: World
) -> None:
    """The first holds the item's lock; the second, past every check made before the lock,
    queues behind it and is refused once it sees the first's row."""
    w = world
    item = w.item(session, w.dep_a, "1")
    session.commit()
    item_id, data = item.id, demo_pdf("同时")

    _attach(session, store, item, w.member_a, data, "同时.pdf")  # not committed: lock held

    def upload() -> int:
        with make_sessionmaker(engine)() as s:
            user = s.get_one(User, w.member_a.id)
            row = attach_evidence(
                s, store, item_id, user, io.BytesIO(data), "同时（2）.pdf", max_size=MAX
            )
            s.commit()
            return row.id

    worker = start_behind(engine, session, upload)

    with pytest.raises(Conflict) as refused:
        worker.wait_done()
    assert refused.value.code == "duplicate_evidence"
    session.expire_all()
    names = session.execute(select(Evidence.filename).where(Evidence.item_id == item_id)).scalars()
    assert list(names) == ["同时.pdf"]
    assert _counts(session, item_id) == (1, 1)
