"""The transition's write on PostgreSQL: the item's UPDATE, the chain head's move and the audit
event in one statement (workflow/itemrow.py), and what happens when another writer came first."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage import ObjectStore
from tests.factories import World, add_evidence
from workflow import actions, itemrow, pipeline
from workflow.audit import chained_values, record_event, verify_chain
from workflow.db import make_sessionmaker
from workflow.errors import Conflict
from workflow.models import AuditEvent, ChainHead, Item, User

pytestmark = pytest.mark.backend("postgresql")


def _submitted(session: Session, store: ObjectStore, w: World) -> Item:
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    session.commit()
    actions.submit_item(session, item.id, w.member_a, item.version)
    session.commit()
    return item


def test_an_append_between_the_lock_and_the_write_comes_first(
    engine: Engine,
    session: Session,
    store: ObjectStore,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The head is read with the lock, not locked: an append that lands in between makes the
    one-statement write leave the head alone, and the event follows that append instead."""
    w = world
    item = _submitted(session, store, w)
    gather = pipeline.gather

    def gather_then_another_append(*args: Any, **kwargs: Any) -> Any:
        with make_sessionmaker(engine)() as other:
            record_event(other, actor=other.get_one(User, w.admin.id), action="between",
                         target_type="thing", target_id="x")  # fmt: skip
            other.commit()
        return gather(*args, **kwargs)

    monkeypatch.setattr(pipeline, "gather", gather_then_another_append)
    reviewed = actions.review_item(session, item.id, w.reviewer, item.version)
    session.commit()
    assert reviewed.state == "reviewed"
    assert verify_chain(session).ok
    last_two = session.execute(
        select(AuditEvent.action, AuditEvent.payload).order_by(AuditEvent.seq.desc()).limit(2)
    ).all()
    assert [a for a, _ in last_two] == ["review", "between"]
    assert f'"version":{reviewed.version}' in last_two[0].payload
    head = session.execute(select(ChainHead.seq)).scalar_one()
    assert head == session.execute(select(func.max(AuditEvent.seq))).scalar_one()


def test_a_stale_version_writes_neither_the_item_nor_the_event(
    session: Session, store: ObjectStore, world: World
) -> None:
    w = world
    item = _submitted(session, store, w)
    events = session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    head = session.execute(select(ChainHead.seq, ChainHead.hash)).one()
    locked, seen = itemrow.read_locked(session, item.id) or (None, None)
    assert locked is not None and seen == tuple(head)
    locked.state = "reviewed"
    event = chained_values(*head, actor=w.reviewer, action="review", target_type="item",
                           target_id=item.id, item_id=item.id)  # fmt: skip
    with pytest.raises(Conflict) as refused:
        itemrow.write_item(session, locked, locked.version - 1, itemrow.changes_of(locked), event)
    assert refused.value.code == "stale_version"
    assert session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == events
    assert session.execute(select(ChainHead.seq, ChainHead.hash)).one() == head
    session.rollback()
    assert session.get_one(Item, item.id).state == "submitted"
