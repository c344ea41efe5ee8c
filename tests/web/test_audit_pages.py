"""The auditor's pages: event log with filters, chain verification, CSV and JSON Lines export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable

import openpyxl
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy import text as text_sql
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import text
from web.common.audit_rows import describe_payload
from workflow.actions import return_item, submit_item
from workflow.models import ChainHead, Department
from workflow.scheme import Scheme

Login = Callable[[str], FlaskClient]


def _story(session: Session, store: LocalStore, world: World) -> int:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a, name="证据.pdf")
    submit_item(session, item.id, world.member_a, item.version)
    return_item(session, item.id, world.reviewer, item.version, "缺少<盖章>页")
    session.commit()
    return item.id


def test_event_log_filters_and_escapes(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item_id = _story(session, store, world)
    auditor = login("auditor")
    html = text(auditor.get("/audit/"))
    assert "创建用户" in html and "登录" in html and "退回修改" in html
    assert "缺少&lt;盖章&gt;页" in html
    assert "SHA-256" in html and "证据.pdf" in html  # payloads are shown labelled
    only = text(auditor.get(f"/audit/?action=submit&item={item_id}"))
    assert "提交" in only and "退回修改" not in only.split("<tbody>")[1]
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    assert "没有符合条件的记录" in text(auditor.get(f"/audit/?from={tomorrow}"))
    assert 'href="/audit/?item=' in text(auditor.get(f"/review/items/{item_id}"))


def test_a_filter_that_cannot_be_read_is_named_not_dropped_silently(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """事项编号 typed as 12号 (or a date by hand) was dropped without a word: the log and its
    exports showed every event while the auditor took them for one item's. The page now says
    which filter it left out, and that a period ending before it starts matches nothing."""
    item_id = _story(session, store, world)
    auditor = login("auditor")
    page = text(auditor.get(f"/audit/?item={item_id}号"))
    assert f"事项编号“{item_id}号”不是有效的编号（只填数字），未按事项筛选" in page
    assert 'role="alert">事项编号' in page
    spaced = text(auditor.get(f"/audit/?item=%20{item_id}%20"))  # pasted with spaces: read
    assert "未按事项筛选" not in spaced and f'name="item" value="{item_id}"' in spaced
    assert "日期“2026-13-01”无效" in text(auditor.get("/audit/?from=2026-13-01"))
    # A number longer than any item's is a number: no event names it (it is not "no digits").
    beyond = text(auditor.get("/audit/?item=99999999999"))
    assert "不是有效的编号" not in beyond and "没有符合条件的记录" in beyond
    assert 'name="item" value="99999999999"' in beyond
    # The department is chosen from a list; a hand-made ?department=zz was ignored unsaid.
    odd = text(auditor.get("/audit/?department=zz"))
    assert "部门编号“zz”无效，未按部门筛选" in odd and 'role="alert">部门编号' in odd
    backwards = text(auditor.get("/audit/?from=2018-10-02&to=2018-10-01"))
    assert "开始日期晚于结束日期" in backwards and "没有符合条件的记录" in backwards
    assert "未按" not in text(auditor.get(f"/audit/?item={item_id}&from=2018-01-01"))
    auditor.set_cookie("lang", "en")
    english = text(auditor.get("/audit/?item=abc"))
    assert "Item number “abc” is not a number (digits only): not filtered by item" in english


def test_exports_csv_with_bom_and_json_lines(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item_id = _story(session, store, world)
    auditor = login("auditor")
    response = auditor.get(f"/audit/export.csv?item={item_id}")
    assert response.status_code == 200 and response.data.startswith("\ufeff".encode())
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"  # one charset
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert list(rows[0])[:6] == ["序号", "时间（北京时间）", "操作人", "操作", "操作代码", "对象"]
    # Newest first, as the page lists them (the CSV was oldest first).
    assert [r["操作代码"] for r in rows] == ["return", "submit", "evidence_uploaded"]
    assert [r["操作"] for r in rows] == ["退回修改", "提交", "上传材料"]
    assert int(rows[0]["序号"]) > int(rows[1]["序号"]) > int(rows[2]["序号"])
    page = text(auditor.get(f"/audit/?item={item_id}")).split("<tbody>")[1]
    assert re.findall(r'<td class="num">(\d+)</td>', page) == [r["序号"] for r in rows]
    assert rows[0]["说明"] == "缺少<盖章>页" and len(rows[0]["哈希"]) == 64
    assert rows[1]["原状态"] == "草稿" and rows[1]["新状态"] == "待初审"
    assert rows[1]["对象"].startswith(world.dep_a.name + " / 1. ")
    assert "（member_a）" in rows[1]["操作人"] or rows[1]["操作人"] == "member_a"
    # JSON Lines keep the chain's order: each record's prev_hash is the one before's hash.
    lines = auditor.get(f"/audit/export.jsonl?item={item_id}").data.decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["action"] for r in records] == ["evidence_uploaded", "submit", "return"]
    assert (
        records[0]["payload"]["filename"] == "证据.pdf"
        and len(records[0]["payload"]["sha256"]) == 64
    )
    assert records[0]["seq"] < records[1]["seq"] < records[2]["seq"]
    # Shanghai wall time: eight hours ahead of the UTC the JSON Lines keep.
    at = dt.datetime.fromisoformat(records[2]["at"].replace("Z", "+00:00"))
    local = (at + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
    assert rows[0]["时间（北京时间）"] == local


def test_audit_log_speaks_chinese(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    from workflow.routine import review_routine, submit_routine

    _story(session, store, world)
    record = submit_routine(
        session, store, world.assessment, world.reviewer, kind="meeting", period="2018-09",
        title="推进会", stream=None, filename=None, department_id=world.dep_a.id, max_size=10**6,
    )  # fmt: skip
    review_routine(session, record.id, world.reviewer2, "rejected", "重复登记")
    world.member_a.display_name = "王芳"
    session.commit()
    html = text(login("auditor").get("/audit/"))
    body = html.split("<tbody>")[1]
    assert "待审核 → 已退回" in body and "→ rejected" not in body
    assert "报送平时考核记录" in body and "routine_submitted" not in body.split("<code")[0]
    assert "user " not in body and "routine " not in body
    assert f"{world.dep_a.name} / 1. " in body  # targets by department and indicator
    assert "创建用户" in body
    assert "王芳（member_a）" in body  # actor and user targets: display name (user name)
    # The recorded JSON under the words is named as such, as in the .xlsx (原始内容（JSON）):
    # unlabelled, it read as a page showing raw data by mistake.
    labelled = body.count('<dt class="raw">原始内容（JSON）')
    assert body.count('<code class="payload">') == labelled > 0


def test_chain_verification_page(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    _story(session, store, world)
    html = text(login("auditor").get("/audit/verify"))
    head = session.get(ChainHead, 1)
    assert head is not None
    assert "校验通过" in html and head.hash in html
    assert "核对一致" in html


def test_verification_page_names_table_edits(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login, engine: Engine
) -> None:
    """Finding 2 of issue 11: the page says which live value the trail does not give."""
    item_id = _story(session, store, world)
    with engine.begin() as conn:
        conn.execute(text_sql("UPDATE items SET state = 'scored' WHERE id = :i"), {"i": item_id})
        conn.execute(text_sql("UPDATE evidence SET sha256 = :h"), {"h": "e" * 64})
    html = text(login("auditor").get("/audit/verify"))
    assert "校验通过" in html  # the chain itself is intact
    assert "核对发现 3 处不一致" in html  # state, hash, the department's items scored
    body = html.split("<tbody>")[1]
    assert f'href="/audit/?item={item_id}"' in body and world.dep_a.name in body
    assert "状态" in body and "已评分" in body and "已退回" in body
    assert "e" * 64 in body and "部门已评分事项数" in body
    for leak in ("None", "True", "False", "{'", "<built-in"):
        assert leak not in body
    client = login("auditor")
    client.post("/language", data={"lang": "en", "next": "/audit/verify"})
    english = text(client.get("/audit/verify"))
    assert (
        "differences" in english
        and "State" in english
        and "According to the audit trail" in english
    )


def test_verification_page_names_an_edited_appeal_window(
    app: Flask, session: Session, world: World, login: Login, engine: Engine
) -> None:
    """An assessment's time, its results number and a department's full name edited in the
    table are named in words (the year, the field; times in Beijing time), in both languages."""
    from workflow.assessments import set_appeal_window

    a = world.assessment
    opens = dt.datetime(2018, 12, 20, 1, 0, tzinfo=dt.UTC)
    set_appeal_window(session, a, opens, opens + dt.timedelta(days=7), actor=world.admin)
    session.commit()
    with engine.begin() as conn:
        conn.execute(text_sql("UPDATE assessments SET appeal_closes_at = :t, "
                              "result_document_no = '蛟市职转办〔2019〕8号' WHERE id = :a"),
                     {"t": opens + dt.timedelta(days=37), "a": a.id})  # fmt: skip
        conn.execute(text_sql("UPDATE departments SET full_name = '伪造的全称' WHERE id = :d"),
                     {"d": world.dep_a.id})  # fmt: skip
    auditor = login("auditor")
    body = text(auditor.get("/audit/verify")).split("<tbody>")[1]
    assert "申诉截止时间" in body and f"assessment[{a.id}].appeal_closes_at" in body
    assert "2019-01-26 09:00" in body and "2018-12-27 09:00" in body  # Beijing time
    assert f"2018 年度考核（#{a.id}）" in body
    assert "结果通知书发文字号" in body and "蛟市职转办〔2019〕8号" in body
    assert f"部门 {world.dep_a.name}" in body and "全称" in body and "伪造的全称" in body
    assert "None" not in body
    auditor.post("/language", data={"lang": "en", "next": "/audit/verify"})
    english = text(auditor.get("/audit/verify")).split("<tbody>")[1]
    assert f"Assessment of 2018 (#{a.id})" in english and "Results notice number" in english
    assert "Appeal deadline" in english and "Full name" in english


def test_audit_pages_are_for_auditors_and_admins(app: Flask, login: Login) -> None:
    assert login("member_a").get("/audit/").status_code == 403
    assert login("reviewer").get("/audit/export.csv").status_code == 403
    assert login("admin").get("/audit/verify").status_code == 200


def test_admin_events_read_in_words(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """A unit change, a stage deadline, a calendar override and a score read as labelled
    Chinese lines: no field codes (effective_on, is_workday, stage submit) and no "结构化内容"
    for a score's points (found by a walk through the office's pages)."""
    from tests.integration.test_notices import score_department
    from workflow.calendar import (
        remove_calendar_override,
        set_calendar_override,
        set_stage_deadline,
    )
    from workflow.units import apply_change

    w = world
    apply_change(
        session, kind="rename", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕1号",
        reason="机构改革", from_ids=[w.dep_b.unit_id], to=[{"name": "改名局"}], actor=w.admin,
    )  # fmt: skip
    set_stage_deadline(
        session, w.assessment, "submit", starts_on=None, due_on=dt.date(2018, 9, 28),
        working_days=None, actor=w.admin,
    )  # fmt: skip
    override = set_calendar_override(session, dt.date(2018, 9, 29), True, "调休上班", actor=w.admin)
    remove_calendar_override(session, override.id, actor=w.admin)
    score_department(session, store, w, w.dep_a, w.member_a)
    session.commit()
    html = text(login("auditor").get("/audit/?limit=200"))
    lines = re.sub(r"<code[^>]*>.*?</code>", "", html.split("<tbody>")[1], flags=re.S)
    for code in ("effective_on", "is_workday", "resolved_due_on", "working_days", "stage",
                 "full_name", ">rename<", ">submit<", "calendar 2018"):  # fmt: skip
        assert code not in lines, code
    assert "结构化内容" not in lines
    assert "<dt>生效日期</dt><dd>2019-03-01</dd>" in lines and "<dd>更名</dd>" in lines
    assert "<dt>阶段</dt><dd>自评提交截止</dd>" in lines
    assert "<dt>上班</dt><dd>是</dd>" in lines and "工作日历 2018-09-29" in lines
    # The day had no entry before: 修改前 says so (it was an empty line).
    assert "<dt>修改前</dt><dd>（无）</dd>" in lines and "<dd></dd>" not in lines
    assert re.search(r"<dt>得分</dt><dd>1\.1：[0-9.]+", lines), lines[:2000]


#: A payload line that still shows a field or value code (lowercase ASCII word).
CODE_WORD = re.compile(r"\b[a-z][a-z_]*[a-z]\b")
#: Words that are data, not codes (a file name's extension, an e-mail host, a MIME type).
DATA_WORDS = {"pdf", "docx", "application", "jiaohe", "example"}


def _payload_lines(html: str) -> list[tuple[str, str, str]]:
    """Every labelled payload line of the log as (action label, label, value)."""
    out = []
    for row in html.split("<tbody>")[1].split("<tr")[1:]:
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        action = re.sub(r"<[^>]+>", "", cells[3]) if len(cells) > 3 else ""
        for label, value in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", row, flags=re.S):
            out.append((action.strip(), label, value))
    return out


def test_every_action_reads_in_words(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """One event of each kind an office can make: no payload line names a field or value by
    its code, times read in Beijing time, and only a notice's snapshot is left as JSON."""
    from tests.integration.test_notices import score_department
    from workflow import jobs, notify
    from workflow.assessments import set_appeal_window, set_publication_page
    from workflow.departments import add_alias, remove_alias, rename_department
    from workflow.notices import issue_notice, set_result_settings
    from workflow.routine import correct_routine, submit_routine, withdraw_routine
    from workflow.units import apply_change
    from workflow.users import create_user, issue_token, revoke_token, set_active, set_roles

    w = world
    a = w.assessment
    opens = dt.datetime(2026, 12, 3, 19, 27, 26, 560564, tzinfo=dt.UTC)
    set_appeal_window(session, a, opens, opens + dt.timedelta(days=8), actor=w.admin)
    set_publication_page(session, a, "signed_in", actor=w.admin)
    set_result_settings(
        session, a, actor=w.admin, hide_scores=False, document_no="蛟市职转办〔2018〕9号"
    )
    user = create_user(session, "new_member", ["department"], department=w.dep_a,
                       display_name="新用户", actor=w.admin)  # fmt: skip
    set_roles(session, user, ["reviewer", "verifier"], actor=w.admin)
    set_active(session, user, False, actor=w.admin)
    _, token = issue_token(session, w.auditor)
    revoke_token(session, token.id, actor=w.auditor)
    jobs.start_job(session, w.auditor, jobs.EXPORT, {"table": "audit"})
    jobs.start_job(session, w.admin, jobs.ARCHIVES, {"assessment_id": a.id})
    jobs.start_job(session, w.admin, jobs.AUDIT_VERIFY, {})
    add_alias(session, w.dep_a, "交通运输局", "alias", actor=w.admin)
    office = add_alias(session, w.dep_a, "路政大队", "office", actor=w.admin)
    remove_alias(session, w.dep_a, office.id, actor=w.admin)
    rename_department(session, w.dep_a, "蛟河市新全称局", actor=w.admin)
    apply_change(
        session, kind="rename", effective_on=dt.date(2019, 3, 1), document_no="蛟市机编〔2019〕1号",
        reason="机构改革", from_ids=[w.dep_b.unit_id], to=[{"name": "改名局"}], actor=w.admin,
    )  # fmt: skip
    notify.set_preferences(session, w.member_a, {"email": "a@jiaohe.example", "digest": True})
    record = submit_routine(
        session, store, a, w.reviewer, kind="meeting", period="2018-09", title="推进会",
        stream=None, filename=None, department_id=w.dep_a.id, max_size=10**6,
        outcome="done",
    )  # fmt: skip
    correct_routine(session, record.id, w.reviewer, reason="写错", outcome="late", title="大会")
    withdraw_routine(session, record.id, w.reviewer, reason="登记有误")
    score_department(session, store, w, w.dep_a, w.member_a)
    issue_notice(session, store, a, w.dep_a, w.scorer, preliminary=True)
    session.commit()

    app.config["AUDIT_PAGE_SIZE"] = 1000  # every event on one page
    html = text(login("auditor").get("/audit/"))
    lines = _payload_lines(html)
    shown = {action for action, _, _ in lines}
    for action in ("设置申诉期", "创建用户", "变更角色", "发起后台任务", "变更部门信息",
                   "调整被考核单位", "变更通知设置", "报送平时考核记录", "更正平时考核记录",
                   "设置公示页面范围", "变更考核设置", "签发令牌"):  # fmt: skip
        assert action in shown, action
    for action, label, value in lines:
        if label == "内容快照":  # a notice's snapshot is free-form: the raw JSON shows it
            continue
        if label == "用户名":  # a user name is data
            continue
        assert "结构化内容" not in value, (action, label, value)
        words = set(CODE_WORD.findall(f"{label} {value}")) - DATA_WORDS
        assert not words, (action, label, value)
    assert ("设置申诉期", "开始时间", "2026-12-04 03:27") in lines
    assert ("设置申诉期", "结束时间", "2026-12-12 03:27") in lines
    assert ("创建用户", "角色", "部门填报员") in lines
    assert ("变更角色", "修改后", "角色：初审员、核实员；单位编号：（无）") in lines
    assert ("发起后台任务", "类型", "导出表格") in lines
    assert ("发起后台任务", "参数", "表格：审计日志") in lines
    assert ("变更部门信息", "操作", "添加别名") in lines
    assert any(
        action == "变更部门信息" and label == "修改后" and "别名：交通运输局（别名）" in value
        for action, label, value in lines
    )
    assert ("设置公示页面范围", "新值", "仅限已登录用户") in lines
    unit_from = next(v for a_, label, v in lines if a_ == "调整被考核单位" and label == "原值")
    assert "状态：在用" in unit_from, unit_from
    channels = next(v for a_, label, v in lines if label == "通知渠道")
    assert "事项被退回：站内消息" in channels, channels
    assert any(
        label == "更正内容" and "完成情况：原值：按时完成（准时参会）；新值：逾期完成（迟到）" in v
        for _, label, v in lines
    )


