"""The attack suite (issue 8): XSS in every free-text field, SQL in filters, ids past 32 bits
(brute force across workers: test_sign_in_limits.py). Session fixation/replay, CSRF, the
authorization matrices and oversized or deeply nested JSON are covered where they live:
tests/web/test_auth.py, tests/web (page × role), tests/api/test_authz.py and
tests/api/test_transitions.py.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, open_appeals
from tests.web.conftest import PASSWORD
from workflow import actions
from workflow.demo import demo_pdf
from workflow.evidence import attach_evidence
from workflow.models import Item, utcnow

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert("


def _put_payloads(session: Session, store: LocalStore, w: World) -> dict[str, Item]:
    """Free text everywhere: reasons, deductions, file names, names, notes."""
    w.member_a.display_name = XSS
    w.reviewer.display_name = XSS
    returned = w.item(session, w.dep_a, "2")
    attach_evidence(
        session, store, returned.id, w.member_a, io.BytesIO(demo_pdf("x1")), XSS + ".pdf",
        note=XSS, max_size=1 << 20,
    )  # fmt: skip
    actions.submit_item(session, returned.id, w.member_a, returned.version)
    actions.return_item(session, returned.id, w.reviewer, returned.version, XSS)
    scored = w.item(session, w.dep_a, "1")
    add_evidence(session, store, scored, w.member_a, name=XSS + ".pdf")
    actions.submit_item(session, scored.id, w.member_a, scored.version)
    actions.review_item(session, scored.id, w.reviewer, scored.version, comment=XSS)
    actions.verify_item(session, scored.id, w.verifier, scored.version, comment=XSS)
    actions.score_item(
        session, scored.id, w.scorer, scored.version, scores={"1.1": 4, "1.2": 5},
        deductions={"1.1": XSS},
    )  # fmt: skip
    now = utcnow()
    open_appeals(session, w, now, now + dt.timedelta(days=3))
    actions.appeal_item(session, scored.id, w.member_a, scored.version, XSS)
    session.commit()
    return {"returned": returned, "appealed": scored}


def test_xss_payloads_are_escaped_in_every_page(
    session: Session, store: LocalStore, world: World, login: Callable[[str], FlaskClient]
) -> None:
    items = _put_payloads(session, store, world)
    pages = {
        "member_a": [f"/portal/items/{i.id}" for i in items.values()] + ["/portal/"],
        "reviewer": [f"/review/items/{i.id}" for i in items.values()]
        + ["/review/?state=appealed", "/progress/"],
        "auditor": ["/audit/", f"/audit/?item={items['appealed'].id}"],
        "admin": ["/admin/users"],
    }
    seen_escaped = 0
    for user, urls in pages.items():
        client = login(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (user, url, response.status_code)
            html = response.get_data(as_text=True)
            assert "<script>alert(" not in html, (user, url)
            assert "<img src=x onerror" not in html, (user, url)
            seen_escaped += ESCAPED in html
    assert seen_escaped >= 6  # the payloads are shown (escaped), not dropped


def test_xss_payload_in_audit_exports_is_data(
    session: Session, store: LocalStore, world: World, login: Callable[[str], FlaskClient]
) -> None:
    _put_payloads(session, store, world)
    client = login("auditor")
    csv = client.get("/audit/export.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert XSS.replace('"', '""') in csv.get_data(as_text=True)  # verbatim, CSV-quoted
    assert csv.headers.get("X-Content-Type-Options") == "nosniff"
    csv.close()  # a streamed answer holds its request's database session until closed


SQL = [
    "' OR '1'='1",
    "1; DROP TABLE items; --",
    "1 UNION SELECT password_hash FROM users",
    "%' --",
    "\\x00",
    "1e309",
    "-1",
    "9" * 40,
]


def test_sql_in_filters_is_inert(
    app: Flask, session: Session, world: World, login: Callable[[str], FlaskClient]
) -> None:
    from workflow.users import issue_token

    token, _ = issue_token(session, world.admin)
    session.commit()
    before = session.scalar(select(func.count()).select_from(Item))
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    aid = world.assessment.id
    admin = login("admin")
    for payload in SQL:
        for url in (
            f"/api/v1/assessments/{aid}/items?department={payload}",
            f"/api/v1/assessments/{aid}/items?indicator={payload}",
            f"/api/v1/assessments/{aid}/items?state={payload}",
            f"/api/v1/assessments/{aid}/items?cursor={payload}",
            f"/api/v1/audit/events?actor={payload}",
            f"/api/v1/audit/events?action={payload}",
            f"/api/v1/audit/events?after_seq={payload}",
        ):
            r = api.get(url, headers=headers)
            assert r.status_code in (200, 400), (url, r.status_code)
        for url in (
            f"/review/?department={payload}&indicator={payload}&state={payload}",
            f"/review/?after={payload}",
            f"/audit/?actor={payload}&action={payload}&department={payload}&from={payload}",
        ):
            r = admin.get(url)
            assert r.status_code in (200, 400), (url, r.status_code)
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Item)) == before


@pytest.mark.parametrize(
    "url",
    [
        "/portal/items/{big}",
        "/review/items/{big}",
        "/portal/evidence/{big}/download",
        "/api/v1/items/{big}",
        "/api/v1/assessments/{big}/items",
    ],
)
def test_ids_past_32_bits_are_not_found(
    app: Flask, world: World, login: Callable[[str], FlaskClient], url: str, session: Session
) -> None:
    from workflow.users import issue_token

    token, _ = issue_token(session, world.admin)
    session.commit()
    big = str(2**63 + uuid.uuid4().int % 1000)
    client = login("admin")
    r = client.get(url.format(big=big), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404, r.status_code


def test_session_fixation_is_cleared_at_sign_in(app: Flask, world: World) -> None:
    """What was in the session before sign-in (a planted value) does not survive it."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["planted"] = "by-attacker"
    response = client.post("/login", data={"username": "member_a", "password": PASSWORD})
    assert response.status_code == 302
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id", "").startswith(f"{world.member_a.id}:")
    assert client.get("/admin/users").status_code == 403


def test_unicode_digits_in_numbers_are_not_a_crash(
    app: Flask, session: Session, world: World, login: Callable[[str], FlaskClient]
) -> None:
    """'²' passes str.isdigit() but int() refuses it: every number parser must say 400/404."""
    from workflow.users import issue_token

    token, _ = issue_token(session, world.admin)
    session.commit()
    aid = world.assessment.id
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    import base64

    cursor = base64.urlsafe_b64encode("items:²".encode()).decode()
    for url in (
        f"/api/v1/assessments/{aid}/items?limit=²",
        f"/api/v1/assessments/{aid}/items?cursor={cursor}",
        "/api/v1/audit/events?after_seq=²",
    ):
        assert api.get(url, headers=headers).status_code == 400, url
    r = api.post(
        f"/api/v1/assessments/{aid}/routine",
        data={"kind": "meeting", "period": "2018-09", "title": "t", "department": "²"},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert r.status_code == 400
    admin = login("admin")
    for url in ("/review/?department=²", "/audit/?item=²&before=²", "/admin/users?page=²"):
        assert admin.get(url).status_code in (200, 400), url
