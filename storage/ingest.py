"""Upload ingest: stream, hash, limit, sniff, then store content-addressed.

``ingest_upload`` is the one way evidence enters a store. Nothing reaches the store unless the
whole upload was read within the size limit and its content matches its extension; identical
content is stored once under ``sha256/ab/cd/<hex>``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from typing import IO

from storage.base import ObjectStore, Readable
from storage.errors import N_, EmptyFile, EmptyFilename, FileTooLarge
from storage.sniff import (
    ACCEPTED_EXTENSIONS_TEXT,
    ALLOWED_EXTENSIONS,
    DEFAULT_ZIP_LIMITS,
    EXTENSION_KINDS,
    FileKind,
    ZipLimits,
    content_type_for,
    sniff_file,
    unsupported_extension,
)

__all__ = [
    "ACCEPTED_EXTENSIONS_TEXT",
    "ALLOWED_EXTENSIONS",
    "EXTENSION_KINDS",
    "FALLBACK_FILENAME",
    "MAX_FILENAME_BYTES",
    "FileKind",
    "StoredFile",
    "ZipLimits",
    "content_type_for",
    "extension_of",
    "ingest_upload",
    "object_key_for",
    "sanitize_filename",
]

#: Read size for uploads; also how much of an upload is kept in memory before spilling to disk.
DEFAULT_CHUNK_SIZE = 1024 * 1024

#: Most filesystems cap a name at 255 bytes.
MAX_FILENAME_BYTES = 255

#: Display name used when nothing printable is left of the client's name.
FALLBACK_FILENAME = "未命名文件"


@dataclass(frozen=True)
class StoredFile:
    """An upload that is safely in the store; what the database row should record."""

    key: str  # content-addressed object key
    sha256: str  # lower-case hex digest of the content
    size: int  # bytes
    content_type: str  # sniffed MIME type (with charset for text)
    filename: str  # sanitised display name, Chinese kept
    is_new: bool  # False when identical content was already stored
    kind: FileKind  # the accepted format


def ingest_upload(
    store: ObjectStore,
    stream: Readable,
    filename: str,
    *,
    max_size: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    zip_limits: ZipLimits = DEFAULT_ZIP_LIMITS,
    spool_dir: str | None = None,
) -> StoredFile:
    """Validate an upload and store it content-addressed; return what was stored.

    The stream is read in *chunk_size* pieces into a temporary file (memory does not grow with
    the upload) while its SHA-256 and size are computed. Raise :class:`FileTooLarge` as soon as
    more than *max_size* bytes arrive, :class:`EmptyFile` for zero bytes,
    :class:`EmptyFilename` for a blank name or one that is only an extension ("   .pdf"),
    :class:`UnsupportedFileType` when the extension is not allowed (naming those that are) or
    the content does not match it, and :class:`ZipBombSuspected` for dangerous archives — in
    every case before anything is stored. Backend failures surface as
    :class:`StorageUnavailable`.
    """
    _refuse_blank_name(filename)
    display_name = sanitize_filename(filename)
    extension = extension_of(display_name)
    if extension not in ALLOWED_EXTENSIONS:
        raise unsupported_extension(extension)
    with tempfile.SpooledTemporaryFile(max_size=chunk_size, dir=spool_dir) as spool:
        digest, size = _spool(stream, spool, max_size=max_size, chunk_size=chunk_size)
        if size == 0:
            raise EmptyFile("upload has no bytes")
        sniffed = sniff_file(spool, size, extension, zip_limits=zip_limits, chunk_size=chunk_size)
        key = object_key_for(digest)
        content_type = content_type_for(sniffed.kind, charset=sniffed.charset)
        # Same bytes, same key: a second upload of identical content costs no storage.
        is_new = not store.exists(key)
        if is_new:
            spool.seek(0)
            store.put(key, spool, size, content_type)
    return StoredFile(
        key=key,
        sha256=digest,
        size=size,
        content_type=content_type,
        filename=display_name,
        is_new=is_new,
        kind=sniffed.kind,
    )


def object_key_for(sha256_hex: str) -> str:
    """Return the content-addressed key ``sha256/ab/cd/<hex>`` for a SHA-256 hex digest."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256_hex):
        raise ValueError(f"not a lower-case SHA-256 hex digest: {sha256_hex!r}")
    return f"sha256/{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}"


