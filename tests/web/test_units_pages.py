"""The units pages: the list with lineage, the change form (admin), a unit's years."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import World, rules_2019
from tests.web.conftest import csrf_token, text
from workflow.models import UnitChange
from workflow.scheme import Scheme
from workflow.setup import create_assessment
from workflow.units import find_unit

Login = Callable[[str], FlaskClient]
LATIN_WORD = re.compile(r"\b[A-Za-z]{4,}\b")


def _visible(html: str) -> str:
    """The page's text without tags, scripts, styles and attribute values."""
    html = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", html, flags=re.S)
    # The user name and the language switch are the only Latin words a page may carry.
    return re.sub(r"<[^>]+>|\badmin\b|\bEnglish\b", " ", html)


def test_admin_records_a_merge_and_sees_the_lineage_in_chinese(
    app: Flask, world: World, login: Login, session: Session
) -> None:
    admin = login("admin")
    page = admin.get("/admin/units")
    assert page.status_code == 200
    html = text(page)
    assert "被考核单位" in html and "记录单位调整" in html and "安监局" in html
    a, b = find_unit(session, "安监局"), find_unit(session, "煤监局")
    assert a is not None and b is not None
    form = {
        "csrf_token": csrf_token(html),
        "kind": "merge",
        "from": [str(a.id), str(b.id)],
        "to": "应急管理局\n",
        "effective_on": "2019-03-01",
        "document_no": "蛟市机编〔2019〕1号（示例）",
        "reason": "机构改革",
    }
    refused = admin.post("/admin/units/changes", data={**form, "from": [str(a.id)]})
    assert refused.status_code == 422
    assert "合并须有至少两个原单位" in text(refused)
    assert session.scalars(select(UnitChange)).first() is None
    done = admin.post("/admin/units/changes", data=form)
    assert done.status_code == 303
    listed = text(admin.get("/admin/units"))
    assert "已记录单位调整" in listed and "蛟市机编〔2019〕1号（示例）" in listed
    session.expire_all()
    new = find_unit(session, "应急管理局")
    assert new is not None
    unit_page = admin.get(f"/admin/units/{new.id}")
    assert unit_page.status_code == 200
    body = text(unit_page)
    assert "安监局" in body and "煤监局" in body and "前身" in body
    # The predecessors' 2018 year is shown, marked as theirs.
    assert "前身：安监局" in body and "<svg" in body
    assert not LATIN_WORD.findall(_visible(body)), LATIN_WORD.findall(_visible(body))
    assert not LATIN_WORD.findall(_visible(listed)), LATIN_WORD.findall(_visible(listed))


def test_units_pages_are_for_admins_and_a_unit_for_staff(
    app: Flask, world: World, login: Login
) -> None:
    assert login("reviewer").get("/admin/units").status_code == 403
    assert login("member_a").get(f"/admin/units/{world.dep_a.unit_id}").status_code == 403
    assert login("reviewer").get(f"/admin/units/{world.dep_a.unit_id}").status_code == 200
    assert login("admin").get("/admin/units/999999").status_code == 404


