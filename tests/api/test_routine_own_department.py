"""Issue 11, finding 6 over HTTP: no routine record by office staff for their own department."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.api.conftest import Cast, error_code
from workflow.models import RoutineRecord
from workflow.users import issue_token


def test_office_staff_record_no_routine_record_for_their_own_department(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    token, _ = issue_token(session, w.reviewer_in_a)
    session.commit()
    url = f"/api/v1/assessments/{w.assessment.id}/routine"
    fields = {"kind": "inspection", "period": "2018-09", "title": "督查检查"}
    headers = {"Authorization": f"Bearer {token}"}

    own = client.post(
        url,
        data={**fields, "department": str(w.dep_a.id)},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert own.status_code == 403 and error_code(own) == "own_department"
    assert session.scalar(select(func.count()).select_from(RoutineRecord)) == 0
    other = client.post(
        url,
        data={**fields, "department": str(w.dep_b.id)},
        headers=headers,
        content_type="multipart/form-data",
    )
    assert other.status_code == 201 and other.get_json()["department_id"] == w.dep_b.id
