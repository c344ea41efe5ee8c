"""The routine endpoints, publication and reopening over HTTP: scenario, roles, bad input."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.api.conftest import ROLES, Cast, error_code, pdf_upload
from workflow.calendar import work_calendar
from workflow.models import Assessment, Item, RoutineRecord, utcnow

BASE = "/api/v1"


def test_department_reports_and_office_reviews(client: FlaskClient, cast: Cast) -> None:
    w = cast.world
    aid = w.assessment.id
    made = client.post(
        f"{BASE}/assessments/{aid}/routine",
        data=pdf_upload(
            "八月信息.pdf",
            "r1",
            kind="monthly_info",
            period="2018-08",
            title="我局推进“放管服”改革工作信息",
        ),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert made.status_code == 201, made.get_json()
    record = made.get_json()
    assert record["period"] == "2018-08" and record["status"] == "submitted"
    assert record["department_id"] == w.dep_a.id and record["is_late"] is True  # it is 2026
    assert record["files"][0]["filename"] == "八月信息.pdf"
    rid = record["id"]
    # a rejection needs a reason; the department cannot review; another department cannot see
    r = client.post(
        f"{BASE}/routine/{rid}/review",
        json={"status": "rejected"},
        headers=cast.headers("reviewer"),
    )
    assert r.status_code == 422 and error_code(r) == "reason_required"
    r = client.post(
        f"{BASE}/routine/{rid}/review", json={"status": "accepted"}, headers=cast.headers("own")
    )
    assert r.status_code == 403
    r = client.post(
        f"{BASE}/routine/{rid}/review", json={"status": "accepted"}, headers=cast.headers("other")
    )
    assert r.status_code == 404
    r = client.post(
        f"{BASE}/routine/{rid}/review",
        json={"status": "accepted", "x": 1},
        headers=cast.headers("reviewer"),
    )
    assert r.status_code == 400 and error_code(r) == "unknown_field"
    r = client.post(
        f"{BASE}/routine/{rid}/review",
        json={"status": "accepted"},
        headers=cast.headers("reviewer"),
    )
    assert r.status_code == 200 and r.get_json()["status"] == "accepted"
    # the overview counts it against the quota and suggests scores
    ov = client.get(
        f"{BASE}/assessments/{aid}/departments/{w.dep_a.id}/routine", headers=cast.headers("own")
    )
    assert ov.status_code == 200
    body = ov.get_json()
    august = next(c for c in body["counts"]["monthly_info"] if c["period"] == "2018-08")
    assert august == {
        "period": "2018-08",
        "accepted": 1,
        "late": 1,
        "rejected": 0,
        "pending": 0,
        "minimum": 2,
        "met": False,
    }
    assert set(body["suggested"]) == {"9.1", "9.2", "10.1"}
    assert body["suggested"]["9.1"]["points"] == "0.00"
    assert body["suggested"]["10.1"]["points"] == "5.00"
    other = client.get(
        f"{BASE}/assessments/{aid}/departments/{w.dep_a.id}/routine", headers=cast.headers("other")
    )
    assert other.status_code == 404


def test_office_records_meetings_for_any_department(client: FlaskClient, cast: Cast) -> None:
    w = cast.world
    aid = w.assessment.id
    url = f"{BASE}/assessments/{aid}/routine"
    fields = {"kind": "meeting", "period": "2018-09", "title": "推进会"}
    r = client.post(
        url,
        data={**fields, "department": str(w.dep_b.id)},
        headers=cast.headers("reviewer"),
        content_type="multipart/form-data",
    )
    assert r.status_code == 201 and r.get_json()["files"] == []
    r = client.post(
        url, data=fields, headers=cast.headers("reviewer"), content_type="multipart/form-data"
    )
    assert r.status_code == 422 and error_code(r) == "department_required"
    r = client.post(
        url,
        data=pdf_upload(**fields),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert r.status_code == 403
    for bad in ({"period": "2018-13"}, {"period": "2018-Q3"}, {"kind": "x"}, {"title": ""}):
        data = pdf_upload(**{"kind": "monthly_info", "period": "2018-08", "title": "t", **bad})
        r = client.post(
            url, data=data, headers=cast.headers("own"), content_type="multipart/form-data"
        )
        assert r.status_code == 422, (bad, r.get_json())
    r = client.post(url, json=fields, headers=cast.headers("own"))
    assert r.status_code == 415
    r = client.post(
        url,
        data={**fields, "department": "abc"},
        headers=cast.headers("reviewer"),
        content_type="multipart/form-data",
    )
    assert r.status_code == 400


def _expect(default: int, **codes: int) -> dict[str, int]:
    table = dict.fromkeys(ROLES, default)
    table.update({"anonymous": 401, "disabled": 401}, **codes)
    return table


def test_publish_and_reopen_roles_and_states(
    app: Flask, client: FlaskClient, session: Session, cast: Cast
) -> None:
    aid = cast.world.assessment.id
    cases: list[tuple[str, dict[str, Any], dict[str, int]]] = [
        ("publish", {"days": 5}, _expect(403, admin=409)),  # not every item is scored
        ("reopen", {"reason": "更正"}, _expect(403, admin=409)),  # not final
    ]
    for verb, body, expected in cases:
        for role in ROLES:
            r = client.post(
                f"{BASE}/assessments/{aid}/{verb}", json=body, headers=cast.headers(role)
            )
            assert r.status_code == expected[role], (verb, role, r.get_json())
    for body in (
        {"days": "5"},
        {"days": True},
        {"days": 5, "extra": 1},
        {},
        {"days": 5, "working_days": "yes"},
    ):
        r = client.post(
            f"{BASE}/assessments/{aid}/publish", json=body, headers=cast.headers("admin")
        )
        assert r.status_code == 400, body
    r = client.post(
        f"{BASE}/assessments/{aid}/publish", json={"days": 0}, headers=cast.headers("admin")
    )
    assert r.status_code == 422
    # make it final by hand (a window that has closed), then reopen
    a = session.get(Assessment, aid)
    assert a is not None
    a.published_at = utcnow() - dt.timedelta(days=10)
    a.appeal_opens_at = a.published_at
    a.appeal_closes_at = utcnow() - dt.timedelta(days=3)
    session.commit()
    url = f"{BASE}/assessments/{aid}/routine"
    fields = {"kind": "monthly_info", "period": "2018-12", "title": "十二月信息"}
    r = client.post(
        url,
        data=pdf_upload(**fields),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert r.status_code == 409 and error_code(r) == "assessment_final"
    r = client.post(
        f"{BASE}/assessments/{aid}/reopen", json={"reason": " "}, headers=cast.headers("admin")
    )
    assert r.status_code == 422
    r = client.post(
        f"{BASE}/assessments/{aid}/reopen",
        json={"reason": "发现录入错误"},
        headers=cast.headers("admin"),
    )
    assert r.status_code == 200 and r.get_json()["status"] == "reopened"
    assert r.get_json()["reopen_reason"] == "发现录入错误"
    r = client.post(
        url,
        data=pdf_upload(**fields),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert r.status_code == 201
    assert session.query(RoutineRecord).count() == 1


def test_office_corrects_and_withdraws_its_registration(client: FlaskClient, cast: Cast) -> None:
    w = cast.world
    aid = w.assessment.id
    made = client.post(
        f"{BASE}/assessments/{aid}/routine",
        data={"kind": "meeting", "period": "2018-09", "title": "推进会", "outcome": "missed",
              "department": str(w.dep_a.id)},
        headers=cast.headers("reviewer"),
        content_type="multipart/form-data",
    )  # fmt: skip
    body = made.get_json()
    assert made.status_code == 201 and body["registered_by"] == "office"
    assert body["outcome"] == "missed" and body["is_late"] is False  # registered in 2026
    rid = body["id"]
    url = f"{BASE}/routine/{rid}"
    r = client.post(f"{url}/correct", json={"outcome": "done"}, headers=cast.headers("reviewer"))
    assert r.status_code == 422 and error_code(r) == "reason_required"
    r = client.post(
        f"{url}/correct", json={"outcome": "done", "reason": "x"}, headers=cast.headers("own")
    )
    assert r.status_code == 403
    r = client.post(
        f"{url}/correct",
        json={"outcome": "done", "period": "2018-10", "reason": "登记时误选缺席"},
        headers=cast.headers("reviewer"),
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["outcome"] == "done" and r.get_json()["period"] == "2018-10"
    r = client.post(
        f"{url}/withdraw", json={"reason": "重复登记"}, headers=cast.headers("reviewer")
    )
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn"
    r = client.post(f"{url}/withdraw", json={"reason": "again"}, headers=cast.headers("reviewer"))
    assert r.status_code == 409
    # A department's own report is not the office's to correct.
    own = client.post(
        f"{BASE}/assessments/{aid}/routine",
        data=pdf_upload("信息.pdf", "r9", kind="monthly_info", period="2018-08", title="信息"),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    ).get_json()
    r = client.post(
        f"{BASE}/routine/{own['id']}/withdraw", json={"reason": "x"},
        headers=cast.headers("reviewer"),
    )  # fmt: skip
    assert r.status_code == 403 and error_code(r) == "department_record"


def test_10_1_suggestion_counts_only_what_the_department_did(
    client: FlaskClient, cast: Cast
) -> None:
    """The issue's case: one meeting, one inspection, two duplicates the office rejected."""
    w = cast.world
    aid = w.assessment.id
    office = cast.headers("reviewer")

    def register(kind: str, period: str, title: str, outcome: str = "done") -> int:
        r = client.post(
            f"{BASE}/assessments/{aid}/routine",
            data={"kind": kind, "period": period, "title": title, "outcome": outcome,
                  "department": str(w.dep_a.id)},
            headers=office,
            content_type="multipart/form-data",
        )  # fmt: skip
        assert r.status_code == 201, r.get_json()
        return int(r.get_json()["id"])

    def review(rid: int, status: str) -> None:
        body = {"status": status, "reason": "重复登记" if status == "rejected" else None}
        r = client.post(f"{BASE}/routine/{rid}/review", json=body, headers=office)
        assert r.status_code == 200, r.get_json()

    def suggested() -> dict[str, Any]:
        ov = client.get(f"{BASE}/assessments/{aid}/departments/{w.dep_a.id}/routine",
                        headers=office)  # fmt: skip
        return dict(ov.get_json()["suggested"]["10.1"])

    assert suggested()["points"] == "5.00" and suggested()["breakdown"]["no_records"] is True
    review(register("meeting", "2018-09", "九月推进会"), "accepted")
    review(register("inspection", "2018-10", "十月督查"), "accepted")
    review(register("meeting", "2018-09", "九月推进会（重复）"), "rejected")
    review(register("inspection", "2018-10", "十月督查（重复）"), "rejected")
    s = suggested()
    assert s["points"] == "5.00", s
    assert s["breakdown"]["late"] == 0 and s["breakdown"]["rejected"] == 2
    assert s["breakdown"]["counted"] == 2 and s["breakdown"]["no_records"] is False
    # A meeting the department missed is what lowers it: 2 of 3 completed.
    review(register("meeting", "2018-11", "十一月推进会", outcome="missed"), "accepted")
    assert suggested()["points"] == "3.33"


