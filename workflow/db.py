"""Engines, sessions and migrations: the database plumbing the engine needs, no Flask."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from workflow.errors import Conflict
from workflow.messages import text_for

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
#: Alembic's table: absent in a database that was never migrated.
VERSION_TABLE = "alembic_version"


def make_engine(url: str, **kw: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys and a busy timeout, PostgreSQL pre-ping."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    return create_engine(url, **kw)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory that keeps loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


#: SQLSTATEs of a transaction that lost a race: serialization failure, deadlock.
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})
#: What every face says then: the general text of `stale_version`, in both languages.
STALE_VERSION = text_for("stale_version")


def is_database_outage(exc: BaseException) -> bool:
    """Tell whether an exception means the database cannot be reached (restart, failover)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def is_conflict(exc: BaseException) -> bool:
    """Tell whether a database error means a concurrent change won (retrying may succeed).

    A unique violation, a stale version (the ORM's version check), a serialization failure or
    a deadlock; not an outage, not a value the database refuses.
    """
    if isinstance(exc, IntegrityError | StaleDataError):
        return True
    if isinstance(exc, DBAPIError):
        return getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES
    return False


def conflict_from(exc: BaseException) -> Conflict:
    """Return the refusal every face gives for a lost race: 409 `stale_version`.

    It is marked `retryable`: a unit of work may run the command once more (`run_command`).
    """
    error = Conflict(STALE_VERSION, code="stale_version")
    error.__cause__ = exc
    error.retryable = True  # type: ignore[attr-defined]
    return error


@contextmanager
def translate_conflicts() -> Iterator[None]:
    """Turn a database conflict raised in the block (e.g. by a flush) into `Conflict`."""
    try:
        yield
    except (IntegrityError, StaleDataError, DBAPIError) as exc:
        if is_conflict(exc):
            raise conflict_from(exc) from exc
        raise


def commit_or_conflict(session: Session) -> None:
    """Commit; a commit that loses a race is rolled back and raised as `Conflict`."""
    try:
        session.commit()
    except Exception as exc:
        session.rollback()
        if is_conflict(exc):
            raise conflict_from(exc) from exc
        raise


def lock_key(*parts: object) -> int:
    """A 64-bit advisory lock key for what the parts name (stable across processes)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def serialise(session: Session, key: int) -> None:
    """Queue behind any other transaction holding `key`, until this transaction ends.

    PostgreSQL: a transaction-level advisory lock, so a check-then-insert of two requests
    runs one after the other. SQLite has no such locks but one writer at a time: a write that
    changes nothing takes the database's write lock now, before the check reads (the driver
    opens a transaction only at the first write), which serialises every writer.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
    else:
        session.execute(text("UPDATE audit_chain_head SET id = id WHERE 1 = 0"))


def serialise_shared(session: Session, key: int) -> None:
    """Share `key` with other sharers until this transaction ends; wait for its holder.

    PostgreSQL: a shared transaction-level advisory lock (sharers do not wait for each other,
    only for, and then hold off, a `serialise` of the same key). SQLite: as `serialise`.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": key})
    else:
        serialise(session, key)


def lock_row(session: Session, model: type[Any], row_id: int) -> None:
    """Lock one row of a mapped class until this transaction ends: SELECT … FOR UPDATE on
    PostgreSQL; on SQLite (no row locks) a write that changes nothing, which takes the
    database's write lock now, so writers queue here on both."""
    table = cast(Table, model.__table__)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(table.c.id).where(table.c.id == row_id).with_for_update()).all()
    else:
        session.execute(update(table).where(table.c.id == row_id).values(id=table.c.id))


@contextmanager
def unit_of_work(factory: Callable[[], Session]) -> Iterator[Session]:
    """One transaction for a command: commit once at the end, roll back on any error.

    The session is closed afterwards; a lost race at commit is raised as `Conflict`.
    """
    session = factory()
    try:
        yield session
        commit_or_conflict(session)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    """Return an Alembic configuration for this database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def schema_revision(conn: Connection) -> str | None:
    """Return the database's Alembic revision; None when it was never migrated (no table)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    revision = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if revision is None else str(revision)


def migrate(
    engine: Engine, revision: str = "head", *, down: bool = False
) -> tuple[str | None, str | None]:
    """Bring the schema to the newest migration (safe to run twice), or to `revision`; return
    the revisions before and after (None: not migrated), read in the migration's transaction.

    On SQLite the foreign keys are off while the migrations run: a batch migration rebuilds a
    table (copy, drop, rename), and dropping a referenced table would fail. They are checked
    once at the end instead, and a violation fails the migration.
    """
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:  # outside any transaction, or SQLite ignores it
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                before = schema_revision(conn)
                cfg.attributes["connection"] = conn
                if down:
                    command.downgrade(cfg, revision)
                else:
                    command.upgrade(cfg, revision)
                if sqlite:
                    bad = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if bad:
                        raise RuntimeError(f"foreign keys broken by the migration: {bad[:5]}")
                after = schema_revision(conn)
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()
    return before, after