def extension_of(filename: str) -> str:
    """Return the lower-case extension of *filename* including the dot (``""`` if none)."""
    return os.path.splitext(filename)[1].lower()


def _refuse_blank_name(filename: str) -> None:
    """Refuse a name with nothing before its extension; sanitising would make it "pdf"."""
    name = _printable_base_name(filename)
    stem, dot, tail = name.rpartition(".")
    if not name.strip(". "):
        raise EmptyFilename(f"blank file name {filename!r}")
    if dot and not stem.strip(". "):
        extension = "." + tail.lower()
        if extension not in ALLOWED_EXTENSIONS:
            raise unsupported_extension(extension)
        raise EmptyFilename(
            f"file name {filename!r} is only an extension",
            message=N_("文件名为空（只有扩展名 %(extension)s），请重命名后重新上传"),
            params={"extension": extension},
        )


def sanitize_filename(name: str) -> str:
    """Return a safe display name for a client-supplied file name.

    Keep Chinese (and every other printable) character; drop directory parts (``/`` and
    ``\\``), control and format characters (NUL, bidi overrides, zero-width marks); turn any
    whitespace into single spaces; replace characters Windows forbids in names; strip leading
    dots and trailing dots/spaces; cap at 255 UTF-8 bytes keeping the extension and both ends of
    the name (cut in the middle, marked …). Never return an
    empty string.
    """
    name = _printable_base_name(name).lstrip(". ").rstrip(". ")
    if name.split(".", 1)[0].rstrip().upper() in _WINDOWS_RESERVED:
        name = "_" + name  # "CON.pdf" cannot be saved on Windows
    name = _truncate_keeping_extension(name, MAX_FILENAME_BYTES)
    return name or FALLBACK_FILENAME


def _printable_base_name(name: str) -> str:
    """The name's last path part, printable, with Windows-safe characters and single spaces."""
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept: list[str] = []
    for char in name:
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) not in _DROPPED_CATEGORIES:
            kept.append(_WINDOWS_FORBIDDEN.get(char, char))
    return " ".join("".join(kept).split())


# Cc: controls incl. NUL; Cf: format chars incl. bidi overrides U+202A–E, U+2066–9, U+200E/F,
# zero-width space/joiners, BOM; Cs: lone surrogates (cannot even be encoded as UTF-8).
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})

# Reviewers download evidence to Windows desktops, where these cannot appear in a name.
_WINDOWS_FORBIDDEN = {char: "_" for char in '<>:"|?*'}

# Device names, also with the superscript digits Windows treats as digits, and the console
# devices (learn.microsoft.com, "Naming Files, Paths, and Namespaces").
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{digit}" for port in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"}
)

#: What stands where an over-long name was shortened.
_CUT = "…"

# Longer "extensions" are just part of a name with a dot in it; truncate them as such.
_MAX_EXTENSION_CHARS = 16


def _truncate_keeping_extension(name: str, max_bytes: int) -> str:
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    stem, extension = os.path.splitext(name)
    if len(extension) > _MAX_EXTENSION_CHARS or " " in extension:
        stem, extension = name, ""
    budget = max_bytes - len(extension.encode("utf-8")) - len(_CUT.encode("utf-8"))
    # Keep both ends, cut in the middle on character boundaries: what tells two versions of a
    # document apart is often at the end (「……的报告（送审稿）」, 「……（第二稿）」).
    raw = stem.encode("utf-8")
    head = raw[: budget // 2].decode("utf-8", "ignore")
    tail = raw[len(raw) - (budget - len(head.encode("utf-8"))) :].decode("utf-8", "ignore")
    return (head.rstrip() + _CUT + tail.lstrip()).rstrip(". ") + extension


def _spool(
    stream: Readable, spool: IO[bytes], *, max_size: int, chunk_size: int
) -> tuple[str, int]:
    """Copy *stream* into *spool*, hashing as we go; stop at the first byte over *max_size*."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := stream.read(chunk_size):
        size += len(chunk)
        if size > max_size:
            raise FileTooLarge(max_size, f"upload exceeds {max_size} bytes")
        hasher.update(chunk)
        spool.write(chunk)
    return hasher.hexdigest(), size
