"""The 公示 page: results only while publication runs, the deadline, how to appeal, audience."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, rules_2019
from tests.integration.test_notices import score_department
from tests.web.conftest import text
from workflow.models import AuditEvent, utcnow
from workflow.scheme import Scheme
from workflow.setup import install_scheme

Login = Callable[[str], FlaskClient]


def _window(session: Session, world: World, start: dt.datetime, end: dt.datetime) -> None:
    a = world.assessment
    a.published_at = a.appeal_opens_at = start
    a.appeal_closes_at = end
    session.commit()


def test_results_only_while_publication_runs(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    score_department(session, store, world, world.dep_b, world.member_b)
    session.commit()
    anonymous = app.test_client()
    before = text(anonymous.get("/publication/"))
    assert "尚未公示" in before and "名次" not in before and world.dep_b.name not in before
    now = utcnow()
    closes = now + dt.timedelta(days=3)
    _window(session, world, now - dt.timedelta(days=1), closes)
    response = anonymous.get("/publication/")
    assert response.status_code == 200
    page = text(response)
    assert "考核结果公示" in page and "名次" in page and "如何申诉" in page
    # Maxima read as the notices print them (it said 满分 100.00 分，折合 2.00 分).
    assert "满分 100 分，折合 2 分。" in page and "100.00 分" not in page
    # Departments by the full names the 汇总表 prints (it showed the short ones).
    world.dep_a.full_name = f"{world.dep_a.name}（挂牌机构）"
    session.commit()
    assert f"<td>{world.dep_a.name}（挂牌机构）</td>" in text(anonymous.get("/publication/"))
    assert world.dep_b.name in page and world.dep_a.name in page
    local_close = closes.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M")
    assert local_close in page and "申诉截止时间" in page
    assert re.search(r"<td class=\"num\">1</td><td>" + re.escape(world.dep_b.name), page)
    assert "js/print.js" in page and "<script>" not in page  # the CSP forbids inline script
    _window(session, world, now - dt.timedelta(days=10), now - dt.timedelta(days=1))
    after = text(anonymous.get("/publication/"))
    assert "公示期已于" in after and "名次" not in after and world.dep_b.name not in after
    assert "考核结果已最终确定" in after
    # An appeal still undecided after the window: not "final" (the department's page says
    # 复核中 meanwhile).
    item = world.item(session, world.dep_b, "1")
    item.state = "appealed"
    session.commit()
    pending = text(anonymous.get("/publication/"))
    assert "尚有申诉正在复核" in pending and "考核结果已最终确定。" not in pending


def test_audience_is_an_audited_assessment_setting(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    now = utcnow()
    _window(session, world, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    admin = login("admin")
    page = text(admin.get("/admin/assessment"))
    assert "考核结果公示页面" in page and "仅限已登录用户" in page
    bad = admin.post("/admin/assessment", data={"action": "publication_page", "audience": "x"})
    assert bad.status_code == 422
    ok = admin.post(
        "/admin/assessment", data={"action": "publication_page", "audience": "signed_in"}
    )
    assert ok.status_code == 303
    anonymous = app.test_client().get("/publication/")
    assert anonymous.status_code == 302 and "/login" in anonymous.location
    assert "名次" in text(login("member_a").get("/publication/"))
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "publication_page_set")
    ).scalar_one()
    assert '"to":"signed_in"' in event.payload
    assert (
        login("reviewer")
        .post("/admin/assessment", data={"action": "publication_page", "audience": "public"})
        .status_code
        == 403
    )


def test_the_publication_stays_up_when_next_year_is_started_during_it(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    login: Login,
    scheme_2018: Scheme,
) -> None:
    """The office sets up 2019 while 2018's results are on public view: the 公示 page and the
    banner keep showing 2018 until its window closes, then the page speaks of 2019."""
    score_department(session, store, world, world.dep_b, world.member_b)
    now = utcnow()
    _window(session, world, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    next_year = dataclasses.replace(
        scheme_2018, code="jiaohe-2019", year=2019, title="2019年度市政府相关部门考核细则"
    )
    install_scheme(session, next_year)
    session.commit()
    anonymous = app.test_client()
    page = text(anonymous.get("/publication/"))
    assert "2018年度“放管服”工作考核结果公示" in page and world.dep_b.name in page
    assert "2018年度考核结果公示中" in text(login("member_a").get("/"))
    # The department's own page opens on the year under 公示, where its appeals are made;
    # 2019 is one click away, and an unknown year is a 404.
    member = login("member_b")
    own = text(member.get("/portal/"))
    assert world.assessment.title in own and next_year.title not in own
    assert 'href="/portal/?year=2019"' in own and "2018年度</strong>" in own
    assert next_year.title in text(member.get("/portal/?year=2019"))
    unknown = member.get("/portal/?year=1999")
    assert unknown.status_code == 404 and "您的单位没有 1999 年度的考核事项" in text(unknown)
    _window(session, world, now - dt.timedelta(days=10), now - dt.timedelta(days=1))
    after = text(anonymous.get("/publication/"))
    assert "2019年度市政府相关部门考核细则的考核结果尚未公示" in after
    assert world.dep_b.name not in after
    assert "考核结果公示中" not in text(login("member_a").get("/"))
    assert next_year.title in text(member.get("/portal/"))  # the newest year again


def test_two_years_on_public_view_each_have_their_banner(
    app: Flask,
    session: Session,
    world: World,
    login: Login,
    scheme_2018: Scheme,
) -> None:
    """2019's results are published while 2018's window is still open: every page names both
    (the banner showed only 2019's, and 2018's departments lost sight of their window)."""
    now = utcnow()
    _window(session, world, now - dt.timedelta(days=2), now + dt.timedelta(days=5))
    next_year = install_scheme(session, rules_2019(scheme_2018))
    next_year.published_at = next_year.appeal_opens_at = now - dt.timedelta(hours=1)
    next_year.appeal_closes_at = now + dt.timedelta(days=7)
    session.commit()
    page = text(login("member_a").get("/portal/"))
    first, second = page.index("2019年度考核结果公示中"), page.index("2018年度考核结果公示中")
    assert first < second  # the newest year first
    world.assessment.appeal_closes_at = now - dt.timedelta(minutes=1)
    session.commit()
    page = text(login("member_a").get("/portal/"))
    assert "2019年度考核结果公示中" in page and "2018年度考核结果公示中" not in page


def test_a_reopened_year_is_not_said_to_be_unpublished(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """Walk: after an admin reopened the published results for correction, the 公示 page said
    the results 尚未公示 (not yet published), and the English page "have not been published
    yet", as before the first publication."""
    now = utcnow()
    _window(session, world, now - dt.timedelta(days=10), now - dt.timedelta(days=3))
    world.assessment.finalised_at = now - dt.timedelta(days=3)
    world.assessment.reopened_at = now - dt.timedelta(hours=1)
    session.commit()
    page = text(app.test_client().get("/publication/"))
    assert "尚未公示" not in page and "名次" not in page and world.dep_a.name not in page
    assert "重新开启更正" in page and "更正后将重新公示" in page
    english = app.test_client()
    english.set_cookie("lang", "en")
    en = text(english.get("/publication/"))
    assert "reopened for correction" in en and "not been published" not in en
