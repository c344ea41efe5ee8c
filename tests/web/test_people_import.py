"""Bulk import of people from .xlsx: preview with per-row errors, then all or nothing."""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.concurrency import start_behind
from tests.factories import World
from tests.web.conftest import text
from workflow.models import AuditEvent, User
from workflow.permissions import department_id_for
from workflow.users import create_user

Login = Callable[[str], FlaskClient]
HEADER = ["用户名", "姓名", "角色", "所属单位"]


def xlsx(rows: list[list[object]]) -> io.BytesIO:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return out


def _users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def test_template_downloads_with_the_columns(world: World, login: Login) -> None:
    admin = login("admin")
    response = admin.get("/admin/users/import/template.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).worksheets[0]
    assert [c.value for c in sheet[1]] == HEADER
    assert login("reviewer").get("/admin/users/import/").status_code == 403


def test_every_bad_row_is_named_and_nothing_is_imported(
    world: World, session: Session, login: Login
) -> None:
    admin = login("admin")
    before = _users(session)
    unit = world.dep_a.name
    upload = xlsx(
        [
            ["wang.wu", "王五", "部门填报员", unit],
            ["member_a", "重名", "部门填报员", unit],  # already exists
            ["zhao.liu", "赵六", "部门填报员", "不存在的局"],
            ["zhao.liu", "赵六二", "初审员", ""],  # twice in the file
            ["qian.qi", "钱七", "局长", unit],  # no such role
            ["sun.ba", "孙八", "部门填报员", ""],  # a department user without a unit
            ["坏 名字", "周九", "初审员", ""],
            ["MEMBER_A", "大写重名", "初审员", ""],  # the same name to a person
        ]
    )
    page = admin.post("/admin/users/import/", data={"file": (upload, "名单.xlsx")})
    body = text(page)
    assert page.status_code == 200
    for message in (
        "用户名“member_a”已存在",
        "用户名“MEMBER_A”已存在",
        "未知的单位：不存在的局",
        "用户名“zhao.liu”与第 4 行重复",
        "未知的角色：局长",
        "部门填报员须填写所属单位",
        "只能包含字母、数字",
        "其中 7 行有错误",
    ):
        assert message in body, message
    assert "确认导入" not in body
    assert _users(session) == before
    # A confirmation forged with the same rows is checked again and refused as a whole.
    rows = json.dumps(
        [
            {
                "line": 2,
                "username": "wang.wu",
                "display_name": "王五",
                "roles": ["department"],
                "unit": unit,
            },
            {
                "line": 3,
                "username": "member_a",
                "display_name": "重名",
                "roles": ["department"],
                "unit": unit,
            },
        ],
        ensure_ascii=False,
    )
    forged = admin.post("/admin/users/import/", data={"action": "import", "rows": rows})
    assert forged.status_code == 422 and "未导入任何人员" in text(forged)
    session.expire_all()
    assert _users(session) == before
    assert session.scalar(select(User).where(User.username == "wang.wu")) is None
    bad_file = admin.post(
        "/admin/users/import/", data={"file": (io.BytesIO(b"not a workbook"), "名单.xlsx")}
    )
    assert bad_file.status_code == 422 and "请上传 .xlsx 格式的人员名单" in text(bad_file)


def test_a_clean_file_imports_everyone_with_one_time_passwords(
    world: World, session: Session, login: Login
) -> None:
    admin = login("admin")
    upload = xlsx(
        [
            ["wang.wu", "王五", "部门填报员", world.dep_b.name],
            ["li.si", "李四", "初审员、核实员", None],
        ]
    )
    preview = text(admin.post("/admin/users/import/", data={"file": (upload, "名单.xlsx")}))
    assert "共 2 人，未发现错误" in preview and "确认导入" in preview
    rows = html.unescape(re.search(r'name="rows" value="([^"]*)"', preview).group(1))  # type: ignore[union-attr]
    done = admin.post("/admin/users/import/", data={"action": "import", "rows": rows})
    assert done.status_code == 201
    secrets = re.findall(r'<code class="secret">([^<]+)</code>', text(done))
    assert len(secrets) == 2
    session.expire_all()
    wang = session.scalars(select(User).where(User.username == "wang.wu")).one()
    li = session.scalars(select(User).where(User.username == "li.si")).one()
    assert wang.must_change_password and sorted(li.roles) == ["reviewer", "verifier"]
    assert department_id_for(wang, world.assessment.id) == world.dep_b.id
    created = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "user_created", AuditEvent.actor_id == world.admin.id
        )
    ).all()
    assert len(created) == 2
    signed_in = admin.application.test_client().post(
        "/login", data={"username": "wang.wu", "password": secrets[0]}
    )
    assert signed_in.status_code == 302  # to the forced password change


