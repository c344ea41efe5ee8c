"""Storage fixtures for every test package: a real S3 HTTP endpoint, stores, fault injection.

tests/conftest.py registers this module as a plugin, so every test finds these fixtures by
name; nothing imports them one by one (an override here therefore reaches every S3 test).

The S3 endpoint is moto's server, started on loopback, unless ``S3_TEST_ENDPOINT=host:port``
names a running server (e.g. scripts/ceph-s3.sh's radosgw); then every S3 test uses that one,
with ``S3_TEST_ACCESS_KEY`` / ``S3_TEST_SECRET_KEY`` (default ``testing``/``testing``), each
test on a fresh bucket that it removes afterwards. Select those tests with ``-m s3``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from storage import LocalStore, S3Store

#: ``host:port`` of an S3 server to test against instead of moto (plain HTTP).
EXTERNAL_ENDPOINT = os.environ.get("S3_TEST_ENDPOINT", "").strip()
#: moto accepts any credentials; an external server needs its user's keys.
ACCESS_KEY = os.environ.get("S3_TEST_ACCESS_KEY", "testing")
SECRET_KEY = os.environ.get("S3_TEST_SECRET_KEY", "testing")
#: S3's minimum; small parts make the multipart paths cheap to exercise.
PART_SIZE = 5 * 1024 * 1024


def _external_endpoint() -> str:
    """Return S3_TEST_ENDPOINT after checking that something answers there (fail, never skip)."""
    if "://" in EXTERNAL_ENDPOINT or ":" not in EXTERNAL_ENDPOINT:
        pytest.fail(f"S3_TEST_ENDPOINT must be host:port, not {EXTERNAL_ENDPOINT!r}")
    host, port = EXTERNAL_ENDPOINT.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except (OSError, ValueError) as exc:
        pytest.fail(f"S3_TEST_ENDPOINT={EXTERNAL_ENDPOINT} does not answer: {exc}")
    return EXTERNAL_ENDPOINT


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Yield ``host:port`` of the session's S3 server: S3_TEST_ENDPOINT, or moto on loopback."""
    if EXTERNAL_ENDPOINT:
        yield _external_endpoint()
        return
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"{host}:{port}"
    server.stop()


@pytest.fixture
def make_s3_store(
    request: pytest.FixtureRequest, s3_endpoint: str
) -> Iterator[Callable[..., S3Store]]:
    """Return a factory of S3 stores, each on a fresh bucket (removed after the test)."""
    # `-m s3` must select every test that talks to S3 (tests/conftest.py marks them).
    assert request.node.get_closest_marker("s3"), f"{request.node.nodeid} is not marked s3"
    stores: list[S3Store] = []

    def make(endpoint: str | None = None, bucket: str | None = None, **options: object) -> S3Store:
        options.setdefault("part_size", PART_SIZE)
        store = S3Store(
            endpoint or s3_endpoint,
            ACCESS_KEY,
            SECRET_KEY,
            bucket or f"test-{uuid.uuid4().hex[:16]}",
            secure=False,
            **options,  # type: ignore[arg-type]
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        _drop_bucket(store)


def _drop_bucket(store: S3Store) -> None:
    """Free moto's memory (or the real server's space); best effort, the endpoint may be dead."""
    with contextlib.suppress(Exception):
        client = store.client
        if not client.bucket_exists(store.bucket):
            return
        for item in client.list_objects(store.bucket, recursive=True):
            client.remove_object(store.bucket, item.object_name)
        client.remove_bucket(store.bucket)


@pytest.fixture
def s3_store(make_s3_store: Callable[..., S3Store]) -> S3Store:
    """An S3 store on a fresh bucket of the session's S3 server."""
    return make_s3_store()


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    """A local-folder store under the test's temporary directory."""
    return LocalStore(tmp_path / "objects")


# ------------------------------------------------------------------ fault injection


class FaultyLink:
    """A TCP forwarder in front of the S3 server that a test can cut and restore.

    ``cut()`` closes the listening port and resets every open connection — to the client this is
    exactly a server that died — and ``restore()`` listens again on the same port. ``cut_after``
    arms an automatic cut once that many request bytes have passed, i.e. mid-upload.
    """

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._bytes_up = 0
        self._cut_at: int | None = None
        self.port = 0
        self.cuts = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)  # lets the accept loop notice a cut without racing close()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
            self._cut_at = None
            self.cuts += 1
        if listener is not None:
            listener.close()
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        self.start()

    def cut_after(self, request_bytes: int) -> None:
        with self._lock:
            self._cut_at = self._bytes_up + request_bytes

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                if self._listener is not listener:  # cut while we were connecting
                    _reset(client)
                    _reset(upstream)
                    return
                self._sockets.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, is_request: bool) -> None:
        try:
            source.settimeout(None)
            while data := source.recv(65536):
                sink.sendall(data)
                if is_request and self._count(len(data)):
                    self.cut()
                    return
        except OSError:
            pass
        _reset(source)
        _reset(sink)

    def _count(self, size: int) -> bool:
        with self._lock:
            self._bytes_up += size
            return self._cut_at is not None and self._bytes_up >= self._cut_at


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def faulty_link(s3_endpoint: str) -> Iterator[FaultyLink]:
    """A cuttable link to the session's S3 server (see :class:`FaultyLink`)."""
    link = FaultyLink(s3_endpoint)
    link.start()
    yield link
    link.cut()


def free_port() -> int:
    """Return a loopback port that nothing listens on (closed right after binding)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_process_endpoint() -> Iterator[str]:
    """Run moto in a separate process, for measurements the in-process server would pollute.

    An external server (S3_TEST_ENDPOINT) already is another process: it is used as it is.
    """
    if EXTERNAL_ENDPOINT:
        yield _external_endpoint()
        return
    port = free_port()
    code = f"from moto.server import main; main(['-H', '127.0.0.1', '-p', '{port}'])"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto server process did not start") from None
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)
