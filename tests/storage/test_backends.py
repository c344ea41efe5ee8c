"""The ObjectStore contract, run against the local folder and a real S3 endpoint alike."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3

from storage import (
    InvalidKey,
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    StorageError,
    StorageUnavailable,
)
from storage.base import CHUNK_SIZE

pytestmark = pytest.mark.every_store

MIB = 1024 * 1024


class TrickleStream:
    """A stream of unknown length that hands out at most *step* bytes per read."""

    def __init__(self, data: bytes, step: int = 64 * 1024) -> None:
        self._data = memoryview(data)
        self._step = step
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        size = self._step if size < 0 else min(size, self._step)
        chunk = bytes(self._data[self.position : self.position + size])
        self.position += len(chunk)
        return chunk


class Broken(Exception):
    """Raised by a stream that fails, e.g. a client that disconnects mid-upload."""


class FailingStream(TrickleStream):
    def read(self, size: int = -1) -> bytes:
        if self.position >= 100_000:
            raise Broken("client went away")
        return super().read(size)


def read_all(store: ObjectStore, key: str) -> bytes:
    with store.open(key) as reader:
        return b"".join(reader)


def test_put_then_open_stat_exists_delete(store: ObjectStore) -> None:
    data = "放管服 evidence\n".encode() * 1000
    before = datetime.now(UTC) - timedelta(seconds=5)

    store.put("dept/42/report.txt", io.BytesIO(data), len(data), "text/plain")

    assert store.exists("dept/42/report.txt")
    info = store.stat("dept/42/report.txt")
    assert info.key == "dept/42/report.txt"
    assert info.size == len(data)
    assert info.modified_at.tzinfo is not None
    assert before <= info.modified_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert read_all(store, "dept/42/report.txt") == data

    store.delete("dept/42/report.txt")
    assert not store.exists("dept/42/report.txt")
    with pytest.raises(ObjectNotFound):
        store.stat("dept/42/report.txt")


def test_put_replaces_existing_object(store: ObjectStore) -> None:
    store.put("k", io.BytesIO(b"old content"), 11, "text/plain")
    store.put("k", io.BytesIO(b"new"), 3, "text/plain")
    assert read_all(store, "k") == b"new"
    assert store.stat("k").size == 3


def test_reader_streams_in_chunks_and_closes(store: ObjectStore) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 17)
    store.put("blob", io.BytesIO(data), len(data), "application/octet-stream")

    reader = store.open("blob")
    assert reader.size == len(data)
    chunks = list(reader)
    reader.close()
    reader.close()  # closing twice is harmless

    assert b"".join(chunks) == data
    assert all(len(chunk) <= CHUNK_SIZE for chunk in chunks)
    assert len(chunks) >= 4
    assert reader.closed
    with pytest.raises(ValueError):
        reader.read(1)


def test_reader_supports_partial_reads(store: ObjectStore) -> None:
    store.put("abc", io.BytesIO(b"abcdef"), 6, "text/plain")
    with store.open("abc") as reader:
        assert reader.read(2) == b"ab"
        assert reader.read() == b"cdef"
        assert reader.read(10) == b""


def test_put_of_unknown_length_uses_multipart(store: ObjectStore) -> None:
    data = os.urandom(5 * MIB + 12_345)  # more than one S3 part (5 MiB)
    store.put("big/unknown-length.bin", TrickleStream(data), None, "application/octet-stream")
    assert store.stat("big/unknown-length.bin").size == len(data)
    assert read_all(store, "big/unknown-length.bin") == data


def test_put_of_empty_object(store: ObjectStore) -> None:
    store.put("empty", io.BytesIO(b""), 0, "application/octet-stream")
    assert store.stat("empty").size == 0
    assert read_all(store, "empty") == b""


def test_put_reads_exactly_the_declared_length(store: ObjectStore) -> None:
    store.put("k", io.BytesIO(b"0123456789"), 4, "text/plain")
    assert read_all(store, "k") == b"0123"


def test_short_stream_is_an_error_and_stores_nothing(store: ObjectStore) -> None:
    with pytest.raises(StorageError, match="ended after 5 of 10"):
        store.put("short", io.BytesIO(b"12345"), 10, "text/plain")
    assert not store.exists("short")


def test_stream_errors_propagate_unchanged_and_store_nothing(store: ObjectStore) -> None:
    data = os.urandom(6 * MIB)
    with pytest.raises(Broken):
        store.put("failed", FailingStream(data), None, "application/octet-stream")
    with pytest.raises(Broken):
        store.put("failed", FailingStream(data), len(data), "application/octet-stream")
    assert not store.exists("failed")
    assert list(store.list()) == []


def test_missing_objects(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        store.open("no/such/key")
    assert caught.value.status == 404
    assert caught.value.message == "文件不存在"
    with pytest.raises(ObjectNotFound):
        store.stat("no/such/key")
    assert not store.exists("no/such/key")
    store.delete("no/such/key")  # idempotent, as on S3


def test_list_is_lazy_filtered_and_in_key_order(store: ObjectStore) -> None:
    keys = ["b", "a/b", "a.txt", "a/c/d", "a0", "sha256/ab/cd/abcd", "sha256/ab/ce/abce"]
    for key in keys:
        store.put(key, io.BytesIO(key.encode()), len(key), "text/plain")

    assert [info.key for info in store.list()] == sorted(keys)
    assert [info.key for info in store.list("a/")] == ["a/b", "a/c/d"]
    assert [info.key for info in store.list("a")] == ["a.txt", "a/b", "a/c/d", "a0"]
    assert [info.key for info in store.list("sha256/ab/c")] == [
        "sha256/ab/cd/abcd",
        "sha256/ab/ce/abce",
    ]
    assert list(store.list("zzz")) == []
    sizes = {info.key: info.size for info in store.list()}
    assert sizes == {key: len(key) for key in keys}


def test_keys_keep_non_ascii(store: ObjectStore) -> None:
    store.put("部门/交通局/报告.txt", io.BytesIO(b"x"), 1, "text/plain")
    assert [info.key for info in store.list("部门/")] == ["部门/交通局/报告.txt"]
    assert read_all(store, "部门/交通局/报告.txt") == b"x"


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/./b", "a/", "a\\b", "a\x00b", "C:x"],
)
def test_unsafe_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        store.put(key, io.BytesIO(b"x"), 1, "text/plain")
    with pytest.raises(InvalidKey):
        store.stat(key)
    with pytest.raises(InvalidKey):
        store.open(key)
    with pytest.raises(InvalidKey):
        store.delete(key)
    assert list(store.list()) == []


def test_unsafe_prefix_is_refused(store: ObjectStore) -> None:
    with pytest.raises(InvalidKey):
        list(store.list("../"))


# ------------------------------------------------------------------ backend specifics


def test_local_presigned_url_is_none(local_store: LocalStore) -> None:
    local_store.put("k", io.BytesIO(b"x"), 1, "text/plain")
    assert local_store.presigned_url("k", timedelta(minutes=5), "报告.pdf") is None


def test_local_write_is_atomic_and_leaves_no_temp_files(local_store: LocalStore) -> None:
    local_store.put("a/k", io.BytesIO(b"old"), 3, "text/plain")
    with pytest.raises(Broken):
        local_store.put("a/k", FailingStream(os.urandom(MIB)), None, "text/plain")
    assert read_all(local_store, "a/k") == b"old"
    assert sorted(p.name for p in (local_store.root / "a").iterdir()) == ["k"]


def test_local_write_waits_for_the_disk_in_the_product(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite runs with the waits off (tests/conftest.py); the product never does.
    monkeypatch.setattr(LocalStore, "sync_to_disk", True)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = LocalStore(tmp_path / "objects")
    store.put("a/b.bin", io.BytesIO(b"x" * 10), 10, "application/octet-stream")
    assert synced == ["file", "dir"]  # the file's bytes, then the rename in its directory
    # Outside the suite (a fresh interpreter: the product's own default) the waits are on.
    code = "from storage.local import LocalStore; print(LocalStore.sync_to_disk)"
    product = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert product.stdout.strip() == "True"


def test_local_refuses_hidden_segments(local_store: LocalStore) -> None:
    with pytest.raises(InvalidKey):
        local_store.put("a/.tmp-x", io.BytesIO(b"x"), 1, "text/plain")


def test_local_refuses_symlinks_out_of_the_root(local_store: LocalStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local_store.root.mkdir(parents=True)
    (local_store.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        local_store.put("link/x", io.BytesIO(b"x"), 1, "text/plain")
    assert list(outside.iterdir()) == []


def test_local_stays_inside_its_root(local_store: LocalStore, tmp_path: Path) -> None:
    local_store.put("a/b/c", io.BytesIO(b"x"), 1, "text/plain")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [local_store.root / "a" / "b" / "c"]


def test_s3_presigned_url_downloads_with_a_chinese_name(s3_store: S3Store) -> None:
    s3_store.put("k.pdf", io.BytesIO(b"%PDF-1.4 x"), 10, "application/pdf")
    url = s3_store.presigned_url("k.pdf", timedelta(minutes=5), "自评报告.pdf")
    assert url is not None
    assert "X-Amz-Signature=" in url

    response = urllib3.request("GET", url, retries=False, timeout=10)
    assert response.status == 200
    assert response.data == b"%PDF-1.4 x"
    disposition = response.headers.get("Content-Disposition", "")
    assert "filename*=UTF-8''%E8%87%AA%E8%AF%84%E6%8A%A5%E5%91%8A.pdf" in disposition


def test_s3_presigned_url_rejects_expiry_over_a_week(s3_store: S3Store) -> None:
    with pytest.raises(ValueError):
        s3_store.presigned_url("k", timedelta(days=8))


def test_s3_bucket_is_created_lazily_once(
    make_s3_store: Callable[..., S3Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_s3_store()
    assert not store.client.bucket_exists(store.bucket)  # constructing makes no request
    calls: list[str] = []
    original = store.client.bucket_exists

    def counting_bucket_exists(bucket: str) -> bool:
        calls.append(bucket)
        return original(bucket)

    monkeypatch.setattr(store.client, "bucket_exists", counting_bucket_exists)

    store.put("a", io.BytesIO(b"1"), 1, "text/plain")
    store.put("b", io.BytesIO(b"2"), 1, "text/plain")

    assert calls == [store.bucket]
    assert [info.key for info in store.list()] == ["a", "b"]


def test_s3_reads_on_a_missing_bucket_find_nothing(s3_store: S3Store) -> None:
    assert list(s3_store.list()) == []
    assert not s3_store.exists("k")
    with pytest.raises(ObjectNotFound):
        s3_store.open("k")
    s3_store.delete("k")


def test_s3_recreates_a_bucket_removed_behind_its_back(s3_store: S3Store) -> None:
    s3_store.put("a", io.BytesIO(b"1"), 1, "text/plain")
    s3_store.client.remove_object(s3_store.bucket, "a")
    s3_store.client.remove_bucket(s3_store.bucket)

    with pytest.raises(StorageUnavailable):
        s3_store.put("b", io.BytesIO(b"2"), 1, "text/plain")
    s3_store.put("b", io.BytesIO(b"2"), 1, "text/plain")
    assert read_all(s3_store, "b") == b"2"
