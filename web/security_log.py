"""Where the security log goes, what each record says about its request, and refused access.

``SECURITY_LOG`` names the file (default ``<INSTANCE_DIR>/security.log``; ``-`` is standard
error). Every gunicorn worker appends to it; the handler reopens the file when logrotate moved
it. Each record inside a request carries the client address, method, path and the signed-in
user's id (session or bearer token) besides its own fields.
"""

from __future__ import annotations

import logging
import sys
from logging.handlers import WatchedFileHandler
from pathlib import Path

from flask import Flask, Response, g, has_request_context, request, session

from workflow.security_log import LOGGER_NAME, JsonLineFormatter, security_event

_INSTALLED: list[logging.Handler] = []


class SecurityLogFile(WatchedFileHandler):
    """The log file; a record it cannot write goes to standard error instead of failing.

    Standard error is the server's error log. Without this, a file that could not be opened (its
    folder vanished, or it was made read-only) made `WatchedFileHandler` raise from `emit`:
    every sign-in, refusal and account change then failed with a 500. Now the request goes
    on, the record is kept on standard error with the reason, and the file is tried again for
    the next record (it is written again once it can be opened). A failed write (a full disk)
    ends here too, with the record, where the logging module printed a traceback without it.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record to the file; on an OS error, to standard error (see above)."""
        try:
            super().emit(record)
        except OSError:  # opening the file: the logging module lets that escape
            self.stream = None  # open again next time
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """Say why on standard error, then write the record itself there."""
        reason = sys.exc_info()[1]
        try:
            text = self.format(record)
        except Exception:  # the formatter failed: keep what there is
            text = repr(record.getMessage())
        sys.stderr.write(
            f"security log {self.baseFilename} not written ({reason!r}); the record: {text}\n"
        )


class RequestContextFilter(logging.Filter):
    """Add who asked, from where and for what, when the record is written inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the request's fields; never drop a record."""
        if has_request_context():
            fields: dict[str, object] = {
                "ip": request.remote_addr,
                "method": request.method,
                "path": request.path,
            }
            api_user = g.get("api_user")
            session_user = str(session.get("_user_id", "")).partition(":")[0]
            if api_user is not None:
                fields["actor_id"] = api_user.id
            elif session_user.isdecimal():
                fields["actor_id"] = int(session_user)
            record.request_fields = fields
        return True


def configure_security_log(app: Flask) -> None:
    """Send ``fangguanfu.security`` to the configured file, one JSON object a line."""
    target = str(
        app.config.get("SECURITY_LOG") or Path(app.config["INSTANCE_DIR"]) / "security.log"
    )
    logger = logging.getLogger(LOGGER_NAME)
    while _INSTALLED:  # a second app in the same process writes where it says
        old = _INSTALLED.pop()
        logger.removeHandler(old)
        old.close()
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        handler = SecurityLogFile(target, encoding="utf-8", delay=True)
    _INSTALLED.append(handler)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(RequestContextFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # its own file, not mixed into the server's error log

    @app.after_request
    def _refused_access(response: Response) -> Response:
        if response.status_code == 403:
            security_event("access_denied", status=403, endpoint=request.endpoint)
        return response
