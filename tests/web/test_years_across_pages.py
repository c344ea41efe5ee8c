"""Pages and messages once several years exist: each says which year it is about and leads
to that year, and a merged unit's account is shown under the unit it now works for (found by
a walk through 2018 → 2019 → 2020 with a merge, in the browser)."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, rules_2019, submit_items
from tests.integration.test_notices import score_department, start_publication
from tests.web.conftest import csrf_token, text
from workflow import reminders
from workflow.calendar import set_stage_deadline
from workflow.models import Assessment, Department, Notification, utcnow
from workflow.notices import issue_notice
from workflow.scheme import Scheme
from workflow.setup import create_assessment
from workflow.units import apply_change
from workflow.users import create_user

Login = Callable[[str], FlaskClient]


@pytest.fixture
def next_year(session: Session, world: World, scheme_2018: Scheme) -> Assessment:
    """2019's assessment, created while 2018's is still running: /portal/ now opens 2019."""
    made = create_assessment(
        session, rules_2019(scheme_2018), year=2019, result_document_no="蛟市职转办〔2020〕1号",
        actor=world.admin,
    )  # fmt: skip
    session.commit()
    return made


def test_reminders_name_their_year_and_open_that_years_page(
    app: Flask, session: Session, store: LocalStore, world: World, next_year: Assessment,
    login: Login,
) -> None:  # fmt: skip
    """2018's reminders after 2019 exists: they opened /portal/ and /review/, i.e. 2019's
    pages, and their titles did not say 2018 (two running years read alike)."""
    w = world
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=dt.date(2018, 9, 1),
        due_on=dt.date(2018, 10, 8), working_days=None, actor=w.admin,
    )  # fmt: skip
    submit_items(session, store, w, [w.item(session, w.dep_b, "1")])
    # Saturday 29 September 2018 is a 调休 working day: 3 working days left.
    reminders.send_reminders(app.extensions["sessionmaker"], dt.date(2018, 9, 29))
    session.expire_all()

    near = session.scalars(
        select(Notification).where(
            Notification.user_id == w.member_a.id, Notification.kind == "deadline_near"
        )
    ).one()
    assert near.link == "/portal/?year=2018"
    assert near.title.startswith("2018年度截止提醒：")
    member = login("member_a")
    assert next_year.title in text(member.get("/portal/"))  # the default: the newest year
    opened = member.post(f"/me/messages/{near.id}/read", data={"open": "1"})
    assert opened.status_code == 303 and opened.location.endswith("/portal/?year=2018")
    page = text(member.get(opened.location))
    assert w.assessment.title in page and next_year.title not in page
    member.set_cookie("lang", "en")
    assert "2018 deadline reminder: " in text(member.get("/me/messages"))

    queue = session.scalars(
        select(Notification).where(
            Notification.user_id == w.reviewer.id, Notification.kind == "queue_waiting"
        )
    ).one()
    assert queue.link == "/review/?year=2018" and queue.title.startswith("2018年度待办：")
    assert w.assessment.title in text(login("reviewer").get(queue.link))


def test_a_merged_units_account_is_listed_under_the_unit_it_now_works_for(
    app: Flask, session: Session, world: World, scheme_2018: Scheme, login: Login
) -> None:
    """The users pages said the account's own unit (merged away), while the header said the
    merged one; moving the user onto the merged unit (kept as it is: the account already leads
    there) then looked unsaved. A dissolved (or split) unit's account looked like any other."""
    w = world
    a_name = w.dep_a.name
    lvyou = session.scalars(
        select(Department).where(
            Department.assessment_id == w.assessment.id, Department.name == "旅游办"
        )
    ).one()
    create_user(session, "lvyou", ["department"], department=lvyou)
    apply_change(
        session, kind="dissolve", effective_on=dt.date(2019, 3, 1),
        document_no="蛟市机编〔2019〕8号", reason="机构改革", from_ids=[lvyou.unit_id],
        actor=w.admin,
    )  # fmt: skip
    apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕9号",
        reason="机构改革", from_ids=[w.dep_a.unit_id, w.dep_b.unit_id],
        to=[{"name": "合并示例局"}], actor=w.admin,
    )  # fmt: skip
    session.commit()
    made = create_assessment(
        session, rules_2019(scheme_2018), year=2019, result_document_no="蛟市职转办〔2020〕1号",
        actor=w.admin,
    )  # fmt: skip
    session.commit()
    merged = session.scalars(
        select(Department).where(
            Department.assessment_id == made.id, Department.name == "合并示例局"
        )
    ).one()

    admin = login("admin")
    listed = text(admin.get("/admin/users"))
    row = re.search(r"member_a</a></td>.*?</tr>", listed, re.S)
    assert row is not None and f"<td>合并示例局（原{a_name}）</td>" in row.group(0)
    # An account of a dissolved unit has no later department: the list says why.
    assert "<td>旅游办（已撤销）</td>" in listed
    user_page = f"/admin/users/{w.member_a.id}"
    html = text(admin.get(user_page))
    moved = admin.post(
        f"/admin/users/{w.member_a.id}/roles",
        data={"csrf_token": csrf_token(html), "roles": "department",
              "department_id": str(merged.id)},
    )  # fmt: skip
    assert moved.status_code == 303
    after = text(admin.get(user_page))
    assert f"<dd>合并示例局（原{a_name}）</dd>" in after
    assert "合并示例局" in text(login("member_a").get("/portal/"))  # as the header says
    sheet = load_workbook(io.BytesIO(admin.get("/admin/users.xlsx").data)).active
    assert sheet is not None
    rows = {r[0]: r for r in sheet.iter_rows(values_only=True)}
    assert rows["member_a"][3] == f"合并示例局（原{a_name}）"
    assert rows["reviewer"][3] in (None, "")  # no unit: nothing
    assert rows["lvyou"][3] == "旅游办（已撤销）"
    admin.set_cookie("lang", "en")
    assert f"合并示例局 (formerly {a_name})" in text(admin.get(user_page))


