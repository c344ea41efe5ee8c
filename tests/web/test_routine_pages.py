"""Routine pages, suggested scores, notices in the portal and the department admin."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.integration.test_notices import score_department
from tests.web.conftest import text
from workflow import actions
from workflow.demo import demo_pdf
from workflow.models import AuditEvent, DepartmentAlias, Notice, RoutineRecord, utcnow

Login = Callable[[str], FlaskClient]
BASE_DOCX = Path(__file__).resolve().parents[2] / "templates" / "notice_base.docx"


def _submit(client: FlaskClient, period: str, title: str, kind: str = "monthly_info") -> int:
    response = client.post(
        "/portal/routine",
        data={
            "kind": kind,
            "period": period,
            "title": title,
            "note": "",
            "file": (io.BytesIO(demo_pdf(title)), f"{title}.pdf"),
        },
        content_type="multipart/form-data",
    )
    return response.status_code


def _record(session: Session, title: str) -> RoutineRecord:
    session.expire_all()
    return session.execute(select(RoutineRecord).where(RoutineRecord.title == title)).scalar_one()


def test_submit_review_counts_and_downloads(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    member = login("member_a")
    page = text(member.get("/portal/routine"))
    assert "2018-08" in page and "2018-Q3" in page and "2018-07" not in page
    assert _submit(member, "2018-08", "八月信息一") == 303
    assert _submit(member, "2018-08", "八月信息二") == 303
    assert _submit(member, "2018-08", "八月信息三") == 303
    refused = member.post(
        "/portal/routine",
        data={"kind": "monthly_info", "period": "2018-Q3", "title": "错期间"},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422 and "错期间" in text(refused)
    page = text(member.get("/portal/routine"))
    assert page.count("待审核") >= 3 and "迟报" in page

    reviewer = login("reviewer")
    queue = text(reviewer.get(f"/review/routine?department={world.dep_a.id}&kind=monthly_info"))
    assert "八月信息一" in queue and "八月信息三" in queue
    one, two, three = (_record(session, t) for t in ("八月信息一", "八月信息二", "八月信息三"))
    back = "/review/routine?status=submitted"
    for rec in (one, two):
        accepted = reviewer.post(
            f"/review/routine/{rec.id}/review", data={"status": "accepted", "back": back}
        )
        assert accepted.status_code == 303 and accepted.headers["Location"].endswith(back)
    missing_reason = reviewer.post(
        f"/review/routine/{three.id}/review", data={"status": "rejected"}
    )
    assert missing_reason.status_code == 422
    rejected = reviewer.post(
        f"/review/routine/{three.id}/review",
        data={"status": "rejected", "reason": "内容与本月无关", "back": "//evil.example/"},
    )
    assert rejected.status_code == 303 and rejected.headers["Location"].endswith("/review/routine")
    assert (
        login("member_b")
        .post(f"/review/routine/{three.id}/review", data={"status": "accepted"})
        .status_code
        == 403
    )
    assert (
        login("scorer")
        .post(f"/review/routine/{three.id}/review", data={"status": "accepted"})
        .status_code
        == 403
    )
    # reviewer_in_a may not review their own department's record
    assert (
        login("reviewer_in_a")
        .post(f"/review/routine/{three.id}/review", data={"status": "accepted"})
        .status_code
        == 403
    )

    page = text(member.get("/portal/routine"))
    assert "已采纳" in page and "已退回" in page and "内容与本月无关" in page
    assert "达标（含迟报）" in page  # August: 2 accepted of 2, both late
    assert "未报送" in page  # September onwards

    # Files: the department and the office read them, another department gets a 404.
    file_id = _record(session, "八月信息一").files[0].id
    url = f"/portal/routine/files/{file_id}/download"
    got = member.get(url)
    assert got.status_code == 200 and got.data.startswith(b"%PDF")
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert reviewer.get(url).status_code == 200
    assert login("auditor").get(url).status_code == 200
    assert login("member_b").get(url).status_code == 404
    assert member.get("/portal/routine/files/999999/download").status_code == 404


def test_office_records_a_meeting_and_sees_the_quota_matrix(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    reviewer = login("reviewer")
    recorded = reviewer.post(
        "/review/routine",
        data={
            "department_id": str(world.dep_b.id),
            "kind": "meeting",
            "period": "2018-09",
            "title": "全市推进会",
        },
        content_type="multipart/form-data",
    )
    assert recorded.status_code == 303
    assert _record(session, "全市推进会").department_id == world.dep_b.id
    again = reviewer.post(  # the same form again (a double click, a refresh that re-posts)
        "/review/routine",
        data={"department_id": str(world.dep_b.id), "kind": "meeting", "period": "2018-09",
              "title": "全市推进会"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert again.status_code == 409 and "同一记录不重复登记" in text(again)
    assert session.scalar(
        select(func.count()).where(RoutineRecord.title == "全市推进会")
    ) == 1  # fmt: skip
    wrong_kind = reviewer.post(
        "/review/routine",
        data={"department_id": str(world.dep_b.id), "kind": "monthly_info", "period": "2018-09",
              "title": "代报"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert wrong_kind.status_code == 403
    member = login("member_a")
    assert _submit(member, "2018-08", "甲八月一") == 303
    assert _submit(member, "2018-08", "甲八月二") == 303
    for title in ("甲八月一", "甲八月二"):
        reviewer.post(f"/review/routine/{_record(session, title).id}/review",
                      data={"status": "accepted"})  # fmt: skip

    matrix = text(reviewer.get("/review/routine/quota"))
    assert "2018-08" in matrix and "2018-12" in matrix and "2018-Q4" in matrix
    assert "quota-late" in matrix and "quota-missing" in matrix
    assert world.dep_a.name in matrix
    scorer_view = login("auditor").get("/review/routine/quota")
    assert scorer_view.status_code == 200
    # Staff who may read see the list but get no forms.
    assert 'method="post" action="/review/routine"' not in text(
        login("scorer").get("/review/routine")
    )

    csv_response = reviewer.get("/review/routine/quota.csv?kind=monthly_info")
    assert csv_response.status_code == 200
    assert csv_response.mimetype == "text/csv"
    assert csv_response.data.startswith("\ufeff".encode())
    body = csv_response.data.decode("utf-8-sig")
    row = next(line for line in body.splitlines() if line.startswith(world.dep_a.name + ","))
    assert "达标（含迟报）（2/2）" in row and "未报送（0/2）" in row
    assert reviewer.get("/review/routine/quota.csv?kind=meeting").status_code == 404
    assert login("member_a").get("/review/routine/quota.csv").status_code == 403


def test_suggested_score_shown_and_prefilled(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    member = login("member_a")
    assert _submit(member, "2018-08", "建议一") == 303
    assert _submit(member, "2018-08", "建议二") == 303
    reviewer = login("reviewer")
    for title in ("建议一", "建议二"):
        reviewer.post(f"/review/routine/{_record(session, title).id}/review",
                      data={"status": "accepted"})  # fmt: skip
    item = world.item(session, world.dep_a, "9")
    add_evidence(session, store, item, world.member_a)
    actions.submit_item(session, item.id, world.member_a, item.version)
    actions.review_item(session, item.id, world.reviewer, item.version)
    actions.verify_item(session, item.id, world.verifier, item.version)
    session.commit()

    page = text(login("scorer").get(f"/review/items/{item.id}"))
    assert "平时考核建议分" in page
    assert "达标 1/5 期" in page and "迟报 2 篇（本方案不扣分）" in page
    # 8 × 1/5 = 1.60 (the 2018 rules deduct nothing for lateness), prefilled
    assert re.search(r'name="score-9\.1"[^>]*value="1\.60"', page.replace("\n", " "))
    assert "与建议分不同时须在扣分原因中说明理由" in page
    scores = {"9.1": "8", "9.2": "7"}
    refused = login("scorer").post(
        f"/review/items/{item.id}/action",
        data={"action": "score", "version": str(item.version),
              **{f"score-{k}": v for k, v in scores.items()}},
    )  # fmt: skip
    assert refused.status_code == 422 and "平时考核建议分" in text(refused)
    # Walk: "达标 1/5 期" named no month, and a scorer taking the suggestion still had to
    # write the reason. The months that fell short are named and become the prefilled reason.
    assert "；未达标：2018-09、2018-10、2018-11、2018-12" in page
    short = "平时考核：2018年9月、2018年10月、2018年11月、2018年12月未达到报送要求（达标 1/5 期）"
    assert re.search(rf'name="reason-9\.1"[^>]*value="{short}"', page.replace("\n", " "))
    english = login("scorer")
    english.set_cookie("lang", "en")
    english_page = text(english.get(f"/review/items/{item.id}"))
    # Walk: the English interface prefilled an English reason, which the department then read.
    # The reason is stored and read in Chinese whatever the scorer's interface; the English
    # page says so beside the field.
    assert re.search(rf'name="reason-9\.1"[^>]*value="{short}"', english_page.replace("\n", " "))
    assert "The prefilled reason is in Chinese" in english_page
    assert "预填的扣分原因为中文" not in page  # the Chinese page needs no such word
    shown = re.search(r'<div class="suggestion" id="score-9\.1-suggestion">(.*?)</div>',
                      english_page, re.S)  # fmt: skip
    assert shown and "(periods meeting the quota: 1/5; short: 2018-09, 2018-10" in shown.group(1)
    assert not re.search(r"[（），；、]", shown.group(1)), shown.group(1)  # was left Chinese
    prefilled = dict(re.findall(r'name="((?:score|reason)-9\.\d)"[^>]*value="([^"]*)"', page))
    taken = login("scorer").post(
        f"/review/items/{item.id}/action",
        data={"action": "score", "version": str(item.version), **prefilled},
    )
    assert taken.status_code == 303, text(taken)  # the suggestion as offered scores
    session.refresh(item)
    assert short in {s.deduction_reason for s in item.scores}


def test_notice_buttons_and_downloads(
    app: Flask, session: Session, world: World, login: Login, store: LocalStore
) -> None:
    score_department(session, store, world, world.dep_b, world.member_b)
    world.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    session.commit()
    scorer = login("scorer")
    progress = text(scorer.get("/progress/"))
    notice_url = f"/progress/departments/{world.dep_b.id}/notice.docx"
    versions_url = f"/progress/departments/{world.dep_b.id}/notices"
    issue_url = f"{versions_url}/issue"
    assert notice_url not in progress and "暂定名次" in progress  # nothing issued yet
    assert scorer.get(notice_url).status_code == 404  # a GET never issues
    assert session.scalars(select(Notice)).all() == []

    page = text(scorer.get(versions_url))
    assert "印发初步结果（不含排名）" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    # A ranked notice before publication is refused with a clear message.
    ranked = scorer.post(
        issue_url, data={"preliminary": "0", "csrf_token": token.group(1)}, follow_redirects=True
    )
    assert "考核结果尚未公示" in text(ranked)
    made = scorer.post(issue_url, data={"preliminary": "1", "csrf_token": token.group(1)})
    assert made.status_code == 303
    (notice,) = session.execute(select(Notice).where(Notice.kind == "notice")).scalars()
    assert notice.is_preliminary and notice.snapshot["rank"] is None
    got = scorer.get(notice_url)
    assert got.status_code == 200 and got.headers["X-Notice-Version"] == "1"
    document = docx.Document(io.BytesIO(got.data))
    assert any(world.dep_b.full_name in p.text for p in document.paragraphs)
    reviewer = login("reviewer")  # a 初审员 cannot issue
    assert reviewer.post(issue_url, data={"preliminary": "1"}).status_code == 403

    versions = text(login("auditor").get(versions_url))
    assert f"/portal/notices/{notice.id}" in versions and notice.filename in versions
    assert "蛟市职转办〔2019〕1号" in versions and "旧文号" not in versions
    # The number changed after issuing: the versions that carry the old one say so.
    world.assessment.result_document_no = "蛟市职转办〔2019〕2号"
    session.commit()
    renumbered = text(login("auditor").get(versions_url))
    assert "1 个版本载明的发文字号与现行发文字号 蛟市职转办〔2019〕2号 不同" in renumbered
    assert '蛟市职转办〔2019〕1号 <span class="warn-text old-no">旧文号</span>' in renumbered
    world.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    session.commit()
    assert notice.verification_code in versions and "印发初步结果" not in versions
    assert login("auditor").get("/progress/summary.docx").status_code == 404
    summary_page = text(scorer.get("/progress/"))
    summary_token = re.search(r'name="csrf_token" value="([^"]+)"', summary_page)
    assert summary_token is not None
    assert (
        scorer.post("/progress/summary", data={"csrf_token": summary_token.group(1)}).status_code
        == 303
    )
    summary = login("auditor").get("/progress/summary.docx")
    assert summary.status_code == 200 and summary.data.startswith(b"PK")
    assert login("member_b").get("/progress/summary.docx").status_code == 403

    member_b = login("member_b")  # before publication: no notice, no score
    index = text(member_b.get("/portal/"))
    assert "/portal/notice.docx" not in index and "分数在考核结果公示后显示" in index
    assert member_b.get("/portal/notice.docx").status_code == 404
    assert member_b.get(f"/portal/notices/{notice.id}").status_code == 404

    world.assessment.published_at = world.assessment.appeal_opens_at = utcnow()
    world.assessment.appeal_closes_at = utcnow() + dt.timedelta(days=7)
    session.commit()
    assert "暂定" not in text(scorer.get("/progress/"))
    index = text(member_b.get("/portal/"))
    assert "/portal/notice.docx" in index and notice.verification_code in index
    own = member_b.get("/portal/notice.docx")
    assert own.status_code == 200 and own.headers["X-Notice-Version"] == "1"
    assert member_b.get(f"/portal/notices/{notice.id}").status_code == 200
    member_a = login("member_a")
    assert "/portal/notice.docx" not in text(member_a.get("/portal/"))
    assert member_a.get("/portal/notice.docx").status_code == 404
    assert member_a.get(f"/portal/notices/{notice.id}").status_code == 404
    assert member_a.get(versions_url).status_code == 403


def test_letterhead_upload(app: Flask, session: Session, world: World, login: Login) -> None:
    admin = login("admin")
    assert "系统默认信头" in text(admin.get("/admin/assessment"))
    bad = admin.post(
        "/admin/assessment/letterhead",
        data={"file": (io.BytesIO(b"not a docx"), "x.docx")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 415
    good = admin.post(
        "/admin/assessment/letterhead",
        data={"file": (io.BytesIO(BASE_DOCX.read_bytes()), "信头.docx")},
        content_type="multipart/form-data",
    )
    assert good.status_code == 303
    assert "信头.docx" in text(admin.get("/admin/assessment"))
    assert (
        login("scorer")
        .post(
            "/admin/assessment/letterhead",
            data={"file": (io.BytesIO(BASE_DOCX.read_bytes()), "信头.docx")},
            content_type="multipart/form-data",
        )
        .status_code
        == 403
    )


def test_department_aliases_admin(app: Flask, session: Session, world: World, login: Login) -> None:
    admin = login("admin")
    page = text(admin.get("/admin/departments"))
    assert world.dep_a.full_name in page and world.dep_b.name in page
    url = f"/admin/departments/{world.dep_b.id}"
    added = admin.post(url, data={"action": "add_alias", "alias": "测试别名", "kind": "office"})
    assert added.status_code == 303
    assert "测试别名" in text(admin.get("/admin/departments"))
    duplicate = admin.post(url, data={"action": "add_alias", "alias": world.dep_a.name})
    assert duplicate.status_code == 422 and world.dep_a.name in text(duplicate)
    renamed = admin.post(url, data={"action": "rename", "full_name": "乙部门全称（测试）"})
    assert renamed.status_code == 303
    row = session.execute(
        select(DepartmentAlias).where(DepartmentAlias.alias == "测试别名")
    ).scalar_one()
    removed = admin.post(url, data={"action": "remove_alias", "alias_id": str(row.id)})
    assert removed.status_code == 303
    row_id = row.id
    session.expunge(row)
    gone = session.execute(select(DepartmentAlias).where(DepartmentAlias.id == row_id)).first()
    assert gone is None
    events = (
        session.execute(select(AuditEvent).where(AuditEvent.action == "department_changed"))
        .scalars()
        .all()
    )
    assert len(events) == 3
    assert admin.post(url, data={"action": "nonsense"}).status_code == 400
    assert (
        admin.post(
            "/admin/departments/999999", data={"action": "rename", "full_name": "x"}
        ).status_code
        == 404
    )
    for role in ("reviewer", "member_b", "auditor"):
        assert login(role).post(url, data={"action": "rename", "full_name": "x"}).status_code == 403


def test_hostile_ids_and_filters(app: Flask, world: World, login: Login) -> None:
    reviewer = login("reviewer")
    big = "9" * 30
    for url in (
        f"/review/routine?department={big}&after={big}&kind=x&period=' OR 1=1 --",
        "/review/routine?department=²&after=²",
        f"/portal/routine/files/{big}/download",
        f"/progress/departments/{big}/notices",
        f"/portal/notices/{big}",
    ):
        assert reviewer.get(url).status_code in (200, 404), url
    assert reviewer.post(f"/review/routine/{big}/review", data={}).status_code == 404
    admin = login("admin")
    assert admin.post(f"/admin/departments/{big}", data={"action": "rename"}).status_code == 404
    url = f"/admin/departments/{world.dep_a.id}"
    removed = admin.post(url, data={"action": "remove_alias", "alias_id": big})
    assert removed.status_code == 404


def _issued_notice(
    session: Session, store: LocalStore, world: World, login: Login
) -> tuple[FlaskClient, Notice]:
    """Department B scored and its preliminary notice issued by the scorer (signed in)."""
    score_department(session, store, world, world.dep_b, world.member_b)
    world.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    session.commit()
    scorer = login("scorer")
    url = f"/progress/departments/{world.dep_b.id}/notices/issue"
    assert scorer.post(url, data={"preliminary": "1"}).status_code == 303
    return scorer, session.execute(select(Notice).where(Notice.kind == "notice")).scalar_one()


def test_notice_pdf_rendition_and_what_is_missing_without_libreoffice(
    app: Flask,
    session: Session,
    world: World,
    login: Login,
    store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scorer, notice = _issued_notice(session, store, world, login)
    versions_url = f"/progress/departments/{world.dep_b.id}/notices"
    assert scorer.post("/progress/summary").status_code == 303
    summary = session.execute(select(Notice).where(Notice.kind != "notice")).scalar_one()
    import web.common.notice_files as notice_files

    conversions: list[int] = []
    convert = notice_files.docx_to_pdf
    monkeypatch.setattr(
        notice_files, "docx_to_pdf", lambda content: conversions.append(1) or convert(content)
    )
    pdf = scorer.get(f"/portal/notices/{notice.id}.pdf")  # LibreOffice, as installed by .ci/run
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF") and ".pdf" in pdf.headers["Content-Disposition"]
    # An issued version never changes: converted once, kept beside it, then read back.
    assert store.exists(notice_files.pdf_key(notice))
    again = scorer.get(f"/portal/notices/{notice.id}.pdf")
    assert again.status_code == 200 and again.data == pdf.data and len(conversions) == 1

    import scoring.pdf
    import web.portal.notices
    import web.portal.progress

    for module in (scoring.pdf, web.portal.notices, web.portal.progress):
        monkeypatch.setattr(module, "office_binary", lambda: None)
    missing = "PDF 不可用：服务器未安装 LibreOffice"
    assert missing in text(scorer.get(versions_url)) and missing in text(scorer.get("/progress/"))
    refused = scorer.get(f"/portal/notices/{summary.id}.pdf")  # never converted: nothing kept
    assert refused.status_code == 503 and "LibreOffice" in text(refused)
    assert not store.exists(notice_files.pdf_key(summary))


def test_two_first_downloads_of_a_notice_pdf_at_once_convert_it_once(
    app: Flask,
    session: Session,
    world: World,
    login: Login,
    store: LocalStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second request arrives while the first converts: it waits, then reads the kept PDF."""
    import web.common.notice_files as notice_files
    from tests.concurrency import HANG, Worker

    scorer, notice = _issued_notice(session, store, world, login)
    converting, release, waiting = threading.Event(), threading.Event(), threading.Event()
    conversions: list[int] = []
    convert, lock = notice_files.docx_to_pdf, notice_files.source_lock

    def slow_convert(content: bytes) -> bytes:
        conversions.append(1)
        converting.set()
        assert release.wait(HANG), "the test never let the conversion finish"
        return convert(content)

    @contextmanager
    def watched_lock(sha256: str) -> Iterator[None]:
        if converting.is_set():
            waiting.set()  # the second request is at the lock the first one holds
        with lock(sha256):
            yield

    monkeypatch.setattr(notice_files, "docx_to_pdf", slow_convert)
    monkeypatch.setattr(notice_files, "source_lock", watched_lock)
    engine = app.extensions["engine"]
    path = f"/portal/notices/{notice.id}.pdf"
    first = Worker(engine, lambda: scorer.get(path))
    first.start()
    assert converting.wait(HANG), "the first download never started converting"
    second = Worker(engine, lambda: login("scorer").get(path))
    second.start()
    assert waiting.wait(HANG), "the second download never reached the lock"
    release.set()
    one, two = first.wait_done(), second.wait_done()
    assert one.status_code == two.status_code == 200
    assert one.data == two.data and one.data.startswith(b"%PDF")
    assert len(conversions) == 1


