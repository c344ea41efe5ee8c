"""The attack suite reuses the portal's fixtures: an app on the test database, a world whose
users sign in with real (light) Argon2id hashes and a login helper. The evidence `store` is
the local one of tests/conftest.py, which the app uses too. The demonstration data (`flask
demo`, `flask demo --complete`) serves the walks over every page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from tests.web.conftest import (  # noqa: F401
    PASSWORD,
    app,
    login,
    make_app,
    password_hash,
    world,
)
from workflow.demo import run_demo
from workflow.notices import issue_notice, issue_summary
from workflow.scheme import Scheme
from workflow.schemes import import_shipped
from workflow.setup import install_scheme
from workflow.users import create_user

DEMO_PASSWORD = PASSWORD
# One signed-in user per role of the demo data (None: an anonymous visitor).
DEMO_ROLES: dict[str, str | None] = {
    "anonymous": None,
    "department": "dept01",
    "reviewer": "reviewer1",
    "verifier": "verifier1",
    "scorer": "scorer1",
    "auditor": "auditor1",
    "admin": "admin",
}


@dataclass
class Demo:
    """The demo data on the test database and an app serving it."""

    app: Flask
    shape: str


def _light_hash(password: str) -> str:
    assert password == DEMO_PASSWORD
    return password_hash()


@pytest.fixture(params=["demo", "complete"])
def demo(
    request: pytest.FixtureRequest,
    session: Session,
    scheme_2018: Scheme,
    make_app: Callable[..., Flask],  # noqa: F811
    store: ObjectStore,
    monkeypatch: pytest.MonkeyPatch,
) -> Demo:
    """The demo data in both shapes; every demo user signs in with DEMO_PASSWORD."""
    monkeypatch.setattr("workflow.users.hash_password", _light_hash)
    # A sign-in as an unknown name checks a decoy hash (so timing does not tell who exists,
    # tests/unit/test_decoy_hash.py); the walks post hundreds of them. The decoy is light in
    # tests (`_light_password_hashing` in tests/conftest.py).
    assessment = install_scheme(session, scheme_2018)
    admin = create_user(session, "admin", ["admin"], password=DEMO_PASSWORD)
    run_demo(
        session,
        store,
        assessment,
        password=DEMO_PASSWORD,
        admin=admin,
        complete=request.param == "complete",
    )
    if request.param == "complete":  # notices are issued (a POST), then only downloaded
        for department in assessment.departments:
            issue_notice(session, store, assessment, department, admin)
        issue_summary(session, store, assessment, admin)
    import_shipped(session)  # the scheme library's pages (as `init` fills it)
    session.commit()
    # The walks sign every role in again and again and post hostile values to /login: the
    # sign-in limits (tested on their own in test_sign_in_limits.py) are lifted here.
    demo_app = make_app(
        WTF_CSRF_ENABLED=True,
        LOGIN_LIMIT_PER_USER="100000 per minute",
        LOGIN_LIMIT_PER_ADDRESS="100000 per minute",
        LOGIN_DELAY_AFTER=100000,
    )
    return Demo(demo_app, request.param)
