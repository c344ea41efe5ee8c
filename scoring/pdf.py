"""PDF renditions of Word documents through LibreOffice headless (`soffice --convert-to pdf`).

`office_binary()` says whether LibreOffice is installed; `docx_to_pdf` converts bytes in a
private temporary folder with its own LibreOffice profile (two conversions at once never
share a profile, which LibreOffice does not allow) and the shipped `templates/fonts.conf`,
which maps the GB/T 9704 font names to the Noto CJK faces when the official fonts are absent.
No database, no Flask.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from workflow.messages import PDF_CONVERSION_FAILED, PDF_OFFICE_MISSING

FONTS_CONF: Final = Path(__file__).resolve().parent.parent / "templates" / "fonts.conf"
TIMEOUT_SECONDS: Final = 120
MISSING_MESSAGE: Final = PDF_OFFICE_MISSING


class PdfUnavailable(RuntimeError):
    """LibreOffice is not installed, or the conversion failed or timed out.

    `template` is the literal text of the refusal (workflow/messages.py), for the catalog.
    """

    def __init__(self, template: str) -> None:
        super().__init__(template)
        self.template = template


def office_binary() -> str | None:
    """Return the path of `soffice` (or `libreoffice`), or None when not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(content: bytes, *, timeout: float = TIMEOUT_SECONDS) -> bytes:
    """Convert .docx bytes to PDF bytes; raise PdfUnavailable when that is not possible."""
    office = office_binary()
    if office is None:
        raise PdfUnavailable(MISSING_MESSAGE)
    with tempfile.TemporaryDirectory(prefix="pdf-") as folder:
        work = Path(folder)
        source = work / "document.docx"
        source.write_bytes(content)
        env = dict(os.environ)
        if FONTS_CONF.exists():
            env["FONTCONFIG_FILE"] = str(FONTS_CONF)
        env["HOME"] = str(work)  # LibreOffice writes caches under HOME
        try:
            subprocess.run(
                [
                    office,
                    f"-env:UserInstallation={(work / 'profile').as_uri()}",
                    "--headless",
                    "--norestore",
                    "--convert-to",
                    "pdf",
                    "--outdir",
                    str(work),
                    str(source),
                ],
                check=True,
                capture_output=True,
                timeout=timeout,
                env=env,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            raise PdfUnavailable(PDF_CONVERSION_FAILED) from exc
        target = work / "document.pdf"
        if not target.exists():
            raise PdfUnavailable(PDF_CONVERSION_FAILED)
        return target.read_bytes()
