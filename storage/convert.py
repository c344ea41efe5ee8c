"""PDF renditions of office documents (.docx, .xlsx, .wps) through LibreOffice, cached.

A rendition is converted once and kept in the object store beside the original as a derived
object whose key names the source's SHA-256 (``derived/pdf/ab/<sha256>.pdf``), so it is
found again from the evidence row alone and never confused with another file's. A source
that LibreOffice cannot convert leaves a small ``.failed`` marker, so it is not retried on
every request.

Each conversion runs ``soffice --headless --convert-to pdf`` with its own profile directory
(``-env:UserInstallation``: two conversions sharing a profile block or fail), in its own
process group, killed whole after a timeout. At most ``MAX_PARALLEL`` conversions run at once
in a process, and one source is converted once even when several requests ask together.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.base import ObjectStore
from storage.checked import altered, hash_copy
from storage.errors import N_, StorageError

CONVERTIBLE_TYPES: dict[str, str] = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-works": ".wps",
}
DEFAULT_TIMEOUT = 60.0
MAX_PARALLEL = 2
PREFIX = "derived/pdf/"

_slots = threading.BoundedSemaphore(MAX_PARALLEL)
_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


class ConverterMissing(StorageError):
    """LibreOffice is not installed: the file can only be downloaded."""

    status = 503
    code = "converter_missing"


class ConversionFailed(StorageError):
    """LibreOffice could not convert the file (damaged, protected, too slow)."""

    status = 422
    code = "conversion_failed"


def office_binary() -> str | None:
    """Return the LibreOffice command on PATH, or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def is_convertible(content_type: str) -> bool:
    """Tell whether a stored file's (sniffed) type has a PDF rendition."""
    return content_type in CONVERTIBLE_TYPES


def rendition_key(source_sha256: str) -> str:
    """The derived object's key: it names the source's SHA-256."""
    return f"{PREFIX}{source_sha256[:2]}/{source_sha256}.pdf"


def _failed_key(source_sha256: str) -> str:
    return f"{PREFIX}{source_sha256[:2]}/{source_sha256}.failed"


@contextmanager
def source_lock(source_sha256: str) -> Iterator[None]:
    """Hold the lock of one source (by its SHA-256) in this process: it is converted once."""
    with _locks_guard:
        lock = _locks.setdefault(source_sha256, threading.Lock())
    with lock:
        yield


def convert_file(source: Path, out_dir: Path, *, binary: str, timeout: float) -> Path:
    """Convert one file to PDF in `out_dir` with a private profile; return the PDF's path."""
    with tempfile.TemporaryDirectory(prefix="soffice-profile-") as profile:
        command = [
            binary,
            f"-env:UserInstallation={Path(profile).as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out_dir),
            str(source),
        ]
        with _slots:
            process = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
            try:
                _out, err = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise ConversionFailed(
                    f"conversion took longer than {timeout:.0f} s",
                    message=N_("文件转换超时（%(seconds)s 秒），请下载查看"),
                    params={"seconds": f"{timeout:.0f}"},
                ) from None
    pdf = out_dir / (source.stem + ".pdf")
    if process.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        detail = err.decode("utf-8", "replace").strip()[:300]
        raise ConversionFailed(
            f"soffice exit {process.returncode}: {detail}",
            message=N_("无法转换此文件以供预览，请下载查看"),
        )
    return pdf


def pdf_rendition(
    store: ObjectStore,
    *,
    source_key: str,
    source_sha256: str,
    content_type: str,
    timeout: float = DEFAULT_TIMEOUT,
    binary: str | None = None,
) -> str:
    """Return the key of the PDF rendition of a stored document, converting it the first time.

    Raise ConverterMissing without LibreOffice and ConversionFailed (also remembered for
    later calls) when the document cannot be converted in time.
    """
    key = rendition_key(source_sha256)
    if store.exists(key):
        return key
    if store.exists(_failed_key(source_sha256)):
        raise ConversionFailed(
            "conversion failed before", message=N_("无法转换此文件以供预览，请下载查看")
        )
    binary = binary or office_binary()
    if binary is None:
        raise ConverterMissing(
            "LibreOffice is not installed",
            message=N_("服务器未安装 LibreOffice，无法在线预览，请下载查看"),
        )
    suffix = CONVERTIBLE_TYPES.get(content_type)
    if suffix is None:
        raise ConversionFailed(f"no rendition for {content_type}", message=N_("此类文件不能预览"))
    with source_lock(source_sha256):
        if store.exists(key):  # converted by another request meanwhile
            return key
        with tempfile.TemporaryDirectory(prefix="rendition-") as work:
            source = Path(work) / f"source{suffix}"
            reader = store.open(source_key)
            try:
                with source.open("wb") as f:
                    actual, _size = hash_copy(reader, f)
            finally:
                reader.close()
            if actual != source_sha256:  # never a rendition, kept for good, of another file
                raise altered(source_key, source_sha256, actual)
            out_dir = Path(work) / "out"
            out_dir.mkdir()
            try:
                pdf = convert_file(source, out_dir, binary=binary, timeout=timeout)
            except ConversionFailed:
                marker = b"conversion failed\n"
                store.put(_failed_key(source_sha256), io.BytesIO(marker), len(marker), "text/plain")
                raise
            with pdf.open("rb") as f:
                store.put(key, f, pdf.stat().st_size, "application/pdf")
    return key
