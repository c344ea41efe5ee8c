"""Every JSON answer in the suite is checked against the generated document; this proves it.

`API_CHECK_RESPONSES` is on in every test app (it follows `TESTING`): a view that returns a
field its model does not declare, a value of the wrong type, or a status its operation does
not list, fails the request that produced it, and with it the test.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api.conftest import Cast, error_code
from web.api import tokens
from web.api.contract import ContractViolation, parse_body
from web.api.schemas import TransitionBody
from workflow.errors import BadRequest


def test_checks_are_on_in_the_api_tests(app: Flask) -> None:
    assert app.config["API_CHECK_RESPONSES"] is True


def test_an_undeclared_field_fails(
    client: FlaskClient, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tokens.user_body
    monkeypatch.setattr(tokens, "user_body", lambda user: {**real(user), "password_hash": "x"})
    with pytest.raises(ContractViolation, match="password_hash"):
        client.get("/api/v1/me", headers=cast.headers("own"))


def test_a_wrong_type_fails(
    client: FlaskClient, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tokens.user_body
    monkeypatch.setattr(tokens, "user_body", lambda user: {**real(user), "id": str(user.id)})
    with pytest.raises(ContractViolation, match="id"):
        client.get("/api/v1/me", headers=cast.headers("own"))


def test_a_missing_field_fails(
    client: FlaskClient, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tokens.user_body

    def without_roles(user: Any) -> dict[str, Any]:
        body = real(user)
        del body["roles"]
        return body

    monkeypatch.setattr(tokens, "user_body", without_roles)
    with pytest.raises(ContractViolation, match="roles"):
        client.get("/api/v1/me", headers=cast.headers("own"))


def test_an_undocumented_status_fails(
    client: FlaskClient, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tokens.json_response
    monkeypatch.setattr(tokens, "json_response", lambda body, status=200: real(body, 202))
    with pytest.raises(ContractViolation, match="status 202 is not documented"):
        client.get("/api/v1/me", headers=cast.headers("own"))


def test_the_same_answer_passes_when_checks_are_off(
    app: Flask, client: FlaskClient, cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tokens.user_body
    monkeypatch.setattr(tokens, "user_body", lambda user: {**real(user), "password_hash": "x"})
    app.config["API_CHECK_RESPONSES"] = False
    assert client.get("/api/v1/me", headers=cast.headers("own")).status_code == 200


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"action": "submit", "version": 1, "x": 1, "a": 2}, "unknown_field", "不支持的字段：a, x"),
        ({"action": "", "version": 1}, "invalid_type", "缺少或无效的 action（文本）"),
        ({"action": "submit", "version": True}, "version_required", "缺少或无效的 version（整数）"),
        ({"action": "submit", "version": 1, "comment": 3}, "invalid_type", "comment 须为文本"),
        (
            {"action": "score", "version": 1, "scores": {"1.1": True}},
            "invalid_type",
            "scores 须为 评分项 → 数字或数字文本 的对象",
        ),
        (
            {"action": "verify", "version": 1, "rulings": {"1.1": "yes"}},
            "invalid_type",
            "rulings 须为 评分项 → true/false 的对象",
        ),
        (
            {"action": "submit", "version": 1, "not_involved": "1.1"},
            "invalid_type",
            "not_involved 须为评分项编号的数组",
        ),
    ],
)
def test_the_transition_model_refuses_in_our_words(
    app: Flask, body: dict[str, Any], code: str, message: str
) -> None:
    with app.test_request_context(), pytest.raises(BadRequest) as refused:
        parse_body(TransitionBody, body)
    assert (refused.value.code, refused.value.message) == (code, message)


def test_the_transition_model_keeps_scores_as_given(app: Flask) -> None:
    from decimal import Decimal

    with app.test_request_context():
        body = parse_body(
            TransitionBody,
            {"action": "score", "version": 3, "scores": {"1.1": 5, "1.2": Decimal("4.5")}},
        )
    assert body.scores == {"1.1": 5, "1.2": Decimal("4.5")}
    assert body.deductions is None and body.not_involved is None


def test_bad_input_answers_our_error_format(client: FlaskClient, cast: Cast) -> None:
    r = client.post(
        "/api/v1/tokens", json={"username": ["li"], "password": "x"}, headers=cast.headers("own")
    )
    assert r.status_code == 400 and error_code(r) == "invalid_type"
    assert r.get_json()["error"]["message"] == "缺少或无效的字段 username（文本）"
    r = client.post(
        f"/api/v1/assessments/{cast.world.assessment.id}/publish",
        json={"days": "5"},
        headers=cast.headers("admin"),
    )
    assert r.status_code == 400 and error_code(r) == "invalid_type"
    assert r.get_json()["error"]["message"] == "days 须为整数"


def test_refusals_speak_english_when_asked(client: FlaskClient, cast: Cast) -> None:
    headers = cast.headers("own", **{"Accept-Language": "en"})
    r = client.post("/api/v1/tokens", json={"username": 5, "password": "x"}, headers=headers)
    assert r.get_json()["error"] == {
        "code": "invalid_type",
        "message": "The field username is missing or not text.",
    }
    r = client.post("/api/v1/tokens", json={"username": "li", "password": "x", "id": 1},
                    headers=headers)  # fmt: skip
    assert error_code(r) == "unknown_field" and "id" in r.get_json()["error"]["message"]
    assert "不支持" not in r.get_json()["error"]["message"]
