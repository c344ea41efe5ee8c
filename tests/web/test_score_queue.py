"""The 待评分 queue names the items whose verification answered a check point 否."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import text
from workflow.actions import review_item, submit_item, verify_item
from workflow.models import Item

Login = Callable[[str], FlaskClient]


def _verified(session: Session, store: LocalStore, world: World, code: str, answer: str) -> Item:
    item = world.item(session, world.dep_a, code)
    item.indicator.check_points = [
        {"code": f"{code}-1", "text": "是否成立领导小组", "method": "实地考核"},
        {"code": f"{code}-2", "text": "是否有专人负责", "method": "查阅资料"},
    ]
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    note = "材料与实际不符" if answer == "no" else None
    checks = {f"{code}-1": {"answer": answer, "note": note}, f"{code}-2": {"answer": answer,
              "note": note}}  # fmt: skip
    verify_item(session, item.id, world.verifier, item.version, checks=checks)
    session.commit()
    return item


def test_the_score_queue_marks_items_with_a_no_at_verification(
    app: Flask, session: Session, world: World, store: LocalStore, login: Login
) -> None:
    """Walk: the 待评分 queue listed every verified item alike; a 否 at verification — what
    the scorer deducts for — showed only on the item's page. A 核查 column names the check
    points answered 否, and a line above the table counts them, in either language."""
    failed = _verified(session, store, world, "1", "no")
    passed = _verified(session, store, world, "3", "yes")
    scorer = login("scorer")
    page = text(scorer.get("/review/?state=verified"))
    row = r"<tr>\s*(?:<td class=\"select-col\">.*?</td>)?\s*<td>(\d+)</td>(.*?)</tr>"
    rows = dict(re.findall(row, page, re.S))
    assert "<th>核查</th>" in page
    assert '<span class="check-failed">有“否”：1-1、1-2</span>' in rows[str(failed.id)]
    assert "check-failed" not in rows[str(passed.id)]
    assert "本页 1 项核实时有核查要点答“否”（见“核查”列），评分时请先查看。" in page
    # The queues before verification have no such column.
    assert "<th>核查</th>" not in text(scorer.get("/review/?state=submitted"))
    scorer.set_cookie("lang", "en")
    english = text(scorer.get("/review/?state=verified"))
    assert "1-1, 1-2" in english and "有“否”" not in english and "核查" not in english


def test_the_queue_filter_keeps_only_items_with_a_no(
    make_app: Callable[..., Flask], session: Session, world: World, store: LocalStore
) -> None:
    """Walk: the verifier and the scorer asked to see only the items whose verification has
    a 否 — they paged through the 待评分 queue reading the 核查 column. 只看有“否” keeps them
    (the tabs count what it lists, none before verification), stays ticked in the filter
    form, and the next page's, the tabs' and the other years' links keep it."""
    app = make_app(REVIEW_PAGE_SIZE=1)
    failed = [_verified(session, store, world, code, "no") for code in ("1", "2")]
    passed = _verified(session, store, world, "3", "yes")
    waiting = world.item(session, world.dep_a, "4")
    add_evidence(session, store, waiting, world.member_a)
    submit_item(session, waiting.id, world.member_a, waiting.version)
    session.commit()
    client = app.test_client()
    client.post("/login", data={"username": "scorer", "password": "correct-horse-battery"})

    page = text(client.get("/review/?state=verified&failed_checks=1"))
    assert re.findall(r'href="/review/items/(\d+)"', page) == [str(failed[0].id)]
    assert 'name="failed_checks" value="1" checked> 只看有“否”' in page
    assert re.search(r'待评分 <span class="count">2</span>', page)
    assert re.search(r'待初审 <span class="count">0</span>', page)
    assert 'href="/review/?state=submitted&amp;failed_checks=1"' in page
    after = re.search(r'href="(/review/\?[^"]*after=\d+[^"]*)"', page)
    assert after and "failed_checks=1" in after.group(1)
    second = text(client.get(after.group(1).replace("&amp;", "&")))
    assert re.findall(r'href="/review/items/(\d+)"', second) == [str(failed[1].id)]
    assert "下一页" not in second and "清除筛选" in second

    plain = text(client.get("/review/?state=verified"))
    assert re.search(r'待评分 <span class="count">3</span>', plain)
    assert re.search(r'待初审 <span class="count">1</span>', plain)
    assert 'name="failed_checks" value="1">' in plain  # not ticked
    assert str(passed.id) not in re.findall(r'href="/review/items/(\d+)"', page + second)
    client.set_cookie("lang", "en")
    english = text(client.get("/review/?state=verified&failed_checks=1"))
    assert "Only with a No at verification" in english and "只看" not in english