def test_payload_times_read_in_beijing_time(app: Flask) -> None:
    """A stored UTC time reads as Beijing wall time, nested too; a date and typed text stay."""
    from web.common.audit_rows import describe_payload

    payload = json.dumps(
        {
            "due_at": "2018-08-31T16:00:00.000000Z",
            "previous_window": {
                "opens_at": "2026-12-03T19:27:26.560564Z",
                "closes_at": "2026-12-11T19:27:26.560564Z",
            },
            "effective_on": "2019-03-01",
            "reason": "2018-08-31T16:00:00.000000Z",
        }
    )
    with app.test_request_context():
        lines = dict(describe_payload(payload))
    assert lines["截止时间"] == "2018-09-01 00:00"
    assert lines["原申诉期"] == "开始时间：2026-12-04 03:27；结束时间：2026-12-12 03:27"
    assert lines["生效日期"] == "2019-03-01"
    assert lines["理由"] == "2018-08-31T16:00:00.000000Z"


def test_scheme_figures_read_in_words(app: Flask, scheme_2018: Scheme) -> None:
    """`assessment_created` records the scheme's figures: each indicator in words, never a
    nested record's placeholder or a Python repr."""
    from web.common.audit_rows import describe_payload
    from workflow.scheme_figures import fingerprint
    from workflow.setup import scheme_figures

    figures = scheme_figures(scheme_2018)
    payload = json.dumps({"figures": figures, "figures_sha256": fingerprint(figures)})
    with app.test_request_context():
        lines = dict(describe_payload(payload, "assessment_created"))
    shown = lines["细则分值"]
    assert shown.startswith(
        "指标 1：10.00 分（评分项：1.1 成立“放管服”工作领导小组 5.00、1.2 指定专人负责 5.00；"
        "核查要点：1-1、1-2）；指标 2："
    ), shown
    assert "结构化内容" not in shown and "{" not in shown and "'" not in shown
    assert lines["细则分值指纹（SHA-256）"] == fingerprint(figures)
    units = [{"id": 3, "name": "交通局", "full_name": "交通运输局", "status": "active",
              "aliases": [{"alias": "路政大队", "kind": "office"}]}]  # fmt: skip
    with app.test_request_context():
        lines = dict(describe_payload(json.dumps({"unit_states": units})))
    assert lines["新建单位的名称与别名"] == (
        "编号：3；名称：交通局；全称：交通运输局；状态：在用；别名：路政大队（挂牌机构）"
    )


