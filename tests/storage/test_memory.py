"""Memory stays flat while a large upload streams through ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import LocalStore, ObjectStore, S3Store
from tests.storage.fixtures import ACCESS_KEY, PART_SIZE, SECRET_KEY

MIB = 1024 * 1024
UPLOAD_SIZE = 50 * MIB


class GeneratedPdf:
    """A ~50 MB PDF-looking stream produced on the fly; never held in memory as a whole."""

    def __init__(self, size: int) -> None:
        self._block = os.urandom(MIB)
        self._remaining = size
        self._first = True

    def read(self, size: int = -1) -> bytes:
        size = min(MIB if size < 0 else size, MIB, self._remaining)
        if self._first:
            self._first = False
            chunk = (b"%PDF-1.7\n" + self._block)[:size]
        else:
            chunk = self._block[:size]
        self._remaining -= len(chunk)
        return chunk


MEASURE = """
import gc, json, sys, tracemalloc
from storage import LocalStore, S3Store, ingest_upload
from tests.storage.test_memory import GeneratedPdf, UPLOAD_SIZE
args = json.loads(sys.argv[1])
if args["kind"] == "local":
    store = LocalStore(args["root"])
else:
    store = S3Store(args["endpoint"], args["access_key"], args["secret_key"], args["bucket"],
                    secure=False, part_size=args["part_size"], parallel_uploads=1)
    store.exists("warm-up")  # create the bucket and the connection pool before measuring
gc.collect()
tracemalloc.start()
ingest_upload(store, GeneratedPdf(UPLOAD_SIZE), "大文件.pdf", max_size=UPLOAD_SIZE)
print(tracemalloc.get_traced_memory()[1])
"""


def peak_in_subprocess(args: dict[str, object]) -> int:
    """Measure ingest's peak allocation in a fresh interpreter.

    In-process measurements also counted other tests' background threads (moto servers,
    connection pools), which made them flaky; a child process sees only the upload.
    """
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(args)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def test_local_ingest_memory_is_flat(tmp_path: Path) -> None:
    peak = peak_in_subprocess({"kind": "local", "root": str(tmp_path / "objects")})
    store = LocalStore(tmp_path / "objects")
    assert store.stat(next(store.list()).key).size == UPLOAD_SIZE
    # About two 1 MiB read chunks (one being hashed and written, one in the spool's buffer).
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"


@pytest.fixture
def s3_process_store(make_s3_store: Callable[..., S3Store], s3_process_endpoint: str) -> S3Store:
    """An S3 store on a server in another process, so its memory is not counted here."""
    return make_s3_store(endpoint=s3_process_endpoint, part_size=PART_SIZE, parallel_uploads=1)


def test_s3_ingest_memory_is_bounded_by_the_part_size(
    s3_process_store: S3Store, s3_process_endpoint: str
) -> None:
    store: ObjectStore = s3_process_store
    peak = peak_in_subprocess(
        {
            "kind": "s3",
            "endpoint": s3_process_endpoint,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "bucket": s3_process_store.bucket,
            "part_size": PART_SIZE,
        }
    )
    assert store.stat(next(store.list()).key).size == UPLOAD_SIZE
    # minio holds the part being sent and the part being read: 2 × 5 MiB here, not 50 MB.
    assert s3_process_store.upload_buffer_bytes == 2 * PART_SIZE
    assert peak < s3_process_store.upload_buffer_bytes + 2 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert peak < 16 * MIB
