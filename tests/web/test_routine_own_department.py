"""Issue 11, finding 6 in the portal: the office's record form leaves out the user's department."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.factories import World
from tests.web.conftest import text
from workflow.models import RoutineRecord

Login = Callable[[str], FlaskClient]


def test_office_staff_record_no_routine_record_for_their_own_department(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    staff = login("reviewer_in_a")
    page = text(staff.get("/review/routine"))
    form = page[page.index('name="department_id"') :]
    offered = re.findall(r'<option value="(\d+)"', form[: form.index("</select>")])
    assert str(world.dep_b.id) in offered and str(world.dep_a.id) not in offered

    posted = staff.post(
        "/review/routine",
        data={
            "department_id": str(world.dep_a.id),
            "kind": "meeting",
            "period": "2018-09",
            "title": "本部门参会",
        },
        content_type="multipart/form-data",
    )
    assert posted.status_code == 403
    assert "不能以市职转办人员身份为本部门登记平时考核记录" in text(posted)
    assert session.scalar(select(func.count()).select_from(RoutineRecord)) == 0
