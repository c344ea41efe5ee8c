"""Identify an upload's real type from its bytes and check it against the extension.

The extension alone proves nothing: every accepted file must *start* like its type (magic
numbers), ZIP-based formats must contain their defining members, and text must decode cleanly
and must not be markup a browser could render. ZIP central directories are read without
extracting anything, and refused when they look like decompression bombs.
"""

from __future__ import annotations

import codecs
import re
import struct
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from typing import IO

import filetype

from storage.errors import N_, Term, UnsupportedFileType, ZipBombSuspected


class FileKind(StrEnum):
    """An accepted file format; the value doubles as its canonical extension."""

    PDF = "pdf"
    OFD = "ofd"
    DOCX = "docx"
    XLSX = "xlsx"
    PPTX = "pptx"
    DOC = "doc"
    XLS = "xls"
    PPT = "ppt"
    WPS = "wps"
    ET = "et"
    JPEG = "jpeg"
    PNG = "png"
    TIFF = "tiff"
    ZIP = "zip"
    TXT = "txt"
    CSV = "csv"


#: Extension (lower case, with dot) → the kind its content must be.
EXTENSION_KINDS: dict[str, FileKind] = {
    ".pdf": FileKind.PDF,
    ".ofd": FileKind.OFD,
    ".docx": FileKind.DOCX,
    ".xlsx": FileKind.XLSX,
    ".pptx": FileKind.PPTX,
    ".doc": FileKind.DOC,
    ".xls": FileKind.XLS,
    ".ppt": FileKind.PPT,
    ".wps": FileKind.WPS,
    ".et": FileKind.ET,
    ".jpg": FileKind.JPEG,
    ".jpeg": FileKind.JPEG,
    ".png": FileKind.PNG,
    ".tif": FileKind.TIFF,
    ".tiff": FileKind.TIFF,
    ".zip": FileKind.ZIP,
    ".txt": FileKind.TXT,
    ".csv": FileKind.CSV,
}

#: Every extension an upload may have.
ALLOWED_EXTENSIONS: frozenset[str] = frozenset(EXTENSION_KINDS)

#: The accepted extensions as people read them (refusals, the upload form's help text).
ACCEPTED_EXTENSIONS_TEXT = " ".join(EXTENSION_KINDS)


def unsupported_extension(extension: str) -> UnsupportedFileType:
    """Return the refusal of an extension not on the list, naming the ones that are."""
    return UnsupportedFileType(
        f"extension {extension!r} is not allowed",
        message=N_("不支持的文件类型（%(extension)s）。可上传的类型：%(accepted)s"),
        params={
            "extension": extension or Term(N_("无扩展名")),
            "accepted": ACCEPTED_EXTENSIONS_TEXT,
        },
    )


_CONTENT_TYPES: dict[FileKind, str] = {
    FileKind.PDF: "application/pdf",
    FileKind.OFD: "application/ofd",  # GB/T 33190 documents; the type Chinese viewers register
    FileKind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileKind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileKind.PPTX: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    FileKind.DOC: "application/msword",
    FileKind.XLS: "application/vnd.ms-excel",
    FileKind.PPT: "application/vnd.ms-powerpoint",
    # Kingsoft WPS formats have no registered type; these are what Apache's mime.types and
    # common servers use, and browsers only need them to download rather than render.
    FileKind.WPS: "application/vnd.ms-works",
    FileKind.ET: "application/vnd.ms-excel",
    FileKind.JPEG: "image/jpeg",
    FileKind.PNG: "image/png",
    FileKind.TIFF: "image/tiff",
    FileKind.ZIP: "application/zip",
    FileKind.TXT: "text/plain",
    FileKind.CSV: "text/csv",
}


def content_type_for(kind: FileKind, *, charset: str | None = None) -> str:
    """Return the MIME type to store and serve for *kind* (with ``charset`` for text)."""
    content_type = _CONTENT_TYPES[kind]
    return f"{content_type}; charset={charset}" if charset else content_type


@dataclass(frozen=True)
class ZipLimits:
    """Thresholds above which a ZIP-based upload is treated as a decompression bomb."""

    max_entries: int = 10_000
    max_total_size: int = 1024**3  # sum of declared uncompressed sizes
    max_ratio: float = 100.0  # uncompressed / compressed, per member
    # Members smaller than this are not ratio-checked: repetitive XML in a small sheet can
    # compress 100:1 legitimately, and a member this small cannot exhaust anything.
    ratio_min_size: int = 1024**2
    max_directory_size: int = 32 * 1024**2  # central directory bytes zipfile would load


DEFAULT_ZIP_LIMITS = ZipLimits()


