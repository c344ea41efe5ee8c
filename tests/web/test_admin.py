"""Administration of users: create with a one-time password, roles, reset, disable."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, rules_2019
from tests.web.conftest import text
from workflow.models import Assessment, AuditEvent, Item, Notice, User
from workflow.notices import SUMMARY
from workflow.scheme import Scheme
from workflow.setup import install_scheme

Login = Callable[[str], FlaskClient]


def _one_time_password(html: str) -> str:
    match = re.search(r'<code class="secret">([^<]+)</code>', html)
    assert match, "no one-time password on the page"
    return match.group(1)


def test_admin_creates_a_department_user_who_must_change_password(
    app: Flask, world: World, login: Login
) -> None:
    admin = login("admin")
    created = admin.post(
        "/admin/users",
        data={
            "username": "zhang.san",
            "display_name": "张三",
            "roles": ["department"],
            "department_id": str(world.dep_b.id),
        },
    )
    assert created.status_code == 201
    password = _one_time_password(text(created))
    assert "zhang.san" in text(admin.get("/admin/users"))
    assert password not in text(admin.get("/admin/users"))  # shown once only

    new = app.test_client()
    first = new.post("/login", data={"username": "zhang.san", "password": password})
    assert first.location.endswith("/account/password")
    assert new.get("/portal/").location.endswith("/account/password")


def test_create_refuses_bad_input_with_the_reason(app: Flask, world: World, login: Login) -> None:
    admin = login("admin")
    missing = admin.post("/admin/users", data={"username": "li.si", "roles": ["department"]})
    assert missing.status_code == 422 and "部门填报员必须指定所属部门" in text(missing)
    assert 'value="li.si"' in text(missing)  # what was typed is kept
    bad = admin.post("/admin/users", data={"username": "a b", "roles": ["reviewer"]})
    assert bad.status_code == 422 and "用户名只能包含" in text(bad)


def test_reset_and_disable_end_the_users_sessions(app: Flask, world: World, login: Login) -> None:
    admin = login("admin")
    member = login("member_b")
    assert member.get("/portal/").status_code == 200
    reset = admin.post(f"/admin/users/{world.member_b.id}/password")
    assert reset.status_code == 200 and _one_time_password(text(reset))
    assert member.get("/portal/").status_code == 302  # signed out by the reset

    reviewer = login("reviewer")
    assert reviewer.get("/review/").status_code == 200
    disabled = admin.post(f"/admin/users/{world.reviewer.id}/active", data={"active": "0"})
    assert disabled.status_code == 303
    assert reviewer.get("/review/").status_code == 302
    assert "已停用" in text(admin.get(f"/admin/users/{world.reviewer.id}"))
    own = admin.post(f"/admin/users/{world.admin.id}/active", data={"active": "0"})
    assert "不能停用自己的账号" in text(admin.get(own.location))


def test_roles_change_takes_effect(app: Flask, world: World, login: Login) -> None:
    admin = login("admin")
    scorer = login("scorer")
    changed = admin.post(
        f"/admin/users/{world.scorer.id}/roles", data={"roles": ["scorer", "verifier"]}
    )
    assert changed.status_code == 303
    assert scorer.get("/review/").status_code == 302  # must sign in again
    assert "评分员、核实员" in text(admin.get(f"/admin/users/{world.scorer.id}"))


def test_admin_pages_are_for_admins(app: Flask, login: Login) -> None:
    assert login("auditor").get("/admin/users").status_code == 403
    assert login("member_a").post("/admin/users", data={"username": "x1"}).status_code == 403


def test_assessment_settings_publish_needs_every_item_scored(
    app: Flask, world: World, login: Login
) -> None:
    admin = login("admin")
    page = text(admin.get("/admin/assessment"))
    assert "评审进行中" in page and 'value="publish"' in page
    refused = admin.post("/admin/assessment", data={"action": "publish", "days": "7"})
    assert refused.status_code == 409 and "个考核事项未评分，不能公示" in text(refused)
    bad = admin.post("/admin/assessment", data={"action": "publish", "days": "x"})
    assert bad.status_code == 422 and "公示天数须为 1 到" in text(bad)
    assert login("scorer").get("/admin/assessment").status_code == 403


def test_set_the_appeal_window_then_publish(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    session.execute(update(Item).values(state="scored", total=0))  # a shortcut past scoring
    session.commit()
    admin = login("admin")
    # Before publication the window may be set (Beijing time in the form)...
    moved = admin.post(
        "/admin/assessment",
        data={"action": "window", "opens_at": "2030-01-01T09:00", "closes_at": "2030-01-08T17:00"},
    )
    assert moved.status_code == 303
    session.expire_all()
    assessment = session.get(Assessment, world.assessment.id)
    assert assessment is not None and assessment.appeal_closes_at is not None
    assert assessment.appeal_closes_at.isoformat() == "2030-01-08T09:00:00+00:00"  # 17:00 北京
    # ...publication sets it from the days, and from then on it is fixed (finding 4).
    form = text(admin.get("/admin/assessment"))
    assert '<option value="calendar" selected>自然日（含节假日）</option>' in form
    assert '<option value="working">工作日（不含节假日，按调休）</option>' in form
    odd = admin.post(
        "/admin/assessment", data={"action": "publish", "days": "5", "counted": "weeks"}
    )
    assert odd.status_code == 422 and "请选择按自然日或按工作日计算公示期" in text(odd)
    assert 'value="working" selected' not in text(odd)
    published = admin.post(  # full-width, as a Chinese input method types it
        "/admin/assessment", data={"action": "publish", "days": "５", "counted": "working"}
    )
    assert published.status_code == 303
    page = text(admin.get("/admin/assessment"))
    assert "结果公示中" in page and 'name="closes_at"' not in page
    session.expire_all()
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "assessment_published")
    ).one()
    assert json.loads(event.payload)["counted_in_working_days"] is True


def test_last_years_settings_after_next_year_started(
    app: Flask, session: Session, world: World, login: Login, scheme_2018: Scheme
) -> None:
    """2018 is in its 公示 when 2019 is created: the settings page opens on 2019 and switches to
    2018 (`?year=`), whose settings its forms change; 2019 is left as it was."""
    session.execute(update(Item).values(state="scored", total=0))
    session.commit()
    admin = login("admin")
    assert admin.post("/admin/assessment", data={"action": "publish", "days": "5"}).status_code == (
        303
    )
    next_year = install_scheme(
        session, dataclasses.replace(scheme_2018, code="jiaohe-2019", year=2019)
    )
    session.commit()
    newest = text(admin.get("/admin/assessment"))
    assert "2019年度</strong>" in newest and 'href="/admin/assessment?year=2018"' in newest
    assert "评审进行中" in newest  # 2019's state
    last = text(admin.get("/admin/assessment?year=2018"))
    assert "结果公示中" in last and 'name="year" value="2018"' in last
    audience = admin.post(
        "/admin/assessment",
        data={"action": "publication_page", "audience": "signed_in", "year": "2018"},
    )
    assert audience.status_code == 303 and audience.location.endswith("/admin/assessment?year=2018")
    session.expire_all()
    assert session.get_one(Assessment, world.assessment.id).publication_page == "signed_in"
    assert session.get_one(Assessment, next_year.id).publication_page == "public"
    # The progress page, its exports and notices of 2018 too (a department's notices follow
    # the department's own year).
    progress = text(admin.get("/progress/?year=2018"))
    assert world.assessment.title in progress and "2018年度</strong>" in progress
    assert 'href="/progress/results.xlsx?year=2018"' in progress
    xlsx = admin.get("/progress/results.xlsx?year=2018")
    assert xlsx.status_code == 200 and "2018" in xlsx.headers["Content-Disposition"]
    assert admin.get(f"/progress/departments/{world.dep_b.id}/notices").status_code == 200
    assert f'name="assessment_id" value="{next_year.id}"' not in progress  # 2018's jobs
    assert f'name="assessment_id" value="{world.assessment.id}"' in progress
    numbered = admin.post(
        "/admin/assessment",
        data={"action": "results", "result_document_no": "蛟市职转办〔2019〕1号", "year": "2018"},
    )
    assert numbered.status_code == 303
    issued = admin.post("/progress/summary", data={"year": "2018"})
    assert issued.status_code == 303 and issued.location.endswith("/progress/?year=2018#notices")
    summaries = session.scalars(select(Notice.assessment_id).where(Notice.kind == SUMMARY))
    assert set(summaries) == {world.assessment.id}
    assert admin.get("/admin/assessment?year=1999").status_code == 404
    assert (
        admin.post("/admin/assessment", data={"action": "reopen", "year": "x"}).status_code == 400
    )


def test_a_settings_form_acts_on_the_year_it_showed_when_next_year_is_created_meanwhile(
    app: Flask, session: Session, world: World, login: Login, scheme_2018: Scheme
) -> None:
    """Two admins: one opens the settings (only 2018 exists), the other creates 2019, then the
    first saves. The save lands on 2018, the year the form showed, not on the newest."""
    admin = login("admin")
    page = text(admin.get("/admin/assessment"))
    assert set(re.findall(r'name="year" value="(\d+)"', page)) == {"2018"}  # every form's
    next_year = install_scheme(
        session, dataclasses.replace(scheme_2018, code="jiaohe-2019", year=2019)
    )
    session.commit()
    saved = admin.post(
        "/admin/assessment",
        data={"action": "publication_page", "audience": "signed_in", "year": "2018"},
    )
    assert saved.status_code == 303
    session.expire_all()
    assert session.get_one(Assessment, world.assessment.id).publication_page == "signed_in"
    assert session.get_one(Assessment, next_year.id).publication_page == "public"


def test_a_new_number_after_issuing_says_what_keeps_the_old_one(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Documents issued under the old 发文字号 keep it: changing the number says so."""
    from tests.integration.test_notices import score_department
    from workflow.notices import issue_notice, set_result_settings

    score_department(session, store, world, world.dep_b, world.member_b)
    a = world.assessment
    set_result_settings(session, a, actor=world.admin, document_no="蛟市职转办〔2019〕1号")
    issue_notice(session, store, a, world.dep_b, world.scorer, preliminary=True)
    session.commit()
    admin = login("admin")
    form = {"action": "results", "result_document_no": "蛟市职转办〔2019〕2号", "notice_cc": ""}
    saved = admin.post("/admin/assessment", data=form, follow_redirects=True)
    page = text(saved)
    assert "已保存考核结果通知书设置" in page
    assert "已印发的 1 份文件仍为原文号 蛟市职转办〔2019〕1号" in page
    # Saving the same number again says nothing of it.
    again = text(admin.post("/admin/assessment", data=form, follow_redirects=True))
    assert "已印发的" not in again