def test_pages_say_the_year_they_are_about(
    app: Flask, session: Session, store: LocalStore, world: World, next_year: Assessment,
    login: Login,
) -> None:  # fmt: skip
    """Item pages (the same indicator every year), the audit filter (a department per year)
    and its targets,
    the departments page (the newest year's), a unit's unpublished rank (暂定, as the progress
    page says), the review queue's year switch (keeps 只看逾期), the appeal days (calendar
    days), the public verification of a notice (its 发文字号 is of the next year)."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    item = w.item(session, w.dep_a, "1")
    year_fact = "<dt>考核年度</dt><dd>2018年度</dd>"
    assert year_fact in text(login("member_a").get(f"/portal/items/{item.id}"))
    assert year_fact in text(login("reviewer").get(f"/review/items/{item.id}"))

    audit = text(login("auditor").get("/audit/"))
    groups = re.findall(r'<optgroup label="(\d+)年度">', audit)
    assert groups == ["2019", "2018"]
    # Targets say their year: each year has a 1. item of the department; 考核 N says nothing.
    assert re.search(rf"{w.dep_a.name} / 1\. [^<]* · 2018年度</a>", audit)
    assert f"考核 {next_year.id} · 2019年度" in audit

    admin = login("admin")
    # The appeal window is counted in calendar days unless working days are chosen: said so.
    settings = text(admin.get("/admin/assessment?year=2018"))
    assert "公示（申诉）期" in settings and "自然日（含节假日）" in settings
    departments = text(admin.get("/admin/departments"))
    assert f'<h1>部门管理 <span class="muted">{next_year.title}</span>' in departments

    unit_page = f"/admin/units/{w.dep_a.unit_id}"
    rank_row = re.compile(r"<td>名次</td>(.*?)</tr>", re.S)
    before = rank_row.search(text(admin.get(unit_page)))
    assert before is not None and "暂定" in before.group(1)

    queue = text(login("reviewer").get("/review/?year=2018&overdue=1"))
    assert 'href="/review/?year=2019&amp;state=submitted&amp;overdue=1"' in queue

    w.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    start_publication(session, w.assessment)
    after = rank_row.search(text(admin.get(unit_page)))
    assert after is not None and "暂定" not in after.group(1)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()
    verified = text(app.test_client().get(f"/verify/{notice.verification_code}"))
    assert "<dt>考核年度</dt><dd>2018年度</dd>" in verified
    body = app.test_client().get(f"/api/v1/verify/{notice.verification_code}").get_json()
    assert body["year"] == 2018 and body["document_no"] == "蛟市职转办〔2019〕1号"


def test_both_years_on_public_view_have_their_publication_page(
    app: Flask, session: Session, world: World, next_year: Assessment
) -> None:
    """2019's results published while 2018's window is still open: the banner named both, but
    /publication/ showed 2019 only, and ?year=2018 was ignored."""
    now = utcnow()
    for a, opened in ((world.assessment, now - dt.timedelta(days=2)), (next_year, now)):
        a.published_at = a.appeal_opens_at = opened
        a.appeal_closes_at = now + dt.timedelta(days=5)
    session.commit()
    anonymous = app.test_client()
    newest = text(anonymous.get("/publication/"))
    assert "2019年度“放管服”工作考核结果公示" in newest
    assert 'href="/publication/?year=2018"' in newest  # the banner and the year switch
    last = text(anonymous.get("/publication/?year=2018"))
    assert "2018年度“放管服”工作考核结果公示" in last and world.assessment.document_no in last
    assert '<strong aria-current="page">2018年度</strong>' in last
    assert anonymous.get("/publication/?year=1999").status_code == 404
    # A year not on public view says so, with no figures.
    world.assessment.appeal_closes_at = now - dt.timedelta(minutes=1)
    session.commit()
    closed = text(anonymous.get("/publication/?year=2018"))
    assert "公示期已于" in closed and "名次" not in closed


def test_year_switch_and_other_years_use_the_languages_punctuation(
    session: Session, store: LocalStore, world: World, next_year: Assessment, login: Login
) -> None:
    """The English pages said 「Assessment years：」 and 「Waiting in other years：2018 …」:
    the colon (and the list's separators) now come from the catalog, like every other label."""
    w = world
    submit_items(session, store, w, [w.item(session, w.dep_b, "1"), w.item(session, w.dep_b, "3")])
    pages = {"reviewer": "/review/", "admin": f"/admin/assessments/{next_year.id}/calendar"}
    for username, path in pages.items():
        client = login(username)
        chinese = text(client.get(path))
        switch = re.search(r'<nav class="year-switch".*?</nav>', chinese, re.S)
        assert switch is not None and "考核年度：" in switch.group(0), path
        client.set_cookie("lang", "en")
        english = text(client.get(path))
        switch = re.search(r'<nav class="year-switch".*?</nav>', english, re.S)
        assert switch is not None and "Assessment years: " in switch.group(0), path
        assert 'aria-label="Assessment years"' in switch.group(0), path
        assert not re.search("[：、；]", switch.group(0)), switch.group(0)
    others = re.search(r'<p class="flash flash-info other-years">.*?</p>', text(
        login("reviewer").get("/review/")), re.S)  # fmt: skip
    assert others is not None and "其他年度待办：" in others.group(0)
    reviewer = login("reviewer")
    reviewer.set_cookie("lang", "en")
    others = re.search(
        r'<p class="flash flash-info other-years">.*?</p>', text(reviewer.get("/review/")), re.S
    )
    assert others is not None and "Waiting in other years: " in others.group(0)
    assert not re.search("[：、；]", others.group(0)), others.group(0)


def test_a_unit_renamed_or_merged_after_the_newest_year_reads_as_it_is_now(
    session: Session, world: World, login: Login
) -> None:
    """Renamed after the newest year, a unit's account read 甲局（原交通运输局）: the year's
    department name as the name now and the new name as the former one, backwards. Merged
    after it, the account read as if nothing had happened. The users list, the user's page and
    the .xlsx say the name now, and that the unit was merged."""
    w = world
    a_name, b_name = w.dep_a.name, w.dep_b.name
    apply_change(
        session, kind="rename", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕1号",
        reason="机构改革", from_ids=[w.dep_a.unit_id], to=[{"name": "交通运输局"}],
        actor=w.admin,
    )  # fmt: skip
    other = session.scalars(
        select(Department).where(
            Department.assessment_id == w.assessment.id, Department.name == "旅游办"
        )
    ).one()
    apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕2号",
        reason="机构改革", from_ids=[w.dep_b.unit_id, other.unit_id],
        to=[{"name": "合并示例局"}], actor=w.admin,
    )  # fmt: skip
    session.commit()
    admin = login("admin")
    listed = text(admin.get("/admin/users"))
    row_a = re.search(r"member_a</a></td>.*?</tr>", listed, re.S)
    row_b = re.search(r"member_b</a></td>.*?</tr>", listed, re.S)
    assert row_a is not None and row_b is not None
    assert "<td>交通运输局</td>" in row_a.group(0), row_a.group(0)
    assert "（原" not in row_a.group(0) and a_name not in row_a.group(0)
    assert f"<td>{b_name}（已合并）</td>" in row_b.group(0), row_b.group(0)
    assert "<dd>交通运输局</dd>" in text(admin.get(f"/admin/users/{w.member_a.id}"))
    sheet = load_workbook(io.BytesIO(admin.get("/admin/users.xlsx").data)).active
    assert sheet is not None
    rows = {r[0]: r for r in sheet.iter_rows(values_only=True)}
    assert rows["member_a"][3] == "交通运输局"
    assert rows["member_b"][3] == f"{b_name}（已合并）"