@dataclass(frozen=True)
class Sniffed:
    """The outcome of sniffing: the accepted kind, and the charset for text kinds."""

    kind: FileKind
    charset: str | None = None


def sniff_file(
    fp: IO[bytes],
    size: int,
    extension: str,
    *,
    zip_limits: ZipLimits = DEFAULT_ZIP_LIMITS,
    chunk_size: int = 1024 * 1024,
) -> Sniffed:
    """Check that the seekable *fp* (of *size* bytes) really is what *extension* claims.

    Return the accepted kind; raise :class:`UnsupportedFileType` for an unknown extension or a
    content mismatch, :class:`ZipBombSuspected` for a dangerous archive. Reads in chunks; the
    position of *fp* is left unspecified.
    """
    expected = EXTENSION_KINDS.get(extension.lower())
    if expected is None:
        raise unsupported_extension(extension)
    fp.seek(0)
    head = fp.read(_HEAD_SIZE)
    family = _magic_family(head)
    if family != _FAMILY_OF[expected]:
        raise _mismatch(extension, head, family)
    if family == "zip":
        names = _inspect_zip(fp, size, zip_limits)
        _check_zip_structure(expected, extension, names)
    if family is None:
        return Sniffed(expected, charset=_check_text(fp, head, chunk_size))
    return Sniffed(expected)


_HEAD_SIZE = 8192

# Kind → the magic family its bytes must show; None means "no binary magic: must be text".
_FAMILY_OF: dict[FileKind, str | None] = {
    FileKind.PDF: "pdf",
    FileKind.JPEG: "jpeg",
    FileKind.PNG: "png",
    FileKind.TIFF: "tiff",
    FileKind.DOC: "ole2",
    FileKind.XLS: "ole2",
    FileKind.PPT: "ole2",
    FileKind.WPS: "ole2",
    FileKind.ET: "ole2",
    FileKind.DOCX: "zip",
    FileKind.XLSX: "zip",
    FileKind.PPTX: "zip",
    FileKind.OFD: "zip",
    FileKind.ZIP: "zip",
    FileKind.TXT: None,
    FileKind.CSV: None,
}

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "pdf"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2"),  # Compound File Binary: DOC/XLS/PPT/WPS/ET
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive is only an end record
)

_FAMILY_LABELS = {
    "pdf": "PDF",
    "jpeg": "JPEG 图片",
    "png": "PNG 图片",
    "tiff": "TIFF 图片",
    "ole2": "旧版 Office/WPS 文档",
    "zip": "ZIP 压缩包",
}


def _magic_family(head: bytes) -> str | None:
    for magic, family in _MAGIC:
        if head.startswith(magic):
            return family
    return None


def _mismatch(extension: str, head: bytes, family: str | None) -> UnsupportedFileType:
    if family is not None:
        label = _FAMILY_LABELS[family]
    else:
        # filetype knows far more formats than we accept; use it to name what we refuse.
        guess = filetype.guess(head)
        if guess is not None:
            label = guess.extension
        elif _looks_like_markup(head):
            label = "HTML/XML"
        else:
            label = Term(N_("未知类型")) if b"\x00" in head else Term(N_("文本"))
    return UnsupportedFileType(
        f"content is {label}, extension {extension}",
        message=N_("文件内容与扩展名 %(extension)s 不符（检测到：%(label)s）"),
        params={"extension": extension, "label": label},
    )


# ---------------------------------------------------------------- ZIP containers


def _inspect_zip(fp: IO[bytes], size: int, limits: ZipLimits) -> list[str]:
    """Return member names after checking the central directory against *limits*."""
    _check_end_record(fp, size, limits)
    try:
        with zipfile.ZipFile(fp) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error) as exc:
        raise UnsupportedFileType(
            f"broken zip container: {exc}", message=N_("压缩文件已损坏或格式无效")
        ) from exc
    if len(infos) > limits.max_entries:
        raise ZipBombSuspected(f"{len(infos)} entries > {limits.max_entries}")
    total = compressed = 0
    for info in infos:
        total += info.file_size
        compressed += info.compress_size
        if info.file_size >= limits.ratio_min_size and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            raise ZipBombSuspected(
                f"member {info.filename!r}: {info.file_size} bytes from {info.compress_size}"
            )
    if total > limits.max_total_size:
        raise ZipBombSuspected(f"declared uncompressed total {total} > {limits.max_total_size}")
    if compressed > size:
        # Members sharing (overlapping) compressed data: the trick of non-recursive zip bombs.
        raise ZipBombSuspected(f"members claim {compressed} compressed bytes in a {size}-byte file")
    return [info.filename for info in infos]


