"""The JSON API v1 (../shared/API.md): a blueprint over the engine's operations.

Views stay thin: they authenticate, parse, call one operation of `workflow`, commit once and
serialise. Domain errors become the contract's error bodies in `web.errors`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask

from web.errors import api_exception_response

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Failed logins allowed per username, and per client address, before a 429.
DEFAULT_LOGIN_RATE_LIMIT = "10 per 15 minutes"
DEFAULT_LOGIN_RATE_LIMIT_ADDRESS = "50 per 15 minutes"


def register_api(app: Flask) -> None:
    """Register the API blueprint; login limits count in the app's limiter (`web.limits`)."""
    app.config.setdefault("LOGIN_RATE_LIMIT", DEFAULT_LOGIN_RATE_LIMIT)
    app.config.setdefault("LOGIN_RATE_LIMIT_ADDRESS", DEFAULT_LOGIN_RATE_LIMIT_ADDRESS)
    app.config.setdefault("API_MAX_JSON_BYTES", 1024 * 1024)
    app.register_blueprint(bp)


@bp.errorhandler(Exception)
def _api_error(exc: Exception) -> Any:
    """Answer every error raised in an API view as JSON (never an HTML page)."""
    return api_exception_response(exc)


from web.api import assessments, audit, calendar, docs, items, routine, tokens  # noqa: E402, F401 - views
