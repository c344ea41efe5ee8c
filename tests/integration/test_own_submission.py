"""A department's member moved to the office never judges the item they worked on.

Made a reviewer, verifier or scorer (a transfer to 市职转办), the user leaves their unit, so
the own-department guard no longer sees them: before, they could review, verify and score
the item they had submitted for their department, and decide their own appeal. Whoever did
the department's work on the item in any round — submitted, withdrew, attached or removed a
file, appealed — is listed on it (`contributor_ids`) and refused.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, make_world, mini_scheme, open_appeals
from tests.integration.test_units_migration import empty_url  # noqa: F401 - the fixture
from workflow import actions, reconcile
from workflow.bulk import BulkTarget, preview
from workflow.db import make_engine, make_sessionmaker, migrate
from workflow.errors import Forbidden
from workflow.evidence import remove_evidence
from workflow.models import Item
from workflow.users import create_user, set_roles

OFFICE = ["reviewer", "verifier", "scorer"]


def _ids(value: object) -> object:
    """A JSON column's value (SQLite hands it back as text)."""
    return json.loads(value) if isinstance(value, str) else value


def _refused(call: object) -> str:
    with pytest.raises(Forbidden) as err:
        call()  # type: ignore[operator]
    return err.value.code


def _submitted(session: Session, store: LocalStore, w: World, dep_code: str = "1") -> Item:
    item = w.item(session, w.dep_a, dep_code)
    add_evidence(session, store, item, w.member_a)
    return actions.submit_item(session, item.id, w.member_a, item.version)


def test_a_transferred_submitter_may_not_judge_the_submission(
    session: Session, tmp_path: Path
) -> None:
    w = make_world(session, mini_scheme(("1", "3"), departments=2))
    store = LocalStore(tmp_path / "ev")
    item = _submitted(session, store, w)
    set_roles(session, w.member_a, OFFICE, actor=w.admin)  # transferred to the office
    session.commit()
    assert w.member_a.unit_id is None  # no longer of department A

    assert _refused(lambda: actions.review_item(session, item.id, w.member_a, item.version)) == (
        "own_submission"
    )
    assert "review" not in actions.actions_for(session, item, w.member_a)
    (outcome,) = preview(session, w.member_a, "review", [BulkTarget(item.id, item.version)],
                         "").results  # fmt: skip
    assert outcome.code == "own_submission"
    assert (
        _refused(lambda: actions.return_item(session, item.id, w.member_a, item.version, "补充"))
        == "own_submission"
    )
    actions.review_item(session, item.id, w.reviewer, item.version)
    assert _refused(lambda: actions.verify_item(session, item.id, w.member_a, item.version)) == (
        "own_submission"
    )
    actions.verify_item(session, item.id, w.verifier, item.version)
    scores = {"1.1": 5, "1.2": 5}
    assert (
        _refused(
            lambda: actions.score_item(session, item.id, w.member_a, item.version, scores=scores)
        )
        == "own_submission"
    )
    actions.score_item(session, item.id, w.scorer, item.version, scores=scores)
    session.commit()
    assert item.state == "scored" and item.submitted_by_id == w.member_a.id
    # The rest of the office's work is theirs as before: department B's item.
    other = w.item(session, w.dep_b, "1")
    add_evidence(session, store, other, w.member_b)
    actions.submit_item(session, other.id, w.member_b, other.version)
    actions.review_item(session, other.id, w.member_a, other.version)
    session.commit()
    assert reconcile.reconcile(session).differences == []


