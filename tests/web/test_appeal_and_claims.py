"""Not-involved claims with proof and their ruling; appeals decided by another scorer."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage.local import LocalStore
from tests.factories import World, add_evidence, open_appeals
from tests.web.conftest import form_version, text
from workflow.actions import review_item, score_item, submit_item, verify_item
from workflow.assessments import local_minute, set_appeal_window
from workflow.demo import demo_pdf
from workflow.models import Item, utcnow
from workflow.users import set_roles

Login = Callable[[str], FlaskClient]


def _post(client: FlaskClient, base: str, item_id: int, data: dict[str, str]) -> TestResponse:
    version = form_version(text(client.get(f"{base}/items/{item_id}")))
    return client.post(f"{base}/items/{item_id}/action", data={"version": str(version), **data})


def test_not_involved_claim_with_proof_is_ruled_and_gets_full_marks(
    app: Flask, session: Session, world: World, login: Login
) -> None:
    item_id = world.item(session, world.dep_a, "1").id
    member = login("member_a")
    for sub_item, purpose, name in (
        ("1.1", "evidence", "文件.pdf"),
        ("1.2", "not_involved_proof", "说明.pdf"),
    ):
        response = member.post(
            f"/portal/items/{item_id}/evidence",
            data={
                "files": [(io.BytesIO(demo_pdf(name)), name)],
                "sub_item": sub_item,
                "purpose": purpose,
            },
            content_type="multipart/form-data",
        )
        assert response.status_code == 303
    no_proof = _post(member, "/portal", item_id, {"action": "submit", "not_involved": "1.1"})
    assert no_proof.status_code == 422 and "须上传证明材料" in text(no_proof)
    assert (
        _post(member, "/portal", item_id, {"action": "submit", "not_involved": "1.2"}).status_code
        == 303
    )
    assert _post(login("reviewer"), "/review", item_id, {"action": "review"}).status_code == 303

    verifier = login("verifier")
    page = text(verifier.get(f"/review/items/{item_id}"))
    assert 'name="ruling-1.2"' in page and 'name="ruling-1.1"' not in page
    missing = _post(verifier, "/review", item_id, {"action": "verify"})
    assert missing.status_code == 422 and "请对不涉及声明作出认定" in text(missing)
    assert (
        _post(
            verifier, "/review", item_id, {"action": "verify", "ruling-1.2": "uphold"}
        ).status_code
        == 303
    )

    scorer = login("scorer")
    page = text(scorer.get(f"/review/items/{item_id}"))
    assert "不涉及（已核实），记满分" in page and 'name="score-1.2"' not in page
    assert (
        _post(scorer, "/review", item_id, {"action": "score", "score-1.1": "5"}).status_code == 303
    )
    session.expire_all()
    assert session.get(Item, item_id).total == Decimal("10.00")  # type: ignore[union-attr]
    assert "认定不涉及" in text(member.get(f"/portal/items/{item_id}"))
    # The reason the engine writes for an upheld claim reads in the page's language: the
    # English page showed 不涉及（已核实） in the deduction column.
    english = login("scorer")
    english.set_cookie("lang", "en")
    page = text(english.get(f"/review/items/{item_id}"))
    assert "Not involved (verified)" in page and "不涉及（已核实）" not in page
    assert "不涉及（已核实）" in text(scorer.get(f"/review/items/{item_id}"))


def _scored(session: Session, store: LocalStore, world: World, code: str = "1") -> Item:
    item = world.item(session, world.dep_a, code)
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    verify_item(session, item.id, world.verifier, item.version)
    short = "1.2" if code == "1" else f"{code}.1"  # the point given 3, with its reason
    score_item(
        session, item.id, world.scorer, item.version,
        scores={"1.1": 5, short: 3} if code == "1" else {short: 3},
        deductions={short: "未见任命文件"},
    )  # fmt: skip
    session.commit()
    return item


def test_the_appeal_outcome_says_what_the_rescore_changed(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Walk: a rescore that changed nothing was announced on the department's item page as
    "申诉结果：复核改分；合计 10.00 分" (its inbox said 合计分数未变), and one that changed a
    point named only the new total. The outcome now names each point moved and the totals, or
    says that no score changed."""
    changed, same = _scored(session, store, world), _scored(session, store, world, "3")
    now = utcnow()
    open_appeals(session, world, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    session.commit()
    member, other = login("member_a"), login("scorer2")
    for item in (changed, same):
        data = {"action": "appeal", "comment": "材料已按时报送"}
        assert _post(member, "/portal", item.id, data).status_code == 303
    rescored = {"action": "rescore", "score-1.1": "5", "score-1.2": "5", "comment": "任命文件已补"}
    assert _post(other, "/review", changed.id, rescored).status_code == 303
    # A 复核说明 ending its sentence is not followed by a second mark (it read 维持。；合计).
    kept = {
        "action": "rescore",
        "score-3.1": "3",
        "reason-3.1": "未见任命文件",
        "comment": "维持。",
    }
    assert _post(other, "/review", same.id, kept).status_code == 303

    outcome = re.compile(r'class="notice appeal-decision"><strong>申诉结果：</strong>(.*?)</div>')
    page = outcome.search(text(member.get(f"/portal/items/{changed.id}")))
    assert page and re.fullmatch(
        r"复核改分（[^）]+）：任命文件已补；1\.2：3\.00 → 5\.00；合计 8\.00 → 10\.00 分",
        page.group(1),
    ), page
    page = outcome.search(text(member.get(f"/portal/items/{same.id}")))
    kept_scores = r"复核后得分未变（[^）]+）：维持。合计 3\.00 分"  # the 复核说明 after the time
    assert page and re.fullmatch(kept_scores, page.group(1)), page
    assert "维持。；" not in text(member.get(f"/portal/items/{same.id}"))  # nor in the history
    assert "复核改分" not in page.group(1)


def test_appeal_is_offered_only_in_the_window_and_decided_by_another_scorer(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    item = _scored(session, store, world)
    member = login("member_a")
    page = text(member.get(f"/portal/items/{item.id}"))
    # Before 公示 the department sees neither the score nor its reasons, and cannot appeal yet.
    assert "未见任命文件" not in page and 'value="appeal"' not in page
    now = utcnow()
    set_appeal_window(
        session, world.assessment, now - dt.timedelta(days=1), now + dt.timedelta(days=3),
        actor=world.admin,
    )  # fmt: skip
    session.commit()
    # A window set ahead opens no appeal against a score the department cannot see.
    assert 'value="appeal"' not in text(member.get(f"/portal/items/{item.id}"))
    # The department's list says only 已评分 until the window is open for it.
    assert "如有异议，可在" not in text(member.get("/portal/"))
    open_appeals(session, world, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    session.commit()
    page = text(member.get(f"/portal/items/{item.id}"))
    assert 'value="appeal"' in page
    # Only one appeal per item: the form asks first (js/confirm.js).
    assert 'data-confirm="每个事项只能申诉一次，提交后不能撤回或修改。确认提出申诉？"' in page
    # ... and then the list names the chance and its deadline (it said only 已评分).
    closes = local_minute(now + dt.timedelta(days=3), world.assessment.timezone)
    assert f"已评分；如有异议，可在 {closes} 前提出申诉" in text(member.get("/portal/"))
    empty = _post(member, "/portal", item.id, {"action": "appeal", "comment": ""})
    assert empty.status_code == 422 and "请填写理由" in text(empty)
    appealed = _post(
        member, "/portal", item.id, {"action": "appeal", "comment": "任命文件已于三月印发"}
    )
    assert appealed.status_code == 303
    assert "申诉处理中" in text(member.get("/portal/"))
    # The department's sum still holds the appealed score, and says so; the count of scored
    # items is the progress page's (only final ones), the appealed one beside it.
    assert "已评分 0 项，合计" in (index := text(member.get("/portal/")))
    assert "（另有 1 项申诉中，按原评分计入合计，以复核结果为准）" in index
    matrix = text(login("scorer").get("/progress/"))
    assert '<span class="appeal-mark">（申诉中）</span>' in matrix and "0/10" in matrix

    scorer = login("scorer")
    queue = text(scorer.get("/review/?state=appealed"))
    assert f"/review/items/{item.id}" in queue
    original = text(scorer.get(f"/review/items/{item.id}"))
    assert "任命文件已于三月印发" in original
    assert 'value="rescore"' not in original and 'value="reject_appeal"' not in original
    assert "您是该事项的原评分人" in original  # and why not (found by an exploratory walk)

    other = login("scorer2")
    page = text(other.get(f"/review/items/{item.id}"))
    assert 'value="rescore"' in page and 'value="reject_appeal"' in page
    assert 'value="3.00"' in page  # the rescore form starts from the current scores
    # Both decisions are final: each form asks before it posts.
    assert 'data-confirm="复核结果提交后即生效，不能撤回。确认提交复核改分？"' in page
    assert 'data-confirm="驳回后维持原评分，申诉即办结，不能撤销' in page
    assert "您是该事项的原评分人" not in page
    rejected = _post(
        other, "/review", item.id, {"action": "reject_appeal", "comment": "文件日期晚于考核期"}
    )
    assert rejected.status_code == 303
    final = text(member.get(f"/portal/items/{item.id}"))
    assert "驳回申诉" in final and "文件日期晚于考核期" in final and 'value="appeal"' not in final
    # The decision stands beside the appeal's reason, not only deep in the history.
    assert re.search(
        r'class="notice appeal-decision"><strong>申诉结果：</strong>'
        r"驳回申诉（[^）]+）：文件日期晚于考核期",
        final,
    ), final


def test_a_reviewer_who_also_verifies_is_told_why_the_round_they_reviewed_is_not_theirs(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """A small office gives one person both roles: on the item they reviewed, the verify form
    is missing, and the page says why (four-eyes) instead of leaving them guessing."""
    set_roles(session, world.reviewer, ["reviewer", "verifier"], actor=world.admin)
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    session.commit()
    page = text(login("reviewer").get(f"/review/items/{item.id}"))
    assert 'value="verify"' not in page and 'value="return"' in page
    assert "您是该事项本轮的初审人：按四眼原则，核实须由其他核实员办理" in page
    other = text(login("verifier").get(f"/review/items/{item.id}"))
    assert 'value="verify"' in other and "本轮的初审人" not in other


def test_appeal_form_shows_its_deadline_and_takes_an_attachment(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    from sqlalchemy import select

    from workflow.models import AuditEvent, Evidence

    item = _scored(session, store, world)
    now = utcnow()
    closes = dt.datetime(2030, 5, 6, 2, 30, tzinfo=dt.UTC)  # 10:30 in Shanghai
    open_appeals(session, world, now - dt.timedelta(days=1), closes)
    session.commit()
    member = login("member_a")
    page = text(member.get(f"/portal/items/{item.id}"))
    assert "申诉截止时间：" in page and "2030-05-06 10:30" in page
    version = form_version(page)
    appealed = member.post(
        f"/portal/items/{item.id}/action",
        data={"version": str(version), "action": "appeal", "comment": "见附件任命文件",
              "files": (io.BytesIO(demo_pdf("任命文件")), "任命文件.pdf")},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert appealed.status_code == 303, text(appealed)
    row = session.execute(
        select(Evidence).where(Evidence.item_id == item.id, Evidence.purpose == "appeal")
    ).scalar_one()
    assert row.filename == "任命文件.pdf"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.target_type == "evidence",
                                 AuditEvent.target_id == str(row.id))
    ).scalar_one()  # fmt: skip
    assert '"purpose":"appeal"' in event.payload
    reviewer_page = text(login("scorer2").get(f"/review/items/{item.id}"))
    assert "任命文件.pdf" in reviewer_page and "申诉材料" in reviewer_page
