"""Issue 11, finding 6 in the portal: the office's record form leaves out the user's department."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.web.conftest import text
from workflow.models import RoutineRecord, User

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


def test_a_member_given_office_roles_does_not_review_their_own_report(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """member_a reports for 交通局-like dep_a, then becomes a reviewer (the unit is cleared, so
    the own-department guard no longer sees it): their own report shows no review buttons and
    a posted review is refused in words; a colleague's report stays reviewable by them."""
    import io

    from workflow.demo import demo_pdf
    from workflow.routine import submit_routine
    from workflow.users import set_roles

    def report(user: User, title: str) -> RoutineRecord:
        return submit_routine(
            session, store, world.assessment, user, kind="monthly_info", period="2018-09",
            title=title, stream=io.BytesIO(demo_pdf(title)), filename="信息.pdf",
            max_size=1 << 20,
        )  # fmt: skip

    own = report(world.member_a, "本人报送的信息")
    other = report(world.member_b, "他人报送的信息")
    set_roles(session, world.member_a, ["reviewer"], actor=world.admin)
    session.commit()
    page = text(login("member_a").get("/review/routine"))
    rows = page.split("<tr>")
    row_of = {r.id: next(row for row in rows if r.title in row) for r in (own, other)}
    assert f"/review/routine/{own.id}/review" not in row_of[own.id]
    assert f"/review/routine/{other.id}/review" in row_of[other.id]
    client = login("member_a")
    refused = client.post(f"/review/routine/{own.id}/review",
                          data={"status": "accepted", "seen": "submitted"})  # fmt: skip
    assert refused.status_code == 403
    assert "不能审核本人报送的平时考核记录" in text(refused)
    session.expire_all()
    assert session.get_one(RoutineRecord, own.id).status == "submitted"
