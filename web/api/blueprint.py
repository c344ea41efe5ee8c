"""The blueprint of the JSON API v1, on which every view module of `web.api` puts its routes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