def test_an_import_losing_a_race_for_a_user_name_is_409_and_makes_no_one(
    app: Flask, world: World, session: Session, login: Login
) -> None:
    """Another admin creates "wang.wu" while this import runs: a 409 page, nobody imported."""
    admin = login("admin")
    rows = json.dumps(
        [
            {"line": 2, "username": "li.si", "display_name": "李四", "roles": ["reviewer"],
             "unit": ""},
            {"line": 3, "username": "wang.wu", "display_name": "王五", "roles": ["department"],
             "unit": world.dep_b.name},
        ],
        ensure_ascii=False,
    )  # fmt: skip
    before = _users(session)
    # The other admin's user is written (not yet committed) when this import checks its rows.
    create_user(session, "wang.wu", ["reviewer"], display_name="另一位王五", actor=world.admin)
    worker = start_behind(
        app.extensions["engine"],
        session,
        lambda: admin.post("/admin/users/import/", data={"action": "import", "rows": rows}),
    )
    lost = worker.wait_done()
    assert lost.status_code == 409, text(lost)[:400]
    body = text(lost)
    assert "用户名“wang.wu”已存在" in body  # the preview shown again names the row
    session.expire_all()
    assert _users(session) == before + 1  # only the other admin's
    assert session.scalar(select(User).where(User.username == "li.si")) is None
    mine = session.scalars(select(User).where(User.username == "wang.wu")).one()
    assert mine.display_name == "另一位王五"


def test_a_file_with_no_people_says_so(world: World, login: Login) -> None:
    page = login("admin").post("/admin/users/import/", data={"file": (xlsx([]), "名单.xlsx")})
    assert page.status_code == 422 and "文件中没有人员" in text(page)


def test_a_username_differing_only_in_case_is_taken(world: World, session: Session) -> None:
    from workflow.errors import Conflict

    try:
        create_user(session, "Member_A", ["reviewer"], actor=world.admin)
    except Conflict as exc:
        assert exc.code == "username_taken" and "member_a" in exc.message
    else:
        raise AssertionError("Member_A was created beside member_a")


def test_row_errors_say_what_to_write_and_read_in_english(
    world: World, session: Session, login: Login
) -> None:
    """A refused row says what would do: the roles a cell may name, the units a merged one
    became. The checks are the page's own words, so the English page has them in English (they
    were Chinese f-strings whatever the language)."""
    import datetime as dt

    from workflow.units import apply_change

    a, b = world.dep_a.unit_id, world.dep_b.unit_id
    names = (world.dep_a.name, world.dep_b.name)
    apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 2), document_no="蛟市机编〔2019〕2号",
        reason="机构改革", from_ids=[a, b], to=[{"name": "合并局"}], actor=world.admin,
    )  # fmt: skip
    session.commit()
    upload = [
        ["qian.qi", "钱七", "局长", names[1]],  # no such role; a merged unit
        ["wang.wu", "王五", "", "合并局"],  # no role at all
        ["坏 名字", "周九", "初审员", ""],
    ]
    admin = login("admin")
    body = text(admin.post("/admin/users/import/", data={"file": (xlsx(upload), "名单.xlsx")}))
    assert "未知的角色：局长（可填：部门填报员、初审员、核实员、评分员、审计员、管理员" in body
    assert f"单位“{names[1]}”已合并或拆分，请填写现单位：合并局" in body
    assert "缺少角色（可填：部门填报员" in body
    admin.post("/language", data={"lang": "en"})
    page = admin.post("/admin/users/import/", data={"file": (xlsx(upload), "名单.xlsx")})
    checks = re.findall(r'<span class="overdue">(.*?)</span>', page.get_data(as_text=True), re.S)
    assert len(checks) == 3, checks
    english = [html.unescape(c) for c in checks]
    assert english[0].startswith("Unknown role: 局长 (use one of: department, reviewer")
    assert f"Unit “{names[1]}” was merged or split; enter the unit in use now: 合并局" in english[0]
    assert english[1].startswith("Role missing (use one of: department")
    assert english[2].startswith("User name “坏 名字” may only contain letters")
    # Only the data typed in the file stays Chinese.
    for check, data in zip(english, ("局长" + names[1] + "合并局", "", "坏名字"), strict=True):
        cjk = {ch for ch in check if "\u3000" <= ch <= "\u9fff" or "\uff00" <= ch <= "\uffef"}
        assert cjk <= set(data), (check, cjk)


