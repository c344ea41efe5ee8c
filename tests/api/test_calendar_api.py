"""`GET /api/v1/assessments/{aid}/calendar`: stages, working days left, overdue, who may read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.api.conftest import Cast, error_code
from tests.factories import add_evidence
from workflow import actions
from workflow.calendar import set_calendar_override, set_stage_deadline
from workflow.workdays import package_years

BASE = "/api/v1"


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "objects"


D = dt.date


def at_shanghai(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(dt.UTC)


def test_calendar_counts_working_days_for_every_user(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=D(2018, 8, 1), due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "review", starts_on=None, due_on=None, working_days=3,
        actor=w.admin,
    )  # fmt: skip
    session.commit()
    app.config["CLOCK"] = lambda: at_shanghai(2018, 9, 30, 8, 0)  # Sunday, a 调休 working day
    for role in ("own", "other", "reviewer", "auditor", "admin"):
        r = client.get(f"{BASE}/assessments/{w.assessment.id}/calendar", headers=cast.headers(role))
        assert r.status_code == 200, (role, r.get_json())
    body = r.get_json()
    assert body["today"] == "2018-09-30" and body["status"] == "open"
    stages = {s["name"]: s for s in body["stages"]}
    assert stages["submit"] == {
        "name": "submit",
        "label": "自评提交截止",
        "starts_on": "2018-08-01",
        "due_on": "2018-09-28",
        "working_days": None,
        "working_days_left": -2,  # Saturday 29 and Sunday 30 September were working days
        "overdue": True,
        "pending": 260,
        "is_running": False,
        "problem": None,
        "entered_year": None,
    }
    assert stages["review"]["due_on"] == "2018-10-08"
    assert stages["review"]["working_days_left"] == 2 and not stages["review"]["overdue"]
    assert stages["publication"]["due_on"] is None and not stages["publication"]["is_running"]
    # The office declares 8 October a local holiday: the deadline moves to the 9th.
    set_calendar_override(session, D(2018, 10, 8), False, "本地放假", actor=w.admin)
    session.commit()
    r = client.get(f"{BASE}/assessments/{w.assessment.id}/calendar", headers=cast.headers("own"))
    assert {s["name"]: s for s in r.get_json()["stages"]}["review"]["due_on"] == "2018-10-09"


def test_an_unknown_year_is_named_not_guessed(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    year = package_years()[1] + 2
    app.config["CLOCK"] = lambda: at_shanghai(year, 3, 2, 9, 0)
    r = client.get(f"{BASE}/assessments/{w.assessment.id}/calendar", headers=cast.headers("own"))
    submit = r.get_json()["stages"][0]
    assert submit["overdue"] is True and submit["working_days_left"] is None
    assert f"{package_years()[1] + 1} 年" in submit["problem"]


def test_items_carry_the_late_submission_verdict(
    client: FlaskClient, session: Session, cast: Cast, store_dir: Path
) -> None:
    w = cast.world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, LocalStore(store_dir), item, w.member_a)
    actions.transition_item(
        session, item.id, w.member_a, actions.TransitionRequest("submit", item.version),
        now=at_shanghai(2018, 10, 8, 9, 0),
    )  # fmt: skip
    session.commit()
    body = client.get(f"{BASE}/items/{item.id}", headers=cast.headers("scorer")).get_json()
    assert body["is_submitted_late"] is True and body["submit_due_on"] == "2018-09-28"
    listed = client.get(
        f"{BASE}/assessments/{w.assessment.id}/items?state=submitted", headers=cast.headers("own")
    ).get_json()["items"]
    assert [(i["id"], i["is_submitted_late"]) for i in listed] == [(item.id, True)]


def test_calendar_refuses_strangers_and_unknown_ids(client: FlaskClient, cast: Cast) -> None:
    aid = cast.world.assessment.id
    r = client.get(f"{BASE}/assessments/{aid}/calendar", headers=cast.headers("anonymous"))
    assert r.status_code == 401
    r = client.get(f"{BASE}/assessments/{aid}/calendar", headers=cast.headers("disabled"))
    assert r.status_code == 401
    r = client.get(f"{BASE}/assessments/{aid + 999}/calendar", headers=cast.headers("admin"))
    assert r.status_code == 404 and error_code(r) == "assessment_not_found"


def test_admin_writes_the_calendar_through_the_api(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    aid = cast.world.assessment.id
    admin = cast.headers("admin")
    submit = client.put(
        f"{BASE}/assessments/{aid}/calendar/stages/submit",
        json={"starts_on": "2018-09-01", "due_on": "2018-09-28"},
        headers=admin,
    )
    assert submit.status_code == 200, submit.data
    # 3 working days after Friday 28 September 2018: 29 and 30 September (调休), 8 October.
    review = client.put(
        f"{BASE}/assessments/{aid}/calendar/stages/review",
        json={"working_days": 3},
        headers=admin,
    )
    stages = {st["name"]: st for st in review.get_json()["stages"]}
    assert stages["review"]["due_on"] == "2018-10-08" and stages["review"]["working_days"] == 3
    refused = client.put(
        f"{BASE}/assessments/{aid}/calendar/stages/verify",
        json={"due_on": "2018-09-01"},  # before 初审截止
        headers=admin,
    )
    assert refused.status_code == 422
    for role in ("reviewer", "own"):
        denied = client.put(
            f"{BASE}/assessments/{aid}/calendar/stages/score",
            json={"working_days": 2},
            headers=cast.headers(role),
        )
        assert denied.status_code == 403
    assert (
        client.put(
            f"{BASE}/assessments/{aid}/calendar/stages/lunch", json={}, headers=admin
        ).status_code
        == 404
    )
    bad = client.put(
        f"{BASE}/assessments/{aid}/calendar/stages/score", json={"due_on": "2018-13-01"},
        headers=admin,
    )  # fmt: skip
    assert bad.status_code == 422 and error_code(bad) == "bad_date"
    # A working day the office declares moves a deadline counted in working days.
    added = client.post(
        f"{BASE}/calendar/overrides",
        json={"day": "2018-10-05", "is_workday": True, "reason": "示例：市政府通知 10 月 5 日上班"},
        headers=admin,
    )
    assert added.status_code == 201, added.data
    calendar = client.get(f"{BASE}/assessments/{aid}/calendar", headers=admin).get_json()
    stages = {st["name"]: st for st in calendar["stages"]}
    assert stages["review"]["due_on"] == "2018-10-05"
    listed = client.get(f"{BASE}/calendar/overrides", headers=cast.headers("own")).get_json()
    assert [o["day"] for o in listed["overrides"]] == ["2018-10-05"]
    assert listed["next_cursor"] is None
    # A list is paginated like every list (found by an API walk: limit and cursor were ignored).
    for day in ("2018-10-08", "2018-10-09"):
        client.post(
            f"{BASE}/calendar/overrides",
            json={"day": day, "is_workday": False, "reason": "本地放假"},
            headers=admin,
        )
    first = client.get(f"{BASE}/calendar/overrides?limit=2", headers=admin).get_json()
    assert [o["day"] for o in first["overrides"]] == ["2018-10-05", "2018-10-08"]
    rest = client.get(
        f"{BASE}/calendar/overrides?limit=2&cursor={first['next_cursor']}", headers=admin
    ).get_json()
    assert [o["day"] for o in rest["overrides"]] == ["2018-10-09"] and rest["next_cursor"] is None
    for bad in ("limit=0", "limit=abc", "cursor=zzz"):
        assert client.get(f"{BASE}/calendar/overrides?{bad}", headers=admin).status_code == 400
    for extra in ("2018-10-08", "2018-10-09"):
        row = next(o for o in first["overrides"] + rest["overrides"] if o["day"] == extra)
        client.delete(f"{BASE}/calendar/overrides/{row['id']}", headers=admin)
    oid = added.get_json()["id"]
    assert (
        client.delete(
            f"{BASE}/calendar/overrides/{oid}", headers=cast.headers("reviewer")
        ).status_code
        == 403
    )
    assert client.delete(f"{BASE}/calendar/overrides/{oid}", headers=admin).status_code == 204
    assert client.delete(f"{BASE}/calendar/overrides/{oid}", headers=admin).status_code == 404
    no_reason = client.post(
        f"{BASE}/calendar/overrides",
        json={"day": "2018-10-06", "is_workday": True, "reason": " "},
        headers=admin,
    )
    assert no_reason.status_code == 422 and error_code(no_reason) == "reason_required"
