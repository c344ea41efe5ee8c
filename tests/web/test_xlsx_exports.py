"""Excel exports: Chinese headers, Asia/Shanghai times, numbers as numbers, the guard on text."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable

import openpyxl
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, results_in_progress
from tests.integration.test_notices import bearer, points_of, score_department
from tests.web.test_i18n import catalog_lookups
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
    assert rows[1][:3] == ["暂定名次", "部门", "部门全称"] and rows[1][-1] == "部门编号"
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
    assert matrix[1][2] == "1 状态" and matrix[1][-1] == "部门编号"
    line = next(r for r in matrix if r[0] == w.dep_a.name)
    assert isinstance(line[1], int | float) and line[2] == "已评分"
    other = next(r for r in matrix if r[0] == w.dep_b.name)
    assert other[1] is None and other[2] == "草稿" and item.state == "draft"

    log = client.get("/api/v1/audit/events.xlsx?action=score", headers=heads["auditor"])
    assert log.status_code == 200
    sheet = sheet_of(log.data)
    events = rows_of(sheet)
    assert events[0][:4] == ["序号", "时间（北京时间）", "操作人", "操作"]
    assert events[0][-1] == "原始内容（JSON）" and len(events) == 1 + 10
    # Newest first, as the portal's log lists them (it was oldest first).
    newest = (
        session.execute(
            select(AuditEvent).where(AuditEvent.action == "score").order_by(AuditEvent.seq.desc())
        )
        .scalars()
        .first()
    )
    assert newest is not None
    assert events[1][0] == newest.seq and events[1][3] == "评分" and events[1][4] == "score"
    seqs = [int(str(r[0])) for r in events[1:]]
    assert seqs == sorted(seqs, reverse=True)
    at = newest.at if newest.at.tzinfo else newest.at.replace(tzinfo=dt.UTC)
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
    # The downloaded results say they are provisional, as the API's and the export job's do:
    # a sheet passed on must not read as the published result.
    results = rows_of(sheet_of(reviewer.get("/progress/results.xlsx").data))
    assert "考核结果（暂定，未公示）" in str(results[0][0]) and results[1][0] == "暂定名次"
    quota_page = reviewer.get("/review/routine/quota").get_data(as_text=True)
    assert "/review/routine/quota.xlsx?kind=monthly_info" in quota_page
    quota = rows_of(sheet_of(reviewer.get("/review/routine/quota.xlsx?kind=monthly_info").data))
    assert quota[1][0] == "部门" and quota[1][-2:] == ["达标期数", "需提醒期间"]
    auditor = login("auditor")
    assert "/audit/export.xlsx" in auditor.get("/audit/").get_data(as_text=True)
    log = rows_of(sheet_of(auditor.get("/audit/export.xlsx?action=score").data))
    assert log[0][3] == "操作" and {r[4] for r in log[1:]} == {"score"}
    admin = login("admin")
    assert "/admin/users.xlsx" in admin.get("/admin/users").get_data(as_text=True)
    users = rows_of(sheet_of(admin.get("/admin/users.xlsx").data))
    assert users[0][:3] == ["用户名", "姓名", "角色"]
    scorer_row = next(r for r in users if r[0] == "scorer")
    assert scorer_row[2] == "评分员" and scorer_row[4] == "启用"
    # Every header and cell reads in Chinese: the codes under a Chinese header, no TRUE/FALSE.
    assert users[0][5] == "须修改密码" and scorer_row[5] in ("是", "否")
    assert users[0][-1] == "角色代码" and scorer_row[-1] == "scorer"
    assert isinstance(scorer_row[6], dt.datetime)
    assert login("member_a").get("/progress/results.xlsx").status_code == 403
    assert login("reviewer").get("/admin/users.xlsx").status_code == 403


def test_progress_matrix_scores_are_numbers_to_sum(
    session: Session, world: World, login: Login, store: LocalStore
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    session.commit()
    matrix = rows_of(sheet_of(login("reviewer").get("/progress/matrix.xlsx?year=2018").data))
    headers = matrix[1]
    assert headers[-6:] == ["总分", "折合分", "暂定名次", "已评分事项", "事项总数", "部门编号"]
    scores = [n for n, h in enumerate(headers[1:-6], start=1) if not str(h).endswith("状态")]
    states = [n for n, h in enumerate(headers[1:-6], start=1) if str(h).endswith("状态")]
    assert len(scores) == len(states) and [n + 1 for n in scores] == states
    line = next(r for r in matrix if r[0] == w.dep_a.name)
    assert all(isinstance(line[n], int | float) for n in scores)  # no "已评分 10.00" text
    assert {line[n] for n in states} == {"已评分"}
    assert sum(float(line[n]) for n in scores) == line[-6] == 97.5  # type: ignore[arg-type]
    assert line[-3] == line[-2] and line[-1] == w.dep_a.id
    other = next(r for r in matrix if r[0] == w.dep_b.name)
    assert all(other[n] is None for n in scores) and other[-3] == 0


def test_results_sheets_rank_only_departments_whose_items_are_all_scored(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """Walk: the results sheet ranked every department on its current total — a department
    with 3 of 10 items scored stood 3rd on 30 points, and a clerk sent that upward. Now only
    the departments whose items are all scored are ranked, among themselves; the others
    read 评分未完成 in the rank cell (after the numbers when sorted), 否 under 评分完成, and
    the caption says how many there are and what their figures are. The portal's, the API's
    and the export job's sheets are one; the matrix says the same."""
    third, fourth, partial = results_in_progress(session, world)
    head = bearer(session, world.auditor)
    session.commit()
    portal = rows_of(sheet_of(login("reviewer").get("/progress/results.xlsx").data))
    api = rows_of(
        sheet_of(
            app.test_client()
            .get(f"/api/v1/assessments/{world.assessment.id}/results.xlsx", headers=head)
            .data
        )
    )
    assert api == portal
    from web.tasks import runners_for
    from workflow import jobs

    params = {"table": "results", "assessment_id": world.assessment.id}
    job = jobs.start_job(session, world.auditor, jobs.EXPORT, params).job
    session.commit()
    with app.app_context():  # as the worker runs it
        outcome = jobs.execute(
            app.extensions["sessionmaker"], app.extensions["store"], job.id, runners_for(app)
        )
    assert outcome == "done"
    assert rows_of(sheet_of(login("auditor").get(f"/jobs/{job.id}/download").data)) == portal
    caption, headers, *rows = portal
    assert (
        "考核结果（暂定，未公示）；23 个部门评分未完成：不排名，其总分、折合分为已评分事项之和"
        in (str(caption[0]))
    )
    assert headers[0] == "暂定名次" and headers[7] == "评分完成"
    by_id = {r[-1]: r for r in rows}
    assert [(r[0], r[-1]) for r in rows[:3]] == [
        (1, world.dep_a.id),
        (2, third.id),
        (3, fourth.id),
    ]
    assert rows[0][7] == rows[1][7] == rows[2][7] == "是"
    line = by_id[partial.id]
    assert line[0] == "评分未完成" and line[3] == 30 and line[4] == 0.6 and line[7] == "否"
    assert line[5:7] == [3, 10]
    assert all(r[0] == "评分未完成" and r[7] == "否" for r in rows[3:])
    assert len(rows) == 26

    matrix = rows_of(sheet_of(login("reviewer").get("/progress/matrix.xlsx").data))
    rank_at = matrix[1].index("暂定名次")
    ranks = {r[-1]: r[rank_at] for r in matrix[2:]}
    assert ranks[world.dep_a.id] == 1 and ranks[third.id] == 2 and ranks[fourth.id] == 3
    assert ranks[partial.id] == "评分未完成"