def test_admin_starts_a_new_year_from_the_proposal_and_corrects_it(
    app: Flask, world: World, login: Login, session: Session
) -> None:
    from workflow.models import Assessment, Department
    from workflow.schemes import import_shipped

    import_shipped(session)
    session.commit()
    a, b = find_unit(session, "安监局"), find_unit(session, "煤监局")
    assert a is not None and b is not None
    admin = login("admin")
    html = text(admin.get("/admin/units"))
    merge = {
        "csrf_token": csrf_token(html),
        "kind": "merge",
        "from": [str(a.id), str(b.id)],
        "to": "应急管理局",
        "effective_on": "2019-03-01",
        "document_no": "蛟市机编〔2019〕1号（示例）",
        "reason": "机构改革",
    }
    admin.post("/admin/units/changes", data=merge)
    page = admin.get("/admin/new-year")
    assert page.status_code == 200
    html = text(page)
    assert "由安监局、煤监局合并" in html and "已不再单独考核的单位" in html
    assert not LATIN_WORD.findall(_visible(html)), LATIN_WORD.findall(_visible(html))
    scheme = re.search(r'<option value="(\d+)"[^>]*>2019', html)
    assert scheme is not None
    proposal = re.findall(r'name="units" value="(\d+)" checked', html)
    assert len(proposal) == 25
    form = {
        "csrf_token": csrf_token(html),
        "scheme_id": scheme.group(1),
        "year": "2019",
        "result_document_no": "",
        "units": proposal,
    }
    refused = admin.post("/admin/new-year", data=form)
    assert refused.status_code == 422 and "发文字号" in text(refused)
    assert session.scalar(select(Assessment).where(Assessment.year == 2019)) is None
    corrected = proposal[:-1]  # the admin leaves the last unit out
    done = admin.post(
        "/admin/new-year",
        data={**form, "result_document_no": "蛟市职转办〔2020〕1号（示例）", "units": corrected},
    )
    assert done.status_code == 303
    session.expire_all()
    made = session.execute(select(Assessment).where(Assessment.year == 2019)).scalar_one()
    # The deadlines are the next step: the admin lands on the new year's 考核日程, told so.
    assert done.headers["Location"] == f"/admin/assessments/{made.id}/calendar"
    landed = text(admin.get(done.headers["Location"]))
    assert "已创建2019年度考核" in landed and made.title in landed
    assert "下一步：请在下表设置各阶段的截止日期（尚有 4 个阶段未设置）" in landed
    deps = session.scalars(
        select(Department).where(Department.assessment_id == made.id).order_by(Department.position)
    ).all()
    assert [str(d.unit_id) for d in deps] == corrected
    assert made.result_document_no == "蛟市职转办〔2020〕1号（示例）"


def test_the_new_year_form_says_when_last_year_is_not_final(
    app: Flask, world: World, login: Login, session: Session
) -> None:
    """Starting a year while the last one's results are open is allowed (nothing of it is
    lost), but the admin is told, and where its work goes on."""
    admin = login("admin")
    open_year = text(admin.get("/admin/new-year"))
    assert f"{world.assessment.title}的结果尚未最终确定（评审进行中）" in open_year
    now = dt.datetime.now(dt.UTC)
    a = world.assessment
    a.published_at = a.appeal_opens_at = now - dt.timedelta(days=10)
    a.appeal_closes_at = now - dt.timedelta(days=3)
    session.commit()
    assert "尚未最终确定" not in text(admin.get("/admin/new-year"))


def _new_year_2019(admin: FlaskClient) -> dict[str, object]:
    """The new-year form for 2019 from the shipped 示例 scheme, every proposed unit ticked."""
    page = text(admin.get("/admin/new-year"))
    scheme = re.search(r'<option value="(\d+)"[^>]*>2019', page)
    assert scheme is not None
    return {
        "csrf_token": csrf_token(page),
        "scheme_id": scheme.group(1),
        "year": "2019",
        "result_document_no": "蛟市职转办〔2020〕1号",
        "units": re.findall(r'name="units" value="(\d+)" checked', page),
    }


def test_the_form_refuses_a_name_another_unit_answers_to_and_the_new_year_a_name_clash(
    app: Flask, world: World, login: Login, session: Session
) -> None:
    from workflow.models import Assessment
    from workflow.schemes import import_shipped
    from workflow.units import NewUnit, make_unit

    import_shipped(session)
    make_unit(session, NewUnit("并发局"))  # two units of one name, from before the lock
    make_unit(session, NewUnit("并发局"))
    session.commit()
    caizheng = find_unit(session, "财政局")
    assert caizheng is not None
    admin = login("admin")
    html = text(admin.get("/admin/units"))
    rename = {
        "csrf_token": csrf_token(html),
        "kind": "rename",
        "from": [str(caizheng.id)],
        "to": "城管局\u200b",
        "effective_on": "2019-03-01",
        "document_no": "蛟市机编〔2019〕5号",
        "reason": "机构改革",
    }
    refused = admin.post("/admin/units/changes", data=rename)
    assert refused.status_code == 422
    assert "名称“城管局”已是单位“城管执法大队”的别名" in text(refused)
    assert session.scalars(select(UnitChange)).first() is None
    clash = admin.post("/admin/new-year", data=_new_year_2019(admin))
    assert clash.status_code == 409 and "名称相同" in text(clash) and "并发局" in text(clash)
    assert session.scalar(select(Assessment).where(Assessment.year == 2019)) is None


