"""Read an object back only as it was recorded: the SHA-256 and size its row wrote at upload.

The object store is outside the audit trail: a file replaced or edited there (a bucket
console, a restored backup, a disk fault) would otherwise be served to a reviewer as the
file the department submitted. So a download is checked before its first byte leaves: the
object is copied into a spool while it is hashed, and only a match is served — from the
spool, so what is sent is exactly what was checked. Memory stays flat (the spool moves to a
temporary file past `SPOOL_IN_MEMORY`).
"""

from __future__ import annotations

import hashlib
import tempfile
from typing import IO

from storage.base import CHUNK_SIZE, ObjectReader, ObjectStore
from storage.errors import ObjectAltered

#: Bytes a spool keeps in memory before it becomes a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024


def hash_copy(
    reader: ObjectReader, write: IO[bytes], chunk_size: int = CHUNK_SIZE
) -> tuple[str, int]:
    """Copy *reader* to *write* in chunks; return the SHA-256 (hex) and the byte count."""
    digest = hashlib.sha256()
    size = 0
    for chunk in reader.iter_chunks(chunk_size):
        digest.update(chunk)
        size += len(chunk)
        write.write(chunk)
    return digest.hexdigest(), size


def altered(key: str, sha256: str, actual_sha256: str, detail: str = "") -> ObjectAltered:
    """Return the error naming an object whose content is not what its row recorded."""
    return ObjectAltered(f"object {key}: SHA-256 {actual_sha256}, recorded {sha256}{detail}")


def open_checked(
    store: ObjectStore,
    key: str,
    *,
    sha256: str,
    size: int,
    spool_dir: str | None = None,
) -> ObjectReader:
    """Open *key* for reading once its content hashes to *sha256* and has *size* bytes.

    Raise :class:`ObjectAltered` (before anything is returned) when it does not; a missing
    object is :class:`ObjectNotFound` as from `store.open`.
    """
    reader = store.open(key)
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - the returned reader closes it
        max_size=SPOOL_IN_MEMORY, dir=spool_dir
    )
    try:
        with reader:
            if reader.size != size:  # told by the store: no need to read it
                raise altered(key, sha256, "not read", f"; {reader.size} bytes, recorded {size}")
            actual, copied = hash_copy(reader, spool)
        if actual != sha256 or copied != size:
            raise altered(key, sha256, actual, f"; {copied} bytes, recorded {size}")
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return ObjectReader(spool, size=size)
