"""Tokens: real passwords (Argon2), rate limiting, revocation, disabled users, English."""

from __future__ import annotations

import datetime as dt

from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from workflow.models import ApiToken, User, utcnow
from workflow.users import create_user

PASSWORD = "correct horse battery"
# Real Argon2id, with cheap parameters so that the suite stays fast (verify reads them from
# the hash); production hashes use the library's recommended parameters.
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
CHEAP_HASH = CHEAP.hash(PASSWORD)


def make_user(session: Session, cast: Cast, name: str = "li_lei") -> User:
    user = create_user(session, name, ["department"], department=cast.world.dep_a)
    user.password_hash = CHEAP_HASH
    session.commit()
    return user


def test_password_hashed_by_create_user(client: FlaskClient, session: Session) -> None:
    """The real path: create_user hashes with the production parameters, login verifies."""
    create_user(session, "wang_fang", ["reviewer"], password=PASSWORD)
    session.commit()
    ok = client.post("/api/v1/tokens", json={"username": "wang_fang", "password": PASSWORD})
    assert ok.status_code == 201 and ok.get_json()["user"]["roles"] == ["reviewer"]
    bad = client.post("/api/v1/tokens", json={"username": "wang_fang", "password": PASSWORD + "!"})
    assert bad.status_code == 401


def test_issue_use_list_and_revoke(client: FlaskClient, session: Session, cast: Cast) -> None:
    make_user(session, cast)
    response = client.post(
        "/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD, "name": "脚本"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["token"].startswith("fgf_") and body["user"]["username"] == "li_lei"
    assert body["user"]["department"]["id"] == cast.world.dep_a.id
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/v1/me", headers=headers).get_json()["username"] == "li_lei"
    # Only the hash is stored.
    stored = session.execute(select(ApiToken.token_hash)).scalars().all()
    assert body["token"] not in stored

    listed = client.get("/api/v1/tokens", headers=headers).get_json()
    assert [t["name"] for t in listed["tokens"]] == ["脚本"] and listed["next_cursor"] is None
    assert "token" not in listed["tokens"][0]

    # Someone else cannot revoke it (404); the owner can, and then it stops working.
    other = client.delete(f"/api/v1/tokens/{body['token_id']}", headers=cast.headers("other"))
    assert other.status_code == 404
    assert client.delete(f"/api/v1/tokens/{body['token_id']}", headers=headers).status_code == 204
    gone = client.get("/api/v1/me", headers=headers)
    assert gone.status_code == 401 and error_code(gone) == "not_authenticated"
    # An admin may revoke anyone's token.
    body = client.post("/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD})
    token_id = body.get_json()["token_id"]
    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=cast.headers("admin"))
    assert revoked.status_code == 204
    # Successful logins do not count towards the limit (five per minute in the tests).
    for _ in range(6):
        ok = client.post("/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD})
        assert ok.status_code == 201


def test_bad_credentials(client: FlaskClient, session: Session, cast: Cast) -> None:
    make_user(session, cast)
    for body in (
        {"username": "li_lei", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},  # an unknown user: the dummy hash
    ):
        response = client.post("/api/v1/tokens", json=body)
        assert response.status_code == 401 and error_code(response) == "invalid_credentials"
    english = client.post(
        "/api/v1/tokens",
        json={"username": "li_lei", "password": "nope"},
        headers={"Accept-Language": "en"},
    )
    assert english.get_json()["error"]["message"] == "Wrong username or password."
    for body in ({"username": "li_lei"}, {"username": 1, "password": "x"}, {"user": "li_lei"}):
        assert client.post("/api/v1/tokens", json=body).status_code == 400
    for value in ("", "Bearer", "Bearer ", "Basic abc", "Bearer nope", "Bearer " + "x" * 5000):
        response = client.get("/api/v1/me", headers={"Authorization": value})
        assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_disabled_user_cannot_log_in_or_use_tokens(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    user = make_user(session, cast)
    token = client.post("/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {token.get_json()['token']}"}
    # Disable without revoking: the token must stop working at once all the same.
    user.is_active = False
    session.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    again = client.post("/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD})
    assert again.status_code == 401


def test_rate_limit_per_user(app: Flask, client: FlaskClient, session: Session, cast: Cast) -> None:
    """Five failures per user per minute (test config); then even the right password is a 429."""
    make_user(session, cast)
    for n in range(5):
        bad = client.post(
            "/api/v1/tokens",
            json={"username": "li_lei", "password": "guess"},
            environ_base={"REMOTE_ADDR": f"10.0.0.{n}"},  # different addresses, same user
        )
        assert bad.status_code == 401
    blocked = client.post(
        "/api/v1/tokens",
        json={"username": "LI_LEI", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.1.1"},
    )
    assert blocked.status_code == 429 and error_code(blocked) == "too_many_attempts"
    assert int(blocked.headers["Retry-After"]) >= 1
    # Another user from another address is not affected.
    make_user(session, cast, "han_meimei")
    ok = client.post(
        "/api/v1/tokens",
        json={"username": "han_meimei", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.2.1"},
    )
    assert ok.status_code == 201


def test_rate_limit_per_address(client: FlaskClient, session: Session, cast: Cast) -> None:
    """Eight failures per address per minute (test config), whatever the usernames."""
    make_user(session, cast)
    for n in range(8):
        make_user(session, cast, f"u{n}")
        bad = client.post("/api/v1/tokens", json={"username": f"u{n}", "password": "guess"})
        assert bad.status_code == 401
    blocked = client.post("/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD})
    assert blocked.status_code == 429
    elsewhere = client.post(
        "/api/v1/tokens",
        json={"username": "li_lei", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert elsewhere.status_code == 201


def test_expired_and_revoked_tokens_say_so(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    """A script's token that ran out or was revoked gets the contract's 401
    `not_authenticated` with a message saying to ask for a new one, not "not signed in or
    token invalid" as for a typo; a token that never was ours keeps that message."""
    make_user(session, cast)

    def issue() -> tuple[int, dict[str, str]]:
        body = client.post("/api/v1/tokens", json={"username": "li_lei", "password": PASSWORD})
        data = body.get_json()
        return data["token_id"], {"Authorization": f"Bearer {data['token']}"}

    expired_id, expired = issue()
    row = session.get_one(ApiToken, expired_id)
    row.expires_at = utcnow() - dt.timedelta(seconds=1)
    session.commit()
    revoked_id, revoked = issue()
    assert client.delete(f"/api/v1/tokens/{revoked_id}", headers=revoked).status_code == 204
    for headers, word, english in ((expired, "过期", "expired"), (revoked, "撤销", "revoked")):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401 and error_code(response) == "not_authenticated"
        assert word in response.get_json()["error"]["message"]
        response = client.get("/api/v1/me", headers={**headers, "Accept-Language": "en"})
        assert english in response.get_json()["error"]["message"]
    unknown = client.get("/api/v1/me", headers={"Authorization": "Bearer fgf_nope"})
    assert unknown.get_json()["error"]["message"] == "未登录或令牌无效"