def _audit_story(session: Session, store: LocalStore, world: World) -> None:
    """Events of many kinds: an item returned, a routine record accepted, a user, a job."""
    from workflow import jobs
    from workflow.actions import return_item, submit_item
    from workflow.routine import review_routine, submit_routine

    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a, name="证据.pdf")
    submit_item(session, item.id, world.member_a, item.version)
    return_item(session, item.id, world.reviewer, item.version, "缺少盖章页")
    record = submit_routine(
        session, store, world.assessment, world.reviewer, kind="meeting", period="2018-09",
        title="推进会", stream=None, filename=None, department_id=world.dep_a.id, max_size=10**6,
    )  # fmt: skip
    review_routine(session, record.id, world.reviewer2, "accepted", None)
    world.member_a.display_name = "王芳"
    world.reviewer2.display_name = "李明"
    jobs.start_job(session, world.auditor, jobs.EXPORT, {"table": "audit"})
    session.commit()


def _check_audit_sheet(log: list[list[object]], world: World) -> None:
    """The .xlsx reads as the CSV: names, labels in Chinese, departments, routine states."""
    headers = log[0]
    assert headers[:7] == ["序号", "时间（北京时间）", "操作人", "操作", "操作代码", "对象", "部门"]
    assert headers[-1] == "原始内容（JSON）" and "action" not in headers
    by_code: dict[str, list[list[object]]] = {}
    for row in log[1:]:
        by_code.setdefault(str(row[4]), []).append(row)
    for code, rows in by_code.items():
        assert rows[0][3] != code, f"{code} has no Chinese label"
    for code in ("routine_submitted", "routine_reviewed", "job_requested", "user_created"):
        assert code in by_code, code
    reviewed = by_code["routine_reviewed"][0]
    assert reviewed[3] == "审核平时考核记录" and reviewed[2] == "李明（reviewer2）"
    assert reviewed[7:9] == ["待审核", "已采纳"] and reviewed[6] == world.dep_a.name
    assert str(reviewed[5]).startswith(f"{world.dep_a.name} / 平时考核记录")
    submitted = next(r for r in by_code["submit"] if "member_a" in str(r[2]))
    assert submitted[2] == "王芳（member_a）" and str(submitted[5]).startswith(world.dep_a.name)
    assert "材料" in str(submitted[10]) and str(submitted[-1]).startswith("{")
    assert by_code["job_requested"][0][3] == "发起后台任务"
    for row in log[1:]:
        assert "#" not in str(row[5]) and row[2] != "system"
    seqs = [int(str(row[0])) for row in log[1:]]
    assert seqs == sorted(seqs, reverse=True)  # newest first, as the log's page


