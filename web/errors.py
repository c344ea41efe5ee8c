"""One place that maps domain errors to HTTP answers (JSON for the API)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from storage.errors import IngestRejected, StorageUnavailable
from workflow.errors import DomainError

# English messages for Accept-Language: en, keyed by error code; Chinese is the default.
ENGLISH: dict[str, str] = {
    "not_authenticated": "Not authenticated.",
    "forbidden": "Not allowed.",
    "not_found": "Not found.",
    "item_not_found": "Item not found.",
    "evidence_not_found": "Evidence not found.",
    "stale_version": "The item was changed by someone else; reload and retry.",
    "invalid_state": "The item's state does not allow this action.",
    "bad_request": "Malformed request.",
    "invalid_value": "Invalid value.",
    "too_many_attempts": "Too many attempts; try again later.",
    "storage_unavailable": "File storage is unavailable; try again later.",
}


def wants_english() -> bool:
    """Tell whether the client asked for English."""
    best = request.accept_languages.best_match(["zh", "en"], default="zh")
    return best == "en"


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """Return the contract's error shape: {"error": {"code", "message"}}."""
    if wants_english():
        message = ENGLISH.get(code, message)
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    response = jsonify(body)
    response.status_code = status
    return response


def domain_error_response(exc: DomainError) -> Response:
    """Map a DomainError to its status and body."""
    return error_response(exc.status, exc.code, exc.message)


def register_api_errors(app: Flask, prefix: str = "/api/") -> None:
    """Answer errors under the API prefix as JSON, never as an HTML page or a bare 500."""

    def is_api() -> bool:
        return request.path.startswith(prefix)

    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Any:
        return domain_error_response(exc)

    @app.errorhandler(IngestRejected)
    def _ingest(exc: IngestRejected) -> Any:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(StorageUnavailable)
    def _storage(exc: StorageUnavailable) -> Any:
        return error_response(503, "storage_unavailable", "文件存储暂时不可用，请稍后重试")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        if not is_api():
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)
