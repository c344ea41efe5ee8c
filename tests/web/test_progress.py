"""The progress overview: every department × indicator by state, totals, ranks, charts."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import text
from workflow.actions import review_item, score_item, submit_item, verify_item


def test_matrix_shows_states_scores_and_ranks(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    login: Callable[[str], FlaskClient],
) -> None:
    item = world.item(session, world.dep_b, "1")
    add_evidence(session, store, item, world.member_b)
    submit_item(session, item.id, world.member_b, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    verify_item(session, item.id, world.verifier, item.version)
    score_item(session, item.id, world.scorer, item.version, scores={"1.1": 5, "1.2": 4},
               deductions={"1.2": "缺文件"})  # fmt: skip
    other = world.item(session, world.dep_a, "2")
    add_evidence(session, store, other, world.member_a)
    submit_item(session, other.id, world.member_a, other.version)
    session.commit()

    page = login("reviewer").get("/progress/")
    assert page.status_code == 200
    html = text(page)
    assert html.count('class="cell state-') == 26 * 10
    assert world.dep_a.name in html and world.dep_b.name in html
    scored = re.search(rf'href="/review/items/{item.id}"[^>]*>([^<]+)<', html)
    assert scored and scored.group(1) == "9.00"
    submitted = re.search(rf'href="/review/items/{other.id}"[^>]*>([^<]+)<', html)
    assert submitted and submitted.group(1) == "待初审"
    assert "<svg" in html and "部门总分分布" in html
    assert login("member_a").get("/progress/").status_code == 403
