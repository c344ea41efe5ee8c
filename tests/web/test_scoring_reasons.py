"""What the scorer writes and the department reads: the 复核说明 a rescore needs, the labels
that say who reads the 说明, and a reason typed against a full score (a walk of the scorer's
pages)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from storage.local import LocalStore
from tests.factories import World, add_evidence, open_appeals
from tests.web.conftest import form_version, text
from workflow.actions import appeal_item, review_item, score_item, submit_item, verify_item
from workflow.models import Item, utcnow
from workflow.notices import set_result_settings

Login = Callable[[str], FlaskClient]


def _post(client: FlaskClient, item_id: int, data: dict[str, str]) -> TestResponse:
    version = form_version(text(client.get(f"/review/items/{item_id}")))
    return client.post(f"/review/items/{item_id}/action", data={"version": str(version), **data})


def _verified(session: Session, store: LocalStore, world: World) -> Item:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    verify_item(session, item.id, world.verifier, item.version)
    session.commit()
    return item


def _appealed(session: Session, store: LocalStore, world: World) -> Item:
    item = _verified(session, store, world)
    score_item(
        session, item.id, world.scorer, item.version,
        scores={"1.1": 5, "1.2": 3}, deductions={"1.2": "未见任命文件"},
    )  # fmt: skip
    now = utcnow()
    open_appeals(session, world, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    appeal_item(session, item.id, world.member_a, item.version, "任命文件已于三月印发")
    session.commit()
    return item


def test_a_rescore_needs_its_reason_which_the_department_reads(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Walk: 驳回申诉 asked for a reason, 复核改分 did not: a department saw its appealed
    score changed with no word of why. The form asks for the 复核说明 (required, and says the
    department reads it); a rescore without it is refused with its own message and the typed
    scores kept on the page, in either language; with it, the department reads it beside the
    outcome."""
    item = _appealed(session, store, world)
    other = login("scorer2")
    page = text(other.get(f"/review/items/{item.id}"))
    form = page[page.index('value="rescore"') :]
    form = form[: form.index("</form>")]
    label = r"复核说明（必填，部门可见）[^<]*\s*<textarea name=\"comment\"[^>]*required"
    assert re.search(label, form), form

    data = {"action": "rescore", "score-1.1": "5", "score-1.2": "4.5", "reason-1.2": "已补文件"}
    refused = _post(other, item.id, data)
    body = text(refused)
    assert refused.status_code == 422
    assert "复核改分请填写复核说明：为何改分（或维持原分），部门将看到该说明" in body
    assert 'name="score-1.2"' in body and 'value="4.5"' in body and 'value="已补文件"' in body
    session.expire_all()
    assert session.get_one(Item, item.id).state == "appealed"

    other.post("/language", data={"lang": "en", "next": "/"})
    english = text(_post(other, item.id, data))
    assert "rescore" in english.lower() and "department" in english.lower()
    assert "复核改分请填写" not in english
    other.post("/language", data={"lang": "zh", "next": "/"})

    said = _post(other, item.id, {**data, "comment": "补充的任命文件证明已指定专人"})
    assert said.status_code == 303
    member_page = text(login("member_a").get(f"/portal/items/{item.id}"))
    assert re.search(
        r'class="notice appeal-decision"><strong>申诉结果：</strong>复核改分（[^）]+）'
        r"：补充的任命文件证明已指定专人",
        member_page,
    ), member_page


def test_the_score_form_says_the_department_reads_its_note(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Walk: the score's 说明 reaches the department (its history, its inbox), but its label
    said only 说明（可选）."""
    item = _verified(session, store, world)
    page = text(login("scorer").get(f"/review/items/{item.id}"))
    assert "评分说明（可选，部门可见）" in page and "说明（可选）</" not in page


def test_a_reason_typed_beside_full_marks_is_kept_and_shown_as_a_note(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Walk: a reason typed beside a full score was dropped silently (the page said 已评分
    and the text was gone). It is kept and shown with the score as 说明, to the office and to
    the department; the form says so before the scorer saves."""
    item = _verified(session, store, world)
    scorer = login("scorer")
    page = text(scorer.get(f"/review/items/{item.id}"))
    assert "得满分时所填内容作为说明保存（部门可见）" in page
    data = {
        "action": "score",
        "score-1.1": "5",
        "reason-1.1": "领导小组文件经实地核查属实",
        "score-1.2": "3",
        "reason-1.2": "未见分工文件",
    }
    assert _post(scorer, item.id, data).status_code == 303
    cell = re.compile(r'data-label="扣分原因">(.*?)</td>')
    office = cell.findall(text(scorer.get(f"/review/items/{item.id}")))
    assert '<span class="full-marks-note">说明：</span>领导小组文件经实地核查属实' in office
    assert "未见分工文件" in office  # a deduction's reason reads as before, without 说明
    set_result_settings(session, world.assessment, actor=world.admin, hide_scores=False)
    session.commit()
    department = cell.findall(text(login("member_a").get(f"/portal/items/{item.id}")))
    assert '<span class="full-marks-note">说明：</span>领导小组文件经实地核查属实' in department
