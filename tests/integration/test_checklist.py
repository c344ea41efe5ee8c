"""The verifier's checklist (核查要点, issue 13 item 8), on every configured database.

The scheme carries check points per indicator with their method (实地考核 / 平时考核); verify
answers every one (是/否/不适用, `yes`/`no`/`na`, with an optional note), and the answers
go into the verify event, where the scorer's page and the timeline read them.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, make_world, mini_scheme
from workflow import actions
from workflow.bulk import BulkTarget, apply_bulk, preview
from workflow.db import make_sessionmaker
from workflow.errors import BadRequest, InvalidValue, SchemeError
from workflow.models import AuditEvent, Item
from workflow.read import item_detail
from workflow.reconcile import reconcile
from workflow.scheme import SCHEMES_DIR, Scheme, parse_scheme

ALL_YES = {"1-1": {"answer": "yes"}, "1-2": {"answer": "yes"}}


def test_the_2018_scheme_carries_the_seed_checklist(scheme_2018: Scheme) -> None:
    by_code = {i.code: i for i in scheme_2018.indicators}
    assert [(c.code, c.text, c.method) for c in by_code["1"].check_points] == [
        ("1-1", "是否成立工作领导小组", "实地考核"),
        ("1-2", "是否有专人负责", "实地考核"),
    ]
    texts = {c.text for i in scheme_2018.indicators for c in i.check_points}
    assert {
        "是否有工作安排和部署的会议记录",
        "是否对上级部门的行政审批事项有承接、取消和修订",
        "是否对本部门的权责清单和行政审批事项进行网上公布",
        "是否对“双随机一公开”工作有抽查计划、检查记录、录入清单",
        "是否建立事中事后监管制度",
        "上报相关材料是否有单独建档",
    } <= texts
    assert {c.method for c in by_code["9"].check_points} == {"平时考核"}
    assert all(i.check_points for i in scheme_2018.indicators)


def test_a_bad_check_point_is_refused_by_place() -> None:
    raw = yaml.safe_load((SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8"))
    bad = copy.deepcopy(raw)
    bad["categories"][0]["indicators"][0]["check_points"][1]["method"] = "抽查"
    with pytest.raises(SchemeError) as refused:
        parse_scheme(bad)
    assert "categories[0].indicators[0].check_points[1].method" in str(refused.value)
    twice = copy.deepcopy(raw)
    for c in twice["categories"][0]["indicators"][0]["check_points"]:
        c["code"] = "A"
    with pytest.raises(SchemeError, match=r"categories\[0\]\.indicators\[0\]\.check_points"):
        parse_scheme(twice)


@pytest.fixture
def checked_world(session: Session) -> World:
    """Indicators 1 and 3 of the 2018 rules, with their check points installed."""
    return make_world(session, mini_scheme(("1", "3"), check_points=True), check_points=True)


def _reviewed(session: Session, store: LocalStore, w: World, dep: str = "a") -> Item:
    item = w.item(session, w.dep_a if dep == "a" else w.dep_b, "1")
    member = w.member_a if dep == "a" else w.member_b
    add_evidence(session, store, item, member)
    actions.submit_item(session, item.id, member, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    session.commit()
    return item


def _verify_events(session: Session, item: Item) -> int:
    return session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.item_id == item.id, AuditEvent.action == "verify")
    )


def test_verify_answers_every_check_point(
    session: Session, store: LocalStore, checked_world: World
) -> None:
    w = checked_world
    item = _reviewed(session, store, w)
    version = item.version
    # The button shows before any answer is given (the checklist is the form's).
    assert "verify" in actions.actions_for(session, item, w.verifier)
    with pytest.raises(InvalidValue) as refused:
        actions.verify_item(session, item.id, w.verifier, item.version)
    assert refused.value.code == "check_required"
    assert refused.value.message == (
        "请逐项回答核查要点：1-1 是否成立工作领导小组；1-2 是否有专人负责"
    )
    session.rollback()
    with pytest.raises(InvalidValue) as refused:
        actions.verify_item(
            session, item.id, w.verifier, item.version, checks={"1-1": {"answer": "yes"}}
        )
    assert refused.value.message == "请逐项回答核查要点：1-2 是否有专人负责"
    session.rollback()
    with pytest.raises(InvalidValue) as refused:
        actions.verify_item(
            session, item.id, w.verifier, item.version, checks={**ALL_YES, "9-9": {"answer": "yes"}}
        )
    assert refused.value.code == "unknown_check"
    session.rollback()
    with pytest.raises(InvalidValue) as refused:
        bad = {**ALL_YES, "1-2": {"answer": "maybe"}}
        actions.verify_item(session, item.id, w.verifier, item.version, checks=bad)
    assert refused.value.code == "bad_check_answer"
    session.rollback()
    with pytest.raises(BadRequest):
        bad = {**ALL_YES, "1-2": "yes"}
        actions.verify_item(session, item.id, w.verifier, item.version, checks=bad)
    session.rollback()
    with pytest.raises(InvalidValue) as refused:  # only verify answers check points
        actions.return_item(session, item.id, w.verifier, item.version, "x", checks=ALL_YES)
    assert refused.value.code == "checks_on_verify_only"
    session.rollback()
    session.refresh(item)
    assert item.state == "reviewed" and item.version == version
    assert _verify_events(session, item) == 0
    for note in (None, "   "):  # a 否 says what is wrong: the scorer deducts for it
        bare = {"1-1": {"answer": "yes"}, "1-2": {"answer": "no", "note": note}}
        with pytest.raises(InvalidValue) as refused:
            actions.verify_item(session, item.id, w.verifier, item.version, checks=bare)
        assert refused.value.code == "check_note_required"
        assert "核查要点 1-2 答“否”时，请在备注中说明存在的问题" in refused.value.message
        session.rollback()
    session.refresh(item)
    assert item.state == "reviewed" and _verify_events(session, item) == 0

    answers = {"1-1": {"answer": "yes"}, "1-2": {"answer": "no", "note": "  未发文指定专人 "}}
    actions.verify_item(session, item.id, w.verifier, item.version, checks=answers)
    session.commit()
    assert item.state == "verified"
    event = session.execute(
        select(AuditEvent).where(AuditEvent.item_id == item.id, AuditEvent.action == "verify")
    ).scalar_one()
    assert json.loads(event.payload)["checks"] == [
        {"code": "1-1", "text": "是否成立工作领导小组", "method": "实地考核", "answer": "yes",
         "note": None},
        {"code": "1-2", "text": "是否有专人负责", "method": "实地考核", "answer": "no",
         "note": "未发文指定专人"},
    ]  # fmt: skip
    for history in (True, False):  # the page and the API's detail read the same answers
        detail = item_detail(session, item.id, w.scorer, history=history)
        assert detail.checks is not None
        assert [(c.code, c.answer, c.note) for c in detail.checks] == [
            ("1-1", "yes", None),
            ("1-2", "no", "未发文指定专人"),
        ]
        assert [c["code"] for c in detail.check_points] == ["1-1", "1-2"]
    assert reconcile(session).differences == []


def test_an_indicator_without_check_points_verifies_as_before(
    session: Session, store: LocalStore, world: World
) -> None:
    item = _reviewed(session, store, world)
    actions.verify_item(session, item.id, world.verifier, item.version)
    assert item.state == "verified"
    assert item_detail(session, item.id, world.scorer).checks is None


def test_bulk_verify_refuses_items_with_a_checklist(
    session: Session, store: LocalStore, checked_world: World
) -> None:
    """Bulk verify carries no answers: an item whose indicator has check points needs its
    own page (as one with not-involved claims does)."""
    w = checked_world
    item = _reviewed(session, store, w)
    report = preview(session, w.verifier, "verify", [BulkTarget(item.id, item.version)])
    (result,) = report.results
    assert result.status == "refused" and result.code == "check_required"
    assert result.message is not None and "1-1 是否成立工作领导小组" in result.message


def test_bulk_verify_with_every_check_point_attested_yes(
    engine: Engine, session: Session, store: LocalStore, checked_world: World
) -> None:
    """`all_checks_yes`: the verifier attests 是 for every check point of each item."""
    w = checked_world
    first, second = _reviewed(session, store, w, "a"), _reviewed(session, store, w, "b")
    targets = [BulkTarget(first.id, first.version), BulkTarget(second.id, second.version)]
    report = preview(session, w.verifier, "verify", targets, all_checks_yes=True)
    assert [r.status for r in report.results] == ["ok", "ok"] and report.all_checks_yes
    with pytest.raises(InvalidValue) as refused:  # only verify answers check points
        preview(session, w.reviewer, "return", targets, "补充", all_checks_yes=True)
    assert refused.value.code == "checks_on_verify_only"
    session.commit()
    factory = make_sessionmaker(engine)
    done = apply_bulk(factory, w.verifier.id, "verify", targets, "材料齐全", all_checks_yes=True)
    assert [r.status for r in done.results] == ["ok", "ok"]
    session.expire_all()
    for item in (first, second):
        session.refresh(item)
        assert item.state == "verified"
        checks = item_detail(session, item.id, w.scorer).checks
        assert checks is not None
        assert [(c.code, c.answer) for c in checks] == [("1-1", "yes"), ("1-2", "yes")]
    assert reconcile(session).differences == []
