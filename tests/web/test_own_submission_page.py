"""The review page tells a transferred submitter why they have no buttons, and refuses them."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, submit_items
from tests.web.conftest import form_version, text
from workflow.users import set_roles

Login = Callable[[str], FlaskClient]


def test_transferred_submitter_sees_why_and_is_refused(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    (item,) = submit_items(session, store, world, [world.item(session, world.dep_a, "1")])
    set_roles(session, world.member_a, ["reviewer"], actor=world.admin)
    session.commit()
    former = login("member_a")
    page = text(former.get(f"/review/items/{item.id}"))
    assert "该事项由您本人为部门提交或申诉" in page
    assert 'value="review"' not in page
    reviewers_page = text(login("reviewer").get(f"/review/items/{item.id}"))
    assert 'value="review"' in reviewers_page
    refused = former.post(
        f"/review/items/{item.id}/action",
        data={"action": "review", "version": form_version(reviewers_page)},
    )
    assert refused.status_code == 403 and "不能审核本人为部门提交或申诉的考核事项" in text(refused)
