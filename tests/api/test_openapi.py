"""The OpenAPI document is generated, valid, and names exactly the routes the API serves."""

from __future__ import annotations

import re

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
