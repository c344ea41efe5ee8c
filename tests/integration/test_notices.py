"""Score notices end to end: real operations to `scored`, issue, reopen with python-docx.

Runs on every configured database. Items reach `scored` through the real operations
(evidence, submit, review, verify, score), so the audit chain and the figures are real.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import threading
from decimal import Decimal
from pathlib import Path

import docx
import pytest
from docx.document import Document
from docx.oxml.ns import qn
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from scoring.notice import UNRANKED_NOTE
from storage.local import LocalStore
from tests.factories import World, add_evidence
from web.app import create_app
from workflow import actions
from workflow.audit import payload_of, verify_chain
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.errors import Conflict, Forbidden, NotFound
from workflow.evidence import attach_evidence
from workflow.models import (
    Assessment,
    AuditEvent,
    Department,
    Indicator,
    Item,
    Notice,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.notices import (
    UnsupportedBaseDocument,
    current_notice,
    current_summary,
    issue_notes,
    issue_notice,
    issue_summary,
    read_object,
    set_notice_base,
    set_result_settings,
)
from workflow.users import create_user, issue_token

XSS = "<script>alert(1)</script>"
# A long deduction reason with markup and a control character (BEL) python-docx cannot store.
LONG_REASON = (
    "部分改革任务未按期完成，" * 20 + XSS + "\x07" + "；相关台账不完整，需在下一年度整改到位。"
)
CLEAN_REASON = LONG_REASON.replace("\x07", "")
HEADER_TEXT = "蛟河市人民政府推进职能转变协调小组办公室（信头）"
EVIDENCE = demo_pdf("佐证材料")


RESULT_NO = "蛟市职转办〔2019〕1号"
RULES_NO = "蛟市职转办〔2018〕6号"


@pytest.fixture
def world(world: World, session: Session) -> World:
    """The shared world, with the results notice's own number set (audited: reconciled)."""
    set_result_settings(session, world.assessment, actor=world.admin, document_no=RESULT_NO)
    session.commit()
    return world


def start_publication(session: Session, assessment: Assessment) -> None:
    """Mark the results as published (公示), as `publish_assessment` does once all is scored."""
    now = utcnow()
    assessment.published_at = assessment.appeal_opens_at = now
    assessment.appeal_closes_at = now + dt.timedelta(days=7)
    session.commit()


def indicators_of(session: Session, assessment: Assessment) -> list[Indicator]:
    return list(
        session.execute(
            select(Indicator)
            .where(Indicator.assessment_id == assessment.id)
            .order_by(Indicator.position)
        ).scalars()
    )


def points_of(session: Session, indicator: Indicator) -> list[ScoringPoint]:
    return list(
        session.execute(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id == indicator.id)
            .order_by(ScoringPoint.position)
        ).scalars()
    )


def score_department(
    session: Session,
    store: LocalStore,
    w: World,
    dep: Department,
    member: User,
    *,
    special: bool = False,
    leave_unscored: str | None = None,
) -> None:
    """Drive every item of a department to `scored` through the real operations.

    With `special`, 4.2 is claimed not involved (upheld at verify) and 2.1 loses 2.5 points
    for LONG_REASON; every other point gets full marks. `leave_unscored` stops one indicator
    at `verified`.
    """
    for indicator in indicators_of(session, w.assessment):
        item = session.execute(
            select(Item).where(Item.department_id == dep.id, Item.indicator_id == indicator.id)
        ).scalar_one()
        # The same bytes every time: stored once, so a 260-item world stays quick.
        attach_evidence(
            session, store, item.id, member, io.BytesIO(EVIDENCE), "材料.pdf", max_size=2**20
        )
        claim = ["4.2"] if special and indicator.code == "4" else []
        if claim:
            add_evidence(session, store, item, member, sub_item="4.2", purpose="not_involved_proof")
        actions.submit_item(session, item.id, member, item.version, not_involved=claim)
        actions.review_item(session, item.id, w.reviewer, item.version)
        rulings = dict.fromkeys(claim, True)
        actions.verify_item(session, item.id, w.verifier, item.version, rulings=rulings)
        if indicator.code == leave_unscored:
            continue
        scores = {p.code: p.max_points for p in points_of(session, indicator)}
        # Routine points (9.1, 9.2) have suggested scores; full marks need a stated reason.
        deductions = {code: "平时考核材料已另行核实" for code in scores if code.startswith("9.")}
        for code in claim:
            del scores[code]
        if special and indicator.code == "2":
            scores["2.1"] = Decimal("7.5")
            deductions["2.1"] = LONG_REASON
        actions.score_item(
            session, item.id, w.scorer, item.version, scores=scores, deductions=deductions
        )
    session.commit()


