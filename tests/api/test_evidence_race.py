"""Issue 11, finding 1 over HTTP: an upload that finishes after the item moved on is a 409."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code, pdf_upload
from tests.concurrency import PausingStore, Worker, start_behind
from tests.factories import add_evidence
from workflow import actions
from workflow.models import Evidence, Item

BASE = "/api/v1"


def _paused_app(app: Flask) -> PausingStore:
    store = PausingStore(app.extensions["store"])
    app.extensions["store"] = store
    return store


def _in_thread(app: Flask, call: Callable[[], Any]) -> Worker:
    """Run a request in a thread, watching the app's own engine."""
    worker = Worker(app.extensions["engine"], call)
    worker.start()
    return worker


@pytest.fixture
def item(app: Flask, session: Session, cast: Cast, item_of: Callable[[str, str], Item]) -> Item:
    """Department A's item 1 in draft with one file (材料.pdf)."""
    item = item_of("a", "1")
    add_evidence(session, app.extensions["store"], item, cast.world.member_a)
    session.commit()
    return item


def test_api_upload_finishing_after_submit_is_409_item_state_changed(
    app: Flask, client: FlaskClient, session: Session, cast: Cast, item: Item
) -> None:
    store = _paused_app(app)
    own = cast.headers("own")
    upload = _in_thread(
        app,
        lambda: app.test_client().post(
            f"{BASE}/items/{item.id}/evidence",
            data=pdf_upload("迟到.pdf", seed="late"),
            headers=own,
            content_type="multipart/form-data",
        ),
    )
    store.wait_paused()
    submitted = client.post(
        f"{BASE}/items/{item.id}/transitions",
        json={"action": "submit", "version": item.version},
        headers=own,
    )
    assert submitted.status_code == 200, submitted.get_json()
    store.resume.set()

    refused = upload.wait_done()
    assert refused.status_code == 409
    assert error_code(refused) == "item_state_changed"
    assert "未保存" in refused.get_json()["error"]["message"]
    names = session.execute(select(Evidence.filename).where(Evidence.item_id == item.id)).scalars()
    assert list(names) == ["材料.pdf"]
    body = client.get(f"{BASE}/items/{item.id}", headers=own).get_json()
    assert body["state"] == "submitted" and [e["filename"] for e in body["evidence"]] == [
        "材料.pdf"
    ]


def test_api_delete_of_the_only_file_racing_submit_is_refused(
    app: Flask, client: FlaskClient, session: Session, cast: Cast, item: Item
) -> None:
    """The submit holds the item (open transaction); DELETE waits for it and is refused."""
    only = session.execute(select(Evidence).where(Evidence.item_id == item.id)).scalar_one()
    actions.submit_item(session, item.id, cast.world.member_a, item.version)  # lock held
    own = cast.headers("own")
    delete = start_behind(
        app.extensions["engine"],
        session,
        lambda: app.test_client().delete(f"{BASE}/evidence/{only.id}", headers=own),
    )

    refused = delete.wait_done()
    assert refused.status_code == 409 and error_code(refused) == "invalid_state"
    body = client.get(f"{BASE}/items/{item.id}", headers=own).get_json()
    assert body["state"] == "submitted" and [e["id"] for e in body["evidence"]] == [only.id]
