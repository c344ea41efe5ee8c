"""Security of every response and every form: headers, CSRF protection, API exemption."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

# No inline script or style anywhere: every asset is a file under static/.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


NO_STORE = "private, no-store"


def register_security(app: Flask) -> None:
    """Protect every form with CSRF tokens and add the security headers to every response."""
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    csrf.init_app(app)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        # Pages and downloads carry personal and assessment data: no browser or proxy keeps a
        # copy (a shared office PC's back button, a proxy cache). Only static assets may be
        # cached; a view's weaker "no-cache" is tightened too.
        if not request.path.startswith("/static/"):
            cache = response.headers.get("Cache-Control", "")
            if "no-store" not in cache:
                response.headers["Cache-Control"] = NO_STORE
        return response


def exempt_api_from_csrf(app: Flask, prefix: str = "/api/") -> None:
    """Exempt the blueprints serving `prefix`: bearer tokens are not ambient credentials.

    Call it after every blueprint is registered (it looks at the registered URL rules).
    """
    names = {
        rule.endpoint.rsplit(".", 1)[0]
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix) and "." in rule.endpoint
    }
    for name in names:
        blueprint = app.blueprints.get(name)
        if blueprint is not None:
            csrf.exempt(blueprint)
