"""Memory stays flat while a large upload streams through ingest."""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Callable

import pytest

from storage import LocalStore, ObjectStore, S3Store, ingest_upload
from tests.storage.fixtures import PART_SIZE

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


def peak_while(action: Callable[[], object]) -> int:
    # Collect earlier tests' garbage first: finalizers (closing pooled connections, which wakes
    # the in-process moto server's threads) would otherwise allocate during our measurement.
    gc.collect()
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_local_ingest_memory_is_flat(local_store: LocalStore) -> None:
    peak = peak_while(
        lambda: ingest_upload(
            local_store, GeneratedPdf(UPLOAD_SIZE), "大文件.pdf", max_size=UPLOAD_SIZE
        )
    )
    assert local_store.stat(next(local_store.list()).key).size == UPLOAD_SIZE
    # About two 1 MiB read chunks (one being hashed and written, one in the spool's buffer).
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB"


@pytest.fixture
def s3_process_store(make_s3_store: Callable[..., S3Store], s3_process_endpoint: str) -> S3Store:
    """An S3 store on a moto server in another process, so its memory is not counted here."""
    return make_s3_store(endpoint=s3_process_endpoint, part_size=PART_SIZE, parallel_uploads=1)


def test_s3_ingest_memory_is_bounded_by_the_part_size(s3_process_store: S3Store) -> None:
    store: ObjectStore = s3_process_store
    peak = peak_while(
        lambda: ingest_upload(store, GeneratedPdf(UPLOAD_SIZE), "大文件.pdf", max_size=UPLOAD_SIZE)
    )
    assert store.stat(next(store.list()).key).size == UPLOAD_SIZE
    # minio holds the part being sent and the part being read: 2 × 5 MiB here, not 50 MB.
    assert s3_process_store.upload_buffer_bytes == 2 * PART_SIZE
    assert peak < s3_process_store.upload_buffer_bytes + 2 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert peak < 16 * MIB
