"""/healthz and /readyz: for a load balancer, a container's healthcheck, a monitor.

`/healthz` answers as long as the process serves requests (no database, no store): a
liveness probe. `/readyz` runs the checks of `workflow.health` and answers 200 when the
portal can serve (status `ok` or `degraded`), 503 when the database, its schema or the
object store cannot (`down`). Neither needs a sign-in, and neither says more than statuses
and times: no addresses, user names or error texts (those go to the log, and in words to the
admins' status page, /admin/status).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from web.db import get_db
from web.tasks import last_beat
from workflow.health import DOWN, check_health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """The installation's checks; 503 when an essential one fails."""
    result = check_health(get_db(), current_app.extensions["store"], last_beat)
    response = jsonify(result.as_dict())
    response.headers["Cache-Control"] = "no-store"
    return response, 503 if result.status == DOWN else 200
