"""Every page × role: who gets the page, who is refused (403), who is sent to sign in."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import PASSWORD
from workflow.actions import submit_item

OK, NO, LOGIN, NF = 200, 403, 302, 404
ROLES = ("anonymous", "member_a", "reviewer", "verifier", "scorer", "auditor", "admin")
# page: expected status per role, in ROLES order
EXPECTED = {
    "/portal/": (LOGIN, OK, NO, NO, NO, NO, NO),
    "/portal/items/{item}": (LOGIN, OK, NO, NO, NO, NO, NO),
    "/review/": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/review/items/{item}": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/progress/": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/audit/": (LOGIN, NO, NO, NO, NO, OK, OK),
    "/audit/verify": (LOGIN, NO, NO, NO, NO, OK, OK),
    "/audit/export.jsonl": (LOGIN, NO, NO, NO, NO, OK, OK),
    "/admin/users": (LOGIN, NO, NO, NO, NO, NO, OK),
    "/admin/users/{user}": (LOGIN, NO, NO, NO, NO, NO, OK),
    "/admin/assessment": (LOGIN, NO, NO, NO, NO, NO, OK),
    "/portal/routine": (LOGIN, OK, NO, NO, NO, NO, NO),
    "/review/routine": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/review/routine/quota": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/review/routine/quota.csv": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/progress/departments/{dep}/notices": (LOGIN, NO, OK, OK, OK, OK, OK),
    # Nothing issued yet: the summary download is a 404 for readers (a GET never issues).
    "/progress/summary.docx": (LOGIN, NO, NF, NF, NF, NF, NF),
    "/progress/results.xlsx": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/progress/matrix.xlsx": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/review/routine/quota.xlsx": (LOGIN, NO, OK, OK, OK, OK, OK),
    "/audit/export.xlsx": (LOGIN, NO, NO, NO, NO, OK, OK),
    "/admin/users.xlsx": (LOGIN, NO, NO, NO, NO, NO, OK),
    "/admin/departments": (LOGIN, NO, NO, NO, NO, NO, OK),
    "/admin/assessments/{aid}/calendar": (LOGIN, NO, NO, NO, NO, NO, OK),
    "/account/password": (LOGIN, OK, OK, OK, OK, OK, OK),
    "/": (OK, OK, OK, OK, OK, OK, OK),
}


def test_every_page_for_every_role(app: Flask, session: Session, world: World) -> None:
    item = world.item(session, world.dep_a, "1").id
    failures = []
    for n, role in enumerate(ROLES):
        client = app.test_client()
        if role != "anonymous":
            client.post("/login", data={"username": role, "password": PASSWORD})
        for page, statuses in EXPECTED.items():
            path = page.format(
                item=item, user=world.member_b.id, dep=world.dep_b.id, aid=world.assessment.id
            )
            status = client.get(path).status_code
            if status != statuses[n]:
                failures.append(f"{role} {path}: {status}, expected {statuses[n]}")
    assert not failures, "\n".join(failures)


def test_posts_by_the_wrong_role_are_refused(
    app: Flask, session: Session, world: World, store: LocalStore
) -> None:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    version = str(item.version)

    def as_user(username: str) -> FlaskClient:
        client = app.test_client()
        client.post("/login", data={"username": username, "password": PASSWORD})
        return client

    review = {"action": "review", "version": version}
    assert (
        as_user("member_a").post(f"/review/items/{item.id}/action", data=review).status_code == 403
    )
    assert (
        as_user("auditor").post(f"/review/items/{item.id}/action", data=review).status_code == 403
    )
    assert (
        as_user("verifier").post(f"/review/items/{item.id}/action", data=review).status_code == 403
    )
    submit = {"action": "submit", "version": version}
    assert as_user("scorer").post(f"/portal/items/{item.id}/action", data=submit).status_code == 403
    unknown = {"action": "submit", "version": version}  # a department action on the office route
    assert (
        as_user("reviewer").post(f"/review/items/{item.id}/action", data=unknown).status_code == 400
    )
    session.refresh(item)
    assert item.state == "submitted"
