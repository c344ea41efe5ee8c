"""Excel exports: Chinese headers, Asia/Shanghai times, numbers as numbers, the guard on text."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import openpyxl
from flask import Flask
from flask.testing import FlaskClient
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.integration.test_notices import bearer, score_department
from workflow.models import AuditEvent
from workflow.spreadsheets import XLSX_CONTENT_TYPE

Login = Callable[[str], FlaskClient]


def sheet_of(data: bytes) -> Worksheet:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def rows_of(sheet: Worksheet) -> list[list[object]]:
    return [[c.value for c in row] for row in sheet.iter_rows()]


def test_api_results_matrix_and_audit_log(
    app: Flask, session: Session, world: World, store: LocalStore
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    item = w.item(session, w.dep_b, "1")
    heads = {u.username: bearer(session, u) for u in (w.auditor, w.member_a, w.reviewer)}
    session.commit()
    client = app.test_client()
    aid = w.assessment.id

    got = client.get(f"/api/v1/assessments/{aid}/results.xlsx", headers=heads["auditor"])
    assert got.status_code == 200 and got.mimetype == XLSX_CONTENT_TYPE
    assert ".xlsx" in got.headers["Content-Disposition"]
    rows = rows_of(sheet_of(got.data))
    assert "考核结果" in str(rows[0][0]) and "暂定" in str(rows[0][0])
    assert rows[1][:3] == ["暂定名次", "部门", "部门全称"] and rows[1][-1] == "department_id"
    assert rows[2][:2] == [1, w.dep_a.name] and rows[2][3] == 97.5 and rows[2][4] == 1.95
    assert rows[2][7] == "是" and len(rows) == 2 + 26
    assert client.get(f"/api/v1/assessments/{aid}/results.xlsx",
                      headers=heads["member_a"]).status_code == 403  # fmt: skip
    assert client.get(f"/api/v1/assessments/{aid}/results.xlsx").status_code == 401

    matrix = rows_of(
        sheet_of(
            client.get(f"/api/v1/assessments/{aid}/matrix.xlsx", headers=heads["reviewer"]).data
        )
    )
    assert matrix[1][0] == "部门" and str(matrix[1][1]).startswith("1.")
    line = next(r for r in matrix if r[0] == w.dep_a.name)
    assert str(line[1]).startswith("已评分")
    other = next(r for r in matrix if r[0] == w.dep_b.name)
    assert other[1] == "草稿" and item.state == "draft"

    log = client.get("/api/v1/audit/events.xlsx?action=score", headers=heads["auditor"])
    assert log.status_code == 200
    sheet = sheet_of(log.data)
    events = rows_of(sheet)
    assert events[0][:4] == ["序号", "时间（北京时间）", "操作人", "操作"]
    assert events[0][-1] == "action" and len(events) == 1 + 10
    first = (
        session.execute(
            select(AuditEvent).where(AuditEvent.action == "score").order_by(AuditEvent.seq)
        )
        .scalars()
        .first()
    )
    assert first is not None
    assert events[1][0] == first.seq and events[1][3] == "评分" and events[1][-1] == "score"
    at = first.at if first.at.tzinfo else first.at.replace(tzinfo=dt.UTC)
    shanghai = at.astimezone(dt.timezone(dt.timedelta(hours=8))).replace(tzinfo=None)
    assert events[1][1] == shanghai.replace(microsecond=0)
    assert sheet["B2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert client.get("/api/v1/audit/events.xlsx", headers=heads["reviewer"]).status_code == 403


def test_portal_buttons_download_excel(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    score_department(session, store, world, world.dep_a, world.member_a)
    reviewer = login("reviewer")
    progress = reviewer.get("/progress/").get_data(as_text=True)
    for url in ("/progress/results.xlsx", "/progress/matrix.xlsx"):
        assert url in progress
        assert reviewer.get(url).mimetype == XLSX_CONTENT_TYPE
    quota_page = reviewer.get("/review/routine/quota").get_data(as_text=True)
    assert "/review/routine/quota.xlsx?kind=monthly_info" in quota_page
    quota = rows_of(sheet_of(reviewer.get("/review/routine/quota.xlsx?kind=monthly_info").data))
    assert quota[1][0] == "部门" and quota[1][-2:] == ["达标期数", "需提醒期间"]
    auditor = login("auditor")
    assert "/audit/export.xlsx" in auditor.get("/audit/").get_data(as_text=True)
    log = rows_of(sheet_of(auditor.get("/audit/export.xlsx?action=score").data))
    assert log[0][3] == "操作" and {r[-1] for r in log[1:]} == {"score"}
    admin = login("admin")
    assert "/admin/users.xlsx" in admin.get("/admin/users").get_data(as_text=True)
    users = rows_of(sheet_of(admin.get("/admin/users.xlsx").data))
    assert users[0][:3] == ["用户名", "姓名", "角色"]
    scorer_row = next(r for r in users if r[0] == "scorer")
    assert scorer_row[2] == "评分员" and scorer_row[4] == "启用"
    assert isinstance(scorer_row[6], dt.datetime)
    assert login("member_a").get("/progress/results.xlsx").status_code == 403
    assert login("reviewer").get("/admin/users.xlsx").status_code == 403
