"""The one rate limiter of the app, shared by the portal's login and the JSON API.

Use it as ``from web.limits import limiter`` and decorate views with ``@limiter.limit(...)``.
The storage is Redis when ``REDIS_URL`` is set (several gunicorn workers share the counts),
else process memory; it is named explicitly so Flask-Limiter does not warn.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# No storage_uri here: it comes from the app's config in init_limiter (known only then).
limiter = Limiter(key_func=get_remote_address)


def init_limiter(app: Flask) -> None:
    """Bind the limiter to the app, storing counts in Redis when configured, else in memory."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    # The limiter is shared by every app of the process: do not inherit another app's switch.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
