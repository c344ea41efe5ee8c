"""站内消息: the inbox, marking messages read, and where notifications go (preferences).

Every change goes through `workflow.notify` (checked there; preference changes are audited);
the request boundary commits.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy.exc import SQLAlchemyError

from web.common.ids import MAX_ID
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required, signed_in_user
from workflow import notify
from workflow.errors import DomainError

bp = Blueprint("inbox", __name__, url_prefix="/me")
PAGE_SIZE = 30


def unread_messages() -> int | None:
    """The signed-in user's unread count for the header; None when it cannot be read."""
    user = signed_in_user()
    if user is None:
        return None
    try:
        return notify.unread_count(get_db(), user)
    except SQLAlchemyError:
        return None


def _int(raw: str | None) -> int | None:
    if raw and raw.isascii() and raw.isdecimal() and len(raw) < 11 and int(raw) <= MAX_ID:
        return int(raw)
    return None


def _safe_link(link: str | None) -> str | None:
    """A link inside this site only (a path), never another host."""
    if link and link.startswith("/") and not link.startswith("//") and "\\" not in link:
        return link
    return None


@bp.get("/messages")
@roles_required()
def messages() -> ResponseReturnValue:
    """The inbox, newest first; `?unread=1` keeps the unread ones; keyset pages (`before`)."""
    user = current_account()
    db = get_db()
    unread_only = request.args.get("unread") == "1"
    before = _int(request.args.get("before"))
    rows = notify.inbox(db, user, unread_only=unread_only, before=before, limit=PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return render_template(
        "inbox/messages.html",
        rows=rows,
        unread_only=unread_only,
        unread=notify.unread_count(db, user),
        next_before=rows[-1].id if more and rows else None,
        kinds=notify.KINDS,
        safe_link=_safe_link,
    )


@bp.post("/messages/<int:nid>/read")
@roles_required()
def read(nid: int) -> ResponseReturnValue:
    """Mark one message read; with `open`, go on to what it is about."""
    note = notify.mark_read(get_db(), current_account(), nid)
    target = _safe_link(note.link) if request.form.get("open") else None
    return redirect(target or url_for("inbox.messages"), code=303)


@bp.post("/messages/read-all")
@roles_required()
def read_all() -> ResponseReturnValue:
    """Mark every message read."""
    marked = notify.mark_all_read(get_db(), current_account())
    flash(
        ngettext("已将 %(n)s 条消息标为已读", "已将 %(n)s 条消息标为已读", marked, n=marked),
        "success",
    )
    return redirect(url_for("inbox.messages"), code=303)


def _render(form: dict[str, Any] | None = None, error: str | None = None) -> str:
    user = current_account()
    prefs = notify.preferences(get_db(), user)
    return render_template(
        "inbox/preferences.html",
        prefs=prefs,
        form=form,
        error=error,
        kinds=notify.KINDS,
        shown=notify.kinds_for(user.roles),
        channels=notify.CHANNELS,
        channel_labels=notify.CHANNEL_LABELS,
        max_days=notify.MAX_REMIND_DAYS,
    )


@bp.get("/notifications")
@roles_required()
def preferences_page() -> ResponseReturnValue:
    """Where each kind of notification goes, the addresses, digest and reminder days."""
    return _render()


@bp.post("/notifications")
@roles_required()
def preferences_save() -> ResponseReturnValue:
    """Save the form through the engine; a refusal shows the form again with what was typed."""
    form = request.form
    raw_days = form.get("remind_days", "").strip()
    # A signed whole number goes to the engine, which says the range (−1 is a number too).
    days: Any = int(raw_days) if re.fullmatch(r"-?[0-9]{1,6}", raw_days) else raw_days
    data: dict[str, Any] = {
        "email": form.get("email", ""),
        "webhook_url": form.get("webhook_url", ""),
        "digest": form.get("digest") == "1",
        "remind_days": days if raw_days else 3,
        # Only the kinds the page offered: the others keep their setting.
        "channels": {
            kind: [c for c in notify.CHANNELS if form.get(f"{kind}:{c}") == "1"]
            for kind in notify.kinds_for(current_account().roles)
        },
    }
    try:
        with discard_on_error():
            notify.set_preferences(
                get_db(),
                current_account(),
                data,
                allowed_hosts=current_app.config.get("WEBHOOK_ALLOWED_HOSTS", ()),
            )
    except DomainError as exc:
        if not isinstance(days, int):
            exc_message = gettext("提前提醒的工作日数须为整数")
        else:
            exc_message = exc.message
        return _render(form=data, error=exc_message), 422
    flash(gettext("已保存通知设置"), "success")
    return redirect(url_for("inbox.preferences_page"), code=303)
