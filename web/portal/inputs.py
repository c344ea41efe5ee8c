"""One input-cleaning layer: every portal request's text is checked before a view sees it.

A NUL cannot be stored in PostgreSQL text, a lone surrogate cannot be encoded as UTF-8, other
control characters have no business in a form, and a megabyte in a query string is an attack:
each is refused with a 400 here, once, instead of by every field of every view (or by the
database, as a 500). Views still validate meaning (ranges, dates, choices).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import IO, Any

from flask import Flask, Request, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from werkzeug.formparser import FormDataParser

from web.portal.common import N_

# Longest query value and form field the portal takes (a return reason of 20,000 characters is
# far longer than any real one; ids, dates and cursors are short).
MAX_QUERY_CHARS = 2_000
MAX_FIELD_CHARS = 20_000


class InvalidInput(BadRequest):
    """A request whose text the layer refuses (400): a code and a message id with parameters.

    The error page translates the message (`gettext(message, **params)`); `description` keeps
    the Chinese text for logs and the API.
    """

    def __init__(self, error_code: str, message: str, **params: object) -> None:
        super().__init__(description=message % params if params else message)
        self.error_code = error_code
        self.message = message
        self.params = params


NON_UTF8_NAME = N_("文件名不是 UTF-8 编码，无法识别；请重命名后重新上传")
TOO_LONG = N_("输入内容过长（每项最多 %(n)s 个字符）")
BAD_CHARACTER = N_("输入内容含有不允许的控制字符或无效字符")


class NonUtf8FormPart(InvalidInput):
    """A multipart part whose headers (the file name) are not UTF-8."""

    def __init__(self) -> None:
        super().__init__("filename_not_utf8", NON_UTF8_NAME)


class CheckedFormDataParser(FormDataParser):
    """Refuse a multipart body whose part headers are not UTF-8, instead of dropping it.

    Werkzeug silently discards the whole form when a file name is, say, GBK bytes, so the
    upload would be answered "no file chosen"; the sender is told what is wrong instead.
    """

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict[str, str]
    ) -> Any:
        try:
            return super()._parse_multipart(stream, mimetype, content_length, options)
        except UnicodeDecodeError as exc:
            raise NonUtf8FormPart() from exc


class CheckedRequest(Request):
    """The app's request class: multipart bodies are parsed by `CheckedFormDataParser`."""

    form_data_parser_class = CheckedFormDataParser


# C0 controls but tab, LF and CR; DEL; lone surrogates (a regex: a megabyte is checked in C).
_BAD_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def bad_character(text: str) -> str | None:
    """Return the first character no field may hold, as U+XXXX, or None."""
    match = _BAD_CHARACTER.search(text)
    return None if match is None else f"U+{ord(match.group()):04X}"


def _check(pairs: Iterable[tuple[str, str]], limit: int) -> None:
    for name, value in pairs:
        for text in (name, value):
            if len(text) > limit:
                raise InvalidInput("input_too_long", TOO_LONG, n=limit)
            if bad_character(text) is not None:
                raise InvalidInput("invalid_character", BAD_CHARACTER)


def check_request_text() -> None:
    """Refuse a portal request whose query, form fields or path carry unusable text (400)."""
    if request.path.startswith("/api/"):
        return  # the API checks its own JSON and fields, with its own error codes
    _check(request.args.items(multi=True), MAX_QUERY_CHARS)
    if request.view_args:
        strings = ((k, v) for k, v in request.view_args.items() if isinstance(v, str))
        _check(strings, MAX_QUERY_CHARS)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        form: MultiDict[str, str] = request.form
        _check(form.items(multi=True), MAX_FIELD_CHARS)
        files = ((f.name or "", f.filename or "") for f in request.files.values())
        _check(files, MAX_FIELD_CHARS)


def init_inputs(app: Flask) -> None:
    """Install the checked request class and the request-text check on the app."""
    app.request_class = CheckedRequest
    app.before_request(check_request_text)
