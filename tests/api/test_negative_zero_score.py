"""Issue 11, finding 18: a score of "-0" is refused, never stored as 0 or as "-0.00"."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.factories import add_evidence
from workflow import actions
from workflow.errors import InvalidValue
from workflow.models import AuditEvent, Item, Score


@pytest.fixture
def verified(app: Flask, session: Session, cast: Cast) -> Item:
    """Department A's item 1 (points 1.1 and 1.2, 5 each), verified and ready to score."""
    w = cast.world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, app.extensions["store"], item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    session.commit()
    return item


def _nothing_scored(session: Session, item: Item) -> None:
    session.expire_all()
    assert session.get_one(Item, item.id).state == "verified"
    assert session.scalar(select(func.count()).select_from(Score)) == 0
    assert not session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "score")
    )


@pytest.mark.parametrize("literal", ['"-0"', "-0", "-0.0", '"-0.00"', '" -0 "'])
def test_negative_zero_score_is_refused_over_the_api(
    client: FlaskClient, session: Session, cast: Cast, verified: Item, literal: str
) -> None:
    body = (
        f'{{"action": "score", "version": {verified.version}, "scores": {{"1.1": {literal}, '
        f'"1.2": 5}}, "deductions": {{"1.1": "未成立领导小组"}}}}'
    )
    response = client.post(
        f"/api/v1/items/{verified.id}/transitions",
        data=body,
        content_type="application/json",
        headers=cast.headers("scorer"),
    )
    assert response.status_code == 422, response.get_json()
    assert error_code(response) == "score_out_of_range"
    assert "负号" in response.get_json()["error"]["message"]
    _nothing_scored(session, verified)


def test_negative_zero_score_is_refused_by_the_engine(
    session: Session, cast: Cast, verified: Item
) -> None:
    with pytest.raises(InvalidValue) as refused:
        actions.score_item(
            session, verified.id, cast.world.scorer, verified.version,
            scores={"1.1": "-0", "1.2": 5}, deductions={"1.1": "未成立领导小组"},
        )  # fmt: skip
    assert refused.value.code == "score_out_of_range"
    session.rollback()
    _nothing_scored(session, verified)


def test_zero_score_is_stored_as_0_00(
    client: FlaskClient, session: Session, cast: Cast, verified: Item
) -> None:
    response = client.post(
        f"/api/v1/items/{verified.id}/transitions",
        json={
            "action": "score",
            "version": verified.version,
            "scores": {"1.1": "0", "1.2": 5},
            "deductions": {"1.1": "未成立领导小组"},
        },
        headers=cast.headers("scorer"),
    )
    assert response.status_code == 200, response.get_json()
    scores = {s["code"]: s["score"] for s in response.get_json()["sub_items"]}
    assert scores == {"1.1": "0.00", "1.2": "5.00"}
    event = session.execute(select(AuditEvent).where(AuditEvent.action == "score")).scalar_one()
    assert '"1.1":"0.00"' in event.payload