def test_verification_page_names_record_edits_in_words(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login, engine: Engine
) -> None:
    """A role granted, a unit changed, a routine record accepted and a deadline moved in the
    tables are named as the pages name them: role and unit names, statuses, stages."""
    from workflow.calendar import set_stage_deadline
    from workflow.routine import review_routine, submit_routine

    at = dt.datetime(2018, 10, 8, 1, 0, tzinfo=dt.UTC)
    meeting = submit_routine(
        session, store, world.assessment, world.reviewer, kind="meeting", period="2018-09",
        title="推进会", stream=None, filename=None, department_id=world.dep_b.id,
        max_size=1 << 20, now=at,
    )  # fmt: skip
    review_routine(session, meeting.id, world.reviewer2, "rejected", "登记有误", now=at)
    set_stage_deadline(
        session, world.assessment, "submit", starts_on=None, due_on=dt.date(2018, 10, 12),
        working_days=None, actor=world.admin,
    )  # fmt: skip
    session.commit()
    with engine.begin() as conn:
        conn.execute(text_sql("""UPDATE users SET roles = '["admin", "scorer"]' WHERE id = :i"""),
                     {"i": world.scorer.id})  # fmt: skip
        conn.execute(text_sql("UPDATE users SET unit_id = :u WHERE id = :i"),
                     {"u": world.dep_b.unit_id, "i": world.member_a.id})  # fmt: skip
        conn.execute(text_sql("UPDATE routine_records SET status = 'accepted'"))
        conn.execute(text_sql("UPDATE stage_deadlines SET due_on = :d"), {"d": dt.date(2019, 1, 5)})
        conn.execute(text_sql("UPDATE scoring_points SET max_points = 9 WHERE code = '1.1'"))
        conn.execute(text_sql("UPDATE unit_names SET full_name = '偷改全称' WHERE unit_id = :u"),
                     {"u": world.dep_b.unit_id})  # fmt: skip
    body = text(login("auditor").get("/audit/verify")).split("<tbody>")[1]
    assert f"单位 {world.dep_b.name}" in body and "全称" in body and "偷改全称" in body
    assert f"考核细则分值 · 考核 #{world.assessment.id}" in body
    assert "评分项分值 1.1" in body and "9.00" in body and "5.00" in body
    assert f"用户 {world.scorer.username}" in body and "管理员、评分员" in body
    assert f"用户 {world.member_a.username}" in body and "所属单位" in body
    assert world.dep_a.name in body and world.dep_b.name in body  # the units, by name
    assert f"平时考核记录 #{meeting.id}" in body and "已采纳" in body and "已退回" in body
    assert "自评提交截止 · 截止日期" in body and "2019-01-05" in body and "2018-10-12" in body
    for leak in ("None", "True", "False", "{'", "['", "accepted", "rejected"):
        assert leak not in body
    client = login("auditor")
    client.post("/language", data={"lang": "en", "next": "/audit/verify"})
    english = text(client.get("/audit/verify"))
    for word in ("Roles", "Administrator", "Accepted", "Deadline", "Checked record",
                 "Scoring point maximum 1.1", "Full name"):  # fmt: skip
        assert word in english