def test_audit_xlsx_reads_as_the_csv(
    session: Session, world: World, login: Login, store: LocalStore
) -> None:
    _audit_story(session, store, world)
    auditor = login("auditor")
    got = auditor.get("/audit/export.xlsx")
    assert got.mimetype == XLSX_CONTENT_TYPE
    log = rows_of(sheet_of(got.data))
    _check_audit_sheet(log, world)
    csv_text = auditor.get("/audit/export.csv").data.decode("utf-8-sig")
    csv_rows = list(csv.reader(io.StringIO(csv_text)))
    assert csv_rows[0] == log[0][:-1]
    assert [r[0] for r in csv_rows[1:]] == [str(r[0]) for r in log[1:]]  # one order
    csv_line = next(r for r in csv_rows if r[4] == "routine_reviewed")
    xlsx_line = next(r for r in log if r[4] == "routine_reviewed")
    assert csv_line[2:] == ["" if v is None else str(v) for v in xlsx_line[2:-1]]

    auditor.post("/language", data={"lang": "en", "next": "/audit/"})
    english = rows_of(sheet_of(auditor.get("/audit/export.xlsx").data))
    assert english[0][:4] == ["Seq.", "Time (Beijing)", "Actor", "Action"]
    assert not any("\u4e00" <= ch <= "\u9fff" for h in english[0] for ch in str(h))
    reviewed = next(r for r in english if r[4] == "routine_reviewed")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in str(reviewed[3]) + str(reviewed[7]))


