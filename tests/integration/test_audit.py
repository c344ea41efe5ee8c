"""The audit chain: tamper detection (change, delete, reorder, insert, cut tail) and the
append-only trigger on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from tests.conftest import PG_URL, _reset_pg
from workflow.audit import GENESIS_HASH, append_after, checkpoint, record_event, verify_chain
from workflow.db import make_sessionmaker
from workflow.models import AuditEvent, ChainHead, User


def _chain(session: Session, n: int = 8) -> None:
    actor = User(username="actor", roles=["admin"])
    session.add(actor)
    session.flush()
    for i in range(n):
        record_event(
            session, actor=actor, action="test", target_type="thing", target_id=i,
            comment=f"第{i}条", payload={"i": i, "名": "值"},
        )  # fmt: skip
    session.commit()


def _tamper(engine: Engine, *sql: str) -> None:
    """Run SQL as a DBA would, bypassing the append-only trigger on PostgreSQL."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        for stmt in sql:
            conn.execute(text(stmt))


def test_empty_chain_verifies(session: Session) -> None:
    result = verify_chain(session)
    assert result.ok and result.events == 0 and result.head_hash == GENESIS_HASH


def test_intact_chain(session: Session) -> None:
    _chain(session)
    result = verify_chain(session)
    assert result.ok and result.events == 8 and result.head_seq == 8
    assert result.first_bad_seq is None


@pytest.mark.parametrize(
    ("sql", "first_bad"),
    [
        (["UPDATE audit_events SET comment = '篡改' WHERE seq = 4"], 4),
        (["UPDATE audit_events SET payload = '{}' WHERE seq = 2"], 2),
        (["UPDATE audit_events SET actor = 'mallory' WHERE seq = 7"], 7),
        (["DELETE FROM audit_events WHERE seq = 5"], 5),
        # reorder: swap the contents of 3 and 4 (keeping seq numbers)
        (
            [
                "UPDATE audit_events SET seq = 1000 WHERE seq = 3",
                "UPDATE audit_events SET seq = 3 WHERE seq = 4",
                "UPDATE audit_events SET seq = 4 WHERE seq = 1000",
            ],
            3,
        ),
        # insert a forged row in the middle: renumber the tail up, put a row at 6
        (
            [
                "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 6",
                "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1006",
                "INSERT INTO audit_events (seq, at, actor_id, actor, action, target_type, "
                "target_id, payload, prev_hash, hash) SELECT 6, at, actor_id, actor, 'forged', "
                "target_type, target_id, payload, hash, '" + "ab" * 32 + "' FROM audit_events "
                "WHERE seq = 5",
            ],
            6,
        ),
    ],
)
def test_tampering_is_detected(
    session: Session, engine: Engine, sql: list[str], first_bad: int
) -> None:
    _chain(session)
    session.close()
    _tamper(engine, *sql)
    result = verify_chain(session)
    assert not result.ok
    assert result.first_bad_seq == first_bad


def test_cut_tail_detected_by_head_and_checkpoint(session: Session, engine: Engine) -> None:
    _chain(session)
    cp = checkpoint(session)
    session.close()
    _tamper(engine, "DELETE FROM audit_events WHERE seq > 6")
    result = verify_chain(session)
    assert not result.ok and result.first_bad_seq == 7
    # A thorough forger also rewinds the head row: only the checkpoint tells.
    _tamper(
        engine,
        "UPDATE audit_chain_head SET seq = 6, hash = (SELECT hash FROM audit_events WHERE seq = 6)",
    )
    session.close()
    assert verify_chain(session).ok
    result = verify_chain(session, cp)
    assert not result.ok and result.first_bad_seq == 7


def test_checkpoint_mismatch(session: Session) -> None:
    _chain(session)
    cp = checkpoint(session)
    assert verify_chain(session, cp).ok
    bad = {**cp, "hash": "0" * 64}
    result = verify_chain(session, bad)
    assert not result.ok and result.first_bad_seq == cp["seq"]


@pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL); CI sets it")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET comment = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
def test_postgres_refuses_update_delete_truncate(request: pytest.FixtureRequest, sql: str) -> None:
    engine: Engine = request.getfixturevalue("pg_engine")
    _reset_pg(engine)
    with make_sessionmaker(engine)() as session:
        _chain(session, 2)
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql))
        assert verify_chain(session).ok


def test_append_after_a_seen_head_and_after_a_moved_one(session: Session, engine: Engine) -> None:
    """The one-statement append takes the head it saw; when another append came first, it
    appends the locking way after that one: the chain stays linear either way."""
    _chain(session, 2)
    actor = session.execute(select(User)).scalar_one()
    head = session.execute(select(ChainHead.seq, ChainHead.hash)).one()
    append_after(session, (head.seq, head.hash), actor=actor, action="test",
                 target_type="thing", target_id="seen")  # fmt: skip
    session.commit()
    stale = (head.seq, head.hash)  # the head has moved past what this writer saw
    other = make_sessionmaker(engine)()
    record_event(other, actor=other.get_one(User, actor.id), action="test",
                 target_type="thing", target_id="other")  # fmt: skip
    other.commit()
    other.close()
    append_after(session, stale, actor=actor, action="test", target_type="thing",
                 target_id="late")  # fmt: skip
    session.commit()
    result = verify_chain(session)
    assert result.ok and result.events == 5 and result.head_seq == 5
    targets = session.execute(select(AuditEvent.target_id).order_by(AuditEvent.seq)).scalars()
    assert list(targets)[2:] == ["seen", "other", "late"]
