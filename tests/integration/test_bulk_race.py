"""Two retries of one bulk run racing: every item applied once, both report every item ok."""

from __future__ import annotations

import threading

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.concurrency import HANG
from tests.factories import World, submit_items
from workflow.audit import verify_chain
from workflow.bulk import BulkReport, BulkTarget, apply_bulk
from workflow.db import make_sessionmaker
from workflow.models import AuditEvent, BulkRunItem


def test_racing_retries_apply_each_item_once(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    chosen = [world.item(session, world.dep_b, str(n)) for n in range(1, 11)]
    submit_items(session, store, world, chosen)
    targets = [BulkTarget(i.id, i.version) for i in chosen]
    before = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    factory = make_sessionmaker(engine)
    start = threading.Barrier(2, timeout=HANG)
    reports: list[BulkReport] = []
    errors: list[BaseException] = []

    def retry() -> None:
        try:
            start.wait()
            reports.append(
                apply_bulk(factory, world.reviewer.id, "review", targets, idempotency_key="race")
            )
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG)
    assert not errors, errors
    assert len(reports) == 2
    for report in reports:
        assert report.counts == {"ok": 10, "refused": 0, "conflict": 0}, report.results
    # One started the run; the other found it (or lost the insert to it) and resumed it.
    assert sorted(r.resumed for r in reports) == [False, True]
    session.expire_all()
    assert (session.scalar(select(func.count()).select_from(AuditEvent)) or 0) - before == 10
    assert session.scalar(select(func.count()).select_from(BulkRunItem)) == 10
    assert verify_chain(session).ok
