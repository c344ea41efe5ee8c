"""The inbox and preferences endpoints: one's own messages only, checked preferences."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from tests.concurrency import start_behind
from tests.factories import submit_items
from workflow import notify
from workflow.models import AuditEvent, Item
from workflow.notify import Message


def _notify(session: Session, cast: Cast, n: int = 2) -> None:
    person = notify.recipients(session, user_ids=[cast.world.member_a.id])
    for k in range(n):
        notify.send(
            session, person, Message("item_returned", f"指标{k}：被退回修改", "退回原因：缺材料")
        )
    session.commit()


def test_inbox_lists_marks_and_counts(client: FlaskClient, session: Session, cast: Cast) -> None:
    _notify(session, cast, 3)
    own = cast.headers("own")
    listed = client.get("/api/v1/me/notifications?limit=2", headers=own)
    assert listed.status_code == 200
    body = listed.get_json()
    assert body["unread"] == 3 and len(body["notifications"]) == 2
    assert body["notifications"][0]["kind_label"] == "事项被退回"
    assert body["notifications"][0]["id"] > body["notifications"][1]["id"]  # newest first
    rest = client.get(f"/api/v1/me/notifications?cursor={body['next_cursor']}", headers=own)
    assert len(rest.get_json()["notifications"]) == 1 and rest.get_json()["next_cursor"] is None
    first = body["notifications"][0]["id"]
    # Another person's message is a 404, and stays unread.
    other = client.post(f"/api/v1/me/notifications/{first}/read", headers=cast.headers("other"))
    assert other.status_code == 404 and error_code(other) == "notification_not_found"
    read = client.post(f"/api/v1/me/notifications/{first}/read", headers=own)
    assert read.status_code == 200 and read.get_json()["read_at"] is not None
    unread = client.get("/api/v1/me/notifications?unread=1", headers=own).get_json()
    assert unread["unread"] == 2 and first not in [n["id"] for n in unread["notifications"]]
    bad = client.get("/api/v1/me/notifications?unread=maybe", headers=own)
    assert bad.status_code == 400 and error_code(bad) == "invalid_parameter"
    marked = client.post("/api/v1/me/notifications/read-all", headers=own).get_json()
    assert marked == {"marked": 2, "unread": 0}
    assert client.get("/api/v1/me/notifications").status_code == 401


def test_preferences_round_trip_and_refusals(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    own = cast.headers("own")
    prefs = client.get("/api/v1/me/notification-preferences", headers=own).get_json()
    assert prefs["email"] is None and prefs["channels"]["item_returned"] == [
        "inbox",
        "email",
        "webhook",
    ]
    assert prefs["kinds"]["deadline_near"] == "截止提醒"
    changed = client.put(
        "/api/v1/me/notification-preferences",
        json={
            "email": "a@jiaohe.example",
            "channels": {"queue_waiting": ["email"]},
            "digest": True,
        },
        headers=own,
    )
    assert changed.status_code == 200, changed.data
    body = changed.get_json()
    assert body["email"] == "a@jiaohe.example" and body["digest"] is True
    assert body["channels"]["queue_waiting"] == ["email"]
    for data, status, code in (
        ({"email": "nope"}, 422, "bad_email"),
        ({"remind_days": 99}, 422, "bad_remind_days"),
        ({"channels": {"item_returned": ["pigeon"]}}, 422, "unknown_channel"),
        ({"webhook_url": "ftp://x.example/"}, 422, "bad_webhook_url"),
        ({"digest": "yes"}, 400, "invalid_type"),
        ({"colour": "red"}, 400, "unknown_field"),
    ):
        refused = client.put("/api/v1/me/notification-preferences", json=data, headers=own)
        assert refused.status_code == status, (data, refused.data)
        assert error_code(refused) == code
    # Nothing of the refused bodies was kept.
    after = client.get("/api/v1/me/notification-preferences", headers=own).get_json()
    assert after["email"] == "a@jiaohe.example" and after["remind_days"] == 3
    # GET's answer sent back as is (its read-only `kinds` included) changes nothing.
    again = client.put("/api/v1/me/notification-preferences", json=after, headers=own)
    assert again.status_code == 200, again.data
    assert again.get_json() == after


def test_a_returned_item_reaches_the_inbox_through_the_api(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    item = cast.world.item(session, cast.world.dep_a, "1")
    submit_items(session, client.application.extensions["store"], cast.world, [item])
    item = session.get_one(Item, item.id)
    returned = client.post(
        f"/api/v1/items/{item.id}/transitions",
        json={"action": "return", "version": item.version, "comment": "请补充会议记录"},
        headers=cast.headers("reviewer"),
    )
    assert returned.status_code == 200, returned.data
    inbox = client.get("/api/v1/me/notifications", headers=cast.headers("own")).get_json()
    assert inbox["unread"] == 1
    assert "请补充会议记录" in inbox["notifications"][0]["body"]
    assert inbox["notifications"][0]["item_id"] == item.id


def test_two_first_saves_at_once_one_wins_the_other_is_409(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    """Two first saves of one person's settings race for the same row: one 200-equivalent
    (committed) and one 409, never a 500; the loser's values are not half kept."""
    member = cast.world.member_a
    notify.set_preferences(session, member, {"remind_days": 2})  # written, not yet committed
    worker = start_behind(
        app.extensions["engine"],
        session,
        lambda: client.put(
            "/api/v1/me/notification-preferences",
            json={"remind_days": 4, "digest": True},
            headers=cast.headers("own"),
        ),
    )
    lost = worker.wait_done()
    assert lost.status_code == 409 and error_code(lost) == "stale_version", lost.get_json()
    after = client.get("/api/v1/me/notification-preferences", headers=cast.headers("own"))
    assert after.get_json()["remind_days"] == 2 and after.get_json()["digest"] is False
    changes = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "notification_preferences_changed")
    ).all()
    assert [json.loads(e.payload)["remind_days"] for e in changes] == [2]
    # Saved again, the same request now wins.
    again = client.put(
        "/api/v1/me/notification-preferences",
        json={"remind_days": 4, "digest": True},
        headers=cast.headers("own"),
    )
    assert again.status_code == 200 and again.get_json()["remind_days"] == 4
