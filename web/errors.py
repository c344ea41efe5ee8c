"""The one place that maps exceptions to HTTP answers: JSON for the API, pages elsewhere.

`classify` decides status, code, message and headers for every exception (domain refusals,
lost races, HTTP errors, storage and database outages); the API renders it as the contract's
JSON body, the portal as an error page (`web.portal.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from storage.errors import FileTooLarge, StorageError, StorageUnavailable
from workflow.db import is_database_outage
from workflow.errors import DomainError
from workflow.messages import N_, localize

OUT_OF_RANGE = N_("输入的值超出允许范围")

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


@dataclass(frozen=True)
class Failure:
    """How the app answers an exception: status, stable code, message (in the request's
    language), headers."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def _http_failure(exc: HTTPException) -> Failure:
    status = exc.code or 500
    code, message = HTTP_ERRORS.get(
        status, ((exc.name or "error").lower().replace(" ", "_"), exc.description or "")
    )
    headers = {
        name: value
        for name, value in exc.get_headers()
        if name.lower() in ("allow", "retry-after", "www-authenticate")
    }
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    error_code = getattr(exc, "error_code", None)  # a refusal of the input layer
    if isinstance(error_code, str):
        template = getattr(exc, "message", None) or exc.description or message
        text = localize(template, getattr(exc, "params", None) or {}, error_code)
        return Failure(status, error_code, text, headers)
    if status == 413 and request.path.endswith("/evidence"):
        # Werkzeug refused the body before the view: the same words as the ingest's refusal.
        limit = FileTooLarge(int(current_app.config["MAX_UPLOAD_BYTES"]))
        return Failure(status, limit.code, limit.message, headers)
    return Failure(status, code, localize(message, {}, code), headers)


def _another_method_matches(exc: MethodNotAllowed) -> bool:
    """Whether the path really exists for one of the methods the router named.

    Werkzeug's matcher answers 405 when a rule of another method matched the path's pattern
    even if that rule's converter then refused the value (an id above the 32-bit range, say);
    such a path exists for no method, so it is a 404.
    """
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in exc.valid_methods or ():
        if method in ("OPTIONS", "HEAD"):
            continue
        try:
            adapter.match(request.path, method=method)
        except HTTPException:
            continue
        return True
    return False


def classify(exc: Exception) -> Failure:
    """Map any exception of a request to its answer: the one mapping of API and pages.

    A commit that lost a race arrives here as `Conflict` (`web.db`); an unexpected exception
    is logged and a 500.
    """
    if isinstance(exc, DomainError):
        return Failure(exc.status, exc.code, exc.message)
    if isinstance(exc, MethodNotAllowed) and not _another_method_matches(exc):
        exc = NotFound()  # only a rule whose converter refused the id: nothing is there
    if isinstance(exc, HTTPException):
        return _http_failure(exc)
    if isinstance(exc, StorageUnavailable):
        message = localize("文件存储暂时不可用，请稍后重试", {}, "storage_unavailable")
        return Failure(
            503, code="storage_unavailable", message=message, headers={"Retry-After": "5"}
        )
    if isinstance(exc, StorageError) and exc.status < 500:  # IngestRejected among them
        return Failure(exc.status, exc.code, exc.message)
    if is_database_outage(exc):
        # The transaction was not committed (or the commit failed): nothing half-applied.
        current_app.logger.warning("database unavailable in %s %s: %s", request.method,
                                   request.path, exc)  # fmt: skip
        message = localize("数据库暂时不可用，请稍后重试", {}, "database_unavailable")
        return Failure(
            503, code="database_unavailable", message=message, headers={"Retry-After": "2"}
        )
    if isinstance(exc, DataError):
        # A value the database refuses (too long, out of range) that no validator caught.
        current_app.logger.warning("value refused by the database in %s: %s", request.path, exc)
        message = localize(OUT_OF_RANGE, {}, "invalid_value")
        return Failure(400, code="invalid_value", message=message)
    current_app.logger.exception("unexpected error in %s %s", request.method, request.path)
    message = localize("服务器内部错误", {}, "internal_error")
    return Failure(500, code="internal_error", message=message)


def api_exception_response(exc: Exception) -> Response:
    """Answer any exception raised in an API request as the contract's JSON error."""
    failure = classify(exc)
    response = error_body(failure.status, failure.code, failure.message)
    response.headers.update(failure.headers)
    return response
