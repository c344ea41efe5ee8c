"""Issue 11, finding 4 in the portal: the appeal window does not move after publication."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import text
from workflow.models import Assessment, AuditEvent, utcnow

Login = Callable[[str], FlaskClient]


def test_admin_cannot_move_the_appeal_window_after_publication(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    a = world.assessment
    a.published_at = a.appeal_opens_at = utcnow() - dt.timedelta(days=1)
    a.appeal_closes_at = utcnow() + dt.timedelta(days=4)
    session.commit()
    window = (a.appeal_opens_at, a.appeal_closes_at)
    admin = login("admin")

    page = text(admin.get("/admin/assessment"))
    assert 'name="action" value="window"' not in page  # no form to move it
    assert "结果公示后申诉期不能调整" in page

    moved = admin.post(
        "/admin/assessment",
        data={"action": "window", "opens_at": "2018-12-01T08:00", "closes_at": "2019-03-01T08:00"},
    )
    assert moved.status_code == 409
    assert "申诉期不能调整" in text(moved) and "重新开启" in text(moved)
    session.expire_all()
    again = session.get_one(Assessment, a.id)
    assert (again.appeal_opens_at, again.appeal_closes_at) == window
    assert not session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "appeal_window_set")
    )
