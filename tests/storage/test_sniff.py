"""Type sniffing and ZIP inspection, directly on in-memory files (no store involved)."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from storage.errors import UnsupportedFileType, ZipBombSuspected
from storage.sniff import (
    ALLOWED_EXTENSIONS,
    EXTENSION_KINDS,
    FileKind,
    Sniffed,
    ZipLimits,
    content_type_for,
    sniff_file,
)
from tests.storage import samples


def sniff(data: bytes, extension: str, **options: object) -> Sniffed:
    return sniff_file(io.BytesIO(data), len(data), extension, **options)  # type: ignore[arg-type]


def test_every_kind_has_an_extension_and_a_content_type() -> None:
    assert set(EXTENSION_KINDS.values()) == set(FileKind)
    assert frozenset(EXTENSION_KINDS) == ALLOWED_EXTENSIONS
    for kind in FileKind:
        assert "/" in content_type_for(kind)
    assert content_type_for(FileKind.CSV, charset="gb18030") == "text/csv; charset=gb18030"


def test_extension_case_does_not_matter() -> None:
    assert sniff(samples.PDF, ".PDF").kind is FileKind.PDF


@pytest.mark.parametrize(
    ("data", "extension"),
    [
        (samples.PDF, ".docx"),
        (samples.png(), ".jpg"),
        (samples.JPEG, ".png"),
        (samples.OLE2, ".pdf"),
        (samples.docx_bytes(), ".pdf"),
        (samples.docx_bytes(), ".xlsx"),
        (samples.xlsx_bytes(), ".docx"),
        (samples.ofd_bytes(), ".docx"),
        (samples.docx_bytes(), ".ofd"),
        (samples.PDF, ".txt"),  # binary magic never passes as text
        (samples.docx_bytes(), ".doc"),
        (samples.OLE2, ".docx"),
    ],
)
def test_content_must_match_the_extension(data: bytes, extension: str) -> None:
    with pytest.raises(UnsupportedFileType):
        sniff(data, extension)


def test_docx_is_also_a_valid_zip() -> None:
    assert sniff(samples.docx_bytes(), ".zip").kind is FileKind.ZIP


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("纯文本说明\n".encode(), "utf-8"),
        (b"\xef\xbb\xbf" + "带 BOM 的表格\n".encode(), "utf-8"),
        (samples.CSV_GB18030, "gb18030"),
        (b"plain ascii, 1, 2\n", "utf-8"),
        (b"a < b and c > d\n", "utf-8"),  # a lone "<" is not markup
    ],
)
def test_text_charsets(text: bytes, charset: str) -> None:
    assert sniff(text, ".csv") == Sniffed(FileKind.CSV, charset)


@pytest.mark.parametrize(
    "text",
    [
        "UTF-16 文本".encode("utf-16"),  # has NUL bytes
        b"abc\x00def",
        b"\xff\xfe\xfd invalid in both encodings \x80",
        b"data,\x80\n",  # a lone 0x80 is not GB18030
    ],
)
def test_text_must_be_utf8_or_gb18030_without_nul(text: bytes) -> None:
    with pytest.raises(UnsupportedFileType):
        sniff(text, ".txt")


def test_text_is_decoded_across_chunk_boundaries() -> None:
    text = ("评估" * 100_000).encode("utf-8")  # 3-byte characters straddle every chunk
    assert sniff(text, ".txt", chunk_size=1000).charset == "utf-8"
    invalid = text + b"\xff"
    with pytest.raises(UnsupportedFileType):
        sniff(invalid, ".txt", chunk_size=1000)


def test_macro_enabled_office_document_is_refused() -> None:
    with zipfile.ZipFile(io.BytesIO(samples.docx_bytes())) as original:
        members = {name: original.read(name) for name in original.namelist()}
    members["word/vbaProject.bin"] = b"\xd0\xcf\x11\xe0macros"
    with pytest.raises(UnsupportedFileType, match="macro"):
        sniff(samples.zip_bytes(members), ".docx")


def test_broken_zip_is_refused() -> None:
    data = samples.docx_bytes()
    with pytest.raises(UnsupportedFileType):
        sniff(data[: len(data) // 2], ".docx")  # end record missing
    with pytest.raises(UnsupportedFileType):
        sniff(b"PK\x03\x04" + bytes(100), ".zip")


def test_zip_bomb_by_ratio(zip_bomb: bytes) -> None:
    assert len(zip_bomb) < 1024 * 1024
    with pytest.raises(ZipBombSuspected, match=r"word/document\.xml"):
        sniff(zip_bomb, ".docx")
    with pytest.raises(ZipBombSuspected):
        sniff(zip_bomb, ".zip")


def test_small_repetitive_members_are_not_mistaken_for_bombs() -> None:
    repetitive = b"<row><c/></row>" * 30_000  # ~450 KB compressing far beyond 100:1
    assert sniff(samples.zip_bytes({"sheet.xml": repetitive}), ".zip").kind is FileKind.ZIP


def test_zip_bomb_by_total_size() -> None:
    data = samples.zip_bytes({f"part{i}.bin": bytes(1000) for i in range(5)})
    with pytest.raises(ZipBombSuspected, match="total"):
        sniff(data, ".zip", zip_limits=ZipLimits(max_total_size=4000))


def test_zip_bomb_by_entry_count_is_caught_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    data = samples.zip_bytes({f"{i}.txt": b"x" for i in range(11)})

    def no_parsing(*args: object) -> None:
        raise AssertionError("zipfile must not load a directory that is too big")

    monkeypatch.setattr(zipfile, "ZipFile", no_parsing)
    with pytest.raises(ZipBombSuspected, match="11 entries"):
        sniff(data, ".zip", zip_limits=ZipLimits(max_entries=10))


def test_zip_bomb_by_directory_size() -> None:
    data = samples.zip_bytes({"x" * 1000 + str(i): b"x" for i in range(3)})
    with pytest.raises(ZipBombSuspected, match="central directory"):
        sniff(data, ".zip", zip_limits=ZipLimits(max_directory_size=2000))


def test_overlapping_members_are_a_bomb() -> None:
    """Members claiming more compressed bytes than the file holds share data: a bomb trick."""
    data = bytearray(samples.zip_bytes({"a.txt": b"a" * 100, "b.txt": b"b" * 100}))
    at = data.find(b"PK\x01\x02")  # first central directory entry
    struct.pack_into("<LL", data, at + 20, 10_000_000, 10_000_000)  # compressed, uncompressed
    with pytest.raises(ZipBombSuspected, match="compressed bytes"):
        sniff(bytes(data), ".zip")


def test_zip64_end_record_is_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(12):
            archive.writestr(f"{i}.txt", b"x")
    data = buffer.getvalue()
    # Rewrite as a ZIP64-style archive: zipfile writes ZIP64 records when asked for > 0xFFFF
    # entries, which is too slow here, so force them by patching the classic record's counts.
    at = data.rfind(b"PK\x05\x06")
    directory_size, directory_offset = struct.unpack_from("<LL", data, at + 12)
    zip64_record = struct.pack(
        "<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, 12, 12, directory_size, directory_offset
    )
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    classic = bytearray(data[at:])
    struct.pack_into("<HH", classic, 8, 0xFFFF, 0xFFFF)
    patched = data[:at] + zip64_record + locator + bytes(classic)
    assert sniff(patched, ".zip").kind is FileKind.ZIP
    with pytest.raises(ZipBombSuspected, match="12 entries"):
        sniff(patched, ".zip", zip_limits=ZipLimits(max_entries=11))
