"""Statement budgets: how many SQL statements one transition and one item detail cost.

Counted with SQLAlchemy's `before_cursor_execute` on the engine, on PostgreSQL (SQLite adds
one no-op UPDATE per change: its write lock, in place of FOR UPDATE). Budgets: at most 10
statements per item command (transition, evidence attached or removed), 6 per item detail,
4 per queue page.
Before the pipeline, a submit cost 12 statements in the engine, a review 10 and a score 13.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, appealable, open_appeals
from workflow import actions
from workflow.db import make_sessionmaker
from workflow.demo import demo_pdf
from workflow.evidence import attach_evidence, remove_evidence
from workflow.models import Assessment, User
from workflow.read import QueuePage, item_detail, queue_page
from workflow.users import create_user

TRANSITION_BUDGET = 10
DETAIL_BUDGET = 6
QUEUE_BUDGET = 4

pytestmark = pytest.mark.backend("postgresql")


@contextmanager
def counting(engine: Engine) -> Iterator[list[str]]:
    """Collect the statements sent to the database inside the block."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def cost(engine: Engine, who: User, step: Callable[[Session, User], object]) -> int:
    """Statements one step costs in a fresh session, as in a request whose user is loaded.

    The commit is not counted: it is the request boundary's, not the command's.
    """
    with make_sessionmaker(engine)() as s:
        user = s.get_one(User, who.id)
        with counting(engine) as seen:
            step(s, user)
        s.commit()
    return len(seen)


