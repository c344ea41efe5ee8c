"""store_from_settings: the embedded default, S3, and refusing bad settings early."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from storage import LocalStore, S3Store, store_from_settings
from tests.storage.fixtures import ACCESS_KEY, SECRET_KEY


def test_local_is_the_default_under_the_instance_folder(tmp_path: Path) -> None:
    store = store_from_settings({}, str(tmp_path))
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "evidence").resolve()


def test_local_root_can_be_set(tmp_path: Path) -> None:
    store = store_from_settings(
        {"STORAGE_BACKEND": "LOCAL", "STORAGE_LOCAL_ROOT": str(tmp_path / "files")}, "/unused"
    )
    assert isinstance(store, LocalStore)
    assert store.root == (tmp_path / "files").resolve()


def test_s3_settings(s3_endpoint: str, tmp_path: Path) -> None:
    bucket = f"config-test-{uuid.uuid4().hex[:12]}"  # a shared real server may keep old ones
    store = store_from_settings(
        {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT": s3_endpoint,
            "S3_ACCESS_KEY": ACCESS_KEY,
            "S3_SECRET_KEY": SECRET_KEY,
            "S3_BUCKET": bucket,
            "S3_SECURE": "false",
        },
        str(tmp_path),
    )
    assert isinstance(store, S3Store)
    assert (store.bucket, store.region, store.endpoint) == (bucket, "us-east-1", s3_endpoint)
    store.put("k", io.BytesIO(b"x"), 1, "text/plain")  # really talks to the endpoint
    assert store.exists("k")
    store.delete("k")
    store.client.remove_bucket(bucket)


def test_s3_defaults_and_scheme_prefix() -> None:
    base = {"STORAGE_BACKEND": "s3", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "b"}
    plain = store_from_settings({**base, "S3_ENDPOINT": "http://minio:9000/"}, "/i")
    assert isinstance(plain, S3Store)
    assert (plain.endpoint, plain.bucket, plain.region) == ("minio:9000", "evidence", "us-east-1")
    assert plain.client._base_url.is_https is False
    tls = store_from_settings({**base, "S3_ENDPOINT": "minio.example.cn"}, "/i")
    assert isinstance(tls, S3Store)
    assert tls.client._base_url.is_https is True


@pytest.mark.parametrize(
    "settings",
    [
        {"STORAGE_BACKEND": "ftp"},
        {"STORAGE_BACKEND": "s3"},
        {"STORAGE_BACKEND": "s3", "S3_ENDPOINT": "minio:9000", "S3_ACCESS_KEY": "a"},
        {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT": "minio:9000",
            "S3_ACCESS_KEY": "a",
            "S3_SECRET_KEY": "b",
            "S3_SECURE": "maybe",
        },
        {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT": "minio:9000",
            "S3_ACCESS_KEY": "a",
            "S3_SECRET_KEY": "b",
            "S3_BUCKET": "Not_A_Valid_Bucket",
        },
    ],
)
def test_bad_settings_fail_at_start_up(settings: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        store_from_settings(settings, "/i")
