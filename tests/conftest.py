"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when configured).

Set TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/fgf_test) to run
every database test on PostgreSQL as well. Schemas are made by the real Alembic migrations,
once per run.

Every test gets a committed database of its own state (apps, CLI commands, threads and
subprocesses of the test see what it committed): on SQLite a copy of a template file, on
PostgreSQL the shared database emptied, in one round trip. A test that asks for the 2018
``world`` starts from a template in which the world is already installed (installing it
costs more than most tests), and `world` loads it back.

``count_statements`` counts the SQL statements a block sends (the statement budgets);
``snapshot`` keeps a test's committed rows and puts them back (a property-based test's
examples start from one setup).

Also here: the 2018 ``world`` and the evidence ``store`` every package uses, and the storage
fixtures of tests/storage/fixtures.py (S3 endpoint, stores, fault injection), loaded as a
plugin. Tests that talk to S3 are marked ``s3``: ``pytest -m s3`` runs just that set, e.g.
against radosgw with ``S3_TEST_ENDPOINT`` (see README, "Tests").
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from storage import LocalStore, ObjectStore
from tests.factories import World, load_world, make_world
from workflow import users
from workflow.db import make_engine, make_sessionmaker, migrate
from workflow.models import Base
from workflow.scheme import SCHEMES_DIR, Scheme, load_scheme

pytest_plugins = ["tests.storage.fixtures"]

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
#: The pytest-xdist worker this process is ("gw0", "gw1", …), or "" without xdist.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")

#: The object stores an `every_store` test runs on (names of `<kind>_store` fixtures).
STORE_KINDS = ["local", "s3"]

#: A test whose fixtures include one of these talks to the S3 server.
_S3_FIXTURES = {"s3_endpoint", "s3_process_endpoint"}


def pytest_configure(config: pytest.Config) -> None:
    """Writes in this process do not wait for the disk: crash safety is not under test here.

    As the PostgreSQL test databases run without `synchronous_commit` (`throwaway_database`),
    the local store skips its fsyncs and SQLite connections run `PRAGMA synchronous=OFF`.
    Together they were 44 s of fsync waits in a run of the suite (and a quarter of the SQLite
    tests' time). The product keeps both (tests/storage/test_backends.py checks the store);
    subprocesses the tests start (servers, CLI runs) keep them too.
    """
    LocalStore.sync_to_disk = False
    event.listen(Engine, "connect", _sqlite_without_waits)


#: Argon2id with light parameters: verification reads them from the hash, so every sign-in
#: still goes through the real check, at a millisecond instead of a second (the product's
#: parameters cost about 1 s a hash and 0.7 s a check on a CI machine, and `init`, `demo`,
#: `users create` and each unknown-name sign-in pay it).
LIGHT_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def _light_password_hashing() -> Iterator[PasswordHasher]:
    """Hash and check passwords with LIGHT_HASHER in this process (subprocesses keep the
    product's); yields the product's hasher for `real_password_hashing`."""
    real = users.HASHER
    users.decoy_hash.cache_clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(users, "HASHER", LIGHT_HASHER)
        yield real
    users.decoy_hash.cache_clear()


@pytest.fixture
def real_password_hashing(
    _light_password_hashing: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The product's Argon2id parameters for this test (tests/unit/test_decoy_hash.py)."""
    monkeypatch.setattr(users, "HASHER", _light_password_hashing)
    users.decoy_hash.cache_clear()
    yield
    users.decoy_hash.cache_clear()


def _sqlite_without_waits(dbapi_conn: Any, _record: Any) -> None:
    if type(dbapi_conn).__module__.startswith("sqlite3"):
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run a test of an `every_store` module once per object store (unless it names its own)."""
    if "store" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("every_store") is None:
        return
    own = any(
        "store" in str(mark.args[0]).replace(" ", "").split(",")
        for mark in metafunc.definition.iter_markers("parametrize")
    )
    if not own:
        metafunc.parametrize("store", STORE_KINDS, indirect=True)


#: The modules that take longest (most first; figures of a whole run on both backends). They
#: are handed to the xdist workers first, so that no long module starts last while the other
#: worker idles (the Makefile passes --no-loadscope-reorder: xdist would otherwise order
#: modules by their number of tests). A module not listed keeps its place after these.
HEAVIEST = [
    "tests/security/test_hostile_input_walk.py",
    "tests/security/test_every_page_scan.py",
    "tests/integration/test_job_worker.py",
    "tests/integration/test_cli.py",
    "tests/security/test_sign_in_limits.py",
    "tests/api/test_schemathesis.py",
    "tests/web/test_browser.py",
    "tests/integration/test_stateful.py",
    "tests/integration/test_demo_years.py",
    "tests/integration/test_audit_parallel.py",
    "tests/integration/test_notices.py",
    "tests/web/test_routine_pages.py",
    "tests/storage/test_convert.py",
    "tests/web/test_flow.py",
    "tests/web/test_new_year_browser.py",
    "tests/web/test_schemes_browser.py",
]


def _heaviness(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return HEAVIEST.index(path) if path in HEAVIEST else len(HEAVIEST)


def _uses_s3(item: pytest.Item) -> bool:
    """Tell whether a test reaches the S3 server, statically or through a parameter."""
    if _S3_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "s3" in callspec.params.values()


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by the markers set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the S3 tests `s3` and the demo-data ones `slow`; generate a `backend(...)` test
    only for its backends (no skip); put the heaviest modules first."""
    keep, drop = [], []
    for item in items:
        if _uses_s3(item):
            item.add_marker(pytest.mark.s3)
        if "demo" in getattr(item, "fixturenames", ()):  # the whole demo data (tests/security)
            item.add_marker(pytest.mark.slow)
        marker = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("engine") if callspec is not None else None
        if marker is not None and backend is not None and backend not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=_heaviness)  # stable: a module's tests keep their order


