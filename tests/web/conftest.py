"""Fixtures for the portal: an app on the test database, a world with real passwords, login."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage.local import LocalStore
from tests.factories import World
from web.app import create_app
from workflow.users import set_password

PASSWORD = "correct-horse-battery"
# Argon2id with light parameters: verification reads them from the hash, so sign-in goes
# through the real check_password while each test login costs milliseconds, not a second.
_LIGHT = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
_HASH: list[str] = []


def password_hash() -> str:
    """Return a (light) Argon2id hash of PASSWORD, computed once per run."""
    if not _HASH:
        _HASH.append(_LIGHT.hash(PASSWORD))
    return _HASH[0]


@pytest.fixture
def world(world: World, session: Session) -> World:
    """The 2018 assessment (tests/conftest.py) with users who can all sign in with PASSWORD."""
    w = world
    for user in (
        w.member_a,
        w.member_b,
        w.reviewer,
        w.reviewer_in_a,
        w.verifier,
        w.scorer,
        w.scorer2,
        w.auditor,
        w.admin,
    ):
        # Through the engine (audited, as `audit verify` replays it), with the light hash.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("workflow.users.hash_password", lambda _password: password_hash())
            set_password(session, user, PASSWORD, actor=None)
    session.commit()
    return w


@pytest.fixture
def make_app(
    db_url: str, tmp_path: Path, local_store: LocalStore
) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database and on the tests' local `store`; keywords override."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        config: dict[str, Any] = {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path),
            "SECRET_KEY": "test-secret",
            "STORAGE": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(local_store.root)},
            "WTF_CSRF_ENABLED": False,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["engine"].dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask], world: World) -> Flask:
    """The app, with the world installed."""
    return make_app()


@pytest.fixture
def login(app: Flask) -> Callable[[str], FlaskClient]:
    """Return a new client signed in as the named user."""

    def sign_in(username: str) -> FlaskClient:
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return sign_in


def text(response: TestResponse) -> str:
    """Return the response body as text."""
    return response.get_data(as_text=True)


def csrf_token(html: str) -> str:
    """Return the CSRF token of the first form on a page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_version(html: str) -> int:
    """Return the item version carried by the page's forms."""
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no version field on the page"
    return int(match.group(1))


@pytest.fixture
def base_url(make_app: Callable[..., Flask], world: World) -> Iterator[str]:
    """The app (CSRF on) served from a thread on a free local port, for the browser tests."""
    from tests.web.browser import live_server

    with live_server(make_app(WTF_CSRF_ENABLED=True)) as url:
        yield url