def test_a_person_without_a_name_is_refused_by_row_and_cell(
    world: World, session: Session, login: Login
) -> None:
    """A row without 姓名 was imported as a nameless account (the pages then show its user name
    alone). It is a row error naming the row and the cell, in the page's language; nothing is
    imported, nor by a confirmation forged with the row."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["角色", "用户名", "所属单位", "姓名"])  # the file's own column order
    sheet.append(["初审员", "wang.wu", "", "王五"])
    sheet.append(["初审员", "li.si", "", None])
    sheet.append(["初审员", "zhao.liu", "", "  \u200b "])  # blank to the eye
    upload = io.BytesIO()
    book.save(upload)
    before = _users(session)
    admin = login("admin")
    page = admin.post(
        "/admin/users/import/", data={"file": (io.BytesIO(upload.getvalue()), "名单.xlsx")}
    )
    body = text(page)
    assert "第 3 行“姓名”（D3）为空：请填写此人的姓名" in body
    assert "第 4 行“姓名”（D4）为空：请填写此人的姓名" in body
    assert "其中 2 行有错误" in body and "确认导入" not in body
    rows = json.dumps(
        [{"line": 2, "username": "wang.wu", "display_name": "王五", "roles": ["reviewer"],
          "unit": ""},
         {"line": 3, "username": "li.si", "display_name": "", "roles": ["reviewer"], "unit": "",
          "columns": {"姓名": "D"}}],
        ensure_ascii=False,
    )  # fmt: skip
    forged = admin.post("/admin/users/import/", data={"action": "import", "rows": rows})
    assert forged.status_code == 422 and "第 3 行“姓名”（D3）为空" in text(forged)
    session.expire_all()
    assert _users(session) == before
    admin.post("/language", data={"lang": "en"})
    english = text(
        admin.post(
            "/admin/users/import/", data={"file": (io.BytesIO(upload.getvalue()), "名单.xlsx")}
        )
    )
    assert "Row 3: “Name” (D3) is empty; enter the person's name" in html.unescape(english)


def test_a_formula_without_a_result_is_refused_by_its_cell(
    world: World, session: Session, login: Login
) -> None:
    """A staff list written by a script (openpyxl) holds its formulas without results: read
    for values, 姓名 ="王"&"五" was empty and the person came in without a name, a role
    =C1 without roles. The file is refused naming the cell and what to do, in the page's
    language; once saved by Excel or WPS (results stored) it reads as they show."""
    from tests.unit.test_uncalculated_formulas import script_written, with_results

    rows: list[list[object]] = [
        [*HEADER, "备注"],
        ["wang.wu", "王五", "初审员", "", "=LEN(B2)"],  # a column the import does not read
        ["li.si", '="李"&"四"', "初审员", "", None],
        ["zhao.liu", "赵六", "=C3", "", None],
    ]
    data = script_written(rows)
    admin = login("admin")

    def preview(content: bytes) -> tuple[int, str]:
        page = admin.post("/admin/users/import/", data={"file": (io.BytesIO(content), "名单.xlsx")})
        return page.status_code, html.unescape(text(page))

    status, body = preview(data)
    assert status == 422
    assert (
        "第 3 行“姓名”（B3）等 2 个单元格是公式，文件中没有计算结果："
        "请在 Excel 或 WPS 中打开并保存后再导入"
    ) in body
    assert "确认导入" not in body and "预览</h3>" not in body
    one = script_written(rows[:3])
    assert "第 3 行“姓名”（B3）是公式，文件中没有计算结果" in preview(one)[1]
    header = script_written(
        [["用户名", '="姓"&"名"', "角色", "所属单位"], ["a.b", "", "初审员", ""]]
    )
    assert "标题行（B1）是公式，文件中没有计算结果" in preview(header)[1]
    saved = with_results(data, {"E2": "2", "B3": "李四", "C4": "初审员"})
    status, body = preview(saved)
    assert status == 200 and "共 3 人，未发现错误" in body and "<td>李四</td>" in body
    admin.post("/language", data={"lang": "en"})
    english = preview(one)[1]
    assert (
        "Row 3, “Name” (B3) is a formula the file holds no result for: open the file in Excel "
        "or WPS, save it and import it again"
    ) in english
    assert session.scalar(select(User).where(User.username == "li.si")) is None
