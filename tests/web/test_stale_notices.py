"""An issued notice whose figures no longer stand (a rescore after an appeal moved the total,
and others' ranks) says so wherever it is shown: /verify (page and API), the office's notices
page and the department's download link (found by an exploratory walk: v1 kept saying 96.80,
当前版本, after the rescore)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World
from tests.integration.test_notices import mark_others_scored, score_department, start_publication
from tests.integration.test_notifications import in_english
from tests.web.conftest import text
from workflow import actions
from workflow.models import Notification
from workflow.notices import (
    CHANGED,
    SAME,
    UNSETTLED,
    issue_notice,
    issue_summary,
    set_result_settings,
    standing,
)


def test_a_notice_overtaken_by_a_rescore_says_so(
    app: Flask,
    session: Session,
    store: LocalStore,
    world: World,
    login: Callable[[str], FlaskClient],
) -> None:
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)  # 2.1: 7.5 of 10
    w.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    start_publication(session, w.assessment)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()
    code = notice.verification_code
    assert standing(session, notice) == SAME
    # A new 抄送 changes no result: the version stands (a new number is marked apart).
    set_result_settings(session, w.assessment, actor=w.admin, cc="市政府办公室")
    session.commit()
    assert standing(session, notice) == SAME
    assert login("auditor").get(f"/verify/{code}").status_code == 200
    assert "有效版本（当前版本）" in text(login("auditor").get(f"/verify/{code}"))

    item = w.item(session, w.dep_a, "2")
    actions.appeal_item(session, item.id, w.member_a, item.version, comment="2.1 材料已齐备")
    session.commit()
    assert standing(session, notice) == UNSETTLED
    assert "正在复核" in text(login("auditor").get(f"/verify/{code}"))
    versions = f"/progress/departments/{w.dep_a.id}/notices"
    assert "有事项正在复核" in text(login("scorer").get(versions))

    scores = {p.code: p.max_points for p in item.scoring_points}
    actions.rescore_item(
        session, item.id, w.scorer2, item.version, scores=scores, comment="材料齐备，改为满分"
    )
    session.commit()
    assert item.total == Decimal("10.00")
    assert standing(session, notice) == CHANGED
    page = text(login("auditor").get(f"/verify/{code}"))
    assert "印发后考核结果已变更" in page and "当前版本（结果已变更，待重新印发）" in page
    body = app.test_client().get(f"/api/v1/verify/{code}").get_json()
    assert (body["current"], body["standing"]) == (True, "changed")
    assert "第 1 版印发后考核结果已变更" in text(login("scorer").get(versions))
    portal = text(login("member_a").get("/portal/"))
    assert "印发后考核结果已变更，该版本将由市职转办重新印发" in portal
    matrix = text(login("scorer").get("/progress/"))
    assert "1 个部门的通知书印发后考核结果已变更" in matrix
    assert '<span class="warn-text stale-notice">待重新印发</span>' in matrix

    # Issued again: the new version stands; the old one is replaced (no standing).
    again = issue_notice(session, store, w.assessment, w.dep_a, w.scorer, only_if_changed=True)
    session.commit()
    assert again.is_new and standing(session, again.notice) == SAME
    old = app.test_client().get(f"/api/v1/verify/{code}").get_json()
    assert (old["current"], old["standing"]) == (False, None)
    assert "已变更" not in text(login("scorer").get(versions))
    assert "待重新印发" not in text(login("scorer").get("/progress/"))
    assert re.search("有效版本（当前版本）", text(login("auditor").get(
        f"/verify/{again.notice.verification_code}")))  # fmt: skip


def _appeal_to_full_marks(session: Session, w: World) -> None:
    """dep_a appeals 2.1 (7.5 of 10) and scorer2 gives full marks: 97.50 → 100.00."""
    item = w.item(session, w.dep_a, "2")
    actions.appeal_item(session, item.id, w.member_a, item.version, comment="2.1 材料已齐备")
    session.commit()
    full = {p.code: p.max_points for p in item.scoring_points}
    actions.rescore_item(session, item.id, w.scorer2, item.version, scores=full, comment="满分")
    session.commit()


def _outdated(session: Session) -> list[tuple[int, str, str, str | None]]:
    rows = session.execute(
        select(Notification.user_id, Notification.title, Notification.body, Notification.link)
        .where(Notification.kind == "notice_outdated")
        .order_by(Notification.user_id)
    )
    return [tuple(r) for r in rows]


def test_the_issuers_hear_when_a_rescore_overtakes_an_issued_notice(
    session: Session, store: LocalStore, world: World
) -> None:
    """The office learns of it in the inbox, not only by opening the notices page; a rescore
    that gives the same points (the notice still stands) tells nobody."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)
    w.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    start_publication(session, w.assessment)
    notice = issue_notice(session, store, w.assessment, w.dep_a, w.scorer).notice
    session.commit()

    other = w.item(session, w.dep_a, "3")
    actions.appeal_item(session, other.id, w.member_a, other.version, comment="请复核")
    session.commit()
    same = {s.scoring_point.code: s.points for s in other.scores}
    actions.rescore_item(session, other.id, w.scorer2, other.version, scores=same, comment="维持")
    session.commit()
    assert standing(session, notice) == SAME
    assert _outdated(session) == []

    _appeal_to_full_marks(session, w)
    assert standing(session, notice) == CHANGED
    heard = _outdated(session)
    # The issuers (admin and scorers), not the scorer who rescored, nor the department users.
    assert [uid for uid, *_ in heard] == sorted([w.admin.id, w.scorer.id, w.reviewer_in_a.id])
    _, title, body, link = heard[0]
    # The year named (one year's notices are reissued while the next year runs).
    assert title == f"2018年度考核结果通知书需重新印发：{w.dep_a.name}"
    assert body.startswith(f"{w.dep_a.name}的2018年度考核事项“指标2 ")
    assert "第 1 版，蛟市职转办〔2019〕1号" in body and "请重新印发" in body
    assert link == f"/progress/departments/{w.dep_a.id}/notices"
    # In English the notice's name is a label in brackets: it read "the issued Result notice".
    kept = session.scalars(
        select(Notification.body_i18n).where(Notification.kind == "notice_outdated")
    ).first()
    english = in_english(kept)
    assert (
        "was scored again: the issued notice (Result notice, version 1, 蛟市职转办〔2019〕1号)"
        in (english)
    )
    assert "issued Result notice" not in english and english.endswith("Please issue it again.")
    # The department hears which it was: the same total kept, or the points changed.
    told = session.scalars(
        select(Notification.title)
        .where(Notification.user_id == w.member_a.id, Notification.kind == "appeal_decided")
        .order_by(Notification.id)
    ).all()
    assert [t.split("：", 1)[1] for t in told] == ["申诉已复核，合计分数未变", "申诉已复核改分"]