def test_audit_xlsx_looks_its_catalog_up_once_not_once_per_text(
    session: Session,
    world: World,
    login: Login,
    store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Some twenty texts a row, each looked up again with the request's language, were nearly
    half of an export's time. The texts stay the CSV's (which looks them up one by one)."""
    _audit_story(session, store, world)
    auditor = login("auditor")
    for lang in ("zh", "en"):
        auditor.set_cookie("lang", lang)
        lookups = catalog_lookups(monkeypatch)
        log = rows_of(sheet_of(auditor.get("/audit/export.xlsx").data))
        assert len(log) > 20 and lookups[0] <= 5, (len(log), lookups)
        csv_text = auditor.get("/audit/export.csv").data.decode("utf-8-sig")
        csv_rows = list(csv.reader(io.StringIO(csv_text)))
        assert [r[2:] for r in csv_rows] == [
            ["" if v is None else str(v) for v in row[2:-1]] for row in log
        ]


def test_audit_export_job_labels_every_action(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    from web.tasks import runners_for
    from workflow import jobs

    _audit_story(session, store, world)
    job = jobs.start_job(session, world.auditor, jobs.EXPORT, {"table": "audit"}).job
    session.commit()
    with app.app_context():  # as the worker runs it: an app, no request
        outcome = jobs.execute(
            app.extensions["sessionmaker"], app.extensions["store"], job.id, runners_for(app)
        )
    assert outcome == "done"
    auditor = login("auditor")
    auditor.post("/language", data={"lang": "en", "next": "/jobs"})  # the file stays Chinese
    got = auditor.get(f"/jobs/{job.id}/download")
    assert got.status_code == 200
    _check_audit_sheet(rows_of(sheet_of(got.data)), world)


def _score_one(session: Session, store: LocalStore, world: World) -> None:
    """One item of department B from evidence to score: evidence, transitions, a score."""
    from workflow import actions

    w = world
    item = w.item(session, w.dep_b, "1")
    add_evidence(session, store, item, w.member_b, name="台账.pdf")
    actions.submit_item(session, item.id, w.member_b, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    scores = {p.code: p.max_points for p in points_of(session, item.indicator)}
    actions.score_item(session, item.id, w.scorer, item.version, scores=scores)
    session.commit()


def test_api_audit_xlsx_is_the_portals(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    """The API's audit .xlsx is the portal's: the same columns, names and words, in Chinese
    whatever the client's language; the API's filters and the portal's pick the same rows."""
    _audit_story(session, store, world)
    _score_one(session, store, world)
    head = {**bearer(session, world.auditor), "Accept-Language": "en"}
    session.commit()
    auditor = login("auditor")  # its login is an event: sign in before both downloads
    portal = rows_of(sheet_of(auditor.get("/audit/export.xlsx").data))
    client = app.test_client()
    got = client.get("/api/v1/audit/events.xlsx", headers=head)
    assert got.status_code == 200 and got.mimetype == XLSX_CONTENT_TYPE
    api = rows_of(sheet_of(got.data))
    _check_audit_sheet(api, world)
    assert api[0] == portal[0]
    assert api == portal

    by_code = {str(r[4]): r for r in api[1:]}
    submitted = next(r for r in api[1:] if r[4] == "submit" and r[2] == "member_b")
    assert "版本：" in str(submitted[10]) and "轮次：1" in str(submitted[10])
    assert submitted[7:9] == ["草稿", "待初审"] and submitted[6] == world.dep_b.name
    scored = by_code["score"]
    assert scored[3] == "评分" and "得分：1.1：" in str(scored[10])
    assert "合计：" in str(scored[10]) and '"scores"' in str(scored[-1])
    uploaded = next(r for r in api[1:] if r[4] == "evidence_uploaded" and "台账" in str(r[10]))
    assert uploaded[3] == "上传材料" and "文件：台账.pdf" in str(uploaded[10])
    assert "用途：佐证材料" in str(uploaded[10])

    # The API's filters (action, actor, after_seq) pick what the portal's pick.
    scores_only = rows_of(
        sheet_of(client.get("/api/v1/audit/events.xlsx?action=score", headers=head).data)
    )
    assert scores_only == [portal[0], scored]
    mine = rows_of(
        sheet_of(client.get("/api/v1/audit/events.xlsx?actor=member_b", headers=head).data)
    )
    assert mine[1:] == [r for r in portal[1:] if str(r[2]).endswith("member_b")]
    after = int(str(scored[0])) - 1
    tail = rows_of(
        sheet_of(client.get(f"/api/v1/audit/events.xlsx?after_seq={after}", headers=head).data)
    )
    assert tail[1:] == [r for r in portal[1:] if int(str(r[0])) > after]
