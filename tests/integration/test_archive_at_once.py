"""A department's archive written while the department uploads: its files, its manifest and
its audit events are one moment's, never a later event about a file the archive does not hold.

The archive's copy of the first file pauses (a store wrapper); a member uploads another file
meanwhile and it commits; then the archive goes on. Both backends.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.concurrency import PausingLookup, Worker
from tests.factories import World, add_evidence
from workflow.archive import EVENTS_NAME, MANIFEST_NAME, write_department_archive
from workflow.db import make_sessionmaker
from workflow.models import Department


def test_an_upload_during_the_archive_is_in_neither_its_files_nor_its_events(
    engine: Engine, session: Session, world: World, store: LocalStore
) -> None:
    w = world
    first = w.item(session, w.dep_a, "1")
    add_evidence(session, store, first, w.member_a)
    second = w.item(session, w.dep_a, "2")
    session.commit()
    pausing, dep_id, out = PausingLookup(store, "open"), w.dep_a.id, io.BytesIO()

    def archive() -> None:
        with make_sessionmaker(engine)() as s:
            write_department_archive(s, pausing, s.get_one(Department, dep_id), out)

    worker = Worker(engine, archive)
    worker.start()
    pausing.wait_paused()  # the archive is about to copy its first file
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
