"""One department's item from draft to scored, entirely over HTTP, on local storage and S3."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from storage import ObjectStore
from tests.api.conftest import Cast, error_code, pdf_upload
from workflow.demo import demo_pdf
from workflow.models import Item


@pytest.fixture(params=["local", "s3"])
def store_kind(request: pytest.FixtureRequest, app: Flask) -> str:
    """Run on the app's local store, then on an S3 store (moto) swapped in."""
    if request.param == "s3":
        store: ObjectStore = request.getfixturevalue("s3_store")
        app.extensions["store"] = store
    return str(request.param)


def test_draft_to_scored_over_http(
    client: FlaskClient, cast: Cast, item_of: Callable[[str, str], Item], store_kind: str
) -> None:
    item_id = item_of("a", "1").id
    own, reviewer, verifier, scorer = (
        cast.headers(r) for r in ("own", "reviewer", "verifier", "scorer")
    )

    me = client.get("/api/v1/me", headers=own).get_json()
    assert me["username"] == "member_a" and me["roles"] == ["department"]
    assert me["department"]["id"] == cast.world.dep_a.id

    start = client.get(f"/api/v1/items/{item_id}", headers=own)
    assert start.status_code == 200
    item = start.get_json()
    # No evidence yet, so nothing to do: submitting needs a file.
    assert item["state"] == "draft" and item["allowed_actions"] == []
    assert [s["code"] for s in item["sub_items"]] == ["1.1", "1.2"]
    assert item["sub_items"][0]["max_points"] == "5.00" and item["total"] is None

    # Upload a file with a Chinese name, then download it byte for byte.
    up = client.post(
        f"/api/v1/items/{item_id}/evidence",
        headers=own,
        data=pdf_upload("领导小组文件.pdf", seed="scenario", sub_item="1.1", note="红头文件"),
        content_type="multipart/form-data",
    )
    assert up.status_code == 201, up.get_json()
    evidence = up.get_json()
    content = demo_pdf("scenario")
    assert evidence["sha256"] == hashlib.sha256(content).hexdigest()
    assert evidence["size"] == len(content) and evidence["sub_item"] == "1.1"
    assert evidence["filename"] == "领导小组文件.pdf" and evidence["uploaded_by"] == "member_a"
    assert evidence["content_type"] == "application/pdf"

    down = client.get(f"/api/v1/evidence/{evidence['id']}/content", headers=reviewer)
    assert down.status_code == 200
    assert down.data == content
    assert down.headers["Content-Type"] == "application/pdf"
    assert down.headers["X-Content-Type-Options"] == "nosniff"
    disposition = down.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{quote('领导小组文件.pdf', safe='')}" in disposition

    # A second file, removed again: it is gone from the item but kept in the audit trail.
    extra = client.post(
        f"/api/v1/items/{item_id}/evidence",
        headers=own,
        data=pdf_upload("多余.pdf", seed="extra"),
        content_type="multipart/form-data",
    ).get_json()
    assert client.delete(f"/api/v1/evidence/{extra['id']}", headers=own).status_code == 204
    item = client.get(f"/api/v1/items/{item_id}", headers=own).get_json()
    assert [e["id"] for e in item["evidence"]] == [evidence["id"]]
    assert item["allowed_actions"] == ["submit"]

    def act(headers: dict[str, str], action: str, **body: object) -> dict[str, object]:
        version = client.get(f"/api/v1/items/{item_id}", headers=headers).get_json()["version"]
        response = client.post(
            f"/api/v1/items/{item_id}/transitions",
            headers=headers,
            json={"action": action, "version": version, **body},
        )
        assert response.status_code == 200, response.get_json()
        result: dict[str, object] = response.get_json()
        return result

    assert act(own, "submit")["state"] == "submitted"
    returned = act(reviewer, "return", comment="请补充专人负责的文件")
    assert returned["state"] == "returned" and returned["return_reason"] == "请补充专人负责的文件"
    resubmitted = act(own, "submit", change_note="已补充专人负责的文件")
    assert resubmitted["state"] == "submitted" and resubmitted["round"] == 2
    changes = resubmitted["round_changes"]
    assert changes["change_note"] == "已补充专人负责的文件"  # type: ignore[index]
    assert changes["ended_by"] == "return" and changes["added"] == []  # type: ignore[index]
    assert act(reviewer, "review")["state"] == "reviewed"
    verified = act(verifier, "verify")
    assert verified["state"] == "verified" and verified["allowed_actions"] == []

    # The scorer sees `score`; a score below the maximum without a reason is a 422.
    assert client.get(f"/api/v1/items/{item_id}", headers=scorer).get_json()["allowed_actions"] == [
        "score"
    ]
    version = verified["version"]
    bad = client.post(
        f"/api/v1/items/{item_id}/transitions",
        headers=scorer,
        json={"action": "score", "version": version, "scores": {"1.1": 5, "1.2": 3.5}},
    )
    assert bad.status_code == 422 and error_code(bad) == "deduction_reason_required"
    scored = act(
        scorer,
        "score",
        scores={"1.1": 5, "1.2": "3.5"},
        deductions={"1.2": "专人负责文件不完整"},
    )
    assert scored["state"] == "scored" and scored["total"] == "8.50"
    subs = {s["code"]: s for s in scored["sub_items"]}  # type: ignore[attr-defined]
    assert subs["1.1"]["score"] == "5.00" and subs["1.2"]["score"] == "3.50"
    assert subs["1.2"]["deduction_reason"] == "专人负责文件不完整"

    history = client.get(f"/api/v1/items/{item_id}/history", headers=own).get_json()
    actions = [e["action"] for e in history["events"]]
    assert actions == [
        "evidence_uploaded",
        "evidence_uploaded",
        "evidence_removed",
        "submit",
        "return",
        "submit",
        "review",
        "verify",
        "score",
    ]
    # Before publication (公示) the department's history names no score.
    assert "total" not in history["events"][-1]["payload"]
    assert "scores" not in history["events"][-1]["payload"]
    office = client.get(f"/api/v1/items/{item_id}/history", headers=scorer).get_json()
    assert office["events"][-1]["payload"]["total"] == "8.50"
    assert history["events"][-1]["at"].endswith("Z")

    results = client.get(
        f"/api/v1/assessments/{cast.world.assessment.id}/results", headers=cast.headers("auditor")
    ).get_json()["results"]
    first = results[0]
    assert first["department"]["id"] == cast.world.dep_a.id
    assert first["total"] == "8.50" and first["converted"] == "0.17"
    # One item of ten scored: no rank on a partial sum, and the answer says why.
    assert first["rank"] is None and first["unranked_reason"] == "not_all_scored"
    assert not first["complete"] and first["items_scored"] == 1

    check = client.get("/api/v1/audit/verify", headers=cast.headers("auditor")).get_json()
    assert check["ok"] is True and check["first_bad_seq"] is None
    assert check["reconciliation"]["ok"] is True and check["reconciliation"]["differences"] == []
    assert check["head"]["seq"] == check["events"]
