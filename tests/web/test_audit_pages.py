"""The auditor's pages: event log with filters, chain verification, CSV and JSON Lines export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import text
from workflow.actions import return_item, submit_item
from workflow.models import ChainHead

Login = Callable[[str], FlaskClient]


def _story(session: Session, store: LocalStore, world: World) -> int:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a, name="证据.pdf")
    submit_item(session, item.id, world.member_a, item.version)
    return_item(session, item.id, world.reviewer, item.version, "缺少<盖章>页")
    session.commit()
    return item.id


def test_event_log_filters_and_escapes(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item_id = _story(session, store, world)
    auditor = login("auditor")
    html = text(auditor.get("/audit/"))
    assert "创建用户" in html and "登录" in html and "退回修改" in html
    assert "缺少&lt;盖章&gt;页" in html
    assert "SHA-256" in html and "证据.pdf" in html  # payloads are shown labelled
    only = text(auditor.get(f"/audit/?action=submit&item={item_id}"))
    assert "提交" in only and "退回修改" not in only.split("<tbody>")[1]
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert "没有符合条件的记录" in text(auditor.get(f"/audit/?from={tomorrow}"))
    assert 'href="/audit/?item=' in text(auditor.get(f"/review/items/{item_id}"))


def test_exports_csv_with_bom_and_json_lines(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item_id = _story(session, store, world)
    auditor = login("auditor")
    response = auditor.get(f"/audit/export.csv?item={item_id}")
    assert response.status_code == 200 and response.data.startswith("\ufeff".encode())
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [r["action"] for r in rows] == ["evidence_uploaded", "submit", "return"]
    assert rows[2]["comment"] == "缺少<盖章>页" and len(rows[2]["hash"]) == 64
    lines = auditor.get(f"/audit/export.jsonl?item={item_id}").data.decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == ["evidence_uploaded", "submit", "return"]
    assert (
        records[0]["payload"]["filename"] == "证据.pdf"
        and len(records[0]["payload"]["sha256"]) == 64
    )
    assert records[0]["seq"] < records[1]["seq"] < records[2]["seq"]


def test_chain_verification_page(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    _story(session, store, world)
    html = text(login("auditor").get("/audit/verify"))
    head = session.get(ChainHead, 1)
    assert head is not None
    assert "校验通过" in html and head.hash in html


def test_audit_pages_are_for_auditors_and_admins(app: Flask, login: Login) -> None:
    assert login("member_a").get("/audit/").status_code == 403
    assert login("reviewer").get("/audit/export.csv").status_code == 403
    assert login("admin").get("/audit/verify").status_code == 200
