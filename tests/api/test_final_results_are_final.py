"""Issue 11, finding 4 over HTTP: results are final only once every appeal is decided."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.factories import add_evidence
from workflow import actions
from workflow.models import Item, utcnow

FIX = {"scores": {"1.1": 4, "1.2": 5}, "deductions": {"1.1": "更正"}, "comment": "更正"}


def _scored(app: Flask, session: Session, cast: Cast, item: Item) -> None:
    w = cast.world
    member = w.member_a if item.department_id == w.dep_a.id else w.member_b
    add_evidence(session, app.extensions["store"], item, member)
    actions.submit_item(session, item.id, member, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    actions.score_item(session, item.id, w.scorer, item.version, **FIX)


def test_api_finalisation_waits_for_pending_appeals(
    app: Flask,
    client: FlaskClient,
    session: Session,
    cast: Cast,
    item_of: Callable[[str, str], Item],
) -> None:
    w = cast.world
    appealed, untouched = item_of("a", "1"), item_of("b", "1")
    for item in (appealed, untouched):
        _scored(app, session, cast, item)
    a = w.assessment
    a.published_at = a.appeal_opens_at = utcnow() - dt.timedelta(days=5)
    a.appeal_closes_at = utcnow() + dt.timedelta(days=1)
    actions.appeal_item(session, appealed.id, w.member_a, appealed.version, "已按时报送")
    a.appeal_closes_at = utcnow() - dt.timedelta(seconds=1)  # the window has now closed
    session.commit()
    aid = a.id

    def transition(item: Item, role: str, body: dict[str, object]) -> object:
        session.refresh(item)
        return client.post(
            f"/api/v1/items/{item.id}/transitions",
            json={"version": item.version, **body},
            headers=cast.headers(role),
        )

    reopen = client.post(
        f"/api/v1/assessments/{aid}/reopen", json={"reason": "更正"}, headers=cast.headers("admin")
    )
    assert reopen.status_code == 409 and error_code(reopen) == "not_final"
    assert "申诉待决定" in reopen.get_json()["error"]["message"]
    published = client.post(
        f"/api/v1/assessments/{aid}/publish", json={"days": 5}, headers=cast.headers("admin")
    )
    assert published.status_code == 409 and error_code(published) == "appeals_pending"

    decided = transition(appealed, "scorer2", {"action": "rescore", **FIX})
    assert decided.status_code == 200, decided.get_json()  # type: ignore[attr-defined]
    refused = transition(untouched, "scorer2", {"action": "rescore", **FIX})
    assert refused.status_code == 409  # type: ignore[attr-defined]
    assert error_code(refused) == "assessment_final"  # type: ignore[arg-type]

    reopen = client.post(
        f"/api/v1/assessments/{aid}/reopen", json={"reason": "更正"}, headers=cast.headers("admin")
    )
    assert reopen.status_code == 200 and reopen.get_json()["status"] == "reopened"