def test_the_issuers_hear_when_a_rescore_moves_another_departments_rank(
    session: Session, store: LocalStore, world: World
) -> None:
    """A rescore that moves one department's total moves others' ranks: their issued notices
    and the summary table no longer stand either (the matrix said so), and the issuers hear it
    in the inbox too, where only the rescored department's own notice was named."""
    w = world
    score_department(session, store, w, w.dep_a, w.member_a, special=True)  # 97.50
    score_department(session, store, w, w.dep_b, w.member_b)  # 100.00, first
    mark_others_scored(session, w, w.dep_a, w.dep_b)
    w.assessment.result_document_no = "蛟市职转办〔2019〕1号"
    start_publication(session, w.assessment)
    other = issue_notice(session, store, w.assessment, w.dep_b, w.scorer).notice
    summary = issue_summary(session, store, w.assessment, w.scorer).notice
    session.commit()

    _appeal_to_full_marks(session, w)
    # dep_a has no notice of its own; dep_b's 第1位 is now 并列第1位, and the table changed.
    assert standing(session, other) == CHANGED and standing(session, summary) == CHANGED
    heard = _outdated(session)
    assert [uid for uid, *_ in heard] == sorted([w.admin.id, w.scorer.id, w.reviewer_in_a.id])
    _, title, body, link = heard[0]
    assert title == "2018年度已印发的考核结果需重新印发：名次变化"
    assert body.startswith(f"{w.dep_a.name}的2018年度考核事项“指标2 ")
    assert f"{w.dep_b.name}的考核结果通知书（第 1 版）" in body
    assert "请重新印发：\n" in body and body.endswith("\n汇总表（第 1 版）")
    assert link == "/progress/"
    english = in_english(
        session.scalars(
            select(Notification.body_i18n).where(Notification.kind == "notice_outdated")
        ).first()
    )
    assert "summary table (version 1)" in english and not re.search(
        r"[\u4e00-\u9fff]{2}表", english
    )
