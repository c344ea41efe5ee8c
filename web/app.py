"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template, request
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter, Map

from storage.config import store_from_settings
from web.config import ROOT, load_config
from web.db import BoundaryFlask, get_db, init_db
from workflow.models import Assessment, Department, Item


class DatabaseIdConverter(IntegerConverter):
    """`int` converter capped at the largest id the schema can hold."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Create the app: configuration, database, request-scoped session, blueprints, CLI.

    The app is a `BoundaryFlask`: each view runs in one unit of work (`web.db`).
    """
    app = BoundaryFlask(
        __name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static")
    )
    # Every <int:…> id in a URL is a 32-bit database id: anything larger is a 404 from the
    # router, never an out-of-range query (a 500) in the database.
    app.url_map.converters["int"] = DatabaseIdConverter
    app.config.update(load_config())
    if overrides:
        app.config.update(overrides)
    init_db(app)
    # One object store per app; uploads stream into it, downloads stream out of it.
    app.extensions["store"] = store_from_settings(app.config["STORAGE"], app.config["INSTANCE_DIR"])
    # Werkzeug refuses larger bodies with a 413 before reading them (multipart overhead allowed).
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None: no limit
        app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_BYTES"]) + 1024 * 1024

    @app.get("/")
    def home() -> str:
        db = get_db()
        assessments = db.execute(select(Assessment).order_by(Assessment.year.desc())).scalars()
        rows = []
        for a in assessments:
            deps = db.scalar(
                select(func.count()).select_from(Department).where(Department.assessment_id == a.id)
            )
            items = db.scalar(
                select(func.count()).select_from(Item).where(Item.assessment_id == a.id)
            )
            rows.append({"assessment": a, "department_count": deps, "item_count": items})
        return render_template("home.html", rows=rows)

    from web.api import register_api
    from web.cli import register_cli
    from web.errors import api_exception_response
    from web.limits import init_limiter
    from web.portal import register_portal
    from web.portal.errors import exception_page
    from web.portal.inputs import init_inputs
    from web.security import exempt_api_from_csrf, register_security
    from web.security_log import configure_security_log

    configure_security_log(app)

    @app.errorhandler(Exception)
    def _any_error(exc: Exception) -> Any:
        """Answer every error (`web.errors.classify`): JSON under /api/, elsewhere a page."""
        if request.path.startswith("/api/"):
            return api_exception_response(exc)
        return exception_page(exc)

    import web.tasks  # noqa: F401  (the job queue; its outbox wake-up is registered on import)

    init_inputs(app)  # first of the before_request hooks: refuse unusable text before anything
    register_cli(app)
    init_limiter(app)
    register_security(app)
    register_portal(app)
    register_api(app)  # the API's blueprints: /api/v1, the notices' endpoints included
    from web.health import bp as health_bp

    app.register_blueprint(health_bp)
    exempt_api_from_csrf(app)  # keep last: it looks at every blueprint registered above
    return app
