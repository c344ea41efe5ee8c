"""Last year's routine records, queue, jobs and calendar stay reachable once next year's
assessment exists: December's report is due in January, and last year's appeals arrive during
its 公示, when the office may have set up the new year."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, submit_items
from tests.web.conftest import text
from workflow import actions
from workflow.demo import demo_pdf
from workflow.models import Assessment, Item, Job, RoutineRecord
from workflow.scheme import Scheme
from workflow.setup import install_scheme

Login = Callable[[str], FlaskClient]


@pytest.fixture
def next_year(session: Session, world: World, scheme_2018: Scheme) -> Assessment:
    """2019's assessment, set up by the office while 2018's is still running."""
    scheme = dataclasses.replace(
        scheme_2018, code="jiaohe-2019", year=2019, title="2019年度市政府相关部门考核细则"
    )
    assessment = install_scheme(session, scheme)
    session.commit()
    return assessment


def _record(session: Session, title: str) -> RoutineRecord:
    session.expire_all()
    return session.execute(select(RoutineRecord).where(RoutineRecord.title == title)).scalar_one()


def test_a_department_reports_to_last_year_after_next_year_is_set_up(
    app: Flask, session: Session, world: World, next_year: Assessment, login: Login
) -> None:
    member = login("member_a")
    newest = text(member.get("/portal/routine"))
    assert next_year.title in newest and 'name="year" value="2019"' in newest
    assert 'href="/portal/routine?year=2018"' in newest
    last = text(member.get("/portal/routine?year=2018"))
    assert world.assessment.title in last and 'name="year" value="2018"' in last
    response = member.post(
        "/portal/routine",
        data={
            "year": "2018",
            "kind": "monthly_info",
            "period": "2018-12",
            "title": "十二月信息",
            "file": (io.BytesIO(demo_pdf("十二月信息")), "十二月信息.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303 and response.location.endswith("/portal/routine?year=2018")
    record = _record(session, "十二月信息")
    assert record.assessment_id == world.assessment.id
    assert record.department_id == world.dep_a.id
    # The department's pages link to the routine page of the year they show.
    index = text(member.get("/portal/?year=2018"))
    assert 'href="/portal/routine?year=2018"' in index
    # A year the department has no department in is a 404, a malformed one a 400; nothing
    # is written by either.
    for year, status in (("1999", 404), ("20x8", 400)):
        bad = member.post(
            "/portal/routine",
            data={"year": year, "kind": "monthly_info", "period": "2018-12", "title": "错年",
                  "file": (io.BytesIO(demo_pdf("错年")), "错年.pdf")},
            content_type="multipart/form-data",
        )  # fmt: skip
        assert bad.status_code == status
    session.expire_all()
    assert session.scalar(select(RoutineRecord).where(RoutineRecord.title == "错年")) is None


def test_the_office_works_on_last_years_records(
    app: Flask, session: Session, world: World, next_year: Assessment, login: Login
) -> None:
    member = login("member_a")
    member.post(
        "/portal/routine",
        data={"year": "2018", "kind": "monthly_info", "period": "2018-12", "title": "迟到的月报",
              "file": (io.BytesIO(demo_pdf("迟到的月报")), "迟到的月报.pdf")},
        content_type="multipart/form-data",
    )  # fmt: skip
    reviewer = login("reviewer")
    newest = text(reviewer.get("/review/routine"))
    assert next_year.title in newest and "迟到的月报" not in newest
    assert 'href="/review/routine?year=2018&amp;status=submitted"' in newest
    last = text(reviewer.get("/review/routine?year=2018"))
    assert world.assessment.title in last and "迟到的月报" in last
    # Tabs, the filter form and the record form stay on 2018.
    assert re.search(r'href="/review/routine\?status=accepted&amp;year=2018"', last)
    assert last.count('name="year" value="2018"') == 2
    recorded = reviewer.post(
        "/review/routine",
        data={"year": "2018", "department_id": str(world.dep_b.id), "kind": "meeting",
              "period": "2018-12", "title": "年终推进会"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert recorded.status_code == 303 and recorded.location.endswith("year=2018")
    meeting = _record(session, "年终推进会")
    assert meeting.assessment_id == world.assessment.id
    assert meeting.department_id == world.dep_b.id
    # A 2019 department in a form that says 2018 is refused, and nothing is written.
    dep_2019 = next(d for d in next_year.departments if d.unit_id == world.dep_b.unit_id)
    crossed = reviewer.post(
        "/review/routine",
        data={"year": "2018", "department_id": str(dep_2019.id), "kind": "meeting",
              "period": "2018-12", "title": "跨年登记"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert crossed.status_code == 404
    session.expire_all()
    assert session.scalar(select(RoutineRecord).where(RoutineRecord.title == "跨年登记")) is None

    quota = text(reviewer.get("/review/routine/quota?year=2018"))
    assert world.assessment.title in quota
    assert 'href="/review/routine/quota.csv?kind=monthly_info&amp;year=2018"' in quota
    csv_response = reviewer.get("/review/routine/quota.csv?kind=monthly_info&year=2018")
    assert "2018-" in csv_response.headers["Content-Disposition"]
    # Last year's pages lead back to last year: an item's breadcrumb, a department's notices.
    item = world.item(session, world.dep_b, "1")
    assert 'href="/review/?state=draft&amp;year=2018"' in text(
        reviewer.get(f"/review/items/{item.id}")
    )
    notices = text(login("admin").get(f"/progress/departments/{world.dep_b.id}/notices"))
    assert 'href="/progress/?year=2018"' in notices
    assert reviewer.get("/review/routine?year=1999").status_code == 404
    assert reviewer.get("/review/routine/quota?year=abc").status_code == 400
    # Every page with a year switch answers a bad or unknown year alike, and says what to do
    # (found by an exploratory walk: the queue ignored ?year=abc, others said 请求无效).
    for path in ("/review/", "/progress/", "/review/routine", "/jobs"):
        bad = (
            reviewer.get(f"{path}?year=abc")
            if path != "/jobs"
            else login("admin").get(f"{path}?year=abc")
        )
        assert bad.status_code == 400 and "考核年度“abc”无效" in text(bad), path
    unknown = reviewer.get("/review/?year=2017")
    assert unknown.status_code == 404 and "没有 2017 年度的考核" in text(unknown)


def test_jobs_and_the_calendar_of_last_year(
    app: Flask, session: Session, world: World, next_year: Assessment, login: Login
) -> None:
    admin = login("admin")
    newest = text(admin.get("/jobs"))
    assert f'name="assessment_id" value="{next_year.id}"' in newest
    last = text(admin.get("/jobs?year=2018"))
    assert f'name="assessment_id" value="{world.assessment.id}"' in last
    assert f'name="assessment_id" value="{next_year.id}"' not in last
    started = admin.post(
        "/jobs", data={"kind": "export", "assessment_id": str(world.assessment.id),
                       "table": "results"},
    )  # fmt: skip
    assert started.status_code == 303
    job = session.execute(select(Job).order_by(Job.id.desc())).scalars().first()
    assert job is not None and job.params["assessment_id"] == world.assessment.id
    # Two years' jobs look alike but for their year, which their names carry.
    assert "2018年度 · " in text(admin.get("/jobs")) and "2018年度 · " in text(
        admin.get(f"/jobs/{job.id}")
    )

    shortcut = admin.get("/admin/calendar?year=2018")
    assert shortcut.status_code == 302
    assert shortcut.location.endswith(f"/admin/assessments/{world.assessment.id}/calendar")
    assert admin.get("/admin/calendar").location.endswith(
        f"/admin/assessments/{next_year.id}/calendar"
    )
    page = text(admin.get(f"/admin/assessments/{world.assessment.id}/calendar"))
    assert 'href="/admin/calendar?year=2019"' in page
    assert admin.get("/admin/calendar?year=1999").status_code == 404


def test_the_newest_queue_names_the_work_waiting_in_last_year(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    next_year: Assessment,
    login: Login,
) -> None:
    submit_items(session, store, world, [world.item(session, world.dep_a, "1")])
    reviewer = login("reviewer")
    newest = text(reviewer.get("/review/"))
    assert next_year.title in newest and "其他年度待办" in newest
    assert 'href="/review/?year=2018&amp;state=submitted">待初审 1</a>' in newest
    # Last year's queue does not name itself; the newest year has nothing waiting.
    assert "其他年度待办" not in text(reviewer.get("/review/?year=2018"))
    # Once last year's results are final, its leftovers are no longer work.
    world.assessment.published_at = world.assessment.appeal_opens_at = dt.datetime(
        2019, 3, 1, tzinfo=dt.UTC
    )
    world.assessment.appeal_closes_at = dt.datetime(2019, 3, 8, tzinfo=dt.UTC)
    session.commit()
    assert "其他年度待办" not in text(reviewer.get("/review/"))


def test_a_departments_page_names_its_items_waiting_in_another_year(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    next_year: Assessment,
    login: Login,
) -> None:
    # 2018: one item submitted, one returned to the department; the rest are drafts.
    first, second = world.item(session, world.dep_a, "1"), world.item(session, world.dep_a, "2")
    submit_items(session, store, world, [first, second])
    actions.transition_item(
        session, second.id, world.reviewer,
        actions.TransitionRequest("return", second.version, comment="材料不全"),
    )  # fmt: skip
    session.commit()
    drafts = session.scalar(
        select(func.count()).select_from(Item).where(
            Item.department_id == world.dep_a.id, Item.state == "draft"
        )
    )  # fmt: skip
    member = login("member_a")
    newest = text(member.get("/portal/"))
    assert next_year.title in newest and "其他年度待办" in newest
    assert re.search(
        rf'href="/portal/\?year=2018">2018年度</a>\s*草稿 {drafts}、已退回 1', newest
    ), newest
    # Another department's waiting items are not named: B's own are all drafts.
    other = text(login("member_b").get("/portal/"))
    assert "其他年度待办" in other and "已退回" not in other.split("其他年度待办")[1][:300]


def test_last_years_notice_is_the_departments_own_link(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    scheme_2018: Scheme,
    login: Login,
) -> None:
    """2018's notice under 公示, 2019 set up: /portal/notice.docx serves the year asked for,
    by default the one the department's page opens on (the one under 公示)."""
    from tests.integration.test_notices import score_department
    from workflow.models import utcnow
    from workflow.notices import issue_notice

    score_department(session, store, world, world.dep_b, world.member_b)
    now = utcnow()
    a = world.assessment
    a.published_at = a.appeal_opens_at = now - dt.timedelta(days=1)
    a.appeal_closes_at = now + dt.timedelta(days=3)
    a.result_document_no = "蛟市职转办〔2019〕1号"
    issued = issue_notice(session, store, a, world.dep_b, world.scorer).notice
    next_scheme = dataclasses.replace(
        scheme_2018, code="jiaohe-2019", year=2019, title="2019年度市政府相关部门考核细则"
    )
    install_scheme(session, next_scheme)
    session.commit()
    member = login("member_b")
    assert 'href="/portal/notice.docx?year=2018"' in text(member.get("/portal/"))
    for url in ("/portal/notice.docx", "/portal/notice.docx?year=2018"):
        response = member.get(url)
        assert response.status_code == 200, url
        assert response.headers["X-Notice-Id"] == str(issued.id)
    assert member.get("/portal/notice.docx?year=2019").status_code == 404  # not published