def _check_end_record(fp: IO[bytes], size: int, limits: ZipLimits) -> None:
    """Check entry count and directory size from the end record, before zipfile loads them.

    zipfile builds a ZipInfo per entry, so a million-entry archive would cost gigabytes of memory
    before we could count its entries.
    """
    tail_size = min(size, _EOCD_SIZE + 0xFFFF)  # the record, plus a comment of at most 64 KiB
    fp.seek(size - tail_size)
    tail = fp.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + _EOCD_SIZE > len(tail):
        raise UnsupportedFileType("zip end record missing", message=N_("压缩文件已损坏或格式无效"))
    fields = struct.unpack("<4s4H2LH", tail[at : at + _EOCD_SIZE])
    entries, directory_size, directory_offset = fields[4], fields[5], fields[6]
    if entries == 0xFFFF or 0xFFFFFFFF in (directory_size, directory_offset):
        entries, directory_size = _zip64_counts(fp, tail, at, entries, directory_size)
    if entries > limits.max_entries:
        raise ZipBombSuspected(f"{entries} entries > {limits.max_entries}")
    if directory_size > limits.max_directory_size:
        raise ZipBombSuspected(f"central directory of {directory_size} bytes")


_EOCD_SIZE = 22


def _zip64_counts(
    fp: IO[bytes], tail: bytes, at: int, entries: int, directory_size: int
) -> tuple[int, int]:
    """Read the ZIP64 end record that the locator just before the classic one points to."""
    locator = tail[at - 20 : at] if at >= 20 else b""
    if len(locator) != 20 or not locator.startswith(b"PK\x06\x07"):
        return entries, directory_size
    record_offset = struct.unpack("<4sLQL", locator)[2]
    fp.seek(record_offset)
    record = fp.read(56)
    if len(record) != 56 or not record.startswith(b"PK\x06\x06"):
        return entries, directory_size
    fields = struct.unpack("<4sQ2H2L4Q", record)
    return fields[7], fields[8]


def _check_zip_structure(kind: FileKind, extension: str, names: list[str]) -> None:
    """Require the members that define the format, so a generic ZIP cannot pose as a DOCX."""
    if kind is FileKind.ZIP:
        return
    if kind is FileKind.OFD:
        is_valid = "OFD.xml" in names
    else:
        folder = {FileKind.DOCX: "word/", FileKind.XLSX: "xl/", FileKind.PPTX: "ppt/"}[kind]
        is_valid = "[Content_Types].xml" in names and any(n.startswith(folder) for n in names)
        if is_valid and any(n.lower().endswith("vbaproject.bin") for n in names):
            # Macros in a .docx/.xlsx/.pptx are a renamed .docm etc.: never needed as evidence.
            raise UnsupportedFileType(
                f"macro project inside {extension}", message=N_("不接受包含宏的 Office 文档")
            )
    if not is_valid:
        raise UnsupportedFileType(
            f"zip without the members of {kind.value}",
            message=N_("文件内容与扩展名 %(extension)s 不符（检测到：ZIP 压缩包）"),
            params={"extension": extension},
        )


# ---------------------------------------------------------------- text


# A document starting with a tag, or containing an active element early on (where browsers'
# own sniffers look), could be rendered as HTML/SVG if it were ever served inline.
_MARKUP_START = re.compile(rb"<[a-z!?/]")
_ACTIVE_MARKUP = re.compile(rb"<(?:script|html|svg|iframe|body|object|embed)\b")
_MARKUP_WINDOW = 1024


def _looks_like_markup(head: bytes) -> bool:
    window = head[:_MARKUP_WINDOW].removeprefix(codecs.BOM_UTF8).lstrip().lower()
    return bool(_MARKUP_START.match(window) or _ACTIVE_MARKUP.search(window))


def _check_text(fp: IO[bytes], head: bytes, chunk_size: int) -> str:
    """Return ``utf-8`` or ``gb18030`` for clean text; refuse binary, other encodings, markup."""
    if _looks_like_markup(head):
        raise UnsupportedFileType(
            "markup in a text upload", message=N_("文本文件不能包含网页或脚本内容（HTML/SVG）")
        )
    for charset in ("utf-8", "gb18030"):
        if _decodes(fp, charset, chunk_size):
            return charset
    raise UnsupportedFileType(
        "text is neither UTF-8 nor GB18030, or contains NUL bytes",
        message=N_("文本文件须为 UTF-8 或 GB18030 编码的纯文本"),
    )


def _decodes(fp: IO[bytes], charset: str, chunk_size: int) -> bool:
    """Decode the whole file incrementally (memory stays at one chunk)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig" if charset == "utf-8" else charset)()
    fp.seek(0)
    try:
        while chunk := fp.read(chunk_size):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
