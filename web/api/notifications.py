"""The user's inbox (站内消息) and notification preferences (`/api/v1/me/...`)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    decode_cursor,
    encode_cursor,
    json_body,
    json_response,
    query_flag,
    query_limit,
)
from web.api.contract import contract, parse_body
from web.auth import api_user
from web.common.ids import MAX_ID
from web.db import get_db
from workflow import notify
from workflow.audit import format_time
from workflow.models import Notification

NID = f"<int(max={MAX_ID}):nid>"


def notification_body(note: Notification) -> dict[str, Any]:
    """Serialise one inbox message."""
    return {
        "id": note.id,
        "kind": note.kind,
        "kind_label": notify.KINDS.get(note.kind, note.kind),
        "title": note.title,
        "body": note.body,
        "link": note.link,
        "assessment_id": note.assessment_id,
        "item_id": note.item_id,
        "created_at": format_time(note.created_at),
        "read_at": format_time(note.read_at) if note.read_at else None,
    }


@bp.get("/me/notifications")
@contract("me", query=s.InboxFilter, ok={200: (s.Inbox, "The inbox, newest first.")})
def my_notifications() -> Response:
    """Return the user's messages, newest first; `unread=1` keeps the unread ones."""
    user = api_user()
    db = get_db()
    unread_only = query_flag("unread")
    limit = query_limit()
    before = decode_cursor("inbox")
    rows = notify.inbox(db, user, unread_only=unread_only, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return json_response(
        {
            "notifications": [notification_body(n) for n in rows],
            "unread": notify.unread_count(db, user),
            "next_cursor": encode_cursor("inbox", rows[-1].id) if more and rows else None,
        }
    )


@bp.post(f"/me/notifications/{NID}/read")
@contract("me", ok={200: (s.NotificationOut, "The message, read.")}, errors=(404,))
def read_notification(nid: int) -> Response:
    """Mark one of the user's messages read (idempotent); another person's is a 404."""
    user = api_user()
    note = notify.mark_read(get_db(), user, nid)
    return json_response(notification_body(note))


@bp.post("/me/notifications/read-all")
@contract("me", ok={200: (s.MarkedRead, "How many were marked.")})
def read_all_notifications() -> Response:
    """Mark every unread message of the user read."""
    user = api_user()
    db = get_db()
    marked = notify.mark_all_read(db, user)
    return json_response({"marked": marked, "unread": notify.unread_count(db, user)})


def preferences_body(prefs: notify.Preferences) -> dict[str, Any]:
    """Serialise the preferences with the kinds' names."""
    return {**prefs.as_json(), "kinds": dict(notify.KINDS)}


@bp.get("/me/notification-preferences")
@contract("me", ok={200: (s.PreferencesOut, "The preferences.")})
def my_preferences() -> Response:
    """Return where each kind of notification goes (defaults spelled out)."""
    user = api_user()
    return json_response(preferences_body(notify.preferences(get_db(), user)))


@bp.put("/me/notification-preferences")
@contract(
    "me",
    body=s.PreferencesBody,
    ok={200: (s.PreferencesOut, "The preferences after the change.")},
    errors=(413, 415, 422),
)
def set_my_preferences() -> Response:
    """Change the given fields (e-mail, webhook URL, channels per kind, digest, remind days)."""
    user = api_user()
    data = json_body()
    parse_body(s.PreferencesBody, data)  # shape and types; the engine checks the values
    data = {k: v for k, v in data.items() if k != "kinds"}  # read-only: GET's answer round-trips
    prefs = notify.set_preferences(
        get_db(), user, data, allowed_hosts=current_app.config.get("WEBHOOK_ALLOWED_HOSTS", ())
    )
    return json_response(preferences_body(prefs))