def test_a_published_years_reports_are_closed_to_the_department(
    app: Flask, session: Session, world: World, next_year: Assessment, login: Login
) -> None:
    """Once a year's results are published its routine reports change no score: the
    department's form gives way to a note, and a report posted all the same is refused; the
    office still registers records of it (an appeal may need one)."""
    a = world.assessment
    a.published_at = a.appeal_opens_at = dt.datetime(2019, 3, 1, tzinfo=dt.UTC)
    a.appeal_closes_at = dt.datetime(2099, 3, 8, tzinfo=dt.UTC)
    session.commit()
    member = login("member_a")
    page = text(member.get("/portal/routine?year=2018"))
    assert "2018年度考核结果已公示，不再接受该年度的平时考核报送" in page
    assert 'action="/portal/routine"' not in page
    assert 'action="/portal/routine"' in text(member.get("/portal/routine?year=2019"))
    posted = member.post(
        "/portal/routine",
        data={"year": "2018", "kind": "monthly_info", "period": "2018-12", "title": "公示后补报",
              "file": (io.BytesIO(demo_pdf("公示后补报")), "公示后补报.pdf")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert posted.status_code == 409 and "不再接受" in text(posted)
    session.expire_all()
    assert session.scalar(select(RoutineRecord).where(RoutineRecord.title == "公示后补报")) is None
    recorded = login("reviewer").post(
        "/review/routine",
        data={"year": "2018", "department_id": str(world.dep_b.id), "kind": "meeting",
              "period": "2018-12", "title": "申诉核实：年终推进会"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert recorded.status_code == 303
