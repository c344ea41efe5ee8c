"""The attack suite reuses the portal's fixtures: an app on the test database, a world whose
users sign in with real (light) Argon2id hashes, a login helper and the evidence store."""

from tests.web.conftest import app, login, make_app, store, world  # noqa: F401
