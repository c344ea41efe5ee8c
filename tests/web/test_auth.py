"""Sign-in, sessions, rate limits, CSRF and security headers."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import PASSWORD, csrf_token, text
from workflow.models import User
from workflow.users import set_active


def test_login_lands_on_portal_and_logout_ends_it(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/portal/").status_code == 302  # anonymous: sent to sign in
    response = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert response.status_code == 302 and response.location.endswith("/portal/")
    page = client.get("/portal/")
    assert page.status_code == 200
    assert "member_a" in text(page) and "部门填报员" in text(page) and "退出" in text(page)
    assert text(page).count("/portal/items/") == 10
    out = client.post("/logout")
    assert out.status_code == 302 and "/login" in out.location
    again = client.get("/portal/")
    assert again.status_code == 302 and "/login" in again.location


def test_office_user_lands_on_review(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "reviewer", "password": PASSWORD})
    assert response.location.endswith("/review/")


def test_admin_and_auditor_land_where_their_work_is(app: Flask) -> None:
    for username, target in (("admin", "/progress/"), ("auditor", "/audit/")):
        response = app.test_client().post(
            "/login", data={"username": username, "password": PASSWORD}
        )
        assert response.location.endswith(target), (username, response.location)


def test_wrong_password_is_refused_with_a_message(app: Flask) -> None:
    client = app.test_client()
    response = client.post("/login", data={"username": "member_a", "password": "wrong-password"})
    assert response.status_code == 200 and "用户名或密码错误" in text(response)
    unknown = client.post("/login", data={"username": "nobody", "password": "wrong-password"})
    assert "用户名或密码错误" in text(unknown)
    assert client.get("/portal/").status_code == 302


def test_login_is_rate_limited_per_username_and_address(
    make_app: Callable[..., Flask], world: World
) -> None:
    app = make_app(LOGIN_LIMIT_PER_USER="3 per minute", LOGIN_LIMIT_PER_ADDRESS="6 per minute")
    client = app.test_client()
    for _ in range(3):
        bad = client.post("/login", data={"username": "member_a", "password": "nope-nope-nope"})
        assert bad.status_code == 200
    blocked = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert blocked.status_code == 429 and "登录失败次数过多" in text(blocked)
    # Other usernames from the same address go on until the address limit.
    for _ in range(3):
        response = client.post("/login", data={"username": "member_b", "password": "nope-nope"})
        assert response.status_code == 200
    assert client.post("/login", data={"username": "scorer", "password": PASSWORD}).status_code == (
        429
    )
    other_address = app.test_client()
    ok = other_address.post(
        "/login",
        data={"username": "scorer", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert ok.status_code == 302


def test_successful_logins_do_not_count_against_the_limit(
    make_app: Callable[..., Flask], world: World
) -> None:
    app = make_app(LOGIN_LIMIT_PER_USER="2 per minute")
    for _ in range(3):
        client = app.test_client()
        ok = client.post("/login", data={"username": "member_a", "password": PASSWORD})
        assert ok.status_code == 302


def test_cookie_copied_before_logout_no_longer_works(app: Flask) -> None:
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    cookie = client.get_cookie("session")
    assert cookie is not None
    stolen = cookie.value
    assert client.post("/logout").status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    response = replay.get("/portal/")
    assert response.status_code == 302 and "/login" in response.location


def test_disabling_a_user_ends_their_session(app: Flask, session: Session, world: World) -> None:
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert client.get("/portal/").status_code == 200
    user = session.get(User, world.member_a.id)
    assert user is not None
    set_active(session, user, False, actor=world.admin)
    session.commit()
    response = client.get("/portal/")
    assert response.status_code == 302 and "/login" in response.location
    again = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert again.status_code == 200 and "已停用" in text(again)


def test_must_change_password_first(app: Flask, session: Session, world: World) -> None:
    user = session.get(User, world.verifier.id)
    assert user is not None
    user.must_change_password = True
    session.commit()
    client = app.test_client()
    response = client.post("/login", data={"username": "verifier", "password": PASSWORD})
    assert response.location.endswith("/account/password")
    assert client.get("/review/").location.endswith("/account/password")
    weak = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
    )
    assert weak.status_code == 422 and "密码至少" in text(weak)
    new = "a-much-better-password"
    done = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert done.status_code == 302
    assert client.get("/review/").status_code == 200  # this session was re-issued
    session.expire_all()
    assert session.get(User, world.verifier.id).must_change_password is False  # type: ignore[union-attr]


def test_csrf_token_required_on_forms(make_app: Callable[..., Flask], world: World) -> None:
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    refused = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert refused.status_code == 400 and "表单已过期或无效" in text(refused)
    token = csrf_token(text(client.get("/login")))
    ok = client.post(
        "/login", data={"username": "member_a", "password": PASSWORD, "csrf_token": token}
    )
    assert ok.status_code == 302
    page = text(client.get("/portal/"))
    assert client.post("/logout").status_code == 400  # no token
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302


def test_api_blueprints_are_exempt_from_csrf(make_app: Callable[..., Flask], world: World) -> None:
    app = make_app(WTF_CSRF_ENABLED=True)
    from web.security import csrf

    api = [bp for name, bp in app.blueprints.items() if name.split(".")[0].startswith("api")]
    portal = [app.blueprints[name] for name in ("auth", "portal", "review")]
    exempt = csrf._exempt_blueprints
    assert all(bp in exempt for bp in api)
    assert not any(bp in exempt for bp in portal)


def test_security_headers_on_every_response(
    app: Flask, login: Callable[[str], FlaskClient]
) -> None:
    client = login("member_a")
    for path in ("/", "/login", "/portal/", "/static/css/app.css", "/no-such-page"):
        response = client.get(path)
        csp = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_session_cookie_flags(make_app: Callable[..., Flask], world: World) -> None:
    app = make_app(SESSION_COOKIE_SECURE=True)
    client = app.test_client()
    response = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_login_next_is_local_only(app: Flask) -> None:
    client = app.test_client()
    evil = client.post(
        "/login",
        data={"username": "member_a", "password": PASSWORD, "next": "//evil.example/"},
    )
    assert evil.location.endswith("/portal/")
    client.post("/logout")
    good = client.post(
        "/login",
        data={"username": "member_a", "password": PASSWORD, "next": "/portal/items/1"},
    )
    assert good.location.endswith("/portal/items/1")
