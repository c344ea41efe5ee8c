"""Issued notices as files (Word, and PDF through LibreOffice) and their verification, for both
faces: the API (`web.api.notices`) and the portal (`web.portal.notices`)."""

from __future__ import annotations

import io
import logging
from contextlib import suppress

from flask import Response, current_app, request

from scoring.pdf import PdfUnavailable, docx_to_pdf
from storage.base import ObjectStore, content_disposition
from storage.config import store_from_settings
from storage.convert import source_lock
from storage.errors import ObjectNotFound, StorageError
from web.common.stored_files import etag_of, open_as_recorded, unchanged_answer
from workflow.errors import NotFound, ServiceUnavailable
from workflow.models import Notice
from workflow.notices import DOCX_CONTENT_TYPE, read_object

VERIFY_LIMIT = "30 per minute"  # a person checks a few documents; guessing needs billions
PDF_PREFIX = "derived/notice-pdf/"  # renditions of issued versions (a cache, not evidence)
log = logging.getLogger(__name__)


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
    """Stream a stored version as an attachment with its Chinese file name (a 304 when
    `If-None-Match` names its SHA-256: the caller holds this very version)."""
    unchanged = unchanged_answer(row.sha256)
    if unchanged is not None:
        unchanged.headers["X-Notice-Id"] = str(row.id)
        unchanged.headers["X-Notice-Version"] = str(row.version)
        return unchanged
    try:
        reader = open_as_recorded(app_store(), row, "notice")
    except ObjectNotFound as exc:  # the row outlived its object: say so, never a bare 500
        raise NotFound("通知书文件缺失，请联系管理员", code="notice_file_missing") from exc
    response = Response(reader.iter_chunks(), mimetype=DOCX_CONTENT_TYPE, direct_passthrough=True)
    response.call_on_close(reader.close)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["Content-Length"] = str(row.size)
    response.headers["ETag"] = etag_of(row.sha256)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Notice-Id"] = str(row.id)
    response.headers["X-Notice-Version"] = str(row.version)
    return response


def pdf_key(row: Notice) -> str:
    """The key of a version's PDF rendition: derived from the Word file's SHA-256."""
    return f"{PDF_PREFIX}{row.sha256[:2]}/{row.sha256}.pdf"


def notice_pdf(store: ObjectStore, row: Notice) -> bytes:
    """Return the PDF of an issued version: converted once, then read from the store.

    An issued version never changes, so its rendition is kept beside it (a cache: deleting it
    costs one conversion). One version is converted once even when several requests ask
    together. A rendition that cannot be stored is still sent.
    """
    key = pdf_key(row)
    with suppress(ObjectNotFound):
        return read_object(store, key)
    with source_lock(row.sha256):
        with suppress(ObjectNotFound):
            return read_object(store, key)  # converted by another request meanwhile
        try:
            with open_as_recorded(store, row, "notice") as reader:
                content = reader.read()
        except ObjectNotFound as exc:
            raise NotFound("通知书文件缺失，请联系管理员", code="notice_file_missing") from exc
        try:
            pdf = docx_to_pdf(content)
        except PdfUnavailable as exc:
            raise ServiceUnavailable(exc.template, code="pdf_unavailable") from exc
        try:
            store.put(key, io.BytesIO(pdf), len(pdf), "application/pdf")
        except StorageError:
            log.warning("the PDF of notice %s could not be kept; sent anyway", row.id)
    return pdf


def send_pdf(row: Notice) -> Response:
    """Send a stored version as PDF (503 when LibreOffice is not installed)."""
    pdf = notice_pdf(app_store(), row)
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
