"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask, g, render_template
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.config import ROOT, load_config
from workflow.db import make_engine, make_sessionmaker
from workflow.models import Assessment, Department, Item


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Create the app: configuration, database, request-scoped session, blueprints, CLI."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(load_config())
    if overrides:
        app.config.update(overrides)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = make_sessionmaker(engine)

    @app.teardown_appcontext
    def _close_session(exc: BaseException | None) -> None:
        session: Session | None = g.pop("db", None)
        if session is not None:
            if exc is not None:
                session.rollback()
            session.close()

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
            rows.append({"assessment": a, "departments": deps, "items": items})
        return render_template("home.html", rows=rows)

    from web.cli import register_cli
    from web.errors import register_api_errors

    register_api_errors(app)
    register_cli(app)
    # Blueprints register here, one line each (API, portal, notices, …).
    return app


def get_db() -> Session:
    """Return the request's session (one per request, closed at teardown)."""
    from flask import current_app

    if "db" not in g:
        g.db = current_app.extensions["sessionmaker"]()
    session: Session = g.db
    return session
