"""Issue 11, findings 1 and 17: evidence never changes behind a reviewer's back.

Each race is made deterministic: the upload pauses inside ingest (`PausingStore`), or one side
holds the item lock in an open transaction while the other is seen blocked (or done). Every
test runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.ingest import object_key_for
from storage.local import LocalStore
from tests.concurrency import PausingStore, Worker, impatient_engine, start_behind
from tests.factories import World, add_evidence
from workflow import actions
from workflow.audit import verify_chain
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import Conflict, InvalidValue
from workflow.evidence import attach_evidence, attach_evidence_files, remove_evidence
from workflow.maintenance import find_orphans
from workflow.models import AuditEvent, Evidence, Item, User

MAX = 10 * 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> PausingStore:
    """A local store that pauses the first upload after storing it."""
    return PausingStore(LocalStore(tmp_path / "objects"))


def _live_evidence(session: Session, item_id: int) -> list[Evidence]:
    return list(
        session.execute(
            select(Evidence).where(Evidence.item_id == item_id, Evidence.removed_at.is_(None))
        ).scalars()
    )


def _uploads_audited(session: Session, item_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.item_id == item_id, AuditEvent.action == "evidence_uploaded")
        )
        or 0
    )


def _upload_in_thread(
    engine: Engine, store: PausingStore, item_id: int, user_id: int, *names: str
) -> Worker:
    """Start a department upload of `names` (new content each) in its own session."""

    def upload() -> list[int]:
        with make_sessionmaker(engine)() as s:
            user = s.get_one(User, user_id)
            files = [(io.BytesIO(demo_pdf(f"race-{name}")), name) for name in names]
            rows = attach_evidence_files(s, store, item_id, user, files, max_size=MAX)
            s.commit()
            return [r.id for r in rows]

    worker = Worker(engine, upload)
    worker.start()
    return worker


def _move(session: Session, w: World, item: Item, move: str) -> None:
    if move == "submit":
        actions.submit_item(session, item.id, w.member_a, item.version)
    elif move == "return":
        actions.return_item(session, item.id, w.reviewer, item.version, comment="补充材料")
    else:
        user = w.reviewer if move == "review" else w.verifier
        actions.transition_item(
            session, item.id, user, actions.TransitionRequest(move, item.version)
        )


@pytest.mark.parametrize(
    "moves",
    [
        # the finding: the upload finished after submit, review and even verify
        ("submit", "review", "verify"),
        # back in `returned` the state allows uploads again, but this is another round
        ("submit", "return"),
    ],
)
def test_upload_finishing_after_submit_review_verify_is_refused(
    engine: Engine, session: Session, world: World, store: PausingStore, moves: tuple[str, ...]
) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store.inner, item, w.member_a)
    session.commit()
    worker = _upload_in_thread(engine, store, item.id, w.member_a.id, "迟到的材料.pdf")
    store.wait_paused()  # stored and hashed, not yet recorded

    for move in moves:
        _move(session, w, item, move)
    session.commit()
    store.resume.set()

    with pytest.raises(Conflict) as refused:
        worker.wait_done()
    assert refused.value.code == "item_state_changed"
    assert refused.value.status == 409
    assert "未保存" in refused.value.message
    session.expire_all()
    assert [e.filename for e in _live_evidence(session, item.id)] == ["材料.pdf"]
    assert _uploads_audited(session, item.id) == 1
    assert session.get_one(Item, item.id).state == ("verified" if "verify" in moves else "returned")
    # The object stays in the store, unreferenced: `storage gc` finds it after the grace period.
    late_key = object_key_for(hashlib.sha256(demo_pdf("race-迟到的材料.pdf")).hexdigest())
    assert store.inner.exists(late_key)
    orphans = find_orphans(session, store.inner, timedelta(0))
    assert [o.key for o in orphans] == [late_key]
    assert verify_chain(session).ok


def test_upload_while_item_unchanged_is_recorded_after_the_pause(
    engine: Engine, session: Session, world: World, store: PausingStore
) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    worker = _upload_in_thread(engine, store, item.id, w.member_a.id, "a.pdf", "b.pdf")
    store.wait_paused()
    assert _live_evidence(session, item.id) == []  # nothing is recorded before every file is in
    store.resume.set()
    ids = worker.wait_done()
    assert len(ids) == 2
    session.expire_all()
    assert sorted(e.filename for e in _live_evidence(session, item.id)) == ["a.pdf", "b.pdf"]
    assert _uploads_audited(session, item.id) == 2


def test_submit_racing_removal_of_the_only_file_never_submits_without_evidence_remove_first(
    engine: Engine, session: Session, world: World, store: PausingStore
) -> None:
    """The removal holds the item; the submit queues behind it and finds no evidence."""
    w = world
    item = w.item(session, w.dep_a, "1")
    only = add_evidence(session, store.inner, item, w.member_a)
    session.commit()
    item_id, version = item.id, item.version

    remove_evidence(session, only.id, w.member_a)  # not committed yet: the lock is held

    def submit() -> str:
        with make_sessionmaker(engine)() as s:
            submitted = actions.submit_item(s, item_id, s.get_one(User, w.member_a.id), version)
            s.commit()
            return submitted.state

    worker = start_behind(engine, session, submit)

    with pytest.raises(InvalidValue) as refused:
        worker.wait_done()
    assert refused.value.code == "evidence_required"
    session.expire_all()
    assert session.get_one(Item, item_id).state == "draft"
    assert _live_evidence(session, item_id) == []


def test_submit_racing_removal_of_the_only_file_never_submits_without_evidence_submit_first(
    engine: Engine, session: Session, world: World, store: PausingStore
) -> None:
    """The submit holds the item; the removal queues behind it and is refused."""
    w = world
    item = w.item(session, w.dep_a, "1")
    only = add_evidence(session, store.inner, item, w.member_a)
    session.commit()
    item_id = item.id

    actions.submit_item(session, item_id, w.member_a, item.version)  # not committed yet

    def remove() -> None:
        with make_sessionmaker(engine)() as s:
            remove_evidence(s, only.id, s.get_one(User, w.member_a.id))
            s.commit()

    worker = start_behind(engine, session, remove)

    with pytest.raises(Conflict) as refused:
        worker.wait_done()
    assert refused.value.code == "invalid_state"
    session.expire_all()
    assert session.get_one(Item, item_id).state == "submitted"
    assert [e.id for e in _live_evidence(session, item_id)] == [only.id]


def test_slow_upload_holds_no_lock_other_writes_proceed(
    engine: Engine, session: Session, world: World, tmp_path: Path
) -> None:
    """Finding 17: while the second of two files streams, the chain and the item are free."""
    w = world
    store = PausingStore(LocalStore(tmp_path / "objects"), pause_at=2)
    other = w.item(session, w.dep_b, "1")
    add_evidence(session, store.inner, other, w.member_b)
    actions.submit_item(session, other.id, w.member_b, other.version)
    item = w.item(session, w.dep_a, "1")
    session.commit()
    worker = _upload_in_thread(engine, store, item.id, w.member_a.id, "一.pdf", "二.pdf")
    store.wait_paused()  # the first file is stored, the second is streaming

    impatient = impatient_engine(engine)
    try:
        with make_sessionmaker(impatient)() as s:
            # Another item's transition (an audit append) and an upload to the same item
            # go through at once; a held lock would make them fail, not wait.
            reviewer = s.get_one(User, w.reviewer.id)
            actions.review_item(s, other.id, reviewer, other.version)
            member = s.get_one(User, w.member_a.id)
            attach_evidence(
                s, store.inner, item.id, member, io.BytesIO(demo_pdf("quick")), "快.pdf",
                max_size=MAX,
            )  # fmt: skip
            s.commit()
    finally:
        impatient.dispose()
        store.resume.set()
    assert len(worker.wait_done()) == 2
    session.expire_all()
    assert session.get_one(Item, other.id).state == "reviewed"
    names = sorted(e.filename for e in _live_evidence(session, item.id))
    assert names == ["一.pdf", "二.pdf", "快.pdf"]
    assert verify_chain(session).ok