def test_verification_page_names_an_edited_lineage_change_in_words(
    app: Flask, session: Session, world: World, login: Login, engine: Engine
) -> None:
    """A merger edited in the tables reads as the units' names, the kind of change in words,
    the date, and the author by account name; in English too, with no code or repr."""
    from workflow.units import apply_change

    merged = apply_change(
        session, kind="merge", effective_on=dt.date(2019, 3, 2), document_no="蛟市机编〔2019〕2号",
        reason="机构改革", from_ids=[world.dep_a.unit_id, world.dep_b.unit_id],
        to=[{"name": "合并局"}], actor=world.admin,
    )  # fmt: skip
    session.commit()
    with engine.begin() as conn:
        conn.execute(text_sql("UPDATE unit_changes SET kind = 'split', created_by_id = :u"),
                     {"u": world.scorer.id})  # fmt: skip
        conn.execute(text_sql("DELETE FROM unit_change_units WHERE unit_id = :u AND role = 'from'"),
                     {"u": world.dep_b.unit_id})  # fmt: skip
    body = text(login("auditor").get("/audit/verify")).split("<tbody>")[1]
    assert f"单位调整 #{merged.id}" in body
    assert "调整类型" in body and "拆分" in body and "合并" in body
    assert "操作人" in body and world.scorer.username in body and world.admin.username in body
    assert "原单位" in body and f"{world.dep_a.name}、{world.dep_b.name}" in body
    for leak in ("None", "True", "False", "{'", "['", "split", "merge"):
        assert leak not in body
    client = login("auditor")
    client.post("/language", data={"lang": "en", "next": "/audit/verify"})
    english = text(client.get("/audit/verify"))
    for word in ("Unit change", "Kind of change", "Former units", "Actor"):
        assert word in english


