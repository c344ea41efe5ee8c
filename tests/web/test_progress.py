"""The progress overview: every department × indicator by state, totals, ranks, charts."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, results_in_progress
from tests.integration.test_notices import score_department
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


def _result_cells(html: str) -> dict[str, tuple[str, ...]]:
    """Per department name: its total, converted score, rank cell and 已评 n/10 on the page."""
    rank_and_count = re.compile(
        r'<td class="num">([^<]*)</td>\s*<td class="num">([^<]*)</td>\s*'
        r'<td class="num">(.*?)</td>\s*<td class="num[^"]*">(\d+/\d+)</td>',
        re.S,
    )
    out = {}
    for name, cells in re.findall(r'<td class="nowrap">([^<]+)</td>(.*?)</tr>', html, re.S):
        found = rank_and_count.search(cells)
        if found:
            out[name] = found.groups()
    return out


def test_a_rank_is_shown_only_once_every_item_of_the_department_has_its_score(
    app: Flask,
    session: Session,
    world: World,
    store: LocalStore,
    login: Callable[[str], FlaskClient],
) -> None:
    """Walk: departments with 2 or 3 of 10 items scored stood ranked (暂定) on their partial
    sums, every unscored one tied at the bottom, or all 26 first before any score. A rank is
    shown once the department's items are all scored, as its notice states one only then;
    the others read 评分未完成 beside 已评 n/10, and the page says how ranks are given."""
    score_department(session, store, world, world.dep_b, world.member_b)
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    review_item(session, item.id, world.reviewer, item.version)
    verify_item(session, item.id, world.verifier, item.version)
    score_item(session, item.id, world.scorer, item.version, scores={"1.1": 5, "1.2": 5})
    session.commit()

    html = text(login("scorer").get("/progress/"))
    rows = _result_cells(html)
    complete = rows[world.dep_b.name]
    assert complete[3] == "10/10"
    assert re.fullmatch(r'1 <span class="muted">暂定</span>', complete[2])
    partial = rows[world.dep_a.name]
    assert partial[3] == "1/10"
    assert partial[2] == '<span class="muted rank-pending">评分未完成</span>'
    assert "事项尚未全部评分的部门不显示名次（“评分未完成”）" in html


def test_ranks_on_the_page_are_among_the_finished_departments(
    session: Session, world: World, login: Callable[[str], FlaskClient]
) -> None:
    """Walk: the page hid a partial sum's rank but kept the numbers of a ranking over every
    total, so a finished department stood 4th behind a gap (the department 3rd on 30 points
    with 7 items unscored). The ranks are the results table's, among the finished only: it is
    3rd; the unfinished one reads 评分未完成, and the page says how ranks are given."""
    third, fourth, partial = results_in_progress(session, world)
    html = text(login("scorer").get("/progress/"))
    rows = _result_cells(html)
    shown = {dep.id: rows[dep.name] for dep in (world.dep_a, third, fourth, partial)}
    assert shown[world.dep_a.id][2] == '1 <span class="muted">暂定</span>'
    assert shown[third.id][2] == '2 <span class="muted">暂定</span>'
    assert shown[fourth.id][2] == '3 <span class="muted">暂定</span>'
    assert shown[fourth.id][:2] == ("20.00", "0.40") and shown[fourth.id][3] == "10/10"
    assert shown[partial.id] == (
        "30.00",
        "0.60",
        '<span class="muted rank-pending">评分未完成</span>',
        "3/10",
    )
    assert "名次只在事项全部评分的部门之间排列" in html
