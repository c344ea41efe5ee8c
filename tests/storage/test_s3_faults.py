"""S3 failures: dead, hung and erroring endpoints, and a server lost mid-upload."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from storage import ObjectNotFound, S3Store, StorageUnavailable, ingest_upload
from tests.storage import samples
from tests.storage.fixtures import PART_SIZE, FaultyLink, free_port

MIB = 1024 * 1024

#: "Fails fast": well under what a user waits for before retrying, far from minio's minutes.
FAST = 5.0

OPERATIONS: dict[str, Callable[[S3Store], object]] = {
    "put": lambda s: s.put("k", io.BytesIO(b"abc"), 3, "text/plain"),
    "put-unknown-length": lambda s: s.put("k", io.BytesIO(b"abc"), None, "text/plain"),
    "open": lambda s: s.open("k"),
    "stat": lambda s: s.stat("k"),
    "exists": lambda s: s.exists("k"),
    "delete": lambda s: s.delete("k"),
    "list": lambda s: list(s.list()),
}


@contextlib.contextmanager
def finishes_within(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    elapsed = time.monotonic() - started
    assert elapsed < seconds, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_closed_port_is_unavailable_quickly(
    make_s3_store: Callable[..., S3Store], operation: str
) -> None:
    store = make_s3_store(endpoint=f"127.0.0.1:{free_port()}")
    with finishes_within(FAST), pytest.raises(StorageUnavailable) as caught:
        OPERATIONS[operation](store)
    assert caught.value.status == 503
    assert caught.value.__cause__ is not None  # the vendor error stays in the chain for logs


@pytest.fixture
def hung_endpoint() -> Iterator[str]:
    """A port that accepts connections and then never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()
    for sock in accepted:
        sock.close()


def test_hung_endpoint_times_out(make_s3_store: Callable[..., S3Store], hung_endpoint: str) -> None:
    store = make_s3_store(endpoint=hung_endpoint, read_timeout=0.5)
    with finishes_within(FAST), pytest.raises(StorageUnavailable):
        store.stat("k")


@pytest.fixture
def bad_gateway() -> Iterator[str]:
    """An HTTP server answering 502 with an HTML page, like a proxy whose MinIO is down."""

    class Handler(BaseHTTPRequestHandler):
        def _fail(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            body = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(502)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _fail

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("operation", ["put", "open", "stat", "list"])
def test_server_errors_are_unavailable(
    make_s3_store: Callable[..., S3Store], bad_gateway: str, operation: str
) -> None:
    store = make_s3_store(endpoint=bad_gateway)
    with finishes_within(FAST), pytest.raises(StorageUnavailable):
        OPERATIONS[operation](store)


def test_server_lost_during_a_single_put(
    make_s3_store: Callable[..., S3Store], faulty_link: FaultyLink
) -> None:
    store = make_s3_store(endpoint=faulty_link.endpoint)
    store.put("warm-up", io.BytesIO(b"x"), 1, "text/plain")  # bucket exists, connection pooled
    data = os.urandom(3 * MIB)  # below the part size: one PUT request

    faulty_link.cut_after(1 * MIB)  # the server goes away a third of the way through the body
    with finishes_within(FAST), pytest.raises(StorageUnavailable):
        store.put("k", io.BytesIO(data), len(data), "application/octet-stream")
    assert faulty_link.cuts == 1

    faulty_link.restore()
    with pytest.raises(ObjectNotFound):
        store.stat("k")
    store.put("k", io.BytesIO(data), len(data), "application/octet-stream")
    with store.open("k") as reader:
        assert b"".join(reader) == data


class CutDuringSecondPart:
    """A stream that cuts the link when minio reads past the first part (part 1 is uploaded)."""

    def __init__(self, data: bytes, link: FaultyLink) -> None:
        self._stream = io.BytesIO(data)
        self._link = link

    def read(self, size: int = -1) -> bytes:
        if self._stream.tell() >= PART_SIZE and self._link.cuts == 0:
            self._link.cut()  # part 1 is on the server: the multipart upload is under way
        return self._stream.read(size)


@pytest.mark.parametrize("length_known", [True, False])
def test_server_lost_during_a_multipart_upload(
    make_s3_store: Callable[..., S3Store], faulty_link: FaultyLink, length_known: bool
) -> None:
    store = make_s3_store(endpoint=faulty_link.endpoint)
    data = os.urandom(PART_SIZE * 2 + 1000)
    length = len(data) if length_known else None

    with finishes_within(FAST), pytest.raises(StorageUnavailable):
        store.put("k", CutDuringSecondPart(data, faulty_link), length, "application/octet-stream")
    assert faulty_link.cuts == 1

    faulty_link.restore()
    assert not store.exists("k")  # an unfinished multipart upload is never an object
    assert list(store.list()) == []
    store.put("k", io.BytesIO(data), length, "application/octet-stream")
    assert store.stat("k").size == len(data)


def test_download_interrupted_midway_is_unavailable(
    make_s3_store: Callable[..., S3Store], faulty_link: FaultyLink
) -> None:
    store = make_s3_store(endpoint=faulty_link.endpoint)
    data = os.urandom(8 * MIB)
    store.put("k", io.BytesIO(data), len(data), "application/octet-stream")

    reader = store.open("k")
    reader.read(64 * 1024)
    faulty_link.cut()
    with pytest.raises(StorageUnavailable):
        while reader.read(1024 * 1024):
            pass
    reader.close()


def test_ingest_during_an_outage_stores_nothing_and_retry_succeeds(
    make_s3_store: Callable[..., S3Store], faulty_link: FaultyLink
) -> None:
    store = make_s3_store(endpoint=faulty_link.endpoint)
    faulty_link.cut()
    with finishes_within(FAST), pytest.raises(StorageUnavailable):
        ingest_upload(store, io.BytesIO(samples.PDF), "自评报告.pdf", max_size=MIB)

    faulty_link.restore()
    stored = ingest_upload(store, io.BytesIO(samples.PDF), "自评报告.pdf", max_size=MIB)
    assert stored.is_new
    assert [info.key for info in store.list()] == [stored.key]


def test_presigning_needs_no_server(make_s3_store: Callable[..., S3Store]) -> None:
    store = make_s3_store(endpoint=f"127.0.0.1:{free_port()}")
    assert store.presigned_url("k", timedelta(minutes=1)) is not None