def test_a_new_years_deadline_before_the_year_is_refused_and_no_year_is_made(
    app: Flask, world: World, login: Login, session: Session
) -> None:
    """2018-10-31 typed for 2019's 自评提交截止 made the year with every item overdue; now the
    form is refused in Chinese (English on request) and neither year nor deadline is kept."""
    from workflow.models import Assessment, StageDeadline
    from workflow.schemes import import_shipped

    import_shipped(session)
    session.commit()
    admin = login("admin")
    form = {**_new_year_2019(admin), "due_submit": "2018-10-31"}
    refused = admin.post("/admin/new-year", data=form)
    assert refused.status_code == 422
    page = text(refused)
    assert "自评提交截止 2018-10-31 早于 2019 年度：考核年度的日程不能早于 2019-01-01" in page
    assert session.scalar(select(Assessment).where(Assessment.year == 2019)) is None
    assert session.scalars(select(StageDeadline)).all() == []
    admin.set_cookie("lang", "en")
    english = text(admin.post("/admin/new-year", data=form))
    assert "2018-10-31 is before the year 2019" in english
    assert "早于" not in english


def test_the_new_year_form_names_the_accounts_a_split_leaves_without_a_unit(
    app: Flask, world: World, login: Login, session: Session
) -> None:
    """A split unit's accounts follow no successor: the new year showed its people none of its
    items, and nothing told the admin to move them. A merged unit's accounts follow it."""
    from workflow.units import apply_change

    w = world
    apply_change(
        session, kind="split", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕2号",
        reason="机构改革", from_ids=[w.dep_a.unit_id], to=[{"name": "甲一局"}, {"name": "甲二局"}],
        actor=w.admin,
    )  # fmt: skip
    apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕3号",
        reason="机构改革", from_ids=[w.dep_b.unit_id, find_unit(session, "煤监局").id],
        to=[{"name": "乙合并局"}], actor=w.admin,
    )  # fmt: skip
    session.commit()
    admin = login("admin")
    page = text(admin.get("/admin/new-year"))
    notice = re.search(r'<p class="notice" role="status">以下已拆分或撤销单位的账号.*?</p>', page)
    assert notice is not None, page
    from workflow.models import User

    n = len(session.scalars(select(User).where(User.unit_id == w.dep_a.unit_id)).all())
    assert n >= 1 and f"{w.dep_a.name} {n} 个账号" in notice.group(0)  # member_a among them
    assert w.dep_b.name not in notice.group(0)  # merged: its accounts follow 乙合并局
    assert "请在“用户管理”中将其改派到现在的单位" in notice.group(0)
    admin.set_cookie("lang", "en")
    english = text(admin.get("/admin/new-year"))
    assert (
        f"{w.dep_a.name}: {n} accounts" in english
        and "Move them to a current unit under Users" in english
    )


def test_a_retitled_indicator_reads_as_the_newest_year_words_it(
    app: Flask, world: World, login: Login, session: Session, scheme_2018: Scheme
) -> None:
    """The unit's year-by-year table labelled each indicator with its first year's title, so
    2019's scores read as scored on 2018's wording. The newest wording labels the row; an
    earlier year that worded it otherwise is named under it."""
    first = scheme_2018.categories[0]
    retitled = dataclasses.replace(first.indicators[0], title="优化营商环境工作机制")
    category = dataclasses.replace(first, indicators=(retitled, *first.indicators[1:]))
    rules = dataclasses.replace(
        rules_2019(scheme_2018), categories=(category, *scheme_2018.categories[1:])
    )
    create_assessment(
        session, rules, year=2019, result_document_no="蛟市职转办〔2020〕1号", actor=world.admin
    )
    session.commit()
    html = text(login("admin").get(f"/admin/units/{world.dep_a.unit_id}"))
    code, old = retitled.code, first.indicators[0].title
    assert old != retitled.title
    assert f"<td>{code} 优化营商环境工作机制<br>" in html
    assert f'<span class="muted">2018 年度为：{old}</span>' in html
    second = scheme_2018.categories[0].indicators[1]  # the same words both years: no note
    assert f"<td>{second.code} {second.title}</td>" in html
