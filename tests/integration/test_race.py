"""Concurrency on PostgreSQL: 20 threads fire the same transition on one item."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.local import LocalStore
from tests.conftest import PG_URL, _reset_pg
from tests.factories import add_evidence, make_world
from workflow import actions
from workflow.audit import verify_chain
from workflow.db import make_sessionmaker
from workflow.errors import Conflict
from workflow.models import AuditEvent, Item
from workflow.scheme import Scheme


@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL); CI sets it")
def test_twenty_threads_one_transition(
    request: pytest.FixtureRequest, scheme_2018: Scheme, tmp_path: Path
) -> None:
    engine = request.getfixturevalue("pg_engine")
    _reset_pg(engine)
    factory = make_sessionmaker(engine)
    store = LocalStore(tmp_path / "objects")
    with factory() as s:
        w = make_world(s, scheme_2018)
        item = w.item(s, w.dep_a, "1")
        add_evidence(s, store, item, w.member_a)
        actions.submit_item(s, item.id, w.member_a, item.version)
        s.commit()
        item_id, version, reviewer_id = item.id, item.version, w.reviewer.id
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def fire() -> None:
        with factory() as s:
            reviewer = s.get_one(type(w.reviewer), reviewer_id)
            barrier.wait()
            try:
                actions.review_item(s, item_id, reviewer, version)
                s.commit()
                result = "ok"
            except Conflict:
                s.rollback()
                result = "conflict"
            except Exception as exc:  # anything else is a bug the test must show
                s.rollback()
                result = f"error: {exc!r}"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["conflict"] * 19 + ["ok"]
    with factory() as s:
        item = s.get_one(Item, item_id)
        assert item.state == "reviewed" and item.version == version + 1
        reviews = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.item_id == item_id, AuditEvent.action == "review")
        )
        assert reviews == 1
        assert verify_chain(s).ok


@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL); CI sets it")
def test_concurrent_appends_on_different_items_stay_linear(
    request: pytest.FixtureRequest, scheme_2018: Scheme, tmp_path: Path
) -> None:
    engine = request.getfixturevalue("pg_engine")
    _reset_pg(engine)
    factory = make_sessionmaker(engine)
    store = LocalStore(tmp_path / "objects")
    with factory() as s:
        w = make_world(s, scheme_2018)
        ids = []
        for code in [str(n) for n in range(1, 11)]:
            it = w.item(s, w.dep_a, code)
            add_evidence(s, store, it, w.member_a)
            ids.append((it.id, it.version))
        s.commit()
        member_id = w.member_a.id
    barrier = threading.Barrier(len(ids))
    errors: list[str] = []

    def submit(item_id: int, version: int) -> None:
        with factory() as s:
            member = s.get_one(type(w.member_a), member_id)
            barrier.wait()
            try:
                actions.submit_item(s, item_id, member, version)
                s.commit()
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=submit, args=pair) for pair in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with factory() as s:
        result = verify_chain(s)
        assert result.ok
        submits = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "submit")
        )
        assert submits == 10


@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL); CI sets it")
def test_withdraw_races_review(
    request: pytest.FixtureRequest, scheme_2018: Scheme, tmp_path: Path
) -> None:
    """A department withdraws while a reviewer reviews the same version: exactly one wins,
    the other is a 409, and the item, its events and the chain agree with the winner."""
    engine = request.getfixturevalue("pg_engine")
    _reset_pg(engine)
    factory = make_sessionmaker(engine)
    with factory() as s:
        w = make_world(s, scheme_2018)
        item = w.item(s, w.dep_a, "1")
        add_evidence(s, LocalStore(tmp_path / "objects"), item, w.member_a)
        actions.submit_item(s, item.id, w.member_a, item.version)
        s.commit()
        item_id, version = item.id, item.version
        member_id, reviewer_id = w.member_a.id, w.reviewer.id
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def run(name: str) -> None:
        with factory() as s:
            user = s.get_one(type(w.member_a), member_id if name == "withdraw" else reviewer_id)
            req = actions.TransitionRequest(name, version, comment="撤回修改")
            barrier.wait()
            try:
                actions.transition_item(s, item_id, user, req)
                s.commit()
                outcomes[name] = "ok"
            except Conflict as exc:
                s.rollback()
                outcomes[name] = exc.code
            except Exception as exc:  # anything else is a bug the test must show
                s.rollback()
                outcomes[name] = f"error: {exc!r}"

    threads = [threading.Thread(target=run, args=(n,)) for n in ("withdraw", "review")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["ok", "stale_version"], outcomes
    winner = next(n for n, o in outcomes.items() if o == "ok")
    with factory() as s:
        item = s.get_one(Item, item_id)
        assert item.state == ("draft" if winner == "withdraw" else "reviewed")
        assert item.version == version + 1
        actions_seen = s.execute(
            select(AuditEvent.action).where(AuditEvent.item_id == item_id).order_by(AuditEvent.seq)
        ).scalars()
        assert list(actions_seen)[-1] == winner
        assert verify_chain(s).ok