def test_every_item_command_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """Evidence, submit → review → return → submit → review → verify → score → appeal → rescore."""
    w = world
    item = w.item(session, w.dep_a, "1")
    iid = item.id
    add_evidence(session, store, item, w.member_a)
    spare = add_evidence(session, store, item, w.member_a, name="另一份.pdf").id
    session.commit()
    costs: dict[str, int] = {}

    def step(name: str, who: User, fn: Callable[[Session, User, int], object]) -> None:
        session.expire_all()
        v = actions.get_item(session, iid).version
        session.commit()
        n = cost(engine, who, lambda s, u: fn(s, u, v))
        costs[name] = max(costs.get(name, 0), n)

    step("remove_evidence", w.member_a, lambda s, u, v: remove_evidence(s, spare, u))
    step(
        "attach_evidence",
        w.member_a,
        lambda s, u, v: attach_evidence(
            s, store, iid, u, io.BytesIO(demo_pdf("budget")), "b.pdf", max_size=1 << 20
        ),
    )
    step("submit", w.member_a, lambda s, u, v: actions.submit_item(s, iid, u, v))
    step("review", w.reviewer, lambda s, u, v: actions.review_item(s, iid, u, v))
    step("return", w.verifier, lambda s, u, v: actions.return_item(s, iid, u, v, "补充材料"))
    step(
        "submit",
        w.member_a,
        lambda s, u, v: actions.submit_item(s, iid, u, v, change_note="已补充材料"),
    )
    step("review", w.reviewer, lambda s, u, v: actions.review_item(s, iid, u, v))
    step("verify", w.verifier, lambda s, u, v: actions.verify_item(s, iid, u, v))
    scores = {"1.1": 5, "1.2": 2}
    step(
        "score",
        w.scorer,
        lambda s, u, v: actions.score_item(
            s, iid, u, v, scores=scores, deductions={"1.2": "未指定专人"}
        ),
    )
    now = dt.datetime.now(dt.UTC)
    open_appeals(session, w, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    session.commit()
    step("appeal", w.member_a, lambda s, u, v: actions.appeal_item(s, iid, u, v, "不服"))
    step(
        "rescore",
        w.scorer2,
        lambda s, u, v: actions.rescore_item(
            s, iid, u, v, scores=scores, deductions={"1.2": "复核"}, comment="复核"
        ),
    )
    session.expire_all()
    assert actions.get_item(session, iid).state == "scored"
    assert len(costs) == 9
    over = {name: n for name, n in costs.items() if n > TRANSITION_BUDGET}
    assert not over, f"over the budget of {TRANSITION_BUDGET}: {over} (all: {costs})"
    # The pipeline loads only what a row needs: a review is the lock (which reads the audit
    # chain's head too), then one statement that updates the item, moves the head and appends
    # the event.
    assert costs["review"] == 2, costs


def test_a_members_first_file_writes_the_item_once(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """The first file a member attaches makes them one of the item's contributors: one UPDATE
    of the item (its version stays), and none for their next file."""
    w = world
    item = w.item(session, w.dep_a, "1")
    iid, version = item.id, item.version
    colleague = create_user(session, "member_a2", ["department"], department=w.dep_a)
    session.commit()

    def upload(name: str) -> Callable[[Session, User], object]:
        return lambda s, u: attach_evidence(
            s, store, iid, u, io.BytesIO(demo_pdf(name)), f"{name}.pdf", max_size=1 << 20
        )

    first = cost(engine, colleague, upload("first"))
    second = cost(engine, colleague, upload("second"))
    assert first == second + 1 <= TRANSITION_BUDGET, (first, second)
    session.expire_all()
    item = actions.get_item(session, iid)
    assert item.version == version and item.contributor_ids == [colleague.id]


def test_appeal_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """The appeal tells the scorers who may decide it (their query, the guards' facts, the
    inbox rows) within the transition's budget."""
    w = world
    item = appealable(session, store, w, w.item(session, w.dep_b, "1"), w.member_b)
    session.commit()
    iid, v = item.id, item.version
    n = cost(engine, w.member_b, lambda s, u: actions.appeal_item(s, iid, u, v, "不服"))
    assert 0 < n <= TRANSITION_BUDGET, n


def test_reject_appeal_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = appealable(session, store, w, w.item(session, w.dep_b, "1"), w.member_b)
    actions.appeal_item(session, item.id, w.member_b, item.version, "不服")
    session.commit()
    iid, v = item.id, item.version
    n = cost(engine, w.scorer2, lambda s, u: actions.reject_appeal_item(s, iid, u, v, "材料不支持"))
    assert 0 < n <= TRANSITION_BUDGET


def test_item_detail_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """The item page's data, history included, on an item with evidence and events."""
    w = world
    item = w.item(session, w.dep_a, "9")  # a routine-fed indicator: one more query
    add_evidence(session, store, item, w.member_a)
    add_evidence(session, store, item, w.member_a, name="第二份.pdf")
    session.commit()
    iid = item.id
    for who in (w.member_a, w.reviewer, w.auditor):
        n = cost(engine, who, lambda s, u: item_detail(s, iid, u))
        assert 0 < n <= DETAIL_BUDGET, (who.username, n)
    detail = item_detail(session, iid, w.member_a)
    assert len(detail.evidence) == 2 and len(detail.history) == 2
    assert "submit" in detail.actions


def test_a_resubmitted_item_detail_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """The round's changes (修改说明, files added and removed) cost no statement with the
    history, and one without (the API's detail): within the budget either way."""
    w = world
    item = w.item(session, w.dep_a, "9")
    old = add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.return_item(session, item.id, w.reviewer, item.version, "补充")
    remove_evidence(session, old.id, w.member_a)
    add_evidence(session, store, item, w.member_a, name="第二份.pdf")
    actions.submit_item(session, item.id, w.member_a, item.version, change_note="换了材料")
    session.commit()
    iid = item.id
    for history in (True, False):
        for who in (w.member_a, w.reviewer):
            n = cost(engine, who, lambda s, u, h=history: item_detail(s, iid, u, history=h))
            assert 0 < n <= DETAIL_BUDGET, (who.username, history, n)
    changes = item_detail(session, iid, w.reviewer).round_changes
    assert changes is not None and len(changes.added) == len(changes.removed) == 1


def _queue_page_within_budget(
    engine: Engine, user: User, aid: int, state: str, *, failed_checks_only: bool = False
) -> QueuePage:
    """One queue page (2 rows) of `state`, its statements counted against the budget."""
    states = ["submitted", "reviewed", "verified", "appealed"]
    seen: list[QueuePage] = []

    def page(s: Session, u: User) -> None:
        assessment = s.get_one(Assessment, aid)
        with counting(engine) as inner:
            seen.append(
                queue_page(
                    s, assessment, state, states, size=2, failed_checks_only=failed_checks_only
                )
            )
            for row in seen[-1].rows:  # what the template reads: no lazy load
                assert row.department.name and row.indicator.title
        assert len(inner) <= QUEUE_BUDGET, len(inner)

    assert cost(engine, user, page) <= QUEUE_BUDGET + 1  # + the assessment's own load
    return seen[-1]


def test_queue_page_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """A reviewer's queue page (counts per tab, one page of rows with their department and
    indicator, the filters' choices) costs at most 4 statements, however many rows."""
    w = world
    for code in ("1", "2", "3"):
        item = w.item(session, w.dep_a, code)
        add_evidence(session, store, item, w.member_a)
        actions.submit_item(session, item.id, w.member_a, item.version)
    session.commit()
    result = _queue_page_within_budget(engine, w.reviewer, w.assessment.id, "submitted")
    assert result.counts == {"submitted": 3} and len(result.rows) == 2 and result.has_more
    assert len(result.departments) == 26 and len(result.indicators) == 10


def test_a_verified_queue_page_names_failed_checks_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """The 待评分 queue names the check points each item's verifier answered 否 from the
    page's own statement (the latest verify event's payload as a column): still 4."""
    w = world
    checks = [{"code": f"{n}-1", "text": "是否属实", "method": "实地考核"} for n in (1, 2, 3)]
    for n, code in enumerate(("1", "2", "3")):
        item = w.item(session, w.dep_a, code)
        item.indicator.check_points = [checks[n]]
        add_evidence(session, store, item, w.member_a)
        actions.submit_item(session, item.id, w.member_a, item.version)
        actions.review_item(session, item.id, w.reviewer, item.version)
        answer = {"answer": "no", "note": "材料不实"} if code != "2" else {"answer": "yes"}
        actions.verify_item(
            session, item.id, w.verifier, item.version, checks={f"{code}-1": answer}
        )
    session.commit()
    result = _queue_page_within_budget(engine, w.scorer, w.assessment.id, "verified")
    assert result.has_more and result.failed_checks == {result.rows[0].id: ["1-1"]}
    # 只看有“否”: the filter rides on the counts' and the page's statements, still 4.
    only = _queue_page_within_budget(
        engine, w.scorer, w.assessment.id, "verified", failed_checks_only=True
    )
    assert only.counts == {"verified": 2} and not only.has_more
    assert [r.id for r in only.rows] == sorted(only.failed_checks) and len(only.rows) == 2


def test_a_scored_routine_item_detail_within_budget(
    engine: Engine, session: Session, store: LocalStore, world: World
) -> None:
    """Whether a scored routine item's suggestions moved since its score (`routine_drift`)
    costs no statement: the history (or, without it, the round's events) brings the score
    event, and the suggestion is computed from the routine records the detail loads anyway.
    Once it moved, which records changed since costs one (the department's routine events
    after the score): within the budget either way."""
    from tests.web.test_routine_drift import _scored_with_suggestion
    from workflow.routine import review_routine

    w = world
    item, ids = _scored_with_suggestion(session, store, w)
    review_routine(session, ids["九月二"], w.reviewer, "rejected", "与放管服无关")
    session.commit()
    iid = item.id
    for history in (True, False):
        n = cost(engine, w.scorer, lambda s, u, h=history: item_detail(s, iid, u, history=h))
        assert 0 < n <= DETAIL_BUDGET, (history, n)
        drift = item_detail(session, iid, w.scorer, history=history).routine_drift
        assert drift is not None and [d.code for d in drift.points] == ["9.1"]
        assert [(c.kind, c.period) for c in drift.points[0].causes] == [("monthly_info", "2018-09")]
