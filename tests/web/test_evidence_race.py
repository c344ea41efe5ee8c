"""Issue 11, findings 1 and 17 in the portal: the multi-file upload stores first, then records."""

from __future__ import annotations

import io
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage.local import LocalStore
from tests.concurrency import PausingStore, Worker, impatient_engine
from tests.factories import World, add_evidence
from tests.web.conftest import text
from workflow import actions
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.models import Evidence, Item, User

Login = Callable[[str], FlaskClient]


def _pause(app: Flask, pause_at: int) -> PausingStore:
    store = PausingStore(app.extensions["store"], pause_at=pause_at)
    app.extensions["store"] = store
    return store


def _upload_two(app: Flask, member: FlaskClient, item_id: int) -> Worker:
    def post() -> TestResponse:
        return member.post(
            f"/portal/items/{item_id}/evidence",
            data={
                "files": [
                    (io.BytesIO(demo_pdf("portal-一")), "一.pdf"),
                    (io.BytesIO(demo_pdf("portal-二")), "二.pdf"),
                ],
                "purpose": "evidence",
            },
            content_type="multipart/form-data",
        )

    worker = Worker(app.extensions["engine"], post)
    worker.start()
    return worker


def _names(session: Session, item_id: int) -> list[str]:
    session.expire_all()
    rows = session.execute(
        select(Evidence.filename).where(Evidence.item_id == item_id).order_by(Evidence.filename)
    )
    return list(rows.scalars())


def test_portal_multi_file_upload_finishing_after_submit_is_refused(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a, name="原有.pdf")
    session.commit()
    paused = _pause(app, pause_at=2)
    upload = _upload_two(app, login("member_a"), item.id)
    paused.wait_paused()
    actions.submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    paused.resume.set()

    refused = upload.wait_done()
    assert refused.status_code == 409
    assert "上传期间事项状态已变化" in text(refused) and "未保存" in text(refused)
    assert _names(session, item.id) == ["原有.pdf"]  # neither file, not only the second


def test_portal_multi_file_upload_holds_no_lock_while_storing(
    app: Flask, engine: Engine, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Finding 17: while the second file is stored, other writes go through at once."""
    other = world.item(session, world.dep_b, "1")
    add_evidence(session, store, other, world.member_b)
    actions.submit_item(session, other.id, world.member_b, other.version)
    item = world.item(session, world.dep_a, "1")
    session.commit()
    paused = _pause(app, pause_at=2)
    upload = _upload_two(app, login("member_a"), item.id)
    paused.wait_paused()

    impatient = impatient_engine(engine)
    try:
        with make_sessionmaker(impatient)() as s:  # fails instead of waiting on a held lock
            actions.review_item(s, other.id, s.get_one(User, world.reviewer.id), other.version)
            s.commit()
    finally:
        impatient.dispose()
        paused.resume.set()
    assert upload.wait_done().status_code == 303
    assert _names(session, item.id) == ["一.pdf", "二.pdf"]
    assert session.get_one(Item, other.id).state == "reviewed"