def test_verification_page_names_a_swapped_password_and_a_moved_token_in_words(
    app: Flask, session: Session, world: World, login: Login, engine: Engine
) -> None:
    """A hash put on the admin's row and a token given to the admin read as the account's
    password fingerprint and the token's owner by name, its expiry in Beijing time."""
    from workflow.users import issue_token

    _, token = issue_token(session, world.scorer, name="脚本")
    session.commit()
    with engine.begin() as conn:
        conn.execute(text_sql("UPDATE users SET password_hash = 'known' WHERE id = :i"),
                     {"i": world.admin.id})  # fmt: skip
        later = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
        conn.execute(text_sql("UPDATE api_tokens SET user_id = :u, expires_at = :e"),
                     {"u": world.admin.id, "e": later})  # fmt: skip
    body = text(login("auditor").get("/audit/verify")).split("<tbody>")[1]
    assert f"用户 {world.admin.username}" in body and "密码指纹（SHA-256）" in body
    assert f"API 令牌 #{token.id}" in body and "令牌所属用户" in body
    assert world.scorer.username in body and "2099-01-01 08:00" in body
    for leak in ("None", "True", "False", "{'", "['", "known"):
        assert leak not in body


def test_verification_page_names_notice_edits_in_words(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login, engine: Engine
) -> None:
    """A notice's total and issuer edited in the table: the document, the snapshot's figure
    and the accounts are named in words, in both languages."""
    from sqlalchemy import update

    from tests.integration.test_notices import score_department
    from workflow.models import Notice
    from workflow.notices import issue_notice, set_result_settings

    set_result_settings(session, world.assessment, actor=world.admin,
                        document_no="蛟市职转办〔2019〕1号")  # fmt: skip
    score_department(session, store, world, world.dep_a, world.member_a)
    notice = issue_notice(
        session, store, world.assessment, world.dep_a, world.scorer, preliminary=True
    ).notice
    session.commit()
    total = notice.snapshot["total"]
    forged = {**notice.snapshot, "total": "99.50"}
    with engine.begin() as conn:
        conn.execute(update(Notice).where(Notice.id == notice.id).values(
            snapshot=forged, issued_by_id=world.admin.id))  # fmt: skip
    body = text(login("auditor").get("/audit/verify")).split("<tbody>")[1]
    assert f"考核结果文件 #{notice.id}" in body and world.dep_a.name in body
    assert "内容快照 考核得分" in body and "99.50" in body and total in body
    assert "内容快照指纹（SHA-256）" in body
    assert "印发人" in body and world.admin.username in body and world.scorer.username in body
    for leak in ("None", "True", "False", "{'", "['"):
        assert leak not in body
    client = login("auditor")
    client.post("/language", data={"lang": "en", "next": "/audit/verify"})
    english = text(client.get("/audit/verify"))
    for words in ("Results document", "Snapshot Score", "Issued by"):
        assert words in english, words


