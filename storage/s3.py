"""An S3 / MinIO object store through the ``minio`` client.

Every vendor error is translated here, at the edge: a missing key or bucket becomes
:class:`ObjectNotFound`; anything else the server, the network or urllib3 can throw becomes
:class:`StorageUnavailable` (chained, so the original stays in the traceback for logs).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import NoReturn

import certifi
import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from minio.helpers import check_bucket_name
from urllib3.util import Retry, Timeout

from storage.base import (
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    Readable,
    content_disposition,
    validate_key,
    validate_prefix,
)
from storage.errors import ObjectNotFound, StorageError, StorageUnavailable

#: S3 error codes that mean "not there" rather than "broken".
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"})

#: Everything the network stack can raise below minio: urllib3's own errors (MaxRetryError,
#: ProtocolError, timeouts), http.client's (RemoteDisconnected, IncompleteRead) and sockets'.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)

#: Part size for multipart uploads; S3 requires at least 5 MiB for every part but the last.
DEFAULT_PART_SIZE = 8 * 1024 * 1024

#: S3 limits presigned URLs to seven days.
MAX_PRESIGN = timedelta(days=7)


class S3Store(ObjectStore):
    """Store objects in one S3 bucket (MinIO in production, moto in tests).

    Memory per upload is bounded by about ``(parallel_uploads + 1) * part_size``: minio holds
    the parts being sent plus the one it is reading, whatever the object's size.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        region: str = "us-east-1",
        secure: bool = True,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        parallel_uploads: int = 1,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        max_retries: int = 1,
    ) -> None:
        # Raise ValueError now, at start-up, rather than on the first upload.
        check_bucket_name(bucket, strict=True)
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        # minio's default pool retries 5 times with 5-minute timeouts, so a dead endpoint would
        # hang a request for minutes; we want a 503 within seconds instead.
        http_client = urllib3.PoolManager(
            timeout=Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=max(10, parallel_uploads + 2),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=Retry(
                total=max_retries,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
            ),
        )
        # Passing the region avoids a GetBucketLocation round trip before the first request.
        self.client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http_client,
        )
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    @property
    def upload_buffer_bytes(self) -> int:
        """Return the most object data one upload holds in memory at a time."""
        return (self.parallel_uploads + 1) * self.part_size

    def put(self, key: str, stream: Readable, length: int | None, content_type: str) -> None:
        """Upload *stream*; multipart above one part, so unknown lengths work too.

        S3 makes an object visible only when its upload completes, so a failure part-way leaves
        no object; minio aborts the multipart upload (a bucket lifecycle rule should clean up any
        abort that itself failed because the server was gone).
        """
        validate_key(key)
        self._ensure_bucket()
        source = _GuardedSource(stream, length)
        try:
            self.client.put_object(
                self.bucket,
                key,
                source,  # type: ignore[arg-type]  # minio only calls read()
                length=-1 if length is None else length,
                content_type=content_type,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
            )
        except _SourceError as exc:
            raise exc.original from None
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                self._bucket_ready = False  # someone removed it: recreate on the next put
            _raise_translated(exc, key, not_found=False)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            if source.is_short:
                # minio reports a short stream as IOError; it is the caller's bug, not an outage.
                raise StorageError(
                    f"stream ended after {source.count} of {length} declared bytes"
                ) from exc
            _raise_translated(exc, key, not_found=False)

    def open(self, key: str) -> ObjectReader:
        """Start a GET and return a reader over the response body (not preloaded)."""
        validate_key(key)
        try:
            response = self.client.get_object(self.bucket, key)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            _raise_translated(exc, key)

        def release() -> None:
            """Close the response and return its connection to the pool."""
            response.close()
            response.release_conn()

        size = int(response.headers.get("Content-Length", "0"))
        return ObjectReader(response, size=size, release=release, translate=_translate_read_error)

    def stat(self, key: str) -> ObjectInfo:
        """HEAD the object."""
        validate_key(key)
        try:
            result = self.client.stat_object(self.bucket, key)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            _raise_translated(exc, key)
        modified_at = result.last_modified
        if modified_at is None:  # pragma: no cover - S3 always sends Last-Modified
            raise StorageUnavailable(f"no Last-Modified for {key!r}")
        return ObjectInfo(key=key, size=result.size or 0, modified_at=modified_at.astimezone(UTC))

    def delete(self, key: str) -> None:
        """DELETE the object; S3 itself treats a missing key as success."""
        validate_key(key)
        try:
            self.client.remove_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND_CODES:
                return
            _raise_translated(exc, key)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            _raise_translated(exc, key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Page through ListObjectsV2 lazily; a missing bucket lists as empty."""
        validate_prefix(prefix)
        objects = self.client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
        while True:
            try:
                item = next(objects)
            except StopIteration:
                return
            except S3Error as exc:
                if exc.code == "NoSuchBucket":
                    return
                _raise_translated(exc, prefix)
            except (MinioException, *_TRANSPORT_ERRORS) as exc:
                _raise_translated(exc, prefix)
            if item.is_dir or item.object_name is None or item.last_modified is None:
                continue
            yield ObjectInfo(
                key=item.object_name,
                size=item.size or 0,
                modified_at=item.last_modified.astimezone(UTC),
            )

    def presigned_url(
        self, key: str, expires: timedelta, filename: str | None = None
    ) -> str | None:
        """Sign a GET URL locally (no request is made); *filename* forces a download name.

        The URL names the endpoint this store was configured with, so it only helps browsers
        when that endpoint is reachable from them.
        """
        validate_key(key)
        if not timedelta(seconds=1) <= expires <= MAX_PRESIGN:
            raise ValueError(f"expires must be between 1 second and 7 days, not {expires}")
        headers: dict[str, str | list[str] | tuple[str]] | None = None
        if filename:
            headers = {"response-content-disposition": content_disposition(filename)}
        try:
            return self.client.presigned_get_object(
                self.bucket, key, expires=expires, response_headers=headers
            )
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            _raise_translated(exc, key)

    def ping(self) -> None:
        """Ask whether the bucket exists (one HEAD): the endpoint answers, the keys are valid.

        A missing bucket is an answer (the first write makes it); objects that went missing
        are what `storage verify` and the hashed downloads find.
        """
        try:
            self.client.bucket_exists(self.bucket)
        except (MinioException, *_TRANSPORT_ERRORS) as exc:
            _raise_translated(exc, self.bucket, not_found=False)

    def _ensure_bucket(self) -> None:
        """Create the bucket on first use; later calls cost nothing."""
        if self._bucket_ready:
            return
        with self._bucket_lock:
            if self._bucket_ready:
                return
            try:
                if not self.client.bucket_exists(self.bucket):
                    with contextlib.suppress(_BucketRace):
                        self._make_bucket()
            except (MinioException, *_TRANSPORT_ERRORS) as exc:
                _raise_translated(exc, self.bucket, not_found=False)
            self._bucket_ready = True

    def _make_bucket(self) -> None:
        try:
            self.client.make_bucket(self.bucket, location=self.region)
        except S3Error as exc:
            # Another worker created it between our HEAD and PUT: that is the state we wanted.
            if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _BucketRace from exc
            raise


class _BucketRace(Exception):
    """Internal: the bucket appeared concurrently."""


class _SourceError(Exception):
    """Internal: carries an exception raised by the caller's stream through minio."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


class _GuardedSource:
    """Count bytes and tag the caller's exceptions so they are not mistaken for S3 failures."""

    def __init__(self, stream: Readable, length: int | None) -> None:
        self._stream = stream
        self._length = length
        self._is_exhausted = False
        self.count = 0

    @property
    def is_short(self) -> bool:
        """Whether the stream ended before the declared length."""
        return self._is_exhausted and self._length is not None and self.count < self._length

    def read(self, size: int = -1) -> bytes:
        """Read from the caller's stream, tagging its exceptions."""
        try:
            chunk = self._stream.read(size)
        except Exception as exc:
            raise _SourceError(exc) from exc
        if not chunk:
            self._is_exhausted = True
        self.count += len(chunk)
        return chunk


def _raise_translated(exc: BaseException, key: str, *, not_found: bool = True) -> NoReturn:
    """Raise the storage error matching a minio / urllib3 / socket exception."""
    if isinstance(exc, S3Error):
        if not_found and exc.code in _NOT_FOUND_CODES:
            raise ObjectNotFound(key) from exc
        raise StorageUnavailable(f"S3 error {exc.code} on {key!r}: {exc.message}") from exc
    raise StorageUnavailable(f"S3 endpoint failed on {key!r}: {exc}") from exc


def _translate_read_error(exc: Exception) -> StorageError | None:
    if isinstance(exc, (MinioException, *_TRANSPORT_ERRORS)):
        return StorageUnavailable(f"S3 download interrupted: {exc}")
    return None