def test_routine_item_takes_its_records_as_evidence(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    member = login("member_a")
    item9 = world.item(session, world.dep_a, "9")
    page = text(member.get(f"/portal/items/{item9.id}"))
    assert "请上传佐证材料后提交" not in page
    assert "尚无平时考核记录" in page and "请先在“平时考核”页报送" in page
    # The engine refuses the submit without records or uploads, whatever the page shows.
    refused = member.post(
        f"/portal/items/{item9.id}/action", data={"action": "submit", "version": item9.version}
    )
    assert refused.status_code == 422
    assert _submit(member, "2018-08", "八月信息") == 303
    page = text(member.get(f"/portal/items/{item9.id}"))
    assert "八月信息" in page and "已有 1 条记录，可直接提交" in page
    assert "请上传佐证材料后提交" not in page
    done = member.post(
        f"/portal/items/{item9.id}/action", data={"action": "submit", "version": item9.version}
    )
    assert done.status_code == 303
    session.expire_all()
    assert world.item(session, world.dep_a, "9").state == "submitted"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.item_id == item9.id, AuditEvent.action == "submit")
    ).scalar_one()
    assert '"routine_points":["9.1"]' in event.payload
    # The reviewer sees the records on the item too.
    reviewer = login("reviewer")
    assert "八月信息" in text(reviewer.get(f"/review/items/{item9.id}"))
    assert "平时考核记录（本指标的佐证，1 条）" in text(member.get(f"/portal/items/{item9.id}"))
    # A rejected record is listed but not counted: the caption says both.
    assert _submit(member, "2018-09", "九月信息") == 303
    reviewer.post(f"/review/routine/{_record(session, '九月信息').id}/review",
                  data={"status": "rejected", "reason": "与本月工作无关"})  # fmt: skip
    caption = "平时考核记录（共 2 条，其中 1 条作为本指标的佐证；已退回、已撤销的不计）"
    assert caption in text(member.get(f"/portal/items/{item9.id}"))