def _reorganise(session: Session, world: World) -> tuple[dict[str, int], list[Department]]:
    """A merge (of A and B), a split, a rename, a new full name and a dissolution (of the
    next four departments' units, returned), a new unit; each change's id by its kind (the
    new full name's as `full_name`)."""
    from workflow.units import apply_change

    w = world
    others = session.scalars(
        select(Department)
        .where(Department.assessment_id == w.assessment.id)
        .where(Department.id.not_in([w.dep_a.id, w.dep_b.id]))
        .order_by(Department.position)
    ).all()
    day, doc = dt.date(2019, 3, 2), "蛟市机编〔2019〕2号"

    def change(kind: str, units: list[int], to: list[dict[str, str]]) -> int:
        made = apply_change(
            session, kind=kind, effective_on=day, document_no=doc, reason="机构改革",
            from_ids=units, to=to, actor=w.admin,
        )  # fmt: skip
        return made.id

    ids = {
        "merge": change("merge", [w.dep_a.unit_id, w.dep_b.unit_id], [{"name": "合并局"}]),
        "split": change("split", [others[0].unit_id], [{"name": "甲局"}, {"name": "乙局"}]),
        "rename": change("rename", [others[1].unit_id], [{"name": "改名局"}]),
        "full_name": change(
            "rename", [others[2].unit_id], [{"name": others[2].name, "full_name": "新全称局"}]
        ),
        "dissolve": change("dissolve", [others[3].unit_id], []),
        "create": change("create", [], [{"name": "新设局"}]),
    }
    session.commit()
    return ids, list(others)