def test_multipart_fields_are_declared_and_one_file_goes_per_request(
    client: FlaskClient, cast: Cast, session: Session
) -> None:
    """A stray form field is refused as in a JSON body, and a second `file` part is refused
    rather than dropped unsaid (routine records and evidence alike); nothing is stored."""
    import io

    from workflow.demo import demo_pdf

    w = cast.world
    aid = w.assessment.id
    extra = client.post(
        f"{BASE}/assessments/{aid}/routine",
        data=pdf_upload(kind="monthly_info", period="2018-08", title="信息", extra="1"),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert extra.status_code == 400 and error_code(extra) == "unknown_field"
    misnamed = client.post(
        f"{BASE}/assessments/{aid}/routine",
        data={"x": (io.BytesIO(demo_pdf("m")), "会议.pdf"), "kind": "meeting",
              "period": "2018-09", "title": "推进会", "department": str(w.dep_b.id)},
        headers=cast.headers("reviewer"),
        content_type="multipart/form-data",
    )  # fmt: skip
    assert misnamed.status_code == 400 and error_code(misnamed) == "unknown_field"
    item = w.item(session, w.dep_a, "1")
    two = client.post(
        f"{BASE}/items/{item.id}/evidence",
        data={"file": [(io.BytesIO(demo_pdf("a")), "a.pdf"), (io.BytesIO(demo_pdf("b")), "b.pdf")]},
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    assert two.status_code == 400 and error_code(two) == "one_file_only"
    listed = client.get(f"{BASE}/items/{item.id}", headers=cast.headers("own")).get_json()
    assert listed["evidence"] == []
    records = client.get(
        f"{BASE}/assessments/{aid}/departments/{w.dep_a.id}/routine", headers=cast.headers("own")
    ).get_json()
    assert records["records"] == []


def test_a_review_from_a_stale_page_is_a_409(client: FlaskClient, cast: Cast) -> None:
    """The status the client saw no longer holds (another reviewer came first): 409."""
    w = cast.world
    made = client.post(
        f"{BASE}/assessments/{w.assessment.id}/routine",
        data=pdf_upload(kind="monthly_info", period="2018-08", title="八月信息"),
        headers=cast.headers("own"),
        content_type="multipart/form-data",
    )
    rid = made.get_json()["id"]
    first = client.post(
        f"{BASE}/routine/{rid}/review",
        json={"status": "accepted", "expected_status": "submitted"},
        headers=cast.headers("reviewer"),
    )
    assert first.status_code == 200, first.data
    stale = client.post(
        f"{BASE}/routine/{rid}/review",
        json={"status": "rejected", "reason": "重复", "expected_status": "submitted"},
        headers=cast.headers("reviewer"),
    )
    assert stale.status_code == 409 and error_code(stale) == "routine_changed"
    assert "已采纳" in stale.get_json()["error"]["message"]
    again = client.post(
        f"{BASE}/routine/{rid}/review",
        json={"status": "accepted"},
        headers=cast.headers("reviewer"),
    )
    assert again.status_code == 409 and error_code(again) == "routine_already_reviewed"


def test_publish_counted_in_working_days(client: FlaskClient, session: Session, cast: Cast) -> None:
    """`working_days`: the window closes on the 5th working day after today, at the hour it
    opened (calendar days stay the default)."""
    session.execute(update(Item).values(state="scored", total=0))  # a shortcut past scoring
    session.commit()
    aid = cast.world.assessment.id
    r = client.post(
        f"{BASE}/assessments/{aid}/publish",
        json={"days": 5, "working_days": True},
        headers=cast.headers("admin"),
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    tz = ZoneInfo("Asia/Shanghai")
    opens = dt.datetime.fromisoformat(body["appeal_opens_at"].replace("Z", "+00:00"))
    closes = dt.datetime.fromisoformat(body["appeal_closes_at"].replace("Z", "+00:00"))
    opens, closes = opens.astimezone(tz), closes.astimezone(tz)
    calendar = work_calendar(session)
    assert calendar.working_days_between(opens.date(), closes.date()) == 5
    assert calendar.is_workday(closes.date())
    assert closes.time().replace(microsecond=0) == opens.time().replace(microsecond=0)