def test_a_transferred_appellant_may_not_decide_the_appeal(
    session: Session, tmp_path: Path
) -> None:
    w = make_world(session, mini_scheme(("1",), departments=2))
    store = LocalStore(tmp_path / "ev")
    item = w.item(session, w.dep_b, "1")
    add_evidence(session, store, item, w.member_b)
    actions.submit_item(session, item.id, w.member_b, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version)
    scores = {"1.1": 5, "1.2": 2}
    deductions = {"1.2": "未指定专人"}
    actions.score_item(session, item.id, w.scorer, item.version, scores=scores,
                       deductions=deductions)  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    open_appeals(session, w, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    actions.appeal_item(session, item.id, w.member_b, item.version, "已指定专人")
    set_roles(session, w.member_b, ["scorer"], actor=w.admin)
    session.commit()
    assert item.appealed_by_id == w.member_b.id
    assert (
        _refused(
            lambda: actions.reject_appeal_item(session, item.id, w.member_b, item.version, "不成立")
        )
        == "own_submission"
    )
    assert (
        _refused(
            lambda: actions.rescore_item(
                session,
                item.id,
                w.member_b,
                item.version,
                scores={"1.1": 5, "1.2": 5},
                comment="已核实",
            )
        )
        == "own_submission"
    )
    actions.rescore_item(
        session, item.id, w.scorer2, item.version, scores={"1.1": 5, "1.2": 5}, comment="已核实"
    )
    session.commit()
    assert reconcile.reconcile(session).differences == []


def test_every_round_and_every_file_counts(session: Session, tmp_path: Path) -> None:
    """A withdrawal, a removed file, an earlier round: each makes its doer a contributor,
    whom the guard, the buttons and the bulk preview refuse; nobody else is listed."""
    w = make_world(session, mini_scheme(("1",), departments=2))
    store = LocalStore(tmp_path / "ev")
    remover = create_user(session, "member_a2", ["department"], department=w.dep_a)
    withdrawer = create_user(session, "member_a3", ["department"], department=w.dep_a)
    item = w.item(session, w.dep_a, "1")
    spare = add_evidence(session, store, item, w.member_a, name="多余.pdf")
    add_evidence(session, store, item, w.member_a)
    remove_evidence(session, spare.id, remover)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.transition_item(
        session, item.id, withdrawer,
        actions.TransitionRequest("withdraw", item.version, comment="材料有误"),
    )  # fmt: skip
    actions.submit_item(session, item.id, w.member_a, item.version)
    assert item.contributor_ids == sorted([w.member_a.id, remover.id, withdrawer.id])
    for user in (remover, withdrawer):
        set_roles(session, user, OFFICE, actor=w.admin)
    session.commit()
    for user in (remover, withdrawer):
        assert _refused(lambda u=user: actions.review_item(session, item.id, u, item.version)) == (
            "own_submission"
        )
        assert actions.actions_for(session, item, user) == []
        (outcome,) = preview(session, user, "review", [BulkTarget(item.id, item.version)],
                             "").results  # fmt: skip
        assert outcome.code == "own_submission"
    assert actions.actions_for(session, item, w.reviewer) == ["review", "return"]
    session.commit()
    assert reconcile.reconcile(session).differences == []


@pytest.mark.parametrize(("column", "cleared"), [("submitted_by_id", "NULL"),
                                                   ("contributor_ids", "'[]'")])  # fmt: skip
def test_an_edited_author_is_named(
    session: Session, engine: Engine, tmp_path: Path, column: str, cleared: str
) -> None:
    """Clearing the submitter, or taking a member off the contributors, in the table would let
    them judge the item: audit verify says so."""
    w = make_world(session, mini_scheme(("1",), departments=2))
    item = _submitted(session, LocalStore(tmp_path / "ev"), w)
    session.commit()
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE items SET {column} = {cleared} WHERE id = :i"), {"i": item.id})
    live, trail = {
        "submitted_by_id": (None, w.member_a.id),
        "contributor_ids": ([], [w.member_a.id]),
    }[column]
    assert [
        (d.item_id, d.field, d.live, d.from_events)
        for d in reconcile.reconcile(session).differences
    ] == [(item.id, column, live, trail)]


def test_migration_fills_the_authors_from_the_trail(
    empty_url: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    """Items submitted and appealed before 0014 get their authors, and before 0015 their
    contributors, as the replay gives them."""
    engine = make_engine(empty_url)
    migrate(engine)
    store = LocalStore(tmp_path / "ev")
    with make_sessionmaker(engine)() as session:
        w = make_world(session, mini_scheme(("1", "3"), departments=2))
        item = _submitted(session, store, w)
        actions.return_item(session, item.id, w.reviewer, item.version, "补充")
        colleague = create_user(session, "member_a2", ["department"], department=w.dep_a)
        add_evidence(session, store, item, colleague, name="补充.pdf")
        again = actions.submit_item(session, item.id, w.member_a, item.version,
                                    change_note="已补充")  # fmt: skip
        appealed = w.item(session, w.dep_b, "1")
        add_evidence(session, store, appealed, w.member_b)
        for step in (
            lambda v: actions.submit_item(session, appealed.id, w.member_b, v),
            lambda v: actions.review_item(session, appealed.id, w.reviewer, v),
            lambda v: actions.verify_item(session, appealed.id, w.verifier, v),
            lambda v: actions.score_item(
                session, appealed.id, w.scorer, v, scores={"1.1": 5, "1.2": 5}
            ),
        ):
            step(appealed.version)
        now = dt.datetime.now(dt.UTC)
        open_appeals(session, w, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
        actions.appeal_item(session, appealed.id, w.member_b, appealed.version, "不服")
        session.commit()
        expected = {
            again.id: (w.member_a.id, None, sorted([w.member_a.id, colleague.id])),
            appealed.id: (w.member_b.id, w.member_b.id, [w.member_b.id]),
        }
        untouched = w.item(session, w.dep_b, "3").id
    migrate(engine, "0013_stored_texts", down=True)
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, submitted_by_id, appealed_by_id, contributor_ids FROM items")
        ).all()
    found = {r[0]: (r[1], r[2], _ids(r[3])) for r in rows}
    assert {i: found[i] for i in expected} == expected
    assert found[untouched] == (None, None, [])
    with make_sessionmaker(engine)() as session:
        assert reconcile.reconcile(session).differences == []
    engine.dispose()