def test_unit_changes_say_what_changed_in_words(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """A unit change read 「单位调整 3」 on the log and in its exports: what was merged into
    what, renamed from what to what, dissolved, was behind 查看 or in another page. The 对象
    column now says it from the event's payload, in both languages."""
    ids, others = _reorganise(session, world)
    a, b = world.dep_a.name, world.dep_b.name
    expected = {
        "merge": f"单位调整 {ids['merge']}：{a}、{b}合并为合并局（2019-03-02 生效）",
        "split": f"单位调整 {ids['split']}：{others[0].name}拆分为甲局、乙局（2019-03-02 生效）",
        "rename": f"单位调整 {ids['rename']}：{others[1].name}更名为改名局（2019-03-02 生效）",
        "full_name": (
            f"单位调整 {ids['full_name']}：{others[2].name}的全称由“{others[2].full_name}”"
            "改为“新全称局”（2019-03-02 生效）"
        ),
        "dissolve": f"单位调整 {ids['dissolve']}：撤销{others[3].name}（2019-03-02 生效）",
        "create": f"单位调整 {ids['create']}：新设新设局（2019-03-02 生效）",
    }
    auditor = login("auditor")
    body = text(auditor.get("/audit/?action=unit_changed")).split("<tbody>")[1]
    for kind, words in expected.items():
        assert f"<td>{words}</td>" in body, (kind, words, body[:3000])
    sheet = openpyxl.load_workbook(
        io.BytesIO(auditor.get("/audit/export.xlsx?action=unit_changed").data)
    ).worksheets[0]
    targets = {str(row[5].value) for row in sheet.iter_rows(min_row=2)}
    assert targets == set(expected.values())
    rows = list(csv.reader(io.StringIO(
        auditor.get("/audit/export.csv?action=unit_changed").data.decode("utf-8-sig")
    )))  # fmt: skip
    assert {r[5] for r in rows[1:]} == set(expected.values())
    auditor.post("/language", data={"lang": "en", "next": "/audit/"})
    english = text(auditor.get("/audit/?action=unit_changed")).split("<tbody>")[1]
    assert f"Unit change {ids['merge']}: {a}, {b} merged into 合并局 (effective 2019-03-02)" in (
        english
    )
    assert f"{others[0].name} split into 甲局, 乙局" in english
    assert f"{others[1].name} renamed 改名局" in english
    assert f"{others[3].name} dissolved" in english and "新设局 created" in english
    assert f"full name of {others[2].name} changed from" in english


def test_a_departments_filter_lists_the_unit_changes_of_its_unit(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    """Filtered by 部门, the log listed only the events recorded for that department: the
    merger that ended its unit, or the rename that gave it its name, were left out (a unit
    change belongs to no one year's department). It lists them now, in its exports too."""
    ids, others = _reorganise(session, world)
    auditor = login("auditor")

    def changes(department: Department, export: str = "") -> set[str]:
        if export:
            data = auditor.get(f"/audit/export.xlsx?department={department.id}").data
            sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
            return {
                str(r[5].value) for r in sheet.iter_rows(min_row=2) if r[4].value == "unit_changed"
            }
        body = text(auditor.get(f"/audit/?department={department.id}")).split("<tbody>")[1]
        return set(re.findall(r"<td>(单位调整 \d+)：", body))

    assert changes(world.dep_a) == {f"单位调整 {ids['merge']}"} == changes(world.dep_b)
    assert changes(others[1]) == {f"单位调整 {ids['rename']}"}
    assert changes(others[3]) == {f"单位调整 {ids['dissolve']}"}
    assert {t.split("：")[0] for t in changes(world.dep_a, "xlsx")} == {f"单位调整 {ids['merge']}"}
    # The department's own events are still there, and no other department's.
    body = text(auditor.get(f"/audit/?department={world.dep_a.id}")).split("<tbody>")[1]
    assert "创建用户" in body and others[0].name + "拆分为" not in body


def test_a_record_reads_in_its_labels_order(app: Flask) -> None:
    """The chain stores a payload's keys sorted (answer, code, method, note, text; closes_at
    before opens_at); people read them in the labels' order, and an empty field says so."""
    payload = json.dumps(
        {
            "version": 4,
            "checks": [
                {"answer": "yes", "code": "10-1", "method": "平时考核", "note": None,
                 "text": "各类会议参加是否准时"},
            ],
            "previous_window": {
                "closes_at": "2026-12-12T11:20:31Z", "opens_at": "2026-12-04T11:20:31Z"
            },
            "round": 1,
        },
        sort_keys=True,
    )  # fmt: skip
    with app.test_request_context():
        lines = describe_payload(payload, "verify")
    assert [label for label, _ in lines] == ["核查要点", "版本", "轮次", "原申诉期"]
    assert (
        lines[0][1]
        == "编号：10-1；要点：各类会议参加是否准时；考核方式：平时考核；结果：是；备注：（无）"
    )
    assert lines[3][1] == "开始时间：2026-12-04 19:20；结束时间：2026-12-12 19:20"


def test_a_broken_chain_says_its_problem_in_english(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login, engine: Engine
) -> None:
    """The English page said what broke the chain in Chinese (the problem was not translated)."""
    from tests.integration.test_audit import _tamper

    _story(session, store, world)
    session.commit()
    _tamper(engine, "UPDATE audit_events SET comment = 'x' WHERE seq = 1")
    client = login("auditor")
    assert "事件内容与其哈希不符" in text(client.get("/audit/verify"))
    client.set_cookie("lang", "en")
    english = text(client.get("/audit/verify")).split("</h1>")[1].split("<dl")[0]
    assert "the event does not match its hash" in english
    assert not re.search(r"[\u4e00-\u9fff]", english), english


def test_a_whole_item_file_reads_as_the_item_page_says_it(app: Flask) -> None:
    """An upload for the whole item (no scoring point) reads 整项 (as the item page's evidence
    table and upload form say), not （无）, which reads as "no scoring point recorded"."""
    from web.common.audit_rows import describe_payload

    whole = json.dumps({"filename": "台账.xlsx", "sub_item": None, "purpose": "evidence"})
    point = json.dumps({"filename": "a.pdf", "sub_item": "1.2", "purpose": "not_involved_proof"})
    with app.test_request_context():
        assert dict(describe_payload(whole, "evidence_uploaded"))["评分项"] == "整项"
        assert dict(describe_payload(point, "evidence_uploaded"))["评分项"] == "1.2"
    with app.test_request_context(headers={"Cookie": "lang=en"}):
        assert dict(describe_payload(whole, "evidence_uploaded"))["评分项"] == "Whole item"
