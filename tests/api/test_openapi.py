"""The OpenAPI document is valid and names exactly the routes the API blueprints serve."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate

from web.app import create_app
from web.openapi import build_openapi


def test_document_is_valid_openapi_3_1() -> None:
    doc = build_openapi()
    assert doc["openapi"].startswith("3.1")
    validate(doc)


def test_document_matches_the_routes(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": "sqlite://", "INSTANCE_DIR": str(tmp_path)})
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("api.", "notices.")):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        served |= {(m.lower(), path) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    documented = {(m, p) for p, ops in build_openapi()["paths"].items() for m in ops}
    assert served == documented
    app.extensions["engine"].dispose()
