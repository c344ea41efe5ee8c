"""Excel (.xlsx) downloads shared by the API and the portal: one response builder."""

from __future__ import annotations

import datetime as dt

from flask import Response

from storage.base import content_disposition
from workflow.spreadsheets import DISPLAY_ZONE, XLSX_CONTENT_TYPE

XLSX_MAX_EVENTS = 1_048_575  # Excel's row limit less the header; filter for more


def xlsx_response(content: bytes, name: str) -> Response:
    """Send .xlsx bytes as an attachment named `<name>-<Shanghai time>.xlsx`, never cached."""
    stamp = dt.datetime.now(DISPLAY_ZONE).strftime("%Y%m%d-%H%M%S")
    response = Response(content, mimetype=XLSX_CONTENT_TYPE)
    response.headers["Content-Disposition"] = content_disposition(f"{name}-{stamp}.xlsx")
    response.headers["Cache-Control"] = "private, no-store"
    return response
