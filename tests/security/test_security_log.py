"""Issue 11, finding 10: security events were not logged.

The security log is one JSON object a line on the logger ``fangguanfu.security``, written to
the file SECURITY_LOG names. These tests read that file.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import PASSWORD
from workflow.models import AuditEvent, User
from workflow.users import set_active, set_roles


def _records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) and r["time"] and r["event"] for r in records)
    return records


def _events(path: Path, event: str) -> list[dict[str, Any]]:
    return [r for r in _records(path) if r["event"] == event]


def _member_a_signed_in(
    make_app: Callable[..., Flask], tmp_path: Path
) -> tuple[Flask, FlaskClient, Path]:
    log = tmp_path / "security.log"
    app = make_app(SECURITY_LOG=str(log))
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    return app, client, log


def test_security_log_records_sign_ins_rate_limits_and_tokens(
    make_app: Callable[..., Flask], world: World, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "security.log"
    app = make_app(SECURITY_LOG=str(log), LOGIN_DELAY_AFTER=2, LOGIN_DELAY_SECONDS=30)
    portal = app.test_client()
    evil = 'member_a\n{"event":"sign_in_succeeded"}'
    portal.post("/login", data={"username": evil, "password": "secret-guess-1"})
    portal.post("/login", data={"username": "member_a", "password": "secret-guess-2"})
    portal.post("/login", data={"username": "member_a", "password": "secret-guess-3"})
    limited = portal.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert limited.status_code == 429
    assert portal.post(
        "/login", data={"username": "member_b", "password": PASSWORD}
    ).status_code == (302)
    api = app.test_client()
    assert (
        api.post("/api/v1/tokens", json={"username": "scorer", "password": "x"}).status_code == 401
    )
    created = api.post("/api/v1/tokens", json={"username": "scorer", "password": PASSWORD})
    assert created.status_code == 201
    token, token_id = created.get_json()["token"], created.get_json()["token_id"]
    revoked = api.delete(f"/api/v1/tokens/{token_id}", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 204

    failed = _events(log, "sign_in_failed")
    assert [(r["channel"], r["username"], r["reason"]) for r in failed] == [
        ("portal", evil, "bad_credentials"),  # the newline stayed inside the JSON string
        ("portal", "member_a", "bad_credentials"),
        ("portal", "member_a", "bad_credentials"),
        ("api", "scorer", "bad_credentials"),
    ]
    assert all(r["ip"] == "127.0.0.1" and r["path"] for r in failed)
    assert failed[2]["delay"] == 30  # the second failure of member_a starts the delay
    [limit] = _events(log, "sign_in_rate_limited")
    assert limit["username"] == "member_a" and limit["reason"] == "delay"
    assert limit["retry_after"] >= 29
    succeeded = _events(log, "sign_in_succeeded")
    assert [(r["channel"], r["username"]) for r in succeeded] == [
        ("portal", "member_b"),
        ("api", "scorer"),
    ]
    [issued] = _events(log, "token_created")
    assert issued["token_id"] == token_id and issued["user_id"] == world.scorer.id
    [gone] = _events(log, "token_revoked")
    assert gone["token_id"] == token_id and gone["actor_id"] == world.scorer.id
    text = log.read_text(encoding="utf-8")
    for secret in (PASSWORD, "secret-guess", token):  # never a password or a token
        assert secret not in text


def test_security_log_records_refused_access_and_hidden_resources(
    make_app: Callable[..., Flask], world: World, session: Session, tmp_path: Path
) -> None:
    app, client, log = _member_a_signed_in(make_app, tmp_path)
    assert client.get("/admin/users").status_code == 403
    other = world.item(session, world.dep_b, "1")
    assert client.get(f"/portal/items/{other.id}").status_code == 404
    own = world.item(session, world.dep_a, "1")
    assert client.get(f"/portal/items/{own.id}").status_code == 200
    assert client.get("/portal/items/999999").status_code == 404  # missing: not a security event
    token = app.test_client().post(
        "/api/v1/tokens", json={"username": "member_a", "password": PASSWORD}
    )
    bearer = {"Authorization": f"Bearer {token.get_json()['token']}"}
    assert app.test_client().get(f"/api/v1/items/{other.id}", headers=bearer).status_code == 404

    [denied] = _events(log, "access_denied")
    assert denied["status"] == 403 and denied["path"] == "/admin/users"
    assert denied["actor_id"] == world.member_a.id
    hidden = _events(log, "foreign_resource_hidden")
    assert [(r["resource"], r["id"], r["path"]) for r in hidden] == [
        ("item", other.id, f"/portal/items/{other.id}"),
        ("item", other.id, f"/api/v1/items/{other.id}"),
    ]
    assert all(
        r["user_id"] == r["actor_id"] == world.member_a.id
        and r["department_id"] == world.dep_b.id
        and r["user_unit_id"] == world.dep_a.unit_id
        for r in hidden
    )


def test_security_log_records_password_and_account_changes_which_are_audited(
    make_app: Callable[..., Flask], world: World, session: Session, tmp_path: Path
) -> None:
    _app, client, log = _member_a_signed_in(make_app, tmp_path)
    new = "vermilion-otter-radish"
    changed = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert changed.status_code == 302
    user = session.get(User, world.member_b.id)
    assert user is not None
    set_roles(session, user, ["reviewer"], department=None, actor=world.admin)
    set_active(session, user, False, actor=world.admin)
    session.commit()

    [password] = _events(log, "password_changed")
    assert password["user_id"] == world.member_a.id and password["by"] == world.member_a.id
    [roles] = _events(log, "account_roles_changed")
    assert roles["roles"] == ["reviewer"] and roles["before"]["roles"] == ["department"]
    assert roles["by"] == world.admin.id
    [disabled] = _events(log, "account_disabled")
    assert disabled["user_id"] == world.member_b.id
    audited = set(session.scalars(select(AuditEvent.action)))
    assert {"password_changed", "roles_changed", "user_disabled", "user_created"} <= audited


def test_a_security_log_that_cannot_be_opened_fails_no_request(
    make_app: Callable[..., Flask], world: World, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The log's folder vanishes (a log rotation gone wrong): sign-ins still work, the records
    go to standard error (the server's error log) meanwhile, and to the file once it is back."""
    folder = tmp_path / "logs"
    log = folder / "security.log"
    app = make_app(SECURITY_LOG=str(log))
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": "wrong-password-1"})
    assert len(_events(log, "sign_in_failed")) == 1
    shutil.rmtree(folder)
    capfd.readouterr()
    signed_in = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert signed_in.status_code == 302
    err = capfd.readouterr().err
    assert f"security log {log} not written" in err and "FileNotFoundError" in err
    line = err.split("the record: ", 1)[1].splitlines()[0]
    assert json.loads(line)["event"] == "sign_in_succeeded"
    folder.mkdir()
    client.post("/logout")
    client.post("/login", data={"username": "member_a", "password": "wrong-password-2"})
    assert [r["event"] for r in _records(log)] == ["sign_out", "sign_in_failed"]
