"""Issue 11, finding 9: `1234567890` was accepted as a password (ASVS 4.0.3 V2.1).

At least 12 characters, no composition rules, common or breached passwords refused; an account
that must change its password gets no API token until it has.
"""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import PASSWORD, text
from workflow.errors import Forbidden, InvalidValue
from workflow.models import User
from workflow.passwords import check_new_password
from workflow.users import create_user, issue_token, set_password

REFUSED = {
    "1234567890": "weak_password",  # the finding: 10 digits
    "short-pass1": "weak_password",  # 11 characters
    "123456789012": "common_password",
    "password12345": "common_password",
    "qwertyuiop123": "common_password",
    "iloveyou12345": "common_password",
    "abcdefghijkl": "common_password",
    "aaaaaaaaaaaaaaaa": "common_password",
    "Passw0rd!2024": "common_password",  # composition rules met, still a breached pattern
    "x" * 129: "weak_password",
}
ACCEPTED = [
    "correct horse battery staple",  # lowercase letters and spaces: no composition rules
    "今天下午三点去市政务大厅办事",  # Chinese, 14 characters
    "vermilion-otter-radish",
    "我的第 7 个密码🙂很难猜到",  # digits, spaces and an emoji are just characters
    "r" + "a quiet harbour at dawn, " * 5,  # 126 characters
]


@pytest.mark.parametrize("password", sorted(REFUSED))
def test_password_common_or_short_is_refused(password: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        check_new_password(password)
    assert caught.value.code == REFUSED[password]


@pytest.mark.parametrize("password", ACCEPTED)
def test_password_long_and_uncommon_is_accepted_without_composition_rules(password: str) -> None:
    check_new_password(password)


def test_password_built_from_the_username_is_refused() -> None:
    for password in ("zhang.san123456", "zhangsan123456"):
        with pytest.raises(InvalidValue):
            check_new_password(password, ["zhang.san", "张三"])
    check_new_password("zhang.san123456", ["li.si"])  # the same string is fine for another


def test_password_1234567890_is_refused_everywhere(
    app: Flask, session: Session, world: World
) -> None:
    """The engine (create, reset) and the portal's change-password page all refuse it."""
    with pytest.raises(InvalidValue):
        create_user(session, "wang.wu", ["reviewer"], password="1234567890")
    session.rollback()
    with pytest.raises(InvalidValue):
        set_password(session, world.member_a, "1234567890ab", actor=world.admin)
    session.rollback()
    client = app.test_client()
    client.post("/login", data={"username": "member_a", "password": PASSWORD})
    weak = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "password12345",
            "confirm_password": "password12345",
        },
    )
    assert weak.status_code == 422 and "常见密码或已泄露密码" in text(weak)
    good = "vermilion-otter-radish"
    done = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": good, "confirm_password": good},
    )
    assert done.status_code == 302


def test_password_change_required_gets_no_api_token(
    app: Flask, session: Session, world: World
) -> None:
    user = session.get(User, world.member_b.id)
    assert user is not None
    user.must_change_password = True
    session.commit()
    with pytest.raises(Forbidden):
        issue_token(session, user)
    session.rollback()
    api = app.test_client()
    body = {"username": "member_b", "password": PASSWORD}
    refused = api.post("/api/v1/tokens", json=body)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "password_change_required"
    # Changing the password in the portal lifts it.
    portal = app.test_client()
    portal.post("/login", data=body)
    new = "vermilion-otter-radish"
    changed = portal.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert changed.status_code == 302
    issued = api.post("/api/v1/tokens", json={"username": "member_b", "password": new})
    assert issued.status_code == 201
