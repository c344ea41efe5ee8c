"""GET /api/v1/audit/verify: the chain and the reconciliation of the tables with it."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from tests.api.conftest import Cast, pdf_upload
from workflow.models import Item


def test_verify_names_a_table_edit(
    client: FlaskClient, cast: Cast, item_of: Callable[[str, str], Item], engine: Engine
) -> None:
    item_id = item_of("a", "1").id
    up = client.post(
        f"/api/v1/items/{item_id}/evidence", data=pdf_upload(), headers=cast.headers("own")
    )
    assert up.status_code == 201, up.get_json()
    clean = client.get("/api/v1/audit/verify", headers=cast.headers("auditor")).get_json()
    assert clean["ok"] is True and clean["chain_ok"] is True
    assert clean["reconciliation"]["ok"] is True and clean["reconciliation"]["differences"] == []
    with engine.begin() as conn:
        conn.execute(text("UPDATE items SET state = 'submitted' WHERE id = :i"), {"i": item_id})
    body = client.get("/api/v1/audit/verify", headers=cast.headers("admin")).get_json()
    assert body["ok"] is False and body["chain_ok"] is True and body["first_bad_seq"] is None
    rec = body["reconciliation"]
    assert rec["ok"] is False and rec["difference_count"] == 1 and rec["truncated"] is False
    assert rec["differences"] == [
        {
            "item_id": item_id, "field": "state", "live": "submitted", "from_events": "draft",
            "department_id": cast.world.dep_a.id, "assessment_id": None,
        }
    ]  # fmt: skip
