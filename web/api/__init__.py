"""The JSON API v1 (../shared/API.md): blueprints over the engine's operations.

Views stay thin: they authenticate, parse, call one operation of `workflow` and serialise;
the request boundary (`web.db`) commits once. Errors become the contract's error bodies in
`web.errors`. The notices' endpoints (`web.api.notices`) keep their own blueprint, `notices`.
"""

from __future__ import annotations

from flask import Flask

from web.api import (
    assessments,
    audit,
    bulk,
    calendar,
    docs,
    items,
    jobs,
    notices,
    notifications,
    routine,
    schemes,
    tokens,
    units,
)
from web.api.blueprint import bp

VIEW_MODULES = (
    assessments,
    audit,
    bulk,
    calendar,
    docs,
    items,
    jobs,
    notices,
    notifications,
    routine,
    schemes,
    tokens,
    units,
)


def register_api(app: Flask) -> None:
    """Register the API's blueprints; sign-in limits are the portal's (`web.limits`)."""
    from web.api.contract import init_contract_checks

    app.config.setdefault("API_MAX_JSON_BYTES", 1024 * 1024)
    app.register_blueprint(bp)
    app.register_blueprint(notices.bp)
    init_contract_checks(app)  # every answer against the generated document (tests)
