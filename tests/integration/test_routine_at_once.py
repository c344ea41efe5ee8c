"""A routine record reviewed while a scorer scores the item it feeds: the score is given
with the suggestion the review leaves, or the review sees the score and tells its scorers
(`routine_basis_changed`); never a score whose basis moved with nobody told.

Item 9 of department A (9.1: ≥ 2 monthly reports a month), suggested 3.20 with September's
two reports accepted; the office rejects one of them (1.60). Deterministic
(tests/concurrency.py): one side stops at its commit, the other runs until it writes or waits
on a lock, then the first commits. Both backends; the race was real on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from storage.local import LocalStore
from tests.concurrency import one_behind_the_other
from tests.factories import World
from tests.web.test_routine_drift import _verified
from workflow import actions
from workflow.db import make_sessionmaker
from workflow.models import Item, Notification, User, utcnow
from workflow.read import item_detail
from workflow.routine import review_routine, suggestions_for_points


@pytest.mark.parametrize("review_first", [True, False])
def test_a_review_and_a_score_at_once_leave_no_untold_drift(
    engine: Engine, session: Session, world: World, store: LocalStore, review_first: bool
) -> None:
    w = world
    item, ids = _verified(session, store, w)
    suggested = suggestions_for_points(
        session, item, actions.scoring_points_of(session, item), utcnow()
    )  # what the scorer's page shows
    session.commit()
    item_id, version, record_id = item.id, item.version, ids["九月二"]
    scorer_id, reviewer_id = w.scorer.id, w.reviewer.id

    def score(factory: sessionmaker[Session]) -> Callable[[], None]:
        def run() -> None:
            with factory() as s:
                actions.score_item(
                    s, item_id, s.get_one(User, scorer_id), version,
                    scores={code: str(value) for code, value in suggested.items()},
                    deductions=dict.fromkeys(suggested, "平时考核：部分期间未完成报送任务"),
                )  # fmt: skip
                s.commit()

        return run

    def review(factory: sessionmaker[Session]) -> Callable[[], None]:
        def run() -> None:
            with factory() as s:
                review_routine(
                    s, record_id, s.get_one(User, reviewer_id), "rejected", "与放管服无关"
                )
                s.commit()

        return run

    plain = make_sessionmaker(engine)
    if review_first:
        one_behind_the_other(engine, lambda held: review(held)(), score(plain))
    else:
        one_behind_the_other(engine, lambda held: score(held)(), review(plain))

    session.expire_all()
    assert session.get_one(Item, item_id).state == "scored"
    told = session.scalars(
        select(Notification).where(
            Notification.kind == "routine_basis_changed", Notification.item_id == item_id
        )
    ).all()
    drift = item_detail(session, item_id, w.scorer).routine_drift
    assert drift is None or told, "the score's basis moved and nobody was told"
    assert (drift is None) == review_first  # the score came second and saw the review
