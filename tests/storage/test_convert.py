"""PDF renditions of Word, Excel and WPS files with the real LibreOffice, cached by hash."""

from __future__ import annotations

import hashlib
import io
import subprocess
import threading
from pathlib import Path

import docx
import pytest

from storage.convert import (
    ConversionFailed,
    ConverterMissing,
    office_binary,
    pdf_rendition,
    rendition_key,
)
from storage.ingest import ingest_upload
from storage.local import LocalStore

SOFFICE = office_binary()  # .ci/run installs LibreOffice; these tests need it
LIMIT = 50 * 1024 * 1024


def _docx(text: str) -> bytes:
    document = docx.Document()
    document.add_heading("领导小组文件", level=1)
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _office_convert(tmp_path: Path, source: Path, target: str) -> Path:
    """Make a sample in another format with LibreOffice itself (xlsx from csv, doc from docx)."""
    out = tmp_path / f"made-{target}"
    out.mkdir(exist_ok=True)
    profile = tmp_path / f"profile-{target}"
    subprocess.run(
        [str(SOFFICE), f"-env:UserInstallation={profile.as_uri()}", "--headless",
         "--convert-to", target, "--outdir", str(out), str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return next(out.iterdir())


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


def _stored(store: LocalStore, data: bytes, name: str) -> tuple[str, str, str]:
    stored = ingest_upload(store, io.BytesIO(data), name, max_size=LIMIT)
    return stored.key, stored.sha256, stored.content_type


def _pdf(store: LocalStore, key: str) -> bytes:
    with store.open(key) as reader:
        return b"".join(reader.iter_chunks())


def test_docx_is_converted_once_and_cached_beside_the_original(
    store: LocalStore, tmp_path: Path
) -> None:
    key, sha, ctype = _stored(store, _docx("蛟河市交通局"), "任命文件.docx")
    derived = pdf_rendition(store, source_key=key, source_sha256=sha, content_type=ctype)
    assert derived == rendition_key(sha) and sha in derived  # hash-linked to its source
    assert _pdf(store, derived).startswith(b"%PDF")
    text = subprocess.run(
        ["pdftotext", str(store.root / derived), "-"], capture_output=True, check=True
    ).stdout.decode()
    assert "蛟河市交通局" in text
    # Cached: a second call does not run LibreOffice again (a binary that fails proves it).
    again = pdf_rendition(
        store, source_key=key, source_sha256=sha, content_type=ctype, binary="/bin/false"
    )
    assert again == derived


def test_xlsx_and_wps_are_converted(store: LocalStore, tmp_path: Path) -> None:
    csv = tmp_path / "quota.csv"
    csv.write_text("部门,篇数\n交通局,2\n", encoding="utf-8")
    xlsx = _office_convert(tmp_path, csv, "xlsx")
    source = tmp_path / "w.docx"
    source.write_bytes(_docx("金山 WPS 文档"))
    doc = _office_convert(tmp_path, source, "doc")  # a .wps is a Word 97 compound file
    for data, name in ((xlsx.read_bytes(), "报送.xlsx"), (doc.read_bytes(), "说明.wps")):
        key, sha, ctype = _stored(store, data, name)
        derived = pdf_rendition(store, source_key=key, source_sha256=sha, content_type=ctype)
        assert _pdf(store, derived).startswith(b"%PDF"), name


def test_without_libreoffice_it_says_so(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, sha, ctype = _stored(store, _docx("x"), "a.docx")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConverterMissing) as err:
        pdf_rendition(store, source_key=key, source_sha256=sha, content_type=ctype)
    assert "LibreOffice" in err.value.message and err.value.status == 503


def test_a_damaged_file_fails_once_and_is_remembered(store: LocalStore, tmp_path: Path) -> None:
    data = bytearray(_docx("损坏"))
    data[-200:] = b"\0" * 200  # break the zip's central directory
    target = store.root / "damaged"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(data))
    sha = hashlib.sha256(data).hexdigest()  # damaged as uploaded: the row's own hash
    ctype = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    with pytest.raises(ConversionFailed):
        pdf_rendition(store, source_key="damaged", source_sha256=sha, content_type=ctype)
    with pytest.raises(ConversionFailed):  # remembered: LibreOffice is not run again
        pdf_rendition(
            store, source_key="damaged", source_sha256=sha, content_type=ctype,
            binary="/nonexistent",
        )  # fmt: skip


def test_a_slow_conversion_is_stopped_by_the_timeout(store: LocalStore, tmp_path: Path) -> None:
    key, sha, ctype = _stored(store, _docx("慢"), "slow.docx")
    slow = tmp_path / "slow-office"
    slow.write_text("#!/bin/sh\nsleep 30 &\nwait\n")
    slow.chmod(0o755)
    with pytest.raises(ConversionFailed) as err:
        pdf_rendition(
            store, source_key=key, source_sha256=sha, content_type=ctype,
            binary=str(slow), timeout=1,
        )  # fmt: skip
    assert "超时" in err.value.message
    left = subprocess.run(["pgrep", "-f", f"{slow}"], capture_output=True).stdout
    assert left == b""  # the whole process group was killed


def test_concurrent_requests_convert_a_file_once(store: LocalStore, tmp_path: Path) -> None:
    key, sha, ctype = _stored(store, _docx("并发"), "same.docx")
    other_key, other_sha, _ = _stored(store, _docx("另一个"), "other.docx")
    count = tmp_path / "runs"
    wrapper = tmp_path / "counting-office"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{count}"\nexec "{SOFFICE}" "$@"\n')
    wrapper.chmod(0o755)
    results: list[str] = []
    errors: list[BaseException] = []

    def convert(k: str, s: str) -> None:
        try:
            results.append(
                pdf_rendition(
                    store,
                    source_key=k,
                    source_sha256=s,
                    content_type=ctype,
                    binary=str(wrapper),
                    timeout=120,
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=convert, args=(key, sha)) for _ in range(3)]
    threads.append(threading.Thread(target=convert, args=(other_key, other_sha)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(set(results)) == sorted({rendition_key(sha), rendition_key(other_sha)})
    assert len(count.read_text().splitlines()) == 2  # once per source, not per request
