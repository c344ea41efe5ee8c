"""Issued notices as files (Word, and PDF through LibreOffice) and their verification, for both
faces: the API (`web.api.notices`) and the portal (`web.portal.notices`)."""

from __future__ import annotations

from flask import Response, current_app, request

from scoring.pdf import PdfUnavailable, docx_to_pdf
from storage.base import ObjectStore, content_disposition
from storage.config import store_from_settings
from storage.errors import ObjectNotFound
from workflow.errors import NotFound, ServiceUnavailable
from workflow.models import Notice
from workflow.notices import DOCX_CONTENT_TYPE, read_object

VERIFY_LIMIT = "30 per minute"  # a person checks a few documents; guessing needs billions


def app_store() -> ObjectStore:
    """Return the app's object store (shared in `app.extensions`, else built from config)."""
    store = current_app.extensions.get("store")
    if store is None:
        store = store_from_settings(
            current_app.config["STORAGE"], current_app.config["INSTANCE_DIR"]
        )
        current_app.extensions.setdefault("store", store)
    found: ObjectStore = store
    return found


def send_notice(row: Notice) -> Response:
    """Stream a stored version as an attachment with its Chinese file name."""
    try:
        reader = app_store().open(row.storage_key)
    except ObjectNotFound as exc:  # the row outlived its object: say so, never a bare 500
        raise NotFound("通知书文件缺失，请联系管理员", code="notice_file_missing") from exc
    response = Response(reader.iter_chunks(), mimetype=DOCX_CONTENT_TYPE, direct_passthrough=True)
    response.call_on_close(reader.close)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["Content-Length"] = str(row.size)
    response.headers["ETag"] = f'"{row.sha256}"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Notice-Id"] = str(row.id)
    response.headers["X-Notice-Version"] = str(row.version)
    return response


def send_pdf(row: Notice) -> Response:
    """Render a stored version to PDF with LibreOffice and send it (503 when not installed)."""
    try:
        content = read_object(app_store(), row.storage_key)
    except ObjectNotFound as exc:
        raise NotFound("通知书文件缺失，请联系管理员", code="notice_file_missing") from exc
    try:
        pdf = docx_to_pdf(content)
    except PdfUnavailable as exc:
        raise ServiceUnavailable(exc.template, code="pdf_unavailable") from exc
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition(
        row.filename.removesuffix(".docx") + ".pdf"
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Notice-Id"] = str(row.id)
    response.headers["X-Notice-Version"] = str(row.version)
    return response


def verify_base_url() -> str:
    """Return the public address printed under each notice's QR code.

    `PUBLIC_BASE_URL` when configured (behind a proxy the request's own host may be an
    internal name), else the address the request came in on.
    """
    configured = str(current_app.config.get("PUBLIC_BASE_URL") or "")
    return configured or request.url_root


def verify_limit() -> str:
    """Return the rate limit of verification look-ups per address (config `VERIFY_LIMIT`)."""
    return str(current_app.config.get("VERIFY_LIMIT") or VERIFY_LIMIT)