@pytest.fixture(scope="session")
def scheme_2018() -> Scheme:
    """The shipped 2018 scheme."""
    return load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def sqlite_world_template(sqlite_template: Path, scheme_2018: Scheme) -> Path:
    """The migrated SQLite file with the 2018 world installed, copied for each `world` test."""
    path = sqlite_template.with_name("world.sqlite3")
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with make_sessionmaker(engine)() as session:
        make_world(session, scheme_2018)
    engine.dispose()  # the last connection closed: the WAL is folded into the file
    return path


#: Schema of the PostgreSQL test database holding a copy of the world's rows.
_PG_SNAPSHOT = "fgf_test_world"
#: Schema of the PostgreSQL test database holding a test's own `snapshot`.
_PG_TEST_SNAPSHOT = "fgf_test_snapshot"


@contextmanager
def throwaway_database(url: str, suffix: str) -> Iterator[str]:
    """Make the database ``<name>_<suffix>`` beside `url`'s, yield its URL, then drop it.

    The user needs CREATEDB. A commit to it need not wait for the WAL to reach the disk
    (`synchronous_commit` off for every connection to it, the apps' and subprocesses' too):
    crash safety is not under test here; the fault runs (bench/faults.py) restart a real
    server with the default.
    """
    base = make_url(url)
    name = f"{base.database}_{suffix}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _worker_database(url: str) -> Iterator[str]:
    """Yield the URL of this xdist worker's own database beside `url`'s (made, then dropped).

    Without xdist this is `url` itself. Workers run at once, so each needs a database of its
    own: ``<name>_gw0``, ``<name>_gw1``, … on the same server (`throwaway_database`).
    """
    if not XDIST_WORKER:
        yield url
        return
    with throwaway_database(url, XDIST_WORKER) as own:
        yield own


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    """The PostgreSQL test database (this worker's), wiped and migrated once per run."""
    with _worker_database(PG_URL) as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text(f"DROP SCHEMA IF EXISTS {_PG_SNAPSHOT} CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        migrate(engine)
        yield engine
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {_PG_SNAPSHOT} CASCADE"))
        engine.dispose()


#: The sequences of the PostgreSQL test database (found once).
_PG_SEQUENCES: list[str] = []


def _pg_empty_sql(engine: Engine) -> str:
    """SQL that empties every table and restarts every sequence.

    DELETE, not TRUNCATE: on these small tables it is tens of times faster (TRUNCATE makes new
    files for every table and index). As replication role, neither the append-only trigger
    nor the foreign keys fire.
    """
    if not _PG_SEQUENCES:
        with engine.connect() as conn:
            _PG_SEQUENCES.extend(
                conn.scalars(
                    text(
                        "SELECT quote_ident(sequence_name) FROM information_schema.sequences"
                        " WHERE sequence_schema = 'public' ORDER BY sequence_name"
                    )
                )
            )
    deletes = " ".join(f'DELETE FROM "{t.name}";' for t in reversed(Base.metadata.sorted_tables))
    restarts = " ".join(f"SELECT setval('{seq}', 1, false);" for seq in _PG_SEQUENCES)
    return (
        "SET LOCAL session_replication_role = replica;"
        # A session a test leaked (e.g. an unclosed streamed response) must fail the next
        # test loudly, not hang the run.
        f" SET LOCAL lock_timeout = '20s'; {deletes} {restarts}"
    )


def _run_script(engine: Engine, script: str) -> None:
    """Run several statements in one round trip, in one transaction."""
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute(script)


def _reset_pg(engine: Engine) -> None:
    """Empty every table and put the audit chain back at its start."""
    head = "INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "');"
    _run_script(engine, _pg_empty_sql(engine) + head)


def _pg_snapshot(engine: Engine, schema: str) -> str:
    """Copy every table's committed rows to `schema`; return the SQL that puts them back.

    The SQL empties every table and inserts the copy back, in one round trip (`_run_script`).
    """
    script = [_pg_empty_sql(engine)]
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))  # a killed run's
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        for table in Base.metadata.sorted_tables:
            name = table.name
            conn.execute(text(f'CREATE TABLE {schema}."{name}" AS TABLE "{name}"'))
            if not conn.scalar(text(f'SELECT count(*) FROM "{name}"')):
                continue
            script.append(f'INSERT INTO "{name}" SELECT * FROM {schema}."{name}";')
            if "id" in table.c:
                seq = conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": name})
                if seq is not None:
                    top = conn.scalar(text(f'SELECT max(id) FROM "{name}"'))
                    script.append(f"SELECT setval('{seq}', {int(top)});")
    return " ".join(script)


