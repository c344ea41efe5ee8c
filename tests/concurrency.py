"""Deterministic races: a store that pauses inside ingest, and a worker we can see blocked.

No sleeps and no timing thresholds: a test waits for an event (the upload is stored and
paused; the worker is done; the worker is about to write or is waiting on a lock), then makes
the competing move, then lets the paused side go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from storage.base import ObjectInfo, ObjectReader, ObjectStore, Readable
from workflow.db import make_engine

#: Upper bound of any wait: reached only when the code under test hangs (a failure).
HANG = 60.0


class DelegatingStore(ObjectStore):
    """A real store behind a wrapper: subclasses override what they watch or change."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def put(self, key: str, stream: Readable, length: int | None, content_type: str) -> None:
        """Delegate to the real store."""
        self.inner.put(key, stream, length, content_type)

    def open(self, key: str) -> ObjectReader:
        """Delegate to the real store."""
        return self.inner.open(key)

    def stat(self, key: str) -> ObjectInfo:
        """Delegate to the real store."""
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        """Delegate to the real store."""
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Delegate to the real store."""
        return self.inner.list(prefix)

    def presigned_url(
        self, key: str, expires: timedelta, filename: str | None = None
    ) -> str | None:
        """Delegate to the real store."""
        return self.inner.presigned_url(key, expires, filename)


class PausingStore(DelegatingStore):
    """A real store whose `put` stores the object, then pauses until the test resumes it."""

    def __init__(self, inner: ObjectStore, *, pause_at: int = 1) -> None:
        super().__init__(inner)
        self.pause_at = pause_at  # pause after this many puts (1: the first file)
        self.puts = 0
        self.paused = threading.Event()  # set while an upload waits inside ingest
        self.resume = threading.Event()

    def put(self, key: str, stream: Readable, length: int | None, content_type: str) -> None:
        """Store the object, then wait for `resume` when this is the put to pause at."""
        self.inner.put(key, stream, length, content_type)
        self.puts += 1
        if self.puts == self.pause_at:
            self.paused.set()
            if not self.resume.wait(HANG):
                raise TimeoutError("the test never resumed the paused upload")

    def wait_paused(self) -> None:
        """Block until an upload is stored and paused (fail if it never gets there)."""
        assert self.paused.wait(HANG), "the upload never reached the pause inside ingest"


class PausingLookup(DelegatingStore):
    """A real store whose first `exists` or `open` (as `method` says) waits for the test: an
    upload paused after it found its object stored, an archive before its first copy."""

    def __init__(self, inner: ObjectStore, method: str) -> None:
        super().__init__(inner)
        self.method = method
        self.calls = 0
        self.paused = threading.Event()  # set while the call waits
        self.resume = threading.Event()

    def _pause(self, method: str) -> None:
        if method != self.method:
            return
        self.calls += 1
        if self.calls == 1:
            self.paused.set()
            if not self.resume.wait(HANG):
                raise TimeoutError("the test never resumed the paused call")

    def exists(self, key: str) -> bool:
        """Look, then pause when this is the call to pause at."""
        found = self.inner.exists(key)
        self._pause("exists")
        return found

    def open(self, key: str) -> ObjectReader:
        """Pause when this is the call to pause at, then open."""
        self._pause("open")
        return self.inner.open(key)

    def wait_paused(self) -> None:
        """Block until the call is paused (fail if it never gets there)."""
        assert self.paused.wait(HANG), f"nothing called {self.method}"


class Worker(threading.Thread):
    """Run `fn` in a thread, keep its result or exception, and report when it writes."""

    def __init__(self, engine: Engine, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.writing = threading.Event()  # set when the worker sends its first write
        self.done = threading.Event()

    def run(self) -> None:
        """Run the function, recording its outcome."""
        ident = threading.get_ident()

        def spy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if threading.get_ident() == ident and statement.lstrip().upper().startswith(
                ("UPDATE", "INSERT", "DELETE")
            ):
                self.writing.set()

        event.listen(self.engine, "before_cursor_execute", spy)
        try:
            self.result = self.fn()
        except BaseException as exc:  # the test inspects it
            self.error = exc
        finally:
            event.remove(self.engine, "before_cursor_execute", spy)
            self.done.set()

    def wait_done(self) -> Any:
        """Wait for the worker to finish; return its result or raise its exception."""
        self.join(HANG)
        assert not self.is_alive(), "the worker hangs"
        if self.error is not None:
            raise self.error
        return self.result

    def wait_blocked_or_done(self) -> None:
        """Wait until the worker finished, started writing, or waits on a database lock.

        On SQLite every wait for the write lock starts with a write statement; on PostgreSQL a
        row lock (FOR UPDATE) is seen in pg_stat_activity as a wait of type `Lock`.
        """
        pg = self.engine.dialect.name == "postgresql"
        for _ in range(int(HANG / 0.01)):
            if self.done.is_set() or self.writing.is_set():
                return
            if pg and _waiting_on_lock(self.engine):
                return
            self.done.wait(0.01)
        raise AssertionError("the worker neither finished, wrote, nor waited on a lock")


def start_behind(engine: Engine, holder: Session, fn: Callable[[], Any]) -> Worker:
    """Start `fn` while `holder` holds its locks; commit `holder` once `fn` waits or is done.

    Whichever way the code under test orders its reads and locks, the worker's competing move
    is made while `holder`'s transaction is still open; the caller then collects the outcome
    with `wait_done()`.
    """
    worker = Worker(engine, fn)
    worker.start()
    worker.wait_blocked_or_done()
    holder.commit()
    return worker


def _waiting_on_lock(engine: Engine) -> bool:
    """Tell whether any session of this database waits on a lock (PostgreSQL)."""
    with engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(count)


def impatient_engine(engine: Engine) -> Engine:
    """Return a second engine on the same database whose writes fail instead of waiting.

    Used to show that a write is *not* blocked: on SQLite the busy timeout is zero, on
    PostgreSQL a lock wait fails at once (lock_timeout), so a held lock is an error, never a
    slow test.
    """
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name == "sqlite":
        return create_engine(url, connect_args={"timeout": 0})
    return make_engine(url, connect_args={"options": "-c lock_timeout=10"})


class HeldCommit:
    """A session factory whose sessions stop just before they commit, until the test says go.

    The race of two runs of a job: the first has read and written everything and waits at its
    commit (`wait_held`); the test starts the second run then, waits until it writes or waits
    on a lock (`Worker.wait_blocked_or_done`), and lets the first one commit (`release`).
    """

    def __init__(self, engine: Engine) -> None:
        self.factory: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        self.held = threading.Event()
        self.go = threading.Event()
        event.listen(self.factory, "before_commit", self._hold)

    def _hold(self, _session: Session) -> None:
        self.held.set()
        if not self.go.wait(HANG):
            raise TimeoutError("the test never let the held commit go")

    def wait_held(self) -> None:
        """Block until a session of the factory is at its commit (fail if it never gets there)."""
        assert self.held.wait(HANG), "the held run never reached its commit"

    def release(self) -> None:
        """Let the held commit (and any later one) go."""
        self.go.set()


def one_behind_the_other(
    engine: Engine, first: Callable[[sessionmaker[Session]], Any], second: Callable[[], Any]
) -> tuple[Any, Any]:
    """Run `first` (given a `HeldCommit` factory) until it is about to commit, then `second`
    until it writes or waits on a lock; then let `first` commit. Both outcomes, in that order
    (an exception of either is raised)."""
    gate = HeldCommit(engine)
    one = Worker(engine, lambda: first(gate.factory))
    one.start()
    gate.wait_held()
    other = Worker(engine, second)
    other.start()
    other.wait_blocked_or_done()
    gate.release()
    return one.wait_done(), other.wait_done()
