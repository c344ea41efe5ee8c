"""Shared fixtures: a real database per test (SQLite always, PostgreSQL when configured).

Set TEST_DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/fgf_test) to run
every database test on PostgreSQL as well. Schemas are made by the real Alembic migrations.

Also here: the 2018 ``world`` and the evidence ``store`` every package uses, and the storage
fixtures of tests/storage/fixtures.py (S3 endpoint, stores, fault injection), loaded as a
plugin. Tests that talk to S3 are marked ``s3``: ``pytest -m s3`` runs just that set, e.g.
against radosgw with ``S3_TEST_ENDPOINT`` (see README, "Tests").
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage import ObjectStore
from tests.factories import World, make_world
from workflow.db import make_engine, make_sessionmaker, migrate
from workflow.models import Base
from workflow.scheme import SCHEMES_DIR, Scheme, load_scheme

pytest_plugins = ["tests.storage.fixtures"]

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

#: The object stores an `every_store` test runs on (names of `<kind>_store` fixtures).
STORE_KINDS = ["local", "s3"]

#: A test whose fixtures include one of these talks to the S3 server.
_S3_FIXTURES = {"s3_endpoint", "s3_process_endpoint"}


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


def _uses_s3(item: pytest.Item) -> bool:
    """Tell whether a test reaches the S3 server, statically or through a parameter."""
    if _S3_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "s3" in callspec.params.values()


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by the markers set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the S3 tests `s3`; generate a `backend(...)` test only for its backends (no skip)."""
    keep, drop = [], []
    for item in items:
        if _uses_s3(item):
            item.add_marker(pytest.mark.s3)
        marker = item.get_closest_marker("backend")
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("engine") if callspec is not None else None
        if marker is not None and backend is not None and backend not in marker.args:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


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
def pg_engine() -> Iterator[Engine]:
    """The PostgreSQL test database, wiped and migrated once per run."""
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(engine)
    yield engine
    engine.dispose()


def _reset_pg(engine: Engine) -> None:
    """Empty every table; the append-only trigger is bypassed as replication role."""
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        # A session a test leaked (e.g. an unclosed streamed response) must fail the next
        # test loudly, not hang the run.
        conn.execute(text("SET LOCAL lock_timeout = '20s'"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        conn.execute(text("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, :h)"), {
            "h": "0" * 64
        })  # fmt: skip


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A freshly migrated, empty database on each configured backend."""
    if request.param == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        eng = make_engine(f"sqlite:///{path}")
        yield eng
        eng.dispose()
    else:
        eng = request.getfixturevalue("pg_engine")
        _reset_pg(eng)
        yield eng


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
def world(session: Session, scheme_2018: Scheme) -> World:
    """The 2018 assessment installed, with users of every role (tests/factories.py)."""
    return make_world(session, scheme_2018)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """The evidence store: the local folder, or each kind in turn in an `every_store` module.

    A test can also name its own kinds: ``@pytest.mark.parametrize("store", [...],
    indirect=True)``.
    """
    kind = getattr(request, "param", "local")
    backend: ObjectStore = request.getfixturevalue(f"{kind}_store")
    return backend
