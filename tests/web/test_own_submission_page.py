"""The review page tells a transferred member why they have no buttons, and refuses them.

Whoever did the department's work on an item — submitted it in any round, attached a file,
appealed — and was then made a reviewer, verifier or scorer is refused the item's office
actions: by the portal and by the API with the same code (`own_submission`), while an office
user who never worked on it may act.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, appealable, submit_items
from tests.web.conftest import form_version, password_hash, text
from workflow import actions
from workflow.models import Item, User
from workflow.users import create_user, issue_token, set_roles

Login = Callable[[str], FlaskClient]
NOTICE = "您曾为部门经办该事项"
REFUSAL = "不能审核本人曾为部门经办（提交、撤回、上传或删除材料、申诉）的考核事项"


def test_transferred_submitter_sees_why_and_is_refused(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    (item,) = submit_items(session, store, world, [world.item(session, world.dep_a, "1")])
    set_roles(session, world.member_a, ["reviewer"], actor=world.admin)
    session.commit()
    former = login("member_a")
    page = text(former.get(f"/review/items/{item.id}"))
    assert NOTICE in page
    assert 'value="review"' not in page
    reviewers_page = text(login("reviewer").get(f"/review/items/{item.id}"))
    assert 'value="review"' in reviewers_page
    refused = former.post(
        f"/review/items/{item.id}/action",
        data={"action": "review", "version": form_version(reviewers_page)},
    )
    assert refused.status_code == 403 and REFUSAL in text(refused)


def _colleague(session: Session, world: World) -> User:
    """A second member of department A, who can sign in."""
    user = create_user(session, "member_a2", ["department"], department=world.dep_a)
    user.password_hash = password_hash()
    return user


def _earlier_round_submitter(session: Session, store: LocalStore, w: World) -> tuple[Item, User]:
    """member_a submits the first round; returned, member_a2 resubmits it: member_a is no
    longer the latest submitter, nor did they upload anything."""
    colleague = _colleague(session, w)
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, colleague)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.return_item(session, item.id, w.reviewer, item.version, "请补充")
    actions.submit_item(session, item.id, colleague, item.version, change_note="已补充")
    assert item.submitted_by_id == colleague.id
    return item, w.member_a


def _uploader_only(session: Session, store: LocalStore, w: World) -> tuple[Item, User]:
    """member_a2 attaches the only file; member_a submits."""
    colleague = _colleague(session, w)
    item = w.item(session, w.dep_a, "1")
    version = item.version
    add_evidence(session, store, item, colleague)
    assert item.version == version  # a file keeps the version, though it adds a contributor
    actions.submit_item(session, item.id, w.member_a, item.version)
    return item, colleague


def _appellant(session: Session, store: LocalStore, w: World) -> tuple[Item, User]:
    """member_a submits; scored, member_a2 appeals (and did nothing else)."""
    colleague = _colleague(session, w)
    item = appealable(session, store, w, w.item(session, w.dep_a, "1"), w.member_a)
    actions.appeal_item(session, item.id, colleague, item.version, "已指定专人")
    return item, colleague


CASES = {
    # case: (how the item came about, the role the member is given, the refused action and
    # its body, the office user who may take it)
    "earlier_round_submitter": (_earlier_round_submitter, "reviewer", "review", {}, "reviewer"),
    "uploader_only": (_uploader_only, "reviewer", "return", {"comment": "补充"}, "reviewer"),
    "appellant": (_appellant, "scorer", "reject_appeal", {"comment": "不成立"}, "scorer2"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_department_contributor_is_refused_by_the_portal_and_the_api(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login, case: str
) -> None:
    build, role, action, body, office = CASES[case]
    item, former = build(session, store, world)
    set_roles(session, former, [role], actor=world.admin)  # transferred: no unit any more
    token = issue_token(session, former)[0]
    session.commit()
    assert former.unit_id is None and former.id in item.contributor_ids
    version = item.version

    # The portal: the notice, no button, and a post refused with the guard's words.
    portal = login(former.username)
    page = text(portal.get(f"/review/items/{item.id}"))
    assert NOTICE in page and f'value="{action}"' not in page
    refused = portal.post(
        f"/review/items/{item.id}/action", data={"action": action, "version": version, **body}
    )
    assert refused.status_code == 403 and REFUSAL in text(refused)

    # The API: the same refusal, by its code; the action is not offered either.
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answer = api.post(
        f"/api/v1/items/{item.id}/transitions",
        json={"action": action, "version": version, **body},
        headers=headers,
    )
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "own_submission"
    detail = api.get(f"/api/v1/items/{item.id}", headers=headers).get_json()
    assert action not in detail["allowed_actions"]

    # An office user who never worked on the item takes the action.
    other = login(office)
    assert f'value="{action}"' in text(other.get(f"/review/items/{item.id}"))
    done = other.post(
        f"/review/items/{item.id}/action", data={"action": action, "version": version, **body}
    )
    assert done.status_code == 303, text(done)
