"""The unit of work: one transaction that commits once, or rolls back on any error.

Web requests, CLI commands, bulk actions and jobs all change the database through a unit of
work; the engine's operations only flush. A conflict the database reports (a unique
violation, a row changed under a stale version, a deadlock, a serialization failure) becomes
the engine's `Conflict` (409) here, marked `retryable`, whichever face asked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from workflow.errors import Conflict

#: SQLSTATEs of a transaction that lost a race: serialization failure, deadlock.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
CONFLICT_MESSAGE = "事项已被他人更新，请刷新后重试"


def is_conflict(exc: BaseException) -> bool:
    """Tell whether a database error means "someone else changed it first"."""
    if isinstance(exc, IntegrityError | StaleDataError):
        return True
    if isinstance(exc, OperationalError | DBAPIError):
        state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if state in RETRYABLE_SQLSTATES:
            return True
        return "database is locked" in str(exc.orig)  # SQLite's busy writer
    return False


def conflict_from(exc: BaseException) -> Conflict:
    """The engine's 409 for a database conflict (retryable once by a unit of work)."""
    error = Conflict(CONFLICT_MESSAGE, code="stale_version")
    error.retryable = True  # type: ignore[attr-defined]
    return error


@contextmanager
def translate_conflicts() -> Iterator[None]:
    """Turn a database conflict raised in the block into `Conflict`."""
    try:
        yield
    except (IntegrityError, StaleDataError, OperationalError, DBAPIError) as exc:
        if is_conflict(exc):
            raise conflict_from(exc) from exc
        raise


def commit(session: Session) -> None:
    """Commit, turning a conflict at commit time into `Conflict` (the session rolled back)."""
    try:
        with translate_conflicts():
            session.commit()
    except BaseException:
        session.rollback()
        raise


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits once at the end of the block, or rolls back on error."""
    session = factory()
    try:
        yield session
        commit(session)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
