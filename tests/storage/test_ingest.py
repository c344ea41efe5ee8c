"""Upload ingest on both backends: limits, sniffing, names, de-duplication."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from storage import (
    EmptyFile,
    FileKind,
    FileTooLarge,
    IngestRejected,
    ObjectStore,
    UnsupportedFileType,
    ZipBombSuspected,
    ingest_upload,
)
from storage.ingest import ACCEPTED_EXTENSIONS_TEXT, EXTENSION_KINDS, StoredFile
from tests.storage import samples

pytestmark = pytest.mark.every_store

MIB = 1024 * 1024
LIMIT = 20 * MIB


def ingest(store: ObjectStore, data: bytes, filename: str, **options: object) -> StoredFile:
    options.setdefault("max_size", LIMIT)
    return ingest_upload(store, io.BytesIO(data), filename, **options)  # type: ignore[arg-type]


def stored_keys(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list()]


def refuse(
    store: ObjectStore, data: bytes, filename: str, error: type[IngestRejected], **options: object
) -> IngestRejected:
    """Assert the upload is refused with *error* and that nothing was stored."""
    with pytest.raises(error) as caught:
        ingest(store, data, filename, **options)
    assert stored_keys(store) == []
    return caught.value


GENUINE: dict[str, tuple[Callable[[], bytes], FileKind, str]] = {
    "报告.pdf": (lambda: samples.PDF, FileKind.PDF, "application/pdf"),
    "现场照片.jpg": (lambda: samples.JPEG, FileKind.JPEG, "image/jpeg"),
    "截图.png": (samples.png, FileKind.PNG, "image/png"),
    "扫描件.tiff": (lambda: samples.TIFF, FileKind.TIFF, "image/tiff"),
    "自评报告.docx": (
        samples.docx_bytes,
        FileKind.DOCX,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "得分表.xlsx": (
        samples.xlsx_bytes,
        FileKind.XLSX,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    "电子公文.ofd": (samples.ofd_bytes, FileKind.OFD, "application/ofd"),
    "旧版文档.doc": (lambda: samples.OLE2, FileKind.DOC, "application/msword"),
    "旧版表格.xls": (lambda: samples.OLE2, FileKind.XLS, "application/vnd.ms-excel"),
    "金山文字.wps": (lambda: samples.OLE2, FileKind.WPS, "application/vnd.ms-works"),
    "金山表格.et": (lambda: samples.OLE2, FileKind.ET, "application/vnd.ms-excel"),
    "材料.zip": (lambda: samples.zip_bytes({"a.txt": b"a"}), FileKind.ZIP, "application/zip"),
    "名单.csv": (lambda: samples.CSV_GB18030, FileKind.CSV, "text/csv; charset=gb18030"),
    "说明.txt": (lambda: "说明：按时提交。\n".encode(), FileKind.TXT, "text/plain; charset=utf-8"),
}


@pytest.mark.parametrize("filename", GENUINE)
def test_genuine_files_are_accepted(store: ObjectStore, filename: str) -> None:
    make, kind, content_type = GENUINE[filename]
    data = make()

    stored = ingest(store, data, filename)

    assert stored.kind is kind
    assert stored.content_type == content_type
    assert stored.filename == filename  # Chinese names are kept intact
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.key == f"sha256/{stored.sha256[:2]}/{stored.sha256[2:4]}/{stored.sha256}"
    assert stored.is_new
    assert stored_keys(store) == [stored.key]
    with store.open(stored.key) as reader:
        assert reader.read() == data


def test_long_chinese_name_with_brackets_is_kept(store: ObjectStore) -> None:
    name = "关于2023年度“放管服”改革工作的自评报告（定稿）【附件1】.docx"
    assert ingest(store, samples.docx_bytes(), name).filename == name


def test_same_content_is_stored_once(store: ObjectStore) -> None:
    first = ingest(store, samples.PDF, "a.pdf")
    second = ingest(store, samples.PDF, "同一文件的另一个名字.pdf")

    assert first.is_new
    assert not second.is_new
    assert second.key == first.key
    assert second.filename == "同一文件的另一个名字.pdf"
    assert stored_keys(store) == [first.key]


def test_empty_file_is_refused(store: ObjectStore) -> None:
    error = refuse(store, b"", "空文件.pdf", EmptyFile)
    assert error.status == 422
    assert error.code == "empty_file"
    assert error.message == "文件为空"


def test_file_at_the_limit_is_accepted(store: ObjectStore) -> None:
    data = samples.PDF + b"%" * (1000 - len(samples.PDF))
    assert ingest(store, data, "a.pdf", max_size=1000).size == 1000


def test_one_byte_over_the_limit_is_refused(store: ObjectStore) -> None:
    data = samples.PDF + b"%" * (1001 - len(samples.PDF))
    error = refuse(store, data, "a.pdf", FileTooLarge, max_size=1000)
    assert error.status == 413
    assert "大小上限" in error.message


def test_reading_stops_at_the_limit(store: ObjectStore) -> None:
    stream = io.BytesIO(samples.PDF + bytes(50 * MIB))
    with pytest.raises(FileTooLarge):
        ingest_upload(store, stream, "a.pdf", max_size=MIB, chunk_size=64 * 1024)
    assert stream.tell() <= MIB + 64 * 1024  # the rest of the upload was never read
    assert stored_keys(store) == []


def test_path_in_the_name_is_dropped(store: ObjectStore, tmp_path: Path) -> None:
    stored = ingest(store, samples.PDF, "../../etc/passwd.pdf")
    assert stored.filename == "passwd.pdf"
    assert stored.key.startswith("sha256/")
    assert not (tmp_path.parent / "etc").exists()
    windows = ingest(store, samples.PDF, "C:\\Users\\张三\\Desktop\\..\\报告.pdf")
    assert windows.filename == "报告.pdf"


def test_nul_and_bidi_characters_are_removed(store: ObjectStore) -> None:
    assert ingest(store, samples.PDF, "报告\x00.pdf").filename == "报告.pdf"
    assert ingest(store, samples.PDF, "年度\u202e报告\u200f.pdf").filename == "年度报告.pdf"


def test_bidi_override_cannot_disguise_an_extension(store: ObjectStore) -> None:
    # Displays as "invoiceexe.pdf" in a bidi-aware UI; really ends in ".exe".
    refuse(store, samples.EXE, "invoice\u202efdp.exe", UnsupportedFileType)


def test_300_character_name_is_capped(store: ObjectStore) -> None:
    stored = ingest(store, samples.PDF, "证" * 300 + ".pdf")
    assert len(stored.filename.encode()) <= 255
    assert stored.filename.endswith(".pdf")
    assert set(stored.filename.removesuffix(".pdf")) == {"证", "…"}  # cut in the middle


def test_exe_renamed_pdf_is_refused(store: ObjectStore) -> None:
    error = refuse(store, samples.EXE, "自评报告.pdf", UnsupportedFileType)
    assert error.status == 415
    assert "exe" in error.message


def test_html_renamed_docx_is_refused(store: ObjectStore) -> None:
    refuse(store, samples.HTML, "报告.docx", UnsupportedFileType)


def test_generic_zip_renamed_docx_is_refused(store: ObjectStore) -> None:
    data = samples.zip_bytes({"document.xml": b"<w/>", "[Content_Types].xml": b"<Types/>"})
    error = refuse(store, data, "报告.docx", UnsupportedFileType)
    assert "ZIP" in error.message


def test_zip_bomb_renamed_docx_is_refused(store: ObjectStore, zip_bomb: bytes) -> None:
    error = refuse(store, zip_bomb, "报告.docx", ZipBombSuspected)
    assert error.status == 422
    assert error.code == "zip_bomb_suspected"


@pytest.mark.parametrize(
    "text",
    [
        b"<!DOCTYPE html><p>hi</p>",
        b"  <HTML><body>x</body></HTML>",
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"\xef\xbb\xbf<script>alert(1)</script>",
        b"name,score\nx,<script>alert(1)</script>\n",
    ],
)
def test_markup_renamed_text_is_refused(store: ObjectStore, text: bytes) -> None:
    refuse(store, text, "名单.csv", UnsupportedFileType)


def test_unlisted_extension_is_refused_before_reading(store: ObjectStore) -> None:
    class Unreadable:
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("the stream should not be read")

    for name in ("tool.exe", "page.html", "image.svg", "无扩展名"):
        with pytest.raises(UnsupportedFileType):
            ingest_upload(store, Unreadable(), name, max_size=LIMIT)


def test_refusal_of_an_extension_names_the_accepted_ones(store: ObjectStore) -> None:
    """The list in the message is the list ingest checks against, in its order."""
    assert ACCEPTED_EXTENSIONS_TEXT.split() == list(EXTENSION_KINDS)
    for name, shown in (("归档.rar", ".rar"), ("归档.7Z", ".7z"), ("无扩展名", "无扩展名")):
        with pytest.raises(UnsupportedFileType) as refused:
            ingest(store, samples.PDF, name)
        assert refused.value.message == (
            f"不支持的文件类型（{shown}）。可上传的类型：{ACCEPTED_EXTENSIONS_TEXT}"
        )
    assert stored_keys(store) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   .pdf", "文件名为空（只有扩展名 .pdf），请重命名后重新上传"),
        (". . .PDF", "文件名为空（只有扩展名 .pdf），请重命名后重新上传"),
        ("材料/\u200b .docx", "文件名为空（只有扩展名 .docx），请重命名后重新上传"),
        ("", "文件名为空，请重命名后重新上传"),
        ("  \t ", "文件名为空，请重命名后重新上传"),
        ("...", "文件名为空，请重命名后重新上传"),
        ("   .rar", f"不支持的文件类型（.rar）。可上传的类型：{ACCEPTED_EXTENSIONS_TEXT}"),
    ],
)
def test_a_blank_name_is_refused_clearly(store: ObjectStore, name: str, message: str) -> None:
    with pytest.raises(IngestRejected) as refused:
        ingest(store, samples.PDF, name)
    assert refused.value.message == message
    assert refused.value.code in ("empty_filename", "unsupported_file_type")
    assert stored_keys(store) == []
    # A name with something before the dot is kept as it is.
    assert ingest(store, samples.PDF, " a .pdf").filename == "a .pdf"


def test_no_temporary_files_are_left(store: ObjectStore, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    big_pdf = samples.PDF + bytes(3 * MIB)  # spills from memory to a file
    ingest(store, big_pdf, "a.pdf", spool_dir=str(spool_dir))
    with pytest.raises(UnsupportedFileType):
        ingest(store, samples.EXE + bytes(3 * MIB), "a.pdf", spool_dir=str(spool_dir))
    with pytest.raises(FileTooLarge):
        ingest(store, big_pdf, "a.pdf", spool_dir=str(spool_dir), max_size=2 * MIB)
    assert list(spool_dir.iterdir()) == []