def mark_others_scored(session: Session, w: World, *scored: Department) -> None:
    """Shortcut for a world where every department is finished: put the items of every
    department but `scored` at `scored` with 0 points (a direct write, no audit event)."""
    session.execute(
        update(Item)
        .where(
            Item.assessment_id == w.assessment.id,
            Item.department_id.not_in([d.id for d in scored]),
        )
        .values(state="scored", total=Decimal(0))
    )
    session.commit()


def reopen(content: bytes) -> Document:
    return docx.Document(io.BytesIO(content))


def body_text(document: Document) -> str:
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.extend(cell.text for cell in row.cells)
    return "\n".join(lines)


def table_rows(document: Document) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in document.tables[0].rows]


def notice_events(session: Session, action: str) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        ).scalars()
    )


def test_a_shared_rank_reads_as_a_tie(session: Session, store: LocalStore, world: World) -> None:
    """Two departments with the same total share a rank: each notice says 并列 (found by an
    exploratory walk: seven departments at 96.80 each read "排名第2位")."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    score_department(session, store, w, w.dep_b, w.member_b)
    start_publication(session, w.assessment)
    tied = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()
    assert tied.snapshot["rank"] == 1 and tied.snapshot["tied"] is True
    assert "在26个被考核部门中排名并列第1位。" in body_text(
        reopen(read_object(store, tied.storage_key))
    )


def test_notice_shows_every_point_and_the_figures(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    score_department(session, store, w, w.dep_b, w.member_b)
    start_publication(session, w.assessment)
    row = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()
    content = read_object(store, row.storage_key)
    assert hashlib.sha256(content).hexdigest() == row.sha256 and len(content) == row.size
    assert row.version == 1 and row.filename == "02-交通局-考核结果通知书-v1.docx"

    document = reopen(content)
    text = body_text(document)
    assert "交通局：" in text
    assert "关于2018年度“放管服”\n工作考核结果的通知" in text
    assert RESULT_NO in text and RULES_NO not in text  # its own number, never the rules'
    assert row.verification_code and f"验证码：{row.verification_code}" in text
    assert (
        "贵单位2018年度“放管服”工作考核得分为97.50分（满分100分），"
        "折合考核分1.95分（满分2分），在26个被考核部门中排名第2位。"
    ) in text
    rows = table_rows(document)
    points = [p for ind in indicators_of(session, w.assessment) for p in points_of(session, ind)]
    assert len(points) == 14 and len(rows) == 1 + 14 + 1
    for cells, point in zip(rows[1:-1], points, strict=True):
        assert cells[2].startswith(f"{point.code} {point.title}")
        assert cells[3] == f"{point.max_points.normalize():f}"
        if point.code == "2.1":
            assert cells[4] == "7.50"
            assert cells[5] == CLEAN_REASON  # verbatim, markup kept, control character gone
        elif point.code == "4.2":
            assert cells[4] == "2.00" and cells[5] == "不涉及（已核实）"
        elif point.code.startswith("9."):  # full marks above the suggestion: the reason shows
            assert cells[4] == f"{point.max_points:.2f}"
            assert cells[5] == "说明：平时考核材料已另行核实"
        else:
            assert cells[4] == f"{point.max_points:.2f}" and cells[5] == ""
    assert rows[-1][:5] == ["合计", "合计", "合计", "100", "97.50"]
    assert rows[-1][5] == "折合考核分1.95分（满分2分）"

    runs = [run for p in document.paragraphs for run in p.runs]
    for table_row in document.tables[0].rows:
        for cell in table_row.cells:
            runs.extend(run for p in cell.paragraphs for run in p.runs)
    fonts = set()
    for run in runs:
        rpr = run._element.rPr
        assert rpr is not None and rpr.rFonts is not None, run.text
        east_asian = rpr.rFonts.get(qn("w:eastAsia"))
        assert east_asian, run.text
        fonts.add(east_asian)
    assert {"方正小标宋简体", "仿宋_GB2312", "黑体"} <= fonts

    snapshot = row.snapshot
    assert snapshot["total"] == "97.50" and snapshot["converted"] == "1.95"
    assert snapshot["rank"] == 2 and snapshot["department_count"] == 26
    flat = [p for c in snapshot["categories"] for i in c["indicators"] for p in i["points"]]
    assert {p["code"]: p["awarded"] for p in flat}["2.1"] == "7.50"
    assert [p["code"] for p in flat if p["not_involved_upheld"]] == ["4.2"]

    (event,) = notice_events(session, "notice_issued")
    payload = payload_of(event)
    assert payload["sha256"] == row.sha256 and payload["version"] == 1
    assert payload["snapshot"] == snapshot
    assert event.actor == "scorer" and event.department_id == w.dep_a.id
    assert verify_chain(session).ok


def test_refused_while_any_item_is_not_scored(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, leave_unscored="7")
    with pytest.raises(Conflict) as err:
        issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    assert err.value.code == "not_all_scored"
    assert "7.清理规范证明事项工作落实情况（待评分）" in err.value.message
    assert "1 个考核指标未完成评分" in err.value.message
    assert err.value.detail == [{"indicator": "7", "state": "verified"}]
    session.rollback()
    with pytest.raises(Forbidden):  # issuing is for scorers and admins
        issue_notice(session, store, w.assessment, w.dep_a, w.reviewer)
    with pytest.raises(NotFound):  # a department reads only its own
        current_notice(session, w.assessment, w.dep_a, w.member_b)
    assert session.scalars(select(Notice)).all() == []


def test_versions_follow_the_figures_and_stay_downloadable(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    start_publication(session, w.assessment)
    with pytest.raises(NotFound) as none:  # reading never issues
        current_notice(session, w.assessment, w.dep_a, w.member_a)
    assert none.value.code == "notice_not_issued"
    first = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, only_if_changed=True)
    session.commit()
    assert first.is_new and (first.notice.version, first.notice.snapshot["rank"]) == (1, 1)
    again = issue_notice(session, store, w.assessment, w.dep_a, w.admin, only_if_changed=True)
    assert not again.is_new and again.notice.id == first.notice.id  # nothing changed
    assert current_notice(session, w.assessment, w.dep_a, w.member_a).id == first.notice.id

    score_department(session, store, w, w.dep_b, w.member_b)  # dep B overtakes dep A
    # The department still reads what was issued, not a document written behind its back.
    assert current_notice(session, w.assessment, w.dep_a, w.member_a).id == first.notice.id
    second = issue_notice(
        session, store, w.assessment, w.dep_a, w.scorer, only_if_changed=True
    ).notice
    session.commit()
    assert (second.version, second.snapshot["rank"]) == (2, 2)
    third = issue_notice(session, store, w.assessment, w.dep_a, w.admin).notice  # forced
    session.commit()
    assert third.version == 3 and third.snapshot["rank"] == 2
    codes = {first.notice.verification_code, second.verification_code, third.verification_code}
    assert len(codes) == 3  # every version its own code

    old = reopen(read_object(store, first.notice.storage_key))
    assert "排名第1位" in body_text(old)
    newer = body_text(reopen(read_object(store, second.storage_key)))
    assert "排名第2位" in newer and "（第2版，替代此前版本）" in newer
    events = notice_events(session, "notice_issued")
    assert [payload_of(e)["version"] for e in events] == [1, 2, 3]
    for event, row in zip(events, [first.notice, second, third], strict=True):
        stored = read_object(store, row.storage_key)
        assert payload_of(event)["sha256"] == hashlib.sha256(stored).hexdigest() == row.sha256
        assert payload_of(event)["verification_code"] == row.verification_code
    assert [payload_of(e)["trigger"] for e in events] == ["issue", "issue", "issue"]
    assert [e.actor for e in events] == ["scorer", "scorer", "admin"]


def test_concurrent_issues_share_one_version(
    session: Session, store: LocalStore, world: World, engine: Engine
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    start_publication(session, w.assessment)
    ids = (w.assessment.id, w.dep_a.id, w.scorer.id)
    barrier = threading.Barrier(4)
    found: list[int] = []
    errors: list[BaseException] = []

    def download() -> None:
        try:
            with make_sessionmaker(engine)() as s:
                assessment = s.get_one(Assessment, ids[0])
                department = s.get_one(Department, ids[1])
                reader = s.get_one(User, ids[2])
                barrier.wait()
                issued = issue_notice(
                    s, store, assessment, department, reader, only_if_changed=True
                )
                found.append(issued.notice.version)
                s.commit()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=download) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and found == [1, 1, 1, 1]
    assert len(notice_events(session, "notice_issued")) == 1


def test_summary_rows_and_order(session: Session, store: LocalStore, world: World) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    score_department(session, store, w, w.dep_b, w.member_b)
    with pytest.raises(Forbidden):
        current_summary(session, w.assessment, w.member_a)
    with pytest.raises(Forbidden):  # a 初审员 does not issue
        issue_summary(session, store, w.assessment, w.reviewer)
    early = issue_summary(session, store, w.assessment, w.scorer).notice
    session.commit()
    assert early.filename == "汇总表（初步）-v1.docx" and early.is_preliminary
    early_doc = reopen(read_object(store, early.storage_key))
    assert table_rows(early_doc)[0][0] == "暂定名次" and "（初步结果）" in body_text(early_doc)
    rows = table_rows(early_doc)
    assert len(rows) == 1 + 26
    full = ["20.00", "20.00", "10.00", "10.00", "20.00", "20.00"]
    assert rows[1] == ["1", "教育局", *full, "100.00", "2.00"]
    assert rows[2] == ["2", "交通局", "17.50", *full[1:], "97.50", "1.95"]
    rest = rows[3:]
    # No rank on a partial sum: the 24 departments being scored read —, tied 3rd no more.
    assert all(r[0] == "—" and r[1].endswith("（评分未完成）") and r[-2] == "0.00" for r in rest)
    assert "政府办（民族宗教局、法制办）（评分未完成）" in [r[1] for r in rest]
    assert UNRANKED_NOTE in body_text(early_doc)
    assert [r["rank"] for r in early.snapshot["rows"]][:3] == [1, 2, None]
    start_publication(session, w.assessment)
    # Ranked, the table waits for every department, as each department's notice does.
    with pytest.raises(Conflict) as err:
        issue_summary(session, store, w.assessment, w.scorer)
    assert err.value.code == "departments_not_scored" and len(err.value.detail) == 24
    assert "尚有 24 个部门未完成评分" in err.value.message and "政府办" in err.value.message
    session.rollback()
    mark_others_scored(session, w, w.dep_a, w.dep_b)
    row = issue_summary(session, store, w.assessment, w.scorer).notice
    session.commit()
    assert row.kind == "summary" and row.department_id is None and row.version == 2
    assert row.filename == "汇总表-v2.docx" and not row.is_preliminary
    document = reopen(read_object(store, row.storage_key))
    assert "附件" not in [p.text for p in document.paragraphs] and RESULT_NO in body_text(document)
    rows = table_rows(document)
    assert rows[0][:2] == ["排名", "部门"] and rows[0][-2:] == ["总分（100分）", "折合分"]
    assert rows[1:3] == [
        ["1", "教育局", *full, "100.00", "2.00"],
        ["2", "交通局", "17.50", *full[1:], "97.50", "1.95"],
    ]
    assert all(r[0] == "3" and "（评分未完成）" not in r[1] for r in rows[3:])
    assert UNRANKED_NOTE not in body_text(document)
    events = notice_events(session, "summary_issued")
    assert [payload_of(e)["sha256"] for e in events] == [early.sha256, row.sha256]
    assert current_summary(session, w.assessment, w.auditor).id == row.id


def letterhead_bytes() -> bytes:
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = HEADER_TEXT
    document.add_paragraph("蛟河市人民政府推进职能转变协调小组办公室文件")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_letterhead_is_the_base_and_non_docx_is_refused(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    start_publication(session, w.assessment)
    first = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()
    shipped = reopen(read_object(store, first.storage_key))
    assert shipped.paragraphs[0].text == "蛟河市人民政府推进职能转变协调小组办公室文件"
    content = letterhead_bytes()
    with pytest.raises(Forbidden):
        set_notice_base(session, store, w.assessment, io.BytesIO(content), "信头.docx", w.scorer)
    base = set_notice_base(session, store, w.assessment, io.BytesIO(content), "信头.docx", w.admin)
    session.commit()
    assert base.sha256 == hashlib.sha256(content).hexdigest()
    (event,) = notice_events(session, "notice_base_uploaded")
    assert payload_of(event)["sha256"] == base.sha256

    second = issue_notice(
        session, store, w.assessment, w.dep_a, w.scorer, only_if_changed=True
    ).notice
    session.commit()
    assert second.version == 2 and second.base_sha256 == base.sha256  # new base, new version
    document = reopen(read_object(store, second.storage_key))
    assert document.sections[0].header.paragraphs[0].text == HEADER_TEXT
    assert document.paragraphs[0].text == "蛟河市人民政府推进职能转变协调小组办公室文件"
    texts = [p.text for p in document.paragraphs]
    assert texts.count("蛟河市人民政府推进职能转变协调小组办公室文件") == 1  # the letterhead's
    assert "交通局：" in body_text(document) and RESULT_NO in texts
    assert first.base_sha256 is None

    for data, name in [
        (demo_pdf("不是信头"), "信头.docx"),
        (b"plain text", "信头.docx"),
        (content, "信头.pdf"),
        (b"", "信头.docx"),
    ]:
        with pytest.raises(UnsupportedBaseDocument) as err:
            set_notice_base(session, store, w.assessment, io.BytesIO(data), name, w.admin)
        assert err.value.status == 415
    session.rollback()


# -- HTTP ------------------------------------------------------------------------------------


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Flask:
    return create_app(
        {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path),
            "TESTING": True,
            "STORAGE": {
                "STORAGE_BACKEND": "local",
                "STORAGE_LOCAL_ROOT": str(tmp_path / "objects"),
            },
        }
    )


def bearer(session: Session, user: User) -> dict[str, str]:
    token, _row = issue_token(session, user, name="test")
    return {"Authorization": f"Bearer {token}"}


def test_endpoints_over_http(session: Session, store: LocalStore, world: World, app: Flask) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    heads = {
        u.username: bearer(session, u)
        for u in (w.member_a, w.member_b, w.reviewer, w.scorer, w.auditor)
    }
    session.commit()
    client: FlaskClient = app.test_client()
    aid, did, other = w.assessment.id, w.dep_a.id, w.dep_b.id
    url = f"/api/v1/assessments/{aid}/departments/{did}/notice.docx"
    issue_url = f"/api/v1/assessments/{aid}/departments/{did}/notices"

    assert client.get(url).status_code == 401
    none = client.get(url, headers=heads["scorer"])  # a GET never issues
    assert none.status_code == 404 and none.get_json()["error"]["code"] == "notice_not_issued"
    assert session.scalars(select(Notice)).all() == []

    refused = client.post(issue_url, json={}, headers=heads["reviewer"])  # 初审员: no
    assert refused.status_code == 403
    early = client.post(issue_url, json={"preliminary": False}, headers=heads["scorer"])
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "not_published"
    bad = client.post(issue_url, json={"preliminary": "yes"}, headers=heads["scorer"])
    assert bad.status_code == 400
    prelim = client.post(issue_url, json={"preliminary": True}, headers=heads["scorer"])
    assert prelim.status_code == 201, prelim.get_data(as_text=True)
    body = prelim.get_json()
    assert body["version"] == 1 and body["rank"] is None and len(body["sha256"]) == 64
    assert len(body["verification_code"]) == 19
    # 〔2019〕 above a 成文日期 of another year: issued, with a warning (GB/T 9704 §7.2.4).
    issued_on = dt.date.fromisoformat(session.get(Notice, body["id"]).snapshot["issued_on"])
    if issued_on.year != 2019:
        (warning,) = body["warnings"]
        assert warning["code"] == "number_year_not_issue_year"
        assert RESULT_NO in warning["message"] and issued_on.isoformat() in warning["message"]
    else:
        assert body["warnings"] == []
    # Before publication the department sees neither the notice nor its scores.
    assert client.get(url, headers=heads["member_a"]).status_code == 404
    assert client.get(body["url"], headers=heads["member_a"]).status_code == 404
    staff_copy = client.get(url, headers=heads["reviewer"])
    assert staff_copy.status_code == 200
    text = body_text(reopen(staff_copy.data))
    assert "（初步结果）" in text and "排名" not in text.replace("不作排名", "")

    pending = client.post(
        f"/api/v1/assessments/{aid}/departments/{other}/notices",
        json={"preliminary": True},
        headers=heads["scorer"],
    )
    assert pending.status_code == 409
    assert pending.get_json()["error"]["code"] == "not_all_scored"
    chinese = pending.get_json()["error"]["message"]
    assert "暂不能出具考核结果通知书：1." in chinese and "（草稿）；2." in chinese
    # In English each indicator's state reads in English (it was "（草稿）" there too); the
    # indicators' titles are the scheme's, as written.
    english = client.post(
        f"/api/v1/assessments/{aid}/departments/{other}/notices",
        json={"preliminary": True},
        headers={**heads["scorer"], "Accept-Language": "en"},
    ).get_json()["error"]["message"]
    assert "so no result notice can be issued yet: 1. " in english
    assert " (Draft); 2. " in english and "草稿" not in english
    missing = client.post(
        f"/api/v1/assessments/{aid}/departments/99999/notices", json={}, headers=heads["scorer"]
    )
    assert missing.status_code == 404 and missing.is_json

    start_publication(session, w.assessment)
    issued = client.post(issue_url, json={"preliminary": False}, headers=heads["scorer"])
    assert issued.status_code == 201
    final = issued.get_json()
    assert final["version"] == 2 and final["rank"] == 1 and final["new"] is True
    repeat = client.post(issue_url, json={}, headers=heads["scorer"])
    assert repeat.status_code == 200 and repeat.get_json()["id"] == final["id"]
    # Once published, a 初步结果 would replace the ranked notice the department holds.
    late = client.post(issue_url, json={"preliminary": True}, headers=heads["scorer"])
    assert late.status_code == 409, late.get_data(as_text=True)
    assert late.get_json()["error"]["code"] == "preliminary_after_publication"
    assert "已公示" in late.get_json()["error"]["message"]

    own = client.get(url, headers=heads["member_a"])
    assert own.status_code == 200, own.get_data(as_text=True)
    assert own.mimetype.endswith("wordprocessingml.document")
    assert own.headers["Cache-Control"] == "private, no-store"
    disposition = own.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''01-%E4%BA%A4%E9%80%9A%E5%B1%80" in disposition
    assert "交通局：" in body_text(reopen(own.data)) and own.headers["X-Notice-Version"] == "2"
    assert hashlib.sha256(own.data).hexdigest() == final["sha256"]
    assert client.get(url, headers=heads["member_b"]).status_code == 404

    listing = client.get(issue_url, headers=heads["member_a"])
    assert listing.status_code == 200
    page = listing.get_json()
    assert [n["version"] for n in page["notices"]] == [1, 2] and page["next_cursor"] is None
    assert page["notices"][1]["total"] == "97.50" and page["notices"][1]["issued_by"] == "scorer"
    assert client.get(issue_url, headers=heads["member_b"]).status_code == 404
    page = client.get(f"{issue_url}?limit=1", headers=heads["reviewer"]).get_json()
    assert [n["version"] for n in page["notices"]] == [1] and page["next_cursor"] is not None
    rest = client.get(
        f"{issue_url}?limit=1&cursor={page['next_cursor']}", headers=heads["reviewer"]
    )
    assert [n["version"] for n in rest.get_json()["notices"]] == [2]
    assert rest.get_json()["next_cursor"] is None
    assert client.get(f"{issue_url}?limit=x", headers=heads["reviewer"]).status_code == 400
    # The version the department holds (its ETag, the SHA-256) is not sent again.
    held = client.get(url, headers={**heads["member_a"], "If-None-Match": own.headers["ETag"]})
    assert held.status_code == 304 and held.data == b"" and held.headers["X-Notice-Version"] == "2"
    version = client.get(final["url"], headers=heads["auditor"])
    assert version.status_code == 200 and version.data == own.data
    assert client.get(final["url"], headers=heads["member_b"]).status_code == 404

    summary_url = f"/api/v1/assessments/{aid}/summary.docx"
    assert client.get(summary_url, headers=heads["auditor"]).status_code == 404
    unfinished = client.post(f"/api/v1/assessments/{aid}/summary", headers=heads["scorer"])
    assert unfinished.status_code == 409
    assert unfinished.get_json()["error"]["code"] == "departments_not_scored"
    assert client.get(summary_url, headers=heads["auditor"]).status_code == 404
    mark_others_scored(session, w, w.dep_a)
    made = client.post(f"/api/v1/assessments/{aid}/summary", headers=heads["scorer"])
    assert made.status_code == 201
    summary = client.get(summary_url, headers=heads["auditor"])
    assert summary.status_code == 200
    assert "%E6%B1%87%E6%80%BB%E8%A1%A8-v1.docx" in summary.headers["Content-Disposition"]
    assert table_rows(reopen(summary.data))[1][1] == "交通局"
    forbidden = client.get(summary_url, headers=heads["member_a"])
    assert forbidden.status_code == 403 and forbidden.is_json
    assert client.get(summary_url).status_code == 401
    assert (
        client.post(f"/api/v1/assessments/{aid}/summary", headers=heads["reviewer"]).status_code
        == 403
    )


def test_issuing_needs_the_results_own_number(
    session: Session, store: LocalStore, world: World, app: Flask
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a)
    w.assessment.result_document_no = None
    session.commit()
    with pytest.raises(Conflict) as err:
        issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True)
    assert err.value.code == "document_no_required" and "发文字号" in err.value.message
    session.rollback()
    heads = {u.username: bearer(session, u) for u in (w.admin, w.scorer)}
    session.commit()
    client = app.test_client()
    settings = f"/api/v1/assessments/{w.assessment.id}/settings"
    rules = client.patch(settings, json={"result_document_no": RULES_NO}, headers=heads["admin"])
    assert rules.status_code == 422 and "考核细则的文号" in rules.get_json()["error"]["message"]
    assert (
        client.patch(
            settings, json={"result_document_no": "x"}, headers=heads["scorer"]
        ).status_code
        == 403
    )
    assert (
        client.patch(settings, json={"result_document_no": 7}, headers=heads["admin"]).status_code
        == 400
    )
    done = client.patch(
        settings,
        json={"result_document_no": "  蛟市职转办〔2019〕3号 ", "notice_cc": "市政府办公室"},
        headers=heads["admin"],
    )
    assert done.status_code == 200
    assert done.get_json()["result_document_no"] == "蛟市职转办〔2019〕3号"
    assert done.get_json()["hide_scores_until_published"] is True
    *_, event = notice_events(session, "assessment_settings_changed")  # after the fixture's
    assert payload_of(event)["after"]["result_document_no"] == "蛟市职转办〔2019〕3号"
    session.expire_all()
    row = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, preliminary=True).notice
    text = body_text(reopen(read_object(store, row.storage_key)))
    assert "蛟市职转办〔2019〕3号" in text and "抄送：市政府办公室。" in text
    session.commit()  # the issue's lock on the assessment ends
    # A script that read the settings before another admin's change: with `seen`, a 409 and
    # the number stays; with the current fingerprint, the change goes through.
    read_before = done.get_json()["settings_seen"]
    other = client.patch(
        settings, json={"notice_cc": "市政府办公室，市绩效办"}, headers=heads["admin"]
    )
    assert other.status_code == 200 and other.get_json()["settings_seen"] != read_before
    stale = client.patch(
        settings, json={"result_document_no": "蛟市职转办〔2019〕4号", "seen": read_before},
        headers=heads["admin"],
    )  # fmt: skip
    assert stale.status_code == 409 and stale.get_json()["error"]["code"] == "changed_since_opened"
    fresh = client.patch(
        settings, json={"notice_cc": "市政府办公室", "seen": other.get_json()["settings_seen"]},
        headers=heads["admin"],
    )  # fmt: skip
    assert fresh.status_code == 200, fresh.get_json()
    assert fresh.get_json()["result_document_no"].endswith("3号")


# -- CLI -------------------------------------------------------------------------------------


def test_cli_reports_skipped_departments(
    session: Session, store: LocalStore, world: World, app: Flask, tmp_path: Path
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    out = tmp_path / "out"
    runner = app.test_cli_runner()
    early = runner.invoke(args=["notices", "2018", "--out", str(out)])
    assert early.exit_code == 1 and "--preliminary" in early.output  # not published yet
    start_publication(session, w.assessment)
    late = runner.invoke(args=["notices", "2018", "--out", str(out), "--preliminary"])
    assert late.exit_code == 1 and "已公示" in late.output and list(out.iterdir()) == []
    result = runner.invoke(args=["notices", "2018", "--out", str(out)])
    assert result.exit_code == 1, result.output
    # The ranked summary waits for every department, as their own notices do.
    assert sorted(p.name for p in out.iterdir()) == ["01-交通局-考核结果通知书-v1.docx"]
    assert "跳过 25 个评分未完成的部门" in result.output
    assert "教育局：10 个考核指标未完成评分（指标 1、2、3、4、5、6、7、8、9、10）" in result.output
    assert "汇总表未印发：尚有 25 个部门未完成评分" in result.output
    # The portal's warning about a number of another year than the 成文日期, here too.
    warned = f"注意：发文字号 {RESULT_NO} 的年份 2019 与成文日期" in result.output
    assert warned == bool(issue_notes(w.assessment)), result.output
    rerun = runner.invoke(args=["notices", "2018", "--out", str(out)])  # unchanged: no new version
    assert rerun.exit_code == 1 and len(list(out.iterdir())) == 1
    assert "同名" not in rerun.output  # the same document again: left as it is
    written = out / "01-交通局-考核结果通知书-v1.docx"
    assert written.stat().st_mode & 0o777 == 0o600 and list(out.glob(".*")) == []
    written.write_bytes(b"another v1")  # e.g. kept from before a restore rolled versions back
    clash = runner.invoke(args=["notices", "2018", "--out", str(out)])
    assert "1 个同名而内容不同的文件，未覆盖：01-交通局-考核结果通知书-v1.docx" in clash.output
    assert written.read_bytes() == b"another v1" and "跳过 25 个" in clash.output
    forced = runner.invoke(args=["notices", "2018", "--out", str(out), "--force"])
    assert forced.exit_code == 1 and len(list(out.glob("*-v2.docx"))) == 1
    assert len(notice_events(session, "notice_issued")) == 2
    assert notice_events(session, "summary_issued") == []
    mark_others_scored(session, w, w.dep_a)
    done = runner.invoke(args=["notices", "2018", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert (out / "汇总表-v1.docx").exists() and "跳过" not in done.output


# 1,300 audited transitions take ~25 s on PostgreSQL; the command's database work is covered
# there by test_cli_reports_skipped_departments.
@pytest.mark.backend("sqlite")
def test_cli_writes_every_notice_and_the_summary(
    session: Session, store: LocalStore, world: World, app: Flask, tmp_path: Path
) -> None:
    w = world
    for dep in w.assessment.departments:
        member = {w.dep_a.id: w.member_a, w.dep_b.id: w.member_b}.get(dep.id)
        if member is None:
            member = create_user(session, f"member_{dep.id}", ["department"], department=dep)
        score_department(session, store, w, dep, member, special=dep.id == w.dep_a.id)
    start_publication(session, w.assessment)
    runner = app.test_cli_runner()
    base_file = tmp_path / "信头.docx"
    base_file.write_bytes(letterhead_bytes())
    assert runner.invoke(args=["notices", "base", str(base_file)]).exit_code == 0
    out = tmp_path / "out"
    result = runner.invoke(args=["notices", "2018", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 27 and "汇总表-v1.docx" in names
    assert names[0].startswith("01-") and "26-交通局-考核结果通知书-v1.docx" in names
    assert "政府办（民族宗教局、法制办）" in body_text(
        reopen(next(out.glob("*-政府办-考核结果通知书-v1.docx")).read_bytes())
    )
    header = reopen((out / "汇总表-v1.docx").read_bytes()).sections[0].header
    assert header.paragraphs[0].text == HEADER_TEXT
