"""API test fixtures: an app on the test database (SQLite and PostgreSQL), a client, tokens."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.factories import World
from web.app import create_app
from workflow.demo import demo_pdf
from workflow.models import Item
from workflow.users import create_user, issue_token, set_active

#: The roles of the authorization matrix, as names of `Cast` tokens.
ROLES = (
    "own",
    "other",
    "reviewer",
    "verifier",
    "scorer",
    "auditor",
    "admin",
    "anonymous",
    "disabled",
)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on the test database, with local storage under tmp_path."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "STORAGE": {"STORAGE_BACKEND": "local"},
            "MAX_UPLOAD_BYTES": 2 * 1024 * 1024,
            "LOGIN_LIMIT_PER_USER": "5 per minute",
            "LOGIN_LIMIT_PER_ADDRESS": "8 per minute",
            "LOGIN_DELAY_SECONDS": 0,  # the count limits alone (the delay: tests/security)
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    yield app
    app.extensions["engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@dataclass
class Cast:
    """Tokens of every role in the matrix ("anonymous" has none)."""

    world: World
    tokens: dict[str, str | None]

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        """Return request headers carrying the role's bearer token."""
        token = self.tokens[role]
        headers = dict(extra)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers


@pytest.fixture
def cast(session: Session, world: World) -> Cast:
    """A token for each role; the disabled user's token was issued before disabling."""
    w = world
    users = {
        "own": w.member_a,
        "other": w.member_b,
        "reviewer": w.reviewer,
        "verifier": w.verifier,
        "scorer": w.scorer,
        "auditor": w.auditor,
        "admin": w.admin,
    }
    tokens: dict[str, str | None] = {r: issue_token(session, u)[0] for r, u in users.items()}
    ghost = create_user(session, "ghost_a", ["department"], department=w.dep_a)
    tokens["disabled"] = issue_token(session, ghost)[0]
    set_active(session, ghost, False, actor=w.admin)
    tokens["anonymous"] = None
    for role in ("reviewer2", "scorer2"):
        tokens[role] = issue_token(session, getattr(w, role))[0]
    session.commit()
    return Cast(world=w, tokens=tokens)


def pdf_upload(name: str = "材料.pdf", seed: str = "x", **fields: str) -> dict[str, Any]:
    """Return multipart data with a small real PDF as `file`."""
    return {"file": (io.BytesIO(demo_pdf(seed)), name), **fields}


def error_code(response: TestResponse) -> str:
    """Return the contract error code of a response (asserting the exact shape)."""
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, response.data[:300]
    assert set(body["error"]) == {"code", "message"}, body
    code: str = body["error"]["code"]
    return code


@pytest.fixture
def item_of(session: Session, world: World) -> Callable[[str, str], Item]:
    """Return the item of department "a" or "b" and an indicator code."""

    def get(dep: str, code: str) -> Item:
        return world.item(session, world.dep_a if dep == "a" else world.dep_b, code)

    return get
