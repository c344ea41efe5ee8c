"""The attack suite reuses the portal's fixtures: an app on the test database, a world whose
users sign in with real (light) Argon2id hashes and a login helper. The evidence `store` is
the local one of tests/conftest.py, which the app uses too."""

from tests.web.conftest import app, login, make_app, world  # noqa: F401
