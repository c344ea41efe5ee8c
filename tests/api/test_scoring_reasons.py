"""The scorer's reasons over HTTP: a rescore says why (`rescore_reason_required`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.api.conftest import Cast, error_code
from tests.factories import add_evidence
from workflow import actions
from workflow.models import Item, utcnow


def _verified(app: Flask, session: Session, cast: Cast, item: Item) -> None:
    w = cast.world
    add_evidence(session, app.extensions["store"], item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    session.commit()


def _transition(
    client: FlaskClient, session: Session, cast: Cast, item: Item, role: str, body: dict[str, Any],
    **headers: str,
) -> TestResponse:  # fmt: skip
    session.refresh(item)
    return client.post(
        f"/api/v1/items/{item.id}/transitions",
        json={"version": item.version, **body},
        headers=cast.headers(role, **headers),
    )


def test_api_rescore_without_its_reason_is_refused(
    app: Flask,
    client: FlaskClient,
    session: Session,
    cast: Cast,
    item_of: Callable[[str, str], Item],
) -> None:
    w = cast.world
    item = item_of("a", "1")
    _verified(app, session, cast, item)
    actions.score_item(
        session, item.id, w.scorer, item.version,
        scores={"1.1": 5, "1.2": 3}, deductions={"1.2": "未见任命文件"},
    )  # fmt: skip
    a = w.assessment
    a.published_at = a.appeal_opens_at = utcnow() - dt.timedelta(days=1)
    a.appeal_closes_at = utcnow() + dt.timedelta(days=3)
    actions.appeal_item(session, item.id, w.member_a, item.version, "任命文件已于三月印发")
    session.commit()

    body = {"action": "rescore", "scores": {"1.1": 5, "1.2": 5}}
    for comment in (None, "", "   "):
        refused = _transition(client, session, cast, item, "scorer2", {**body, "comment": comment})
        assert refused.status_code == 422, refused.get_json()
        assert error_code(refused) == "rescore_reason_required"
    english = _transition(client, session, cast, item, "scorer2", body, **{"Accept-Language": "en"})
    message = english.get_json()["error"]["message"]
    assert "department" in message and not any("\u4e00" <= ch <= "\u9fff" for ch in message)
    session.refresh(item)
    assert item.state == "appealed"
    decided = _transition(
        client, session, cast, item, "scorer2", {**body, "comment": "任命文件已补，改为满分"}
    )
    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["state"] == "scored"


def test_api_keeps_a_note_given_with_full_marks_and_refuses_a_stray_reason(
    app: Flask,
    client: FlaskClient,
    session: Session,
    cast: Cast,
    item_of: Callable[[str, str], Item],
) -> None:
    """A reason beside full marks was answered 200 and dropped; one for a point the indicator
    lacks too. The first is kept as the point's note, the second refused."""
    item = item_of("a", "1")
    _verified(app, session, cast, item)
    scores = {"1.1": 5, "1.2": 3}
    stray = {"1.2": "未见分工文件", "2.1": "别的指标的原因"}
    refused = _transition(
        client, session, cast, item, "scorer", {"action": "score", "scores": scores,
                                                "deductions": stray},
    )  # fmt: skip
    assert refused.status_code == 422 and error_code(refused) == "unknown_sub_item"
    noted = {"1.1": "领导小组文件经实地核查属实", "1.2": "未见分工文件"}
    scored = _transition(
        client, session, cast, item, "scorer", {"action": "score", "scores": scores,
                                                "deductions": noted},
    )  # fmt: skip
    assert scored.status_code == 200, scored.get_json()
    detail = client.get(f"/api/v1/items/{item.id}", headers=cast.headers("scorer")).get_json()
    assert {s["code"]: s["deduction_reason"] for s in detail["sub_items"]} == noted
