"""A department's archive written while the department uploads: its files, its manifest and
its audit events are one moment's, never a later event about a file the archive does not hold.

The archive's copy of the first file pauses (a store wrapper); a member uploads another file
meanwhile and it commits; then the archive goes on. Both backends.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import zipfile

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.base import ObjectReader, ObjectStore
from storage.local import LocalStore
from tests.concurrency import HANG, DelegatingStore, Worker
from tests.factories import World, add_evidence
from workflow.archive import EVENTS_NAME, MANIFEST_NAME, write_department_archive
from workflow.db import make_sessionmaker
from workflow.models import Department


class PausingOpen(DelegatingStore):
    """A real store whose first `open` waits until the test resumes it."""

    def __init__(self, inner: ObjectStore) -> None:
        super().__init__(inner)
        self.opened = 0
        self.paused = threading.Event()
        self.resume = threading.Event()

    def open(self, key: str) -> ObjectReader:
        """Open; the first time, wait first (the archive is copying its first file)."""
        self.opened += 1
        if self.opened == 1:
            self.paused.set()
            assert self.resume.wait(HANG), "the test never resumed the archive"
        return self.inner.open(key)


def test_an_upload_during_the_archive_is_in_neither_its_files_nor_its_events(
    engine: Engine, session: Session, world: World, store: LocalStore
) -> None:
    w = world
    first = w.item(session, w.dep_a, "1")
    add_evidence(session, store, first, w.member_a)
    second = w.item(session, w.dep_a, "2")
    session.commit()
    pausing, dep_id, out = PausingOpen(store), w.dep_a.id, io.BytesIO()

    def archive() -> None:
        with make_sessionmaker(engine)() as s:
            write_department_archive(s, pausing, s.get_one(Department, dep_id), out)

    worker = Worker(engine, archive)
    worker.start()
    assert pausing.paused.wait(HANG), "the archive never copied a file"
    add_evidence(session, store, second, w.member_a)  # committed while the archive copies
    session.commit()
    pausing.resume.set()
    worker.wait_done()

    with zipfile.ZipFile(out) as zf:
        manifest = list(csv.reader(io.StringIO(zf.read(MANIFEST_NAME).decode("utf-8-sig"))))
        events = [json.loads(line) for line in zf.read(EVENTS_NAME).decode().splitlines()]
    listed = {int(row[0]) for row in manifest[1:]}
    uploaded = {e["payload"]["evidence_id"] for e in events if e["action"] == "evidence_uploaded"}
    assert len(listed) == 1 and uploaded == listed, (listed, uploaded)
