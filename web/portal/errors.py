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
from werkzeug.exceptions import HTTPException

from web.errors import Failure, classify
from web.portal.common import N_
from web.portal.inputs import InvalidInput

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


# Where a page says it differently from the API's message (keyed by the error code).
PAGE_TEXT = {
    "storage_unavailable": STORAGE_DOWN,
    "database_unavailable": DATABASE_DOWN,
    "internal_error": ERROR_MESSAGES[500],
}


def page_message(exc: Exception, failure: Failure) -> str:
    """Return the page's text for an error: the refusal's own message, or a page wording."""
    if isinstance(exc, InvalidInput):
        return gettext(exc.message, **exc.params)
    if isinstance(exc, CSRFError):
        return gettext("表单已过期或无效，请返回并刷新页面后重试")
    if isinstance(exc, HTTPException) and failure.code == "file_too_large":
        return failure.message  # an upload over the limit: the limit, as the ingest says it
    if isinstance(exc, HTTPException):
        return gettext(ERROR_MESSAGES.get(failure.status, ERROR_MESSAGES[500]))
    if failure.code in PAGE_TEXT:
        return gettext(PAGE_TEXT[failure.code])
    return failure.message


def exception_page(exc: Exception) -> Response:
    """Answer any exception raised while serving a page, as `web.errors.classify` says."""
    failure = classify(exc)
    return render_error_page(failure.status, page_message(exc, failure), failure.headers)
