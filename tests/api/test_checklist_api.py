"""The verifier's checklist over HTTP: verify takes the answers, the item detail returns them."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.factories import add_evidence
from workflow import actions
from workflow.models import Item

CHECKS = [
    {"code": "1-1", "text": "是否成立工作领导小组", "method": "实地考核"},
    {"code": "1-2", "text": "是否有专人负责", "method": "实地考核"},
]


def test_verify_over_http_answers_the_checklist(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    item = w.item(session, w.dep_a, "1")
    item.indicator.check_points = CHECKS  # as install_scheme stores the scheme's
    add_evidence(session, app.extensions["store"], item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    session.commit()
    url = f"/api/v1/items/{item.id}"
    verifier = cast.headers("verifier")
    before = client.get(url, headers=verifier).get_json()
    assert before["check_points"] == CHECKS and before["checks"] is None
    body = {"action": "verify", "version": before["version"]}
    missing = client.post(f"{url}/transitions", json=body, headers=verifier)
    assert missing.status_code == 422 and error_code(missing) == "check_required"
    assert "1-2 是否有专人负责" in missing.get_json()["error"]["message"]
    wrong = client.post(
        f"{url}/transitions", json={**body, "checks": {"1-1": "yes"}}, headers=verifier
    )
    assert wrong.status_code == 400 and error_code(wrong) == "invalid_type"
    answers = {"1-1": {"answer": "yes"}, "1-2": {"answer": "na", "note": "由局长兼任"}}
    done = client.post(f"{url}/transitions", json={**body, "checks": answers}, headers=verifier)
    assert done.status_code == 200, done.get_json()
    expected = [
        {**CHECKS[0], "answer": "yes", "note": None},
        {**CHECKS[1], "answer": "na", "note": "由局长兼任"},
    ]
    assert done.get_json()["checks"] == expected
    scorer = client.get(url, headers=cast.headers("scorer")).get_json()
    assert scorer["state"] == "verified" and scorer["checks"] == expected


def _reviewed(app: Flask, session: Session, cast: Cast) -> Item:
    """Item 1 of department A, reviewed, its indicator with the check points CHECKS."""
    w = cast.world
    item = w.item(session, w.dep_a, "1")
    item.indicator.check_points = CHECKS
    add_evidence(session, app.extensions["store"], item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    session.commit()
    return item


def test_bulk_verify_over_http_needs_the_attestation(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    item = _reviewed(app, session, cast)
    body = {"action": "verify", "items": [{"id": item.id, "version": item.version}]}
    verifier = cast.headers("verifier")
    plain = client.post(
        "/api/v1/bulk-transitions", json={**body, "dry_run": True}, headers=verifier
    )
    assert plain.status_code == 200
    assert plain.get_json()["results"][0]["code"] == "check_required"
    done = client.post(
        "/api/v1/bulk-transitions", json={**body, "all_checks_yes": True}, headers=verifier
    )
    assert done.status_code == 200 and done.get_json()["results"][0]["status"] == "ok"
    detail = client.get(f"/api/v1/items/{item.id}", headers=verifier).get_json()
    assert [c["answer"] for c in detail["checks"]] == ["yes", "yes"]
    wrong = client.post(
        "/api/v1/bulk-transitions", json={**body, "all_checks_yes": "yes"}, headers=verifier
    )
    assert wrong.status_code == 400


def test_item_list_and_detail_name_the_check_points_answered_no(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    """The scorer's list names which verified items had a 否 (`failed_checks`), as the
    portal's 待评分 queue does: null before a verification with check points, [] with none."""
    w = cast.world
    item = _reviewed(app, session, cast)
    scorer = cast.headers("scorer")
    listed = f"/api/v1/assessments/{w.assessment.id}/items"
    before = client.get(listed, headers=scorer).get_json()["items"]
    assert {i["id"]: i["failed_checks"] for i in before}[item.id] is None
    answers = {"1-1": {"answer": "no", "note": "未见成立文件"}, "1-2": {"answer": "yes"}}
    actions.verify_item(session, item.id, w.verifier, item.version, checks=answers)
    session.commit()
    after = client.get(f"{listed}?state=verified", headers=scorer).get_json()["items"]
    assert [(i["id"], i["failed_checks"]) for i in after] == [(item.id, ["1-1"])]
    detail = client.get(f"/api/v1/items/{item.id}", headers=scorer).get_json()
    assert detail["failed_checks"] == ["1-1"]
    other = w.item(session, w.dep_a, "3")
    assert (
        client.get(f"/api/v1/items/{other.id}", headers=scorer).get_json()["failed_checks"] is None
    )


def test_the_item_list_keeps_only_items_with_a_no_on_request(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    """Walk: a scorer's script fetched every item and dropped those whose `failed_checks` was
    empty, page after page. `failed_checks=1` keeps, in the query itself, the items whose
    verification answered a check point 否 — not one whose note merely quotes a "no"."""
    w = cast.world
    failed = _reviewed(app, session, cast)
    quoted = w.item(session, w.dep_b, "1")  # the same indicator: the same check points
    add_evidence(session, app.extensions["store"], quoted, w.member_b)
    actions.submit_item(session, quoted.id, w.member_b, quoted.version)
    actions.review_item(session, quoted.id, w.reviewer, quoted.version)
    actions.verify_item(
        session, failed.id, w.verifier, failed.version,
        checks={"1-1": {"answer": "no", "note": "未见成立文件"}, "1-2": {"answer": "yes"}},
    )  # fmt: skip
    note = '上次答 "answer":"no"，已整改'
    actions.verify_item(
        session, quoted.id, w.verifier, quoted.version,
        checks={"1-1": {"answer": "yes", "note": note}, "1-2": {"answer": "na"}},
    )  # fmt: skip
    waiting = w.item(session, w.dep_a, "2")
    add_evidence(session, app.extensions["store"], waiting, w.member_a)
    actions.submit_item(session, waiting.id, w.member_a, waiting.version)
    session.commit()
    listed = f"/api/v1/assessments/{w.assessment.id}/items"
    scorer = cast.headers("scorer")

    def ids(query: str, role: str = "scorer") -> list[int]:
        got = client.get(f"{listed}?{query}", headers=cast.headers(role))
        assert got.status_code == 200, got.get_json()
        return [i["id"] for i in got.get_json()["items"]]

    assert ids("failed_checks=1") == [failed.id] == ids("failed_checks=true&state=verified")
    assert ids("failed_checks=1&state=submitted") == []
    assert ids(f"failed_checks=1&department={w.dep_b.id}") == []
    assert {failed.id, quoted.id, waiting.id} <= set(ids("failed_checks=0&limit=500"))
    assert ids("failed_checks=1", role="own") == [failed.id]  # their own department's only
    assert ids("failed_checks=1", role="other") == []
    wrong = client.get(f"{listed}?failed_checks=yes", headers=scorer)
    assert wrong.status_code == 400 and error_code(wrong) == "invalid_parameter"
    assert "failed_checks" in wrong.get_json()["error"]["message"]