def test_office_corrects_and_withdraws_in_the_portal(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    reviewer = login("reviewer")
    made = reviewer.post(
        "/review/routine",
        data={"department_id": str(world.dep_a.id), "kind": "meeting", "period": "2018-09",
              "title": "九月推进会", "outcome": "missed"},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert made.status_code == 303
    record = _record(session, "九月推进会")
    assert record.registered_by == "office" and record.outcome == "missed"
    assert not record.is_late  # registering in 2026 is not the department's late report
    page = text(reviewer.get("/review/routine"))
    assert "更正或撤销" in page and "未完成（缺席）" in page
    url = f"/review/routine/{record.id}"
    refused = reviewer.post(f"{url}/correct", data={"outcome": "done", "reason": ""})
    assert refused.status_code == 422 and "须说明理由" in text(refused)
    ok = reviewer.post(f"{url}/correct", data={"outcome": "done", "reason": "误记为缺席"})
    assert ok.status_code == 303 and _record(session, "九月推进会").outcome == "done"
    ok = reviewer.post(f"{url}/withdraw", data={"reason": "重复登记"})
    assert ok.status_code == 303 and _record(session, "九月推进会").status == "withdrawn"
    actions_logged = [
        e.action
        for e in session.execute(
            select(AuditEvent).where(AuditEvent.target_id == str(record.id),
                                     AuditEvent.target_type == "routine")
        ).scalars()
    ]  # fmt: skip
    assert actions_logged == ["routine_submitted", "routine_corrected", "routine_withdrawn"]
    assert login("member_a").post(f"{url}/withdraw", data={"reason": "x"}).status_code == 403


def test_a_department_user_who_also_reviews_tells_the_two_routine_pages_apart(
    app: Flask, session: Session, world: World, login: Callable[[str], FlaskClient]
) -> None:
    """Both menus said 平时考核, leading to different pages."""
    from tests.web.conftest import PASSWORD
    from workflow.users import create_user

    create_user(
        session, "both", ["department", "reviewer"], department=world.dep_a, password=PASSWORD,
        actor=world.admin,
    )  # fmt: skip
    session.commit()
    page = login("both").get("/portal/").get_data(as_text=True)
    assert '/portal/routine">本部门平时考核</a>' in page
    assert '/review/routine">平时考核</a>' in page
    only = login("member_a").get("/portal/").get_data(as_text=True)
    assert '/portal/routine">平时考核</a>' in only and "本部门平时考核" not in only
