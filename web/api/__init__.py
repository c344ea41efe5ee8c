"""The JSON API v1 (../shared/API.md): a blueprint over the engine's operations.

Views stay thin: they authenticate, parse, call one operation of `workflow` and serialise;
the request boundary (`web.db`) commits once. Errors become the contract's error bodies in
`web.errors`.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def register_api(app: Flask) -> None:
    """Register the API blueprint; sign-in limits are the portal's (`web.limits`)."""
    from web.api.contract import init_contract_checks

    app.config.setdefault("API_MAX_JSON_BYTES", 1024 * 1024)
    app.register_blueprint(bp)
    init_contract_checks(app)  # every answer against the generated document (tests)


from web.api import (  # noqa: E402, F401 - the views register themselves on `bp`
    assessments,
    audit,
    bulk,
    calendar,
    docs,
    items,
    routine,
    tokens,
)