@pytest.fixture(scope="session")
def pg_world_restore(pg_engine: Engine, scheme_2018: Scheme) -> str:
    """SQL that brings the PostgreSQL database to the installed world, in one round trip.

    The world is installed once; its rows are copied to a schema of their own, and each
    `world` test starts with every table emptied and the copy inserted back.
    """
    _reset_pg(pg_engine)
    with make_sessionmaker(pg_engine)() as session:
        make_world(session, scheme_2018)
    return _pg_snapshot(pg_engine, _PG_SNAPSHOT)


@pytest.fixture
def world_template() -> bool:
    """Marker: a test whose fixtures include this starts from the database with the world."""
    return True


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated database on each configured backend: empty, or with the world."""
    with_world = "world_template" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        template = "sqlite_world_template" if with_world else "sqlite_template"
        shutil.copy(request.getfixturevalue(template), path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        if with_world:
            _run_script(eng, request.getfixturevalue("pg_world_restore"))
        else:
            _reset_pg(eng)
        yield eng


@pytest.fixture
def snapshot(engine: Engine, tmp_path: Path) -> Iterator[Callable[[], Callable[[], None]]]:
    """Keep the test database's committed rows now; the function returned puts them back.

    ``restore = snapshot()`` after a costly setup, then ``restore()`` before each of many runs
    that start from it (the examples of a property-based test), with no session of the test
    in a transaction (close it first; its objects are stale afterwards). SQLite is copied
    whole with its backup API; PostgreSQL's rows are copied to a schema of their own and put
    back in one round trip, as a `world` test starts.
    """
    if engine.dialect.name == "sqlite":
        kept = tmp_path / "snapshot.sqlite3"

        def take() -> Callable[[], None]:
            with engine.connect() as conn, closing(sqlite3.connect(kept)) as copy:
                conn.connection.driver_connection.backup(copy)

            def restore() -> None:
                with engine.connect() as conn, closing(sqlite3.connect(kept)) as copy:
                    copy.backup(conn.connection.driver_connection)

            return restore

        yield take
        return

    def take_pg() -> Callable[[], None]:
        script = _pg_snapshot(engine, _PG_TEST_SNAPSHOT)
        return lambda: _run_script(engine, script)

    yield take_pg
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {_PG_TEST_SNAPSHOT} CASCADE"))


@pytest.fixture
def db_url(engine: Engine) -> str:
    """The URL of the test database."""
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test database; tests commit like a request boundary would."""
    s = make_sessionmaker(engine)()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def world(session: Session, scheme_2018: Scheme, world_template: bool) -> World:
    """The 2018 assessment installed, with users of every role (tests/factories.py).

    The database was copied from the template holding it (see `engine`); it is installed
    here only when `world` was first asked for after the database was made.
    """
    return load_world(session, scheme_2018) or make_world(session, scheme_2018)


@dataclass
class Statements:
    """The SQL statements sent inside a `count_statements` block."""

    sql: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """The number of statements."""
        return len(self.sql)

    def __str__(self) -> str:
        return f"{self.count} statements:\n" + "\n".join(f"  {s}" for s in self.sql)


@contextmanager
def _counting(target: Engine | type[Engine]) -> Iterator[Statements]:
    seen = Statements()

    def before(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.sql.append(" ".join(statement.split()))

    event.listen(target, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", before)


@pytest.fixture
def count_statements() -> Callable[..., AbstractContextManager[Statements]]:
    """Count the SQL statements a block sends: on one engine, or on every engine by default.

    ``with count_statements() as sent: ...`` then ``assert sent.count <= 10, sent`` (the
    message lists the statements). Every engine includes an app's own (requests of its test
    client). Transaction control the driver does itself (BEGIN, COMMIT) is not a statement.
    """

    def count(engine: Engine | None = None) -> AbstractContextManager[Statements]:
        return _counting(engine if engine is not None else Engine)

    return count


@pytest.fixture
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """The evidence store: the local folder, or each kind in turn in an `every_store` module.

    A test can also name its own kinds: ``@pytest.mark.parametrize("store", [...],
    indirect=True)``.
    """
    kind = getattr(request, "param", "local")
    backend: ObjectStore = request.getfixturevalue(f"{kind}_store")
    return backend
