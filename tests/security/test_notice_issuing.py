"""Issue 11 item 5: a GET never issues a notice; issuing is a CSRF-protected POST.

Before the fix, downloading a stale notice issued and audited a new version, so a link on
another site (an <img src>, a prefetch) could make a signed-in user issue one.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.integration.test_notices import score_department
from tests.web.conftest import PASSWORD, csrf_token, text
from workflow.models import AuditEvent, Notice


def _sign_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    token = csrf_token(text(client.get("/login")))
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return client


def test_get_never_issues_and_post_needs_the_csrf_token(
    make_app: Callable[..., Flask], session: Session, world: World, store: LocalStore
) -> None:
    score_department(session, store, world, world.dep_b, world.member_b)
    world.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    session.commit()
    app = make_app(WTF_CSRF_ENABLED=True)
    scorer = _sign_in(app, "scorer")
    department = world.dep_b.id
    for url in (
        f"/progress/departments/{department}/notice.docx",
        "/progress/summary.docx",
    ):
        assert scorer.get(url).status_code == 404
    versions_url = f"/progress/departments/{department}/notices"
    issue_url = f"{versions_url}/issue"
    assert scorer.get(versions_url).status_code == 200  # the page with the form, nothing issued
    forged = scorer.post(issue_url, data={"preliminary": "1"})  # no token: another site's form
    assert forged.status_code == 400
    assert scorer.post("/progress/summary").status_code == 400
    assert session.scalars(select(Notice)).all() == []
    assert (
        session.scalars(
            select(AuditEvent).where(AuditEvent.action.in_(("notice_issued", "summary_issued")))
        ).all()
        == []
    )
    token = csrf_token(text(scorer.get(versions_url)))
    made = scorer.post(issue_url, data={"preliminary": "1", "csrf_token": token})
    assert made.status_code == 303
    (row,) = session.scalars(select(Notice)).all()
    assert row.is_preliminary and row.issued_by_id == world.scorer.id
