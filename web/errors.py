"""One place that maps domain errors to HTTP answers (JSON for the API)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from storage.errors import StorageError, StorageUnavailable
from workflow.errors import DomainError
from workflow.messages import localize

# Chinese messages of the HTTP errors Werkzeug raises itself (routing, size limits).
HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求格式错误"),
    401: ("not_authenticated", "未登录或令牌无效"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("request_too_large", "请求体过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
    429: ("too_many_attempts", "尝试次数过多，请稍后再试"),
}


def error_body(status: int, code: str, message: str, **extra: Any) -> Response:
    """Return the contract's error shape, {"error": {"code", "message"}}, as it is given."""
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    response = jsonify(body)
    response.status_code = status
    return response


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """Answer with a Chinese message, in English when the client asked for it.

    `message` is a literal Chinese text of the catalog; the API is Chinese by default and
    English with `Accept-Language: en` (`web/portal/i18n.py`, `workflow/messages.py`).
    """
    return error_body(status, code, localize(message, {}, code), **extra)


def domain_error_response(exc: DomainError) -> Response:
    """Map a DomainError to its status and body (its message is in the request's language)."""
    return error_body(exc.status, exc.code, exc.message)


def http_error_response(exc: HTTPException) -> Response:
    """Answer a Werkzeug HTTP error in the contract's shape."""
    status = exc.code or 500
    code, message = HTTP_ERRORS.get(
        status, ((exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    )
    error_code = getattr(exc, "error_code", None)  # a refusal of the input layer
    if isinstance(error_code, str):
        template = getattr(exc, "message", None) or exc.description or message
        text = localize(template, getattr(exc, "params", None) or {}, error_code)
        return error_body(status, error_code, text)
    if status == 413 and request.path.endswith("/evidence"):
        code, message = "file_too_large", "文件超过大小上限"
    response = error_response(status, code, message)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def is_database_outage(exc: Exception) -> bool:
    """Tell whether an exception means the database cannot be reached (restart, failover)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def api_exception_response(exc: Exception) -> Response:
    """Map any exception raised in an API view to a JSON answer; unexpected ones are a 500."""
    if isinstance(exc, DomainError):
        return domain_error_response(exc)
    if isinstance(exc, HTTPException):
        return http_error_response(exc)
    if isinstance(exc, StorageUnavailable):
        return error_response(503, "storage_unavailable", "文件存储暂时不可用，请稍后重试")
    if isinstance(exc, StorageError) and exc.status < 500:  # IngestRejected among them
        return error_body(exc.status, exc.code, exc.message)
    if is_database_outage(exc):
        # The transaction was not committed (or the commit failed): nothing half-applied.
        current_app.logger.warning("database unavailable in %s %s: %s", request.method,
                                   request.path, exc)  # fmt: skip
        response = error_response(503, "database_unavailable", "数据库暂时不可用，请稍后重试")
        response.headers["Retry-After"] = "2"
        return response
    current_app.logger.exception("unexpected error in %s %s", request.method, request.path)
    return error_response(500, "internal_error", "服务器内部错误")


def register_api_errors(app: Flask, prefix: str = "/api/") -> None:
    """Answer every error: JSON under the API prefix, elsewhere a Chinese page.

    The page is rendered without the database; never Werkzeug's English page, never a bare 500.
    """
    from web.portal.errors import exception_page

    @app.errorhandler(Exception)
    def _any(exc: Exception) -> Any:
        if request.path.startswith(prefix):
            return api_exception_response(exc)
        return exception_page(exc)
