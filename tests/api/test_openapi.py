"""The OpenAPI document is generated, valid, and names exactly the routes the API serves."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from web.api.contract import openapi_document


def test_document_is_valid_openapi_3_1(app: Flask) -> None:
    with app.app_context():
        doc = openapi_document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_document_matches_the_routes(app: Flask) -> None:
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("api.", "notices.")):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        served |= {(m.lower(), path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    with app.app_context():
        documented = {(m, p) for p, ops in openapi_document()["paths"].items() for m in ops}
    assert served == documented


def test_document_is_served(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["components"]["schemas"]["TransitionBody"]["additionalProperties"] is False


#: Every operation ../shared/API.md names (both rounds), as the document spells its path.
CONTRACT_OPERATIONS = {
    ("post", "/api/v1/tokens"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/assessments"),
    ("get", "/api/v1/assessments/{aid}"),
    ("get", "/api/v1/assessments/{aid}/items"),
    ("get", "/api/v1/items/{iid}"),
    ("post", "/api/v1/items/{iid}/evidence"),
    ("delete", "/api/v1/evidence/{eid}"),
    ("get", "/api/v1/evidence/{eid}/content"),
    ("post", "/api/v1/items/{iid}/transitions"),
    ("get", "/api/v1/items/{iid}/history"),
    ("get", "/api/v1/audit/events"),
    ("get", "/api/v1/audit/verify"),
    ("get", "/api/v1/assessments/{aid}/results"),
    ("get", "/api/v1/assessments/{aid}/departments/{did}/notice.docx"),
    ("post", "/api/v1/assessments/{aid}/departments/{did}/notices"),
    ("get", "/api/v1/assessments/{aid}/summary.docx"),
    ("post", "/api/v1/assessments/{aid}/routine"),
    ("get", "/api/v1/assessments/{aid}/departments/{did}/routine"),
    ("post", "/api/v1/routine/{rid}/review"),
    ("post", "/api/v1/assessments/{aid}/publish"),
    ("post", "/api/v1/assessments/{aid}/reopen"),
    ("post", "/api/v1/bulk-transitions"),
    ("get", "/api/v1/units"),
    ("post", "/api/v1/units/changes"),
    ("get", "/api/v1/units/{uid}/history"),
    ("post", "/api/v1/schemes"),
    ("post", "/api/v1/schemes/import-docx"),
    ("post", "/api/v1/assessments"),
    ("get", "/api/v1/assessments/{aid}/calendar"),
    ("get", "/api/v1/me/notifications"),
    ("post", "/api/v1/me/notifications/{nid}/read"),
    ("get", "/api/v1/me/notification-preferences"),
    ("put", "/api/v1/me/notification-preferences"),
    ("get", "/api/v1/verify/{code}"),
    ("get", "/api/v1/assessments/{aid}/results.xlsx"),
    ("get", "/api/v1/assessments/{aid}/matrix.xlsx"),
    ("get", "/api/v1/audit/events.xlsx"),
}
#: The files whose answer carries their SHA-256 as ETag (and a 304 for If-None-Match).
DOWNLOADS = (
    "/api/v1/evidence/{eid}/content",
    "/api/v1/assessments/{aid}/departments/{did}/notice.docx",
    "/api/v1/assessments/{aid}/summary.docx",
    "/api/v1/notices/{nid}",
    "/api/v1/jobs/{jid}/download",
)


def test_every_operation_the_contract_names_keeps_its_name(app: Flask) -> None:
    """ "An endpoint that the contract names keeps that name": each is in the document, with
    the headers and the required fields the contract names."""
    with app.app_context():
        doc = openapi_document()
    paths = doc["paths"]
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert documented >= CONTRACT_OPERATIONS, CONTRACT_OPERATIONS - documented

    def headers(path: str, method: str) -> set[str]:
        params = paths[path][method].get("parameters", [])
        return {p["name"] for p in params if p["in"] == "header"}

    assert "Idempotency-Key" in headers("/api/v1/items/{iid}/transitions", "post")
    assert "Idempotency-Key" in headers("/api/v1/bulk-transitions", "post")
    for path in DOWNLOADS:
        assert "If-None-Match" in headers(path, "get"), path
        assert "304" in paths[path]["get"]["responses"], path
    schemas = doc["components"]["schemas"]
    assert schemas["PublishBody"]["required"] == ["days"]  # `{"days"}`: not optional
    assert {"action", "version"} <= set(schemas["TransitionBody"]["required"])
    assert set(schemas["BulkBody"]["properties"]) >= {"action", "items", "comment", "dry_run"}
    for model, money in (("NoticeVersion", ("total", "converted")), ("ResultRow", ("total",))):
        for field in money:  # scores and totals: decimal strings with two places
            text = str(schemas[model]["properties"][field])
            assert "[0-9]{2}" in text, (model, field, text)


def test_every_limit_is_documented_as_the_server_reads_it(app: Flask) -> None:
    """`limit` above 500 is served as 500, not refused: the document must not say `maximum`
    (a client or schemathesis would take 501 for an error), and it says the cap instead."""
    from web.api.common import MAX_LIMIT, query_limit
    from workflow.errors import BadRequest

    with app.app_context():
        doc = openapi_document()
    limits = [
        (f"{m.upper()} {p}", param)
        for p, ops in doc["paths"].items()
        for m, op in ops.items()
        for param in op.get("parameters", ())
        if param["name"] == "limit"
    ]
    assert len(limits) >= 10  # every list
    for where, param in limits:
        schema = param["schema"]
        assert "maximum" not in schema, where
        assert schema["minimum"] == 1 and schema["type"] == "integer", where
        assert f"capped at {MAX_LIMIT}" in param["description"], where
    # …which is what the server does with each bound.
    bounds = (("", schema["default"]), ("1", 1), ("501", MAX_LIMIT), ("9" * 30, MAX_LIMIT))
    for raw, served in bounds:
        with app.test_request_context(f"/?limit={raw}"):
            assert query_limit() == served
    with app.test_request_context("/?limit=0"), pytest.raises(BadRequest):
        query_limit()
