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
    assert len(stages["submit"].pop("seen")) == 64  # the deadline's fingerprint (PUT's `seen`)
    assert stages["submit"] == {
        "name": "submit",
        "label": "自评提交截止",
        "starts_on": "2018-08-01",
        "due_on": "2018-09-28",
        "working_days": None,
        "counts_from": None,
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
    # A script that read the stage before another admin changed it: with its `seen`, a 409.
    assert stages["publication"]["seen"] is None
    read_before = stages["review"]["seen"]
    client.put(review_url := f"{BASE}/assessments/{aid}/calendar/stages/review",
               json={"working_days": 4}, headers=admin)  # fmt: skip
    stale = client.put(review_url, json={"working_days": 2, "seen": read_before}, headers=admin)
    assert stale.status_code == 409 and error_code(stale) == "changed_since_opened"
    again = client.get(f"{BASE}/assessments/{aid}/calendar", headers=admin).get_json()
    now_seen = {st["name"]: st for st in again["stages"]}["review"]
    assert now_seen["working_days"] == 4
    fresh = client.put(review_url, json={"working_days": 3, "seen": now_seen["seen"]},
                       headers=admin)  # fmt: skip
    assert fresh.status_code == 200
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


def test_overrides_carry_seen_against_lost_updates(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    """A script that read the overrides, then another admin changed the day: replacing or
    removing with what it read is a 409, nothing written or audited; a new day is added."""
    admin = cast.headers("admin")
    url = f"{BASE}/calendar/overrides"
    first = client.post(
        url, json={"day": "2018-10-08", "is_workday": False, "reason": "本地放假"}, headers=admin
    ).get_json()
    listed = client.get(url, headers=admin).get_json()
    read_list, read_row = listed["seen"], listed["overrides"][0]["seen"]
    assert len(read_list) == 64 and read_row == first["seen"]
    # Another admin changes that day's entry meanwhile.
    changed = client.post(
        url, json={"day": "2018-10-08", "is_workday": True, "reason": "改为上班"}, headers=admin
    ).get_json()
    assert changed["id"] == first["id"] and changed["seen"] != read_row
    events = client.get(f"{BASE}/audit/events?limit=500", headers=admin).get_json()["events"]
    stale = client.post(
        url,
        json={"day": "2018-10-08", "is_workday": False, "reason": "本地放假", "seen": read_list},
        headers=admin,
    )
    assert stale.status_code == 409 and error_code(stale) == "changed_since_opened"
    gone = client.delete(f"{url}/{first['id']}?seen={read_row}", headers=admin)
    assert gone.status_code == 409 and error_code(gone) == "changed_since_opened"
    after = client.get(url, headers=admin).get_json()
    assert [(o["day"], o["is_workday"]) for o in after["overrides"]] == [("2018-10-08", True)]
    again = client.get(f"{BASE}/audit/events?limit=500", headers=admin).get_json()["events"]
    assert len(again) == len(events)
    # A day without an entry is added whatever changed since; the current `seen` works.
    new_day = client.post(
        url,
        json={"day": "2018-10-09", "is_workday": False, "reason": "本地放假", "seen": read_list},
        headers=admin,
    )
    assert new_day.status_code == 201
    current = after["overrides"][0]["seen"]
    assert client.delete(f"{url}/{first['id']}?seen={current}", headers=admin).status_code == 204


@pytest.mark.parametrize(
    ("stage", "count"), [("verify", 1001), ("verify", -1), ("verify", 0), ("score", 100_000)]
)
def test_a_working_day_count_out_of_range_is_a_422(
    client: FlaskClient, session: Session, cast: Cast, stage: str, count: int
) -> None:
    """It was a 500: the count reached the working-day counter's guard (ValueError)."""
    w = cast.world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=D(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    session.commit()
    r = client.put(
        f"{BASE}/assessments/{w.assessment.id}/calendar/stages/{stage}",
        json={"working_days": count},
        headers=cast.headers("admin"),
    )
    assert r.status_code == 422 and error_code(r) == "bad_working_days"
    assert r.get_json()["error"]["message"] == "工作日数须在 1 到 250 之间"
    english = client.put(
        f"{BASE}/assessments/{w.assessment.id}/calendar/stages/{stage}",
        json={"working_days": count},
        headers={**cast.headers("admin"), "Accept-Language": "en"},
    )
    assert english.status_code == 422
    assert "between 1 and 250" in english.get_json()["error"]["message"]


def test_overrides_that_break_a_deadline_are_refused_through_the_api(
    client: FlaskClient, session: Session, cast: Cast
) -> None:
    w = cast.world
    admin = cast.headers("admin")
    aid = w.assessment.id
    put = client.put(
        f"{BASE}/assessments/{aid}/calendar/stages/submit",
        json={"starts_on": "2020-09-01", "working_days": 20},
        headers=admin,
    )
    assert put.status_code == 200 and put.get_json()["warnings"] == []
    assert put.get_json()["stages"][0]["counts_from"] == "start"
    # 初审截止 on 1 October 2020 is kept, with a warning: National Day.
    review = client.put(
        f"{BASE}/assessments/{aid}/calendar/stages/review",
        json={"due_on": "2020-10-01"},
        headers=admin,
    )
    assert review.status_code == 200
    assert review.get_json()["warnings"] == [
        {
            "stage": "review",
            "code": "deadline_not_workday",
            "message": "初审截止 2020-10-01 不是工作日（节假日或周末），下一个工作日是 2020-10-09",
        }
    ]
    got = client.get(f"{BASE}/assessments/{aid}/calendar", headers=cast.headers("own"))
    assert [x["code"] for x in got.get_json()["warnings"]] == ["deadline_not_workday"]
    ids = []
    for day in ("2020-09-02", "2020-09-03"):
        ok = client.post(
            f"{BASE}/calendar/overrides",
            json={"day": day, "is_workday": False, "reason": "本地放假"},
            headers=admin,
        )
        assert ok.status_code == 201
        ids.append(ok.get_json()["id"])
    third = client.post(
        f"{BASE}/calendar/overrides",
        json={"day": "2020-09-04", "is_workday": False, "reason": "本地放假"},
        headers=admin,
    )
    assert third.status_code == 422 and error_code(third) == "override_breaks_order"
    assert "2018 年度考核的自评提交截止变为 2020-10-09" in third.get_json()["error"]["message"]
    listed = client.get(f"{BASE}/calendar/overrides", headers=admin).get_json()["overrides"]
    assert [o["day"] for o in listed] == ["2020-09-02", "2020-09-03"]
    # An entry a count needs cannot go.
    year = package_years()[1] + 1
    entered = client.post(
        f"{BASE}/calendar/overrides",
        json={"day": f"{year}-01-01", "is_workday": False, "reason": "元旦"},
        headers=admin,
    ).get_json()
    for stage, body in (("verify", {"due_on": f"{year}-03-01"}), ("score", {"working_days": 5})):
        counted = client.put(
            f"{BASE}/assessments/{aid}/calendar/stages/{stage}", json=body, headers=admin
        )
        assert counted.status_code == 200, counted.data
    gone = client.delete(f"{BASE}/calendar/overrides/{entered['id']}", headers=admin)
    assert gone.status_code == 422 and error_code(gone) == "override_in_use"
    assert f"录入的 {year} 年安排" in gone.get_json()["error"]["message"]
    # Removing one that moves nothing out of order is fine.
    assert client.delete(f"{BASE}/calendar/overrides/{ids[1]}", headers=admin).status_code == 204


@pytest.mark.parametrize("due", ["2000-01-03", "2004-06-01", "2099-12-31"])
def test_a_deadline_decades_away_is_no_500(
    app: Flask, client: FlaskClient, cast: Cast, session: Session, due: str
) -> None:
    """Any year 2000–2100 from the assessment's year on is accepted; counting to it from today
    overran the counter's 20-year guard (a ValueError: a 500 on the calendar and on every page
    showing deadlines)."""
    w = cast.world
    if int(due[:4]) < w.assessment.year:  # a deadline that long ago: an assessment of then
        w.assessment.year = int(due[:4])
        session.commit()
    app.config["CLOCK"] = lambda: at_shanghai(2026, 12, 4, 9, 0)
    put = client.put(
        f"{BASE}/assessments/{w.assessment.id}/calendar/stages/submit",
        json={"due_on": due},
        headers=cast.headers("admin"),
    )
    assert put.status_code == 200, put.data
    submit = put.get_json()["stages"][0]
    assert submit["due_on"] == due
    known = package_years()[0] <= int(due[:4]) <= package_years()[1]
    assert (submit["working_days_left"] is None) is not known
    assert client.get("/portal/", headers=cast.headers("own")).status_code in (200, 302)


def test_a_deadline_before_the_assessments_year_is_refused(client: FlaskClient, cast: Cast) -> None:
    """2017-10-31 for the 2018 assessment: a clear 422, nothing saved (it was saved, every item
    overdue at once)."""
    url = f"{BASE}/assessments/{cast.world.assessment.id}/calendar/stages/submit"
    put = client.put(url, json={"due_on": "2017-10-31"}, headers=cast.headers("admin"))
    assert put.status_code == 422 and error_code(put) == "deadline_before_year"
    assert "早于 2018 年度" in put.get_json()["error"]["message"]
    stages = client.get(
        f"{BASE}/assessments/{cast.world.assessment.id}/calendar", headers=cast.headers("admin")
    ).get_json()["stages"]
    assert stages[0]["due_on"] is None


def test_a_years_holidays_entered_from_the_notice_through_the_api(
    client: FlaskClient, cast: Cast
) -> None:
    """Dry run, then the entry with the preview's fingerprint; the same engine as the page."""
    from tests.integration.test_holiday_arrangement import notice_for

    year = package_years()[1] + 1
    notice, off, on = notice_for(year)
    url = f"{BASE}/calendar/arrangement"
    admin = cast.headers("admin")
    preview = client.post(url, json={"text": notice, "dry_run": True}, headers=admin)
    body = preview.get_json()
    assert preview.status_code == 200 and body["year"] == year and body["entered"] == 0
    assert body["kept"] == []
    adds = {d["day"] for d in body["days"] if d["action"] == "add"}
    assert adds == {d.isoformat() for d in {d for d in off if d.weekday() < 5} | on}
    done = client.post(url, json={"text": notice, "seen": body["fingerprint"]}, headers=admin)
    assert done.status_code == 200 and done.get_json()["entered"] == len(adds)
    listed = client.get(f"{BASE}/calendar/overrides?limit=500", headers=admin).get_json()
    assert {o["day"] for o in listed["overrides"]} == adds
    stale = client.post(
        url, json={"text": notice_for(year + 1)[0], "seen": body["fingerprint"]}, headers=admin
    )
    assert stale.status_code == 409 and error_code(stale) == "arrangement_changed"
    wrong = client.post(url, json={"text": notice.replace("（周", "（周一"), "dry_run": True},
                        headers=admin)  # fmt: skip
    assert wrong.status_code == 422 and error_code(wrong) == "arrangement_inconsistent"
    refused = client.post(
        url, json={"text": notice, "dry_run": True}, headers=cast.headers("reviewer")
    )
    assert refused.status_code == 403