def test_the_last_admin_keeps_the_admin_role(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """The only active admin cannot drop their own admin role (found by an exploratory walk:
    the system was left with no admin, repairable only from the server's command line)."""
    from workflow.errors import Conflict
    from workflow.users import create_user, set_active, set_roles

    admin = login("admin")
    refused = admin.post(
        f"/admin/users/{world.admin.id}/roles", data={"roles": ["scorer"]}, follow_redirects=True
    )
    assert "唯一在用的管理员" in text(refused)
    session.expire_all()
    assert "admin" in session.get_one(type(world.admin), world.admin.id).roles
    with pytest.raises(Conflict) as err:  # nor can the engine disable them
        set_active(session, world.admin, False, actor=None)
    assert err.value.code == "last_admin"
    # With a second admin, the first may step down.
    create_user(session, "admin2", ["admin"], actor=world.admin)
    set_roles(session, world.admin, ["scorer"], actor=world.admin)
    assert world.admin.roles == ["scorer"]


def test_a_user_whose_unit_left_the_newest_year_keeps_it_when_roles_change(
    app: Flask, session: Session, world: World, login: Login, scheme_2018: Scheme
) -> None:
    """Their unit has no department in the newest year (split or abolished since): the form
    offers to keep it, preselected, instead of forcing a department onto them."""
    w = world
    scheme = rules_2019(scheme_2018)
    kept = tuple(d for d in scheme.departments if d.name != w.dep_a.name)
    install_scheme(session, dataclasses.replace(scheme, departments=kept), actor=w.admin)
    session.commit()
    admin = login("admin")
    page = admin.get(f"/admin/users/{w.member_a.id}").get_data(as_text=True)
    assert f'<option value="keep" selected>保持原单位：{w.dep_a.name}' in page
    saved = admin.post(
        f"/admin/users/{w.member_a.id}/roles",
        data={"roles": ["department", "auditor"], "department_id": "keep"},
    )
    assert saved.status_code == 303
    session.expire_all()
    member = session.get_one(User, w.member_a.id)
    assert member.unit_id == w.dep_a.unit_id and set(member.roles) == {"department", "auditor"}
    # Without a unit to keep, "keep" is no department at all: refused for a department user.
    refused = admin.post(
        f"/admin/users/{w.reviewer.id}/roles",
        data={"roles": ["department"], "department_id": "keep"},
    )
    assert refused.status_code == 303
    session.expire_all()
    assert session.get_one(User, w.reviewer.id).roles == ["reviewer"]


def test_people_of_a_unit_made_since_the_newest_year_can_be_entered(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """A merge effective before next year's assessment exists makes a unit no year has a
    department of: the forms offered only the newest year's departments, so its people could
    be entered by the spreadsheet import but not by hand."""
    import datetime as dt

    from workflow.units import apply_change, find_unit

    w = world
    apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕1号",
        reason="机构改革", from_ids=[w.dep_a.unit_id, w.dep_b.unit_id], to=[{"name": "合并局"}],
        actor=w.admin,
    )  # fmt: skip
    session.commit()
    merged = find_unit(session, "合并局")
    assert merged is not None
    admin = login("admin")
    page = text(admin.get("/admin/users"))
    assert f'<option value="unit-{merged.id}">合并局</option>' in page
    assert f'value="unit-{w.dep_a.unit_id}"' not in page  # an ended unit is not offered
    created = admin.post(
        "/admin/users",
        data={"username": "wang.wu", "roles": ["department"], "department_id": f"unit-{merged.id}"},
    )
    assert created.status_code == 201, text(created)
    session.expire_all()
    new = session.scalars(select(User).where(User.username == "wang.wu")).one()
    assert new.unit_id == merged.id
    moved = admin.post(
        f"/admin/users/{w.reviewer.id}/roles",
        data={"roles": ["reviewer", "department"], "department_id": f"unit-{merged.id}"},
    )
    assert moved.status_code == 303
    session.expire_all()
    assert session.get_one(User, w.reviewer.id).unit_id == merged.id
    # A department of the newest year whose unit was merged away is refused, as the engine says.
    refused = admin.post(
        f"/admin/users/{w.reviewer.id}/roles",
        data={"roles": ["department"], "department_id": str(w.dep_a.id)},
    )
    assert refused.status_code == 303
    session.expire_all()
    assert session.get_one(User, w.reviewer.id).unit_id == merged.id
