"""Property-based: random actions by random users never break the workflow's invariants.

After every step: no item was ever scored without being verified, audit events equal the
successful actions, the chain verifies, the tables replay from the trail, and no total exceeds
its maximum.

The setup (an assessment, its users and evidence) is made once and every example starts from
it again (the `snapshot` fixture): the invariants read the whole database, and with every
example's rows left behind the later examples checked the earlier ones' again and again (most
of the run). Beside it stands an assessment taken partway through the workflow, which no
example touches: an action reaching into another assessment still breaks the replay.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import add_evidence, mini_scheme
from workflow import actions
from workflow.actions import TransitionRequest, transition_item
from workflow.assessments import set_appeal_window
from workflow.audit import verify_chain
from workflow.errors import DomainError
from workflow.machine import ACTIONS
from workflow.models import Assessment, AuditEvent, Indicator, Item, User, utcnow
from workflow.reconcile import reconcile
from workflow.setup import install_scheme
from workflow.states import Role
from workflow.users import create_user

FORWARD = (
    "withdraw",
    "return",
    "reject_appeal",
    "submit",
    "review",
    "verify",
    "score",
    "appeal",
    "rescore",
)


#: The users of the assessment under test: name, roles, department (by position).
SPEC: list[tuple[str, list[str], int | None]] = [
    ("m_a", ["department"], 0),
    ("m_b", ["department"], 1),
    ("rev", ["reviewer"], None),
    ("revver", ["reviewer", "verifier"], None),
    ("ver", ["verifier"], None),
    ("sc", ["scorer"], None),
    ("sc2", ["scorer"], None),
    ("staff_a", ["reviewer", "verifier", "scorer"], 0),
    ("aud", ["auditor"], None),
]
#: Guided steps taken on each item of the assessment beside it (a spread of states).
BYSTANDER_STEPS = (0, 1, 2, 4)  # draft, submitted, reviewed, scored


@dataclass(frozen=True)
class Setup:
    """What every example starts from (ids: the rows are put back, the objects are not)."""

    assessment_id: int
    user_ids: list[int]
    item_ids: list[int]
    start_seq: int


def _install(
    session: Session, store: LocalStore, prefix: str, spec: list[tuple[str, list[str], int | None]]
) -> tuple[Assessment, list[User], list[Item]]:
    """Install an assessment with an appeal window open now, its users and its items' evidence."""
    assessment = install_scheme(session, mini_scheme())
    deps = assessment.departments
    users = [
        create_user(session, f"{prefix}{name}", roles, department=None if d is None else deps[d])
        for name, roles, d in spec
    ]
    now = utcnow()
    set_appeal_window(
        session, assessment, now - dt.timedelta(days=1), now + dt.timedelta(days=1), actor=None
    )
    session.commit()
    items = list(
        session.execute(
            select(Item).where(Item.assessment_id == assessment.id).order_by(Item.id)
        ).scalars()
    )
    for k, it in enumerate(items):  # evidence up front, so walks go deep quickly
        add_evidence(session, store, it, users[k // 2])
    session.commit()
    return assessment, users, items


def guided_step(session: Session, it: Item, users: list[User], start: int, full: bool) -> bool:
    """Take an action some user may take now, with a valid payload; tell whether it was taken."""
    session.refresh(it)
    points = actions.scoring_points_of(session, it)
    options = [
        (user, action) for user in users for action in actions.actions_for(session, it, user)
    ]
    if not options:
        return False
    if start % 5 == 0:  # sometimes any allowed action, `return` included
        user, action = options[start % len(options)]
    else:  # mostly the furthest step forward, so walks reach scoring and appeals
        user, action = max(options, key=lambda o: FORWARD.index(o[1]))
    claims = {c.scoring_point_id for c in it.claims}
    req = TransitionRequest(
        action,
        it.version,
        comment="理由",
        scores={p.code: p.max_points if full else p.max_points / 2 for p in points}
        if action in ("score", "rescore")
        else {},
        deductions={p.code: "扣分" for p in points} if action in ("score", "rescore") else {},
        rulings={p.code: full for p in points if p.id in claims} if action == "verify" else {},
        change_note="已按意见修改" if action == "submit" and it.round else None,
    )
    try:
        transition_item(session, it.id, user, req)
        session.commit()
    except DomainError:
        session.rollback()
        return False
    return True


def _setup(session: Session, store: LocalStore) -> Setup:
    """The assessment under test, and beside it one taken partway through the workflow."""
    _, by_users, by_items = _install(session, store, "by_", SPEC[:2])
    assessment, users, items = _install(session, store, "", SPEC)
    staff = [u for u in users if not u.has_role(Role.DEPARTMENT)]
    for it, steps in zip(by_items, BYSTANDER_STEPS, strict=True):
        for n in range(steps):  # the furthest step forward each time
            assert guided_step(session, it, by_users + staff, 1, n % 2 == 0), (it.state, n)
    assert len({it.state for it in by_items}) == len(BYSTANDER_STEPS), [i.state for i in by_items]
    return Setup(
        assessment.id,
        [u.id for u in users],
        [it.id for it in items],
        session.scalar(select(func.max(AuditEvent.seq))) or 0,
    )


@pytest.mark.slow  # a property-based run of many action sequences
def test_random_actions_keep_invariants(
    session: Session, tmp_path: Path, snapshot: Callable[[], Callable[[], None]]
) -> None:
    store = LocalStore(tmp_path / "objects")
    reached: set[str] = set()
    setup = _setup(session, store)
    restore = snapshot()

    class Workflow(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            session.close()  # no transaction open while the rows are put back
            restore()
            self.assessment = session.get_one(Assessment, setup.assessment_id)
            self.users: list[User] = [session.get_one(User, i) for i in setup.user_ids]
            self.items = [session.get_one(Item, i) for i in setup.item_ids]
            self.successes = 0
            self.start_seq = setup.start_seq

        @rule(item=st.integers(0, 3), who=st.integers(0, 8), sub=st.sampled_from([None, "x"]))
        def upload(self, item: int, who: int, sub: str | None) -> None:
            it = self.items[item]
            codes = [p.code for p in actions.scoring_points_of(session, it)]
            try:
                # Half the uploads come from the item's own department, so submits can follow.
                user = self.users[item // 2] if who % 2 == 0 else self.users[who]
                add_evidence(session, store, it, user, sub_item=codes[0] if sub else None)
                session.commit()
                self.successes += 1
            except DomainError:
                session.rollback()

        @rule(
            item=st.integers(0, 3),
            who=st.integers(0, 8),
            action=st.sampled_from(ACTIONS),
            stale=st.booleans(),
            full=st.booleans(),
            reason=st.sampled_from(["", "理由"]),
            ruling=st.booleans(),
        )
        def act(
            self, item: int, who: int, action: str, stale: bool, full: bool, reason: str,
            ruling: bool,
        ) -> None:  # fmt: skip
            it = self.items[item]
            session.refresh(it)
            points = actions.scoring_points_of(session, it)
            scoring = action in ("score", "rescore")  # scores elsewhere are refused
            scores = {p.code: (p.max_points if full else p.max_points - 1) for p in points}
            deductions = {p.code: reason for p in points}
            if not scoring:
                scores, deductions = {}, {}
            req = TransitionRequest(
                action,
                it.version - 1 if stale else it.version,
                comment=reason,
                scores=scores,
                deductions=deductions,
                rulings={},
                # A resubmission says what changed (required after a return).
                change_note=reason or None if action == "submit" and it.round else None,
            )
            try:
                transition_item(session, it.id, self.users[who], req)
                session.commit()
                self.successes += 1
                reached.add(it.state)
            except DomainError:
                session.rollback()

        @rule(item=st.integers(0, 3), start=st.integers(0, 8), full=st.booleans())
        def guided(self, item: int, start: int, full: bool) -> None:
            """Take an action some user may take now, with a valid payload (goes deep)."""
            it = self.items[item]
            if guided_step(session, it, self.users, start, full):
                self.successes += 1
                reached.add(it.state)

        @invariant()
        def never_scored_unverified(self) -> None:
            rows = session.execute(
                select(AuditEvent.action, AuditEvent.from_state).where(
                    AuditEvent.seq > self.start_seq, AuditEvent.action.in_(["score", "rescore"])
                )
            ).all()
            for action, from_state in rows:
                assert from_state == ("verified" if action == "score" else "appealed")
            verified = exists().where(AuditEvent.item_id == Item.id, AuditEvent.action == "verify")
            scored_unverified = session.scalars(
                select(Item.id).where(
                    Item.id.in_(setup.item_ids), Item.state == "scored", ~verified
                )
            ).all()
            assert scored_unverified == []

        @invariant()
        def events_match_successes(self) -> None:
            count = session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.seq > self.start_seq,
                    AuditEvent.action.in_([*ACTIONS, "evidence_uploaded"]),
                )
            )
            assert count == self.successes

        @invariant()
        def chain_verifies(self) -> None:
            assert verify_chain(session).ok

        @invariant()
        def tables_follow_the_trail(self) -> None:
            # Every change a random walk makes replays exactly (issue 11, finding 2).
            assert reconcile(session).differences == []

        @invariant()
        def totals_within_max(self) -> None:
            rows = session.execute(
                select(Item.id, Item.total, Indicator.max_points)
                .join(Indicator, Indicator.id == Item.indicator_id)
                .where(Item.id.in_(setup.item_ids))
            ).all()
            assert len(rows) == len(setup.item_ids)
            for item_id, total, most in rows:
                if total is not None:
                    assert Decimal(0) <= total <= most, (item_id, total, most)

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
    # The walk must get past the first steps, or the invariants above prove little.
    assert {"submitted", "reviewed", "verified", "scored"} <= reached, reached
    print("states reached:", sorted(reached))
