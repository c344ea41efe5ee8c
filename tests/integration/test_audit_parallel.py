"""The parallel chain verification (PostgreSQL, long chains) gives the sequential answer."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from tests.integration.test_audit import _chain, _tamper
from workflow import audit
from workflow.audit import Verification, verify_chain

# The parallel path runs on PostgreSQL only: these tests are generated for it alone.
pytestmark = pytest.mark.backend("postgresql")


@pytest.fixture
def pg_session(session: Session, engine: Engine) -> Session:
    assert engine.dialect.name == "postgresql"
    return session


def _both(session: Session, monkeypatch: pytest.MonkeyPatch) -> tuple[Verification, Verification]:
    """Verify sequentially, then with the parallel path forced (threshold 1)."""
    session.commit()
    monkeypatch.setattr(audit, "PARALLEL_MIN_EVENTS", 10**12)
    sequential = verify_chain(session)
    session.commit()
    monkeypatch.setattr(audit, "PARALLEL_MIN_EVENTS", 1)
    monkeypatch.setattr(audit.os, "cpu_count", lambda: 2)  # even on a one-CPU runner
    assert audit._verify_parallel(session) is not None, "the parallel path did not run"
    session.commit()
    parallel = verify_chain(session)
    return sequential, parallel


def test_intact_chain_same_result(pg_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    _chain(pg_session, 40)
    sequential, parallel = _both(pg_session, monkeypatch)
    assert parallel == sequential
    assert parallel.ok and parallel.events == 40


@pytest.mark.parametrize(
    "sql",
    [
        ["UPDATE audit_events SET comment = '篡改' WHERE seq = 23"],
        ["UPDATE audit_events SET comment = '篡改' WHERE seq IN (9, 30)"],
        ["UPDATE audit_events SET comment = '篡改' WHERE seq = 1"],
        ["DELETE FROM audit_events WHERE seq = 17"],  # a gap (possibly at a span boundary)
        ["DELETE FROM audit_events WHERE seq BETWEEN 11 AND 20"],  # a whole span missing
        ["UPDATE audit_events SET prev_hash = '" + "cd" * 32 + "' WHERE seq = 12"],
        [
            "UPDATE audit_events SET seq = 1000 WHERE seq = 26",
            "UPDATE audit_events SET seq = 26 WHERE seq = 27",
            "UPDATE audit_events SET seq = 27 WHERE seq = 1000",
        ],
        ["DELETE FROM audit_events WHERE seq > 35"],  # tail cut below the head row
    ],
)
def test_tampered_chain_same_first_bad_seq(
    pg_session: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch, sql: list[str]
) -> None:
    _chain(pg_session, 40)
    _tamper(engine, *sql)
    sequential, parallel = _both(pg_session, monkeypatch)
    assert not sequential.ok
    assert parallel == sequential


def test_uncommitted_writes_stay_sequential(
    pg_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _chain(pg_session, 5)
    monkeypatch.setattr(audit, "PARALLEL_MIN_EVENTS", 1)
    pg_session.execute(text("UPDATE audit_chain_head SET seq = seq WHERE id = 1"))
    assert audit._verify_parallel(pg_session) is None
