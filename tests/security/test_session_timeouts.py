"""Issue 11, finding 8: sessions never timed out (a cookie was accepted for 31 days)."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import World
from tests.web.conftest import PASSWORD, text


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
