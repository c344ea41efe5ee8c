"""Error pages: Chinese (English when chosen), the right status, and no database access.

An error page is often shown because the database is down or the request's transaction has
failed, so it must not load the signed-in user or anything else: the template is rendered with
an explicit context (no context processors, which would load the user) and the header shows no
account. Should even that fail, a fixed bilingual page is returned with the same status.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, request, session
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from storage.errors import StorageError, StorageUnavailable
from web.portal.common import N_
from web.portal.inputs import InvalidInput
from workflow.errors import DomainError

ERROR_MESSAGES = {
    400: N_("请求无效"),
    401: N_("请先登录"),
    403: N_("您没有权限访问此页面"),
    404: N_("页面或事项不存在"),
    405: N_("不支持的请求方式"),
    409: N_("数据已被他人修改，请刷新页面后重试"),
    413: N_("上传的文件过大"),
    415: N_("不支持的文件类型"),
    422: N_("提交的内容无法处理"),
    429: N_("操作过于频繁，请稍后再试"),
    500: N_("服务器出错，请稍后重试"),
    503: N_("服务暂时不可用，请稍后重试"),
}
DATABASE_DOWN = N_("数据库暂时不可用，请稍后重试")
STORAGE_DOWN = N_("文件存储暂时不可用，请稍后重试")
OUT_OF_RANGE = N_("输入的值超出允许范围")

# The last resort when the error template itself cannot be rendered.
FALLBACK_PAGE = (
    '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{code}</title></head>'
    "<body><h1>出错了（{code}）</h1><p>服务暂时不可用，请稍后重试。"
    "Service unavailable, please try again later.</p>"
    '<p><a href="/">返回首页</a></p></body></html>'
)


def render_error_page(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Render the error page with an explicit, database-free context."""
    from web.portal.i18n import LANGUAGES, current_language

    context: dict[str, Any] = {
        "request": request,
        "session": session,
        "g": g,
        "config": current_app.config,
        "account": None,
        "error_page": True,
        "languages": LANGUAGES,
        "language": current_language(),
        "code": status,
        "message": message,
    }
    try:
        body = current_app.jinja_env.get_template("error.html").render(context)
    except Exception:  # the error page must answer whatever else is broken
        current_app.logger.exception("the error page could not be rendered")
        body = FALLBACK_PAGE.format(code=status)
    response = Response(body, status=status, mimetype="text/html")
    response.headers.update(headers or {})
    return response


def http_error_page(exc: HTTPException) -> Response:
    """Answer a Werkzeug HTTP error (404, 405, a refused input, CSRF, 429…) as a page."""
    status = exc.code or 500
    if isinstance(exc, InvalidInput):
        message = gettext(exc.message, **exc.params)
    elif isinstance(exc, CSRFError):
        message = gettext("表单已过期或无效，请返回并刷新页面后重试")
    else:
        message = gettext(ERROR_MESSAGES.get(status, ERROR_MESSAGES[500]))
    headers = {
        name: value
        for name, value in exc.get_headers()
        if name.lower() in ("allow", "retry-after", "www-authenticate")
    }
    return render_error_page(status, message, headers)


def exception_page(exc: Exception) -> Response:
    """Answer any exception raised while serving a page; an unexpected one is logged (500)."""
    from web.errors import is_database_outage

    if isinstance(exc, HTTPException):
        return http_error_page(exc)
    if isinstance(exc, DomainError):
        return render_error_page(exc.status, exc.message)
    if isinstance(exc, StorageUnavailable):
        return render_error_page(503, gettext(STORAGE_DOWN), {"Retry-After": "5"})
    if isinstance(exc, StorageError) and exc.status < 500:
        return render_error_page(exc.status, exc.message)
    if is_database_outage(exc):
        # Nothing was committed (or the commit failed): nothing is half-applied.
        current_app.logger.warning(
            "database unavailable in %s %s: %s", request.method, request.path, exc
        )
        return render_error_page(503, gettext(DATABASE_DOWN), {"Retry-After": "2"})
    if isinstance(exc, DataError):
        # A value the database refuses (too long, out of range) that no validator caught.
        current_app.logger.warning("value refused by the database in %s: %s", request.path, exc)
        return render_error_page(400, gettext(OUT_OF_RANGE))
    current_app.logger.exception("unexpected error in %s %s", request.method, request.path)
    return render_error_page(500, gettext(ERROR_MESSAGES[500]))
