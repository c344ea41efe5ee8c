"""`storage gc` at once with an upload of content the store holds already as an orphan.

An upload refused earlier leaves its object for `storage gc` (DESIGN.md §5). The same bytes
uploaded again later find the object stored (content addressed: nothing is written, so its
age stays) and record a row naming it. A gc that listed the old object as an orphan must not
delete it under the row being committed: the evidence would name an object that is gone.

Deterministic (tests/concurrency.py): the upload stops at its commit, the gc runs until it
waits on a lock or is done, then the upload commits. Both backends.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from storage.ingest import ingest_upload
from storage.local import LocalStore
from tests.concurrency import PausingLookup, Worker, one_behind_the_other
from tests.factories import World
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import Conflict
from workflow.evidence import attach_evidence
from workflow.maintenance import delete_orphans
from workflow.models import Evidence, User, utcnow

CONTENT = demo_pdf("上次被拒绝的上传")


def test_gc_never_deletes_an_old_object_an_upload_is_recording(
    engine: Engine, session: Session, world: World, store: LocalStore
) -> None:
    w = world
    orphan = ingest_upload(store, io.BytesIO(CONTENT), "材料.pdf", max_size=1 << 20)
    item = w.item(session, w.dep_a, "1")
    session.commit()
    item_id, member_id = item.id, w.member_a.id

    def upload(held: sessionmaker[Session]) -> int:
        with held() as s:
            row = attach_evidence(
                s, store, item_id, s.get_one(User, member_id), io.BytesIO(CONTENT), "材料.pdf",
                max_size=1 << 20,
            )  # fmt: skip
            s.commit()
            return row.id

    def gc() -> list[str]:
        later = utcnow() + dt.timedelta(days=2)  # the object is two days old by then
        with make_sessionmaker(engine)() as s:
            return [info.key for info in delete_orphans(s, store, now=later)]

    evidence_id, deleted = one_behind_the_other(engine, upload, gc)
    row = session.scalars(select(Evidence).where(Evidence.id == evidence_id)).one()
    assert row.storage_key == orphan.key
    assert deleted == [] and store.exists(orphan.key), "the evidence names a deleted object"


def test_an_upload_whose_old_object_gc_deleted_meanwhile_is_refused(
    engine: Engine, session: Session, world: World, store: LocalStore
) -> None:
    """The gc comes first: it deletes the orphan after the upload found it stored. The upload
    must then be refused (409 `upload_lost`: upload again), not record a row naming nothing."""
    w = world
    orphan = ingest_upload(store, io.BytesIO(CONTENT), "材料.pdf", max_size=1 << 20)
    item = w.item(session, w.dep_a, "1")
    session.commit()
    item_id, member_id = item.id, w.member_a.id
    pausing = PausingLookup(store, "exists")

    def upload() -> int:
        with make_sessionmaker(engine)() as s:
            row = attach_evidence(
                s, pausing, item_id, s.get_one(User, member_id), io.BytesIO(CONTENT),
                "材料.pdf", max_size=1 << 20,
            )  # fmt: skip
            s.commit()
            return row.id

    worker = Worker(engine, upload)
    worker.start()
    pausing.wait_paused()  # the upload found its object stored
    with make_sessionmaker(engine)() as s:
        later = utcnow() + dt.timedelta(days=2)
        assert [i.key for i in delete_orphans(s, store, now=later)] == [orphan.key]
    pausing.resume.set()
    with pytest.raises(Conflict) as refused:
        worker.wait_done()
    assert refused.value.code == "upload_lost"
    assert session.scalars(select(Evidence).where(Evidence.item_id == item_id)).all() == []
