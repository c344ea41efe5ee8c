"""A database outage (restart, failover) answers 503 JSON on the API, never a bare 500."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError, OperationalError

from tests.api.conftest import Cast, error_code
from web.app import create_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_database_is_a_503(tmp_path: Path) -> None:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/none",
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "STORAGE": {"STORAGE_BACKEND": "local"},
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    try:
        response = app.test_client().get(
            "/api/v1/me", headers={"Authorization": "Bearer fgf_whatever"}
        )
        assert response.status_code == 503
        assert error_code(response) == "database_unavailable"
        assert response.headers["Retry-After"] == "2"
        english = app.test_client().get(
            "/api/v1/me",
            headers={"Authorization": "Bearer fgf_whatever", "Accept-Language": "en"},
        )
        assert english.get_json()["error"]["message"].startswith("The database is unavailable")
    finally:
        app.extensions["engine"].dispose()


def test_connection_lost_mid_request_is_a_503(
    app: Flask, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    import web.api.assessments as views

    def lost(*_args: object, **_kw: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(views, "get_assessment", lost)
    response = app.test_client().get(
        f"/api/v1/assessments/{cast.world.assessment.id}/items", headers=cast.headers("reviewer")
    )
    assert response.status_code == 503
    assert error_code(response) == "database_unavailable"


def test_other_database_errors_stay_500(
    app: Flask, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    import web.api.assessments as views

    def broken(*_args: object, **_kw: object) -> None:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(views, "get_assessment", broken)
    response = app.test_client().get(
        f"/api/v1/assessments/{cast.world.assessment.id}/items", headers=cast.headers("reviewer")
    )
    assert response.status_code == 500
    assert error_code(response) == "internal_error"
