"""Issue 11, finding 8: sessions never timed out (a cookie was accepted for 31 days)."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import World
from tests.web.conftest import PASSWORD, csrf_token, text


def _age_session(client: FlaskClient, **seconds_ago: float) -> None:
    """Move the session's clocks back, as if the time had passed."""
    with client.session_transaction() as sess:
        for key, ago in seconds_ago.items():
            sess[key] = time.time() - ago


def _ends_with_message(client: FlaskClient, message: str) -> None:
    page = client.get("/portal/")
    assert page.status_code == 302 and "/login" in page.location
    login = client.get(page.location)
    assert message in text(login), text(login)
    assert client.get("/portal/").status_code == 302  # the session is gone, not only this page


def test_session_idle_timeout_ends_the_session_with_a_chinese_message(
    login: Callable[[str], FlaskClient],
) -> None:
    client = login("member_a")
    _age_session(client, last_seen_at=29 * 60)
    assert client.get("/portal/").status_code == 200  # 29 minutes idle: still signed in
    _age_session(client, last_seen_at=31 * 60)
    _ends_with_message(client, "分钟未操作")


def test_session_activity_keeps_the_idle_clock_running(login: Callable[[str], FlaskClient]) -> None:
    client = login("member_a")
    for _ in range(3):  # a request every 20 minutes for an hour keeps the session alive
        _age_session(client, last_seen_at=20 * 60)
        assert client.get("/portal/").status_code == 200


def test_session_absolute_lifetime_ends_even_an_active_session(
    login: Callable[[str], FlaskClient],
) -> None:
    client = login("member_a")
    _age_session(client, signed_in_at=11.9 * 3600, last_seen_at=60)
    assert client.get("/portal/").status_code == 200
    _age_session(client, signed_in_at=12.1 * 3600, last_seen_at=60)
    _ends_with_message(client, "本次登录已满 12 小时")


def test_session_timeouts_are_configurable(make_app: Callable[..., Flask], world: World) -> None:
    app = make_app(SESSION_IDLE_MINUTES=5, SESSION_LIFETIME_HOURS=1)
    client = app.test_client()
    signed_in = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert signed_in.status_code == 302
    _age_session(client, last_seen_at=6 * 60)
    _ends_with_message(client, "您已超过 5 分钟未操作")
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    _age_session(client, signed_in_at=3700, last_seen_at=1)
    _ends_with_message(client, "本次登录已满 1 小时")


def test_session_cookie_without_sign_in_time_is_not_accepted(
    login: Callable[[str], FlaskClient],
) -> None:
    """A cookie issued before the timeouts existed (no clocks in it) no longer signs anyone in."""
    client = login("member_a")
    with client.session_transaction() as sess:
        sess.pop("signed_in_at")
        sess.pop("last_seen_at")
    assert client.get("/portal/").status_code == 302


def test_a_page_at_work_keeps_its_session_alive(login: Callable[[str], FlaskClient]) -> None:
    """js/session.js posts /session/alive while its user types: the idle clock starts again."""
    client = login("member_a")
    page = text(client.get("/portal/"))
    assert 'id="session-keeper"' in page and 'data-idle-seconds="1800.0"' in page
    assert 'data-alive-url="/session/alive"' in page and "js/session.js" in page
    _age_session(client, last_seen_at=29 * 60)
    alive = client.post("/session/alive")
    assert alive.status_code == 204 and alive.headers["Cache-Control"] == "no-store"
    with client.session_transaction() as sess:
        assert time.time() - sess["last_seen_at"] < 60
    _age_session(client, last_seen_at=20 * 60)
    token = client.get("/session/token")
    assert token.status_code == 200 and token.headers["Cache-Control"] == "no-store"
    assert len(token.get_json()["csrf_token"]) > 20
    # Asking is not working: the idle clock goes on, and the answer says what is left.
    assert 9 * 60 < token.get_json()["idle_seconds_left"] <= 10 * 60
    with client.session_transaction() as sess:
        assert time.time() - sess["last_seen_at"] >= 20 * 60
    _age_session(client, last_seen_at=31 * 60)  # too late: the session ends as on any page
    gone = client.post("/session/alive")
    assert gone.status_code == 302 and "/login" in gone.location
    assert client.get("/session/token").status_code == 302


def test_the_session_keeper_is_only_on_signed_in_pages(app: Flask) -> None:
    assert 'id="session-keeper"' not in text(app.test_client().get("/login"))
    assert app.test_client().post("/session/alive").status_code == 302


def test_keep_alive_needs_the_csrf_header(make_app: Callable[..., Flask], world: World) -> None:
    client = make_app(WTF_CSRF_ENABLED=True).test_client()
    login_page = text(client.get("/login"))
    signed_in = client.post(
        "/login",
        data={"username": "member_a", "password": PASSWORD, "csrf_token": csrf_token(login_page)},
    )
    assert signed_in.status_code == 302
    assert client.post("/session/alive").status_code == 400
    token = client.get("/session/token").get_json()["csrf_token"]
    assert client.post("/session/alive", headers={"X-CSRFToken": token}).status_code == 204
