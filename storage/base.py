"""The object store interface shared by every backend.

Backends translate their vendor errors at the edge: callers only ever see :class:`ObjectNotFound`,
:class:`StorageUnavailable`, :class:`InvalidKey` or a plain :class:`StorageError`.
"""

from __future__ import annotations

import abc
import hashlib
import io
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from storage.errors import InvalidKey, ObjectNotFound, StorageError

#: Chunk size used when copying or iterating object data; small enough to keep memory flat.
CHUNK_SIZE = 64 * 1024

#: Longest key accepted (S3's own limit is 1024 bytes of UTF-8).
MAX_KEY_BYTES = 1024


class _Source(Protocol):
    """What :class:`ObjectReader` wraps: an open file or an HTTP response body."""

    def readinto(self, buffer: Any, /) -> int | None:
        """Fill *buffer*; return the count."""
        ...

    def close(self) -> None:
        """Release the resource."""
        ...


class Readable(Protocol):
    """The one method a source stream needs: ``read(n)`` returning at most *n* bytes."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to *size* bytes; ``b""`` at end of stream."""
        ...


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object."""

    key: str
    size: int
    modified_at: datetime  # timezone-aware, UTC


class ObjectReader(io.RawIOBase):
    """A closeable, streaming reader over one stored object.

    ``read(n)`` / ``readinto`` work as on any binary file (so Flask's ``send_file`` accepts it),
    iteration yields chunks of :data:`CHUNK_SIZE` bytes rather than lines, and closing releases
    the file handle or HTTP connection. Errors while reading surface as :class:`StorageError`.
    """

    def __init__(
        self,
        source: _Source,
        *,
        size: int,
        release: Callable[[], None] | None = None,
        translate: Callable[[Exception], StorageError | None] | None = None,
    ) -> None:
        super().__init__()
        self.size = size
        self._source = source
        self._release = release or source.close
        self._translate = translate

    def readable(self) -> bool:
        """Report that the reader is readable (``io`` protocol)."""
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """Read up to ``len(buffer)`` bytes into *buffer*; return the count (0 at end)."""
        if self.closed:
            raise ValueError("I/O operation on closed object reader")
        try:
            count = self._source.readinto(buffer)
        except Exception as exc:
            translated = self._translate(exc) if self._translate else None
            if translated is None:
                raise
            raise translated from exc
        return count or 0

    def iter_chunks(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the remaining content in chunks of at most *chunk_size* bytes."""
        while chunk := self.read(chunk_size):
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        """Iterate in fixed-size chunks; objects are binary, so lines mean nothing here."""
        return self.iter_chunks()

    def __next__(self) -> bytes:
        """Return the next chunk (``IOBase`` would return the next line)."""
        chunk = self.read(CHUNK_SIZE)
        if not chunk:
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Release the underlying file or connection; safe to call twice."""
        if not self.closed:
            try:
                self._release()
            finally:
                super().close()


class ObjectStore(abc.ABC):
    """A flat key → bytes store (S3 semantics) with streaming reads and writes."""

    @abc.abstractmethod
    def put(self, key: str, stream: Readable, length: int | None, content_type: str) -> None:
        """Store *stream* under *key*, replacing any previous object atomically.

        With *length* given exactly that many bytes are read, and a shorter stream raises
        :class:`StorageError`; with ``None`` the stream is read to its end. Readers never see a
        partial object. Errors raised by *stream* itself propagate unchanged.
        """

    @abc.abstractmethod
    def open(self, key: str) -> ObjectReader:
        """Open *key* for streaming reads; raise :class:`ObjectNotFound` when missing."""

    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Return size and modification time of *key*; raise :class:`ObjectNotFound` if missing."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove *key*; removing a missing key is not an error (S3 semantics)."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with *prefix*, in key order, lazily."""

    @abc.abstractmethod
    def presigned_url(
        self, key: str, expires: timedelta, filename: str | None = None
    ) -> str | None:
        """Return a time-limited download URL, or ``None`` when the backend cannot make one.

        With *filename* the URL makes the server send it as an attachment with that name.
        """

    def list_leftovers(self) -> Iterator[ObjectInfo]:
        """Yield what interrupted writes left behind (never objects); none by default.

        The local folder's are the ``.tmp-*`` files of a process killed mid-write; their
        ``key`` is the path under the root, to give back to :meth:`delete_leftover`.
        """
        return iter(())

    def delete_leftover(self, key: str) -> None:
        """Remove one leftover that :meth:`list_leftovers` yielded (gone already: no error)."""
        raise InvalidKey(f"{type(self).__name__} has no leftovers: {key!r}")

    def ping(self) -> None:
        """Raise a :class:`StorageError` unless the store answers (a health check, cheap).

        By default a lookup of a key that need not exist: a missing object is an answer.
        """
        self.exists(PING_KEY)

    def exists(self, key: str) -> bool:
        """Return whether *key* exists (backends may override with something cheaper)."""
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True


#: The key a health check looks up; no object is ever stored under it.
PING_KEY = "health/ping"


def validate_key(key: str) -> str:
    """Return *key* unchanged if it is a safe relative key, else raise :class:`InvalidKey`.

    Keys are ``/``-separated segments; no segment may be empty, ``.`` or ``..``, and no
    backslash, control or format character may appear, so a key can never name a path outside
    a store's root on any operating system.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"empty or non-string key: {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKey(f"key longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/") or "\\" in key or ":" in key.split("/", 1)[0]:
        # ":" in the first segment would be a drive letter ("C:") on Windows.
        raise InvalidKey(f"absolute key: {key!r}")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in key):
        raise InvalidKey(f"control or format character in key: {key!r}")
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise InvalidKey(f"empty, '.' or '..' segment in key: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Return *prefix* if it is ``""`` or the start of a valid key (a trailing ``/`` is allowed)."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def ascii_fallback(filename: str) -> str:
    """Return the ASCII name for ``filename=``: the name itself when it is plain ASCII, else
    its ASCII letters and digits joined by ``-`` plus 8 hex digits of the full name's SHA-256,
    and its extension.

    Clients that ignore ``filename*=`` (``curl -OJ``, ``wget --content-disposition``) save
    under this name: dropping the Chinese characters alone left ``--v1.docx`` for every
    department's notice (one file overwriting the next, a name read as an option)."""
    plain = filename.isascii() and all(ch.isprintable() and ch not in '"\\' for ch in filename)
    if plain and filename and not filename.startswith(("-", ".", " ")):
        return filename
    stem, dot, ext = filename.rpartition(".")
    if not dot or not ext.isascii() or not ext.isalnum() or len(ext) > 8:
        stem, ext = filename, ""
    words = "".join(ch if ch.isascii() and ch.isalnum() else " " for ch in stem).split()
    digest = hashlib.sha256(filename.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return "-".join([*words, digest]) + (f".{ext}" if ext else "")


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """Build a ``Content-Disposition`` value that survives non-ASCII (Chinese) names.

    Old clients get an ASCII fallback in ``filename=``; modern ones read the RFC 5987
    ``filename*=`` form, which carries the exact UTF-8 name.
    """
    fallback = ascii_fallback(filename)
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def copy_stream(
    stream: Readable, write: Callable[[bytes], object], length: int | None, chunk_size: int
) -> int:
    """Copy *stream* to *write* in chunks and return the byte count.

    With *length* given, read exactly that many bytes and raise :class:`StorageError` if the
    stream ends early. Exceptions from *stream* and *write* propagate unchanged.
    """
    copied = 0
    while length is None or copied < length:
        want = chunk_size if length is None else min(chunk_size, length - copied)
        chunk = stream.read(want)
        if not chunk:
            break
        write(chunk)
        copied += len(chunk)
    if length is not None and copied != length:
        raise StorageError(f"stream ended after {copied} of {length} declared bytes")
    return copied


# Cc control, Cf format (bidi overrides, zero-width), Cs lone surrogates, Zl/Zp line breaks.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
