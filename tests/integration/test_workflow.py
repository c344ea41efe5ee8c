"""The transition table and every guard, on every configured database."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.local import LocalStore
from tests.factories import World, add_evidence, open_appeals
from workflow import actions
from workflow.actions import TransitionRequest, transition_item
from workflow.assessments import set_appeal_window
from workflow.audit import verify_chain
from workflow.errors import BadRequest, Conflict, Forbidden, InvalidValue, NotFound
from workflow.machine import TRANSITIONS
from workflow.models import AuditEvent, Item, Score, ScoringPoint, utcnow
from workflow.reconcile import reconcile
from workflow.scheme import Scheme
from workflow.states import State


def events(session: Session, item: Item) -> list[AuditEvent]:
    return list(
        session.execute(
            select(AuditEvent).where(AuditEvent.item_id == item.id).order_by(AuditEvent.seq)
        ).scalars()
    )


def to_reviewed(session: Session, store: LocalStore, w: World, code: str = "1") -> Item:
    item = w.item(session, w.dep_a, code)
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    return item


def to_verified(session: Session, store: LocalStore, w: World, code: str = "1") -> Item:
    item = to_reviewed(session, store, w, code)
    actions.verify_item(session, item.id, w.verifier, item.version)
    return item


def full_scores(item: Item, session: Session) -> dict[str, Decimal]:
    return {p.code: p.max_points for p in actions.scoring_points_of(session, item)}


def test_table_is_the_design() -> None:
    table = {t.trigger: ({s.value for s in t.sources}, t.dest.value) for t in TRANSITIONS}
    assert table == {
        "submit": ({"draft", "returned"}, "submitted"),
        "review": ({"submitted"}, "reviewed"),
        "return": ({"submitted", "reviewed"}, "returned"),
        "verify": ({"reviewed"}, "verified"),
        "score": ({"verified"}, "scored"),
        "appeal": ({"scored"}, "appealed"),
        "rescore": ({"appealed", "scored"}, "scored"),
        "reject_appeal": ({"appealed"}, "scored"),
        "withdraw": ({"submitted"}, "draft"),
    }


def test_happy_path_draft_to_scored(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = to_verified(session, store, w)
    scores = {"1.1": Decimal("5"), "1.2": Decimal("3.5")}
    actions.score_item(
        session, item.id, w.scorer, item.version, scores=scores, deductions={"1.2": "未发文"}
    )
    session.commit()
    assert item.state == "scored"
    assert item.total == Decimal("8.50")
    assert item.version == 5
    rows = {s.scoring_point.code: s for s in item.scores}
    assert rows["1.2"].deduction_reason == "未发文"
    assert rows["1.1"].deduction_reason is None
    evs = events(session, item)
    assert [e.action for e in evs] == ["evidence_uploaded", "submit", "review", "verify", "score"]
    assert [(e.from_state, e.to_state) for e in evs[1:]] == [
        ("draft", "submitted"),
        ("submitted", "reviewed"),
        ("reviewed", "verified"),
        ("verified", "scored"),
    ]
    assert all(e.actor_id is not None for e in evs)
    assert verify_chain(session).ok


@pytest.mark.parametrize("state", ["draft", "submitted", "reviewed", "returned"])
def test_scoring_only_on_verified(
    session: Session, store: LocalStore, world: World, state: str
) -> None:
    w = world
    item = w.item(session, w.dep_a, "3")
    add_evidence(session, store, item, w.member_a)
    if state != "draft":
        actions.submit_item(session, item.id, w.member_a, item.version)
    if state == "reviewed":
        actions.review_item(session, item.id, w.reviewer, item.version)
    if state == "returned":
        actions.return_item(session, item.id, w.reviewer, item.version, "补充材料")
    session.commit()
    with pytest.raises(Conflict) as err:
        actions.score_item(session, item.id, w.scorer, item.version, scores={"3.1": 5})
    assert err.value.code == "invalid_state"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Score)) == 0


def test_submit_needs_evidence(session: Session, world: World) -> None:
    w = world
    item = w.item(session, w.dep_a, "2")
    with pytest.raises(InvalidValue) as err:
        actions.submit_item(session, item.id, w.member_a, item.version)
    assert err.value.code == "evidence_required"


def test_not_involved_claim_needs_proof_and_gets_full_marks(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "4")
    add_evidence(session, store, item, w.member_a, sub_item="4.1")
    session.commit()
    with pytest.raises(InvalidValue) as err:
        actions.submit_item(session, item.id, w.member_a, item.version, not_involved=["4.2"])
    assert err.value.code == "proof_required"
    session.rollback()
    add_evidence(session, store, item, w.member_a, sub_item="4.2", purpose="not_involved_proof")
    actions.submit_item(session, item.id, w.member_a, item.version, not_involved=["4.2"])
    actions.review_item(session, item.id, w.reviewer, item.version)
    with pytest.raises(InvalidValue) as err:
        actions.verify_item(session, item.id, w.verifier, item.version)
    assert err.value.code == "ruling_required"
    actions.verify_item(session, item.id, w.verifier, item.version, rulings={"4.2": True})
    with pytest.raises(InvalidValue) as err:
        actions.score_item(
            session, item.id, w.scorer, item.version,
            scores={"4.1": 3, "4.2": 1}, deductions={"4.2": "x"},
        )  # fmt: skip
    assert err.value.code == "not_involved_full_marks"
    actions.score_item(session, item.id, w.scorer, item.version, scores={"4.1": 3})
    assert item.total == Decimal("5.00")
    reasons = {s.scoring_point.code: s.deduction_reason for s in item.scores}
    assert reasons["4.2"] == "不涉及（已核实）"


def test_rejected_claim_must_be_scored(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = w.item(session, w.dep_a, "4")
    add_evidence(session, store, item, w.member_a, sub_item="4.1")
    add_evidence(session, store, item, w.member_a, sub_item="4.2", purpose="not_involved_proof")
    actions.submit_item(session, item.id, w.member_a, item.version, not_involved=["4.2"])
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.verify_item(session, item.id, w.verifier, item.version, rulings={"4.2": False})
    with pytest.raises(InvalidValue) as err:
        actions.score_item(session, item.id, w.scorer, item.version, scores={"4.1": 3})
    assert err.value.code == "score_required"


def test_claim_on_unclaimed_point_without_evidence(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "8")
    add_evidence(session, store, item, w.member_a, sub_item="8.1", purpose="not_involved_proof")
    with pytest.raises(InvalidValue) as err:
        actions.submit_item(session, item.id, w.member_a, item.version, not_involved=["8.1"])
    assert err.value.code == "evidence_required" and "8.2" in err.value.message


def test_department_guards(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    with pytest.raises(NotFound):  # another department's item is invisible
        actions.submit_item(session, item.id, w.member_b, item.version)
    with pytest.raises(Forbidden):  # a reviewer is not the department
        actions.submit_item(session, item.id, w.reviewer, item.version)
    actions.submit_item(session, item.id, w.member_a, item.version)
    with pytest.raises(Forbidden) as err:  # nobody acts as staff on their own department
        actions.review_item(session, item.id, w.reviewer_in_a, item.version)
    assert err.value.code == "own_department"
    with pytest.raises(Forbidden) as err:
        actions.review_item(session, item.id, w.member_a, item.version)
    assert err.value.code == "role_required"
    with pytest.raises(Forbidden):
        actions.review_item(session, item.id, w.auditor, item.version)


def test_four_eyes(session: Session, store: LocalStore, world: World, scheme_2018: Scheme) -> None:
    w = world
    from workflow.users import set_roles

    set_roles(session, w.reviewer, ["reviewer", "verifier"], department=None, actor=w.admin)
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    actions.review_item(session, item.id, w.reviewer, item.version)
    with pytest.raises(Forbidden) as err:
        actions.verify_item(session, item.id, w.reviewer, item.version)
    assert err.value.code == "four_eyes"
    actions.verify_item(session, item.id, w.verifier, item.version)
    assert item.state == "verified"


def test_return_needs_reason_and_resubmit(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = w.item(session, w.dep_a, "5")
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    with pytest.raises(InvalidValue) as err:
        actions.return_item(session, item.id, w.reviewer, item.version, "  ")
    assert err.value.code == "reason_required"
    with pytest.raises(Forbidden):  # a verifier returns only after review
        actions.return_item(session, item.id, w.verifier, item.version, "x")
    actions.return_item(session, item.id, w.reviewer, item.version, "缺少文件")
    assert item.state == "returned" and item.return_reason == "缺少文件"
    actions.submit_item(session, item.id, w.member_a, item.version, change_note="已补充文件")
    assert item.state == "submitted" and item.round == 2
    actions.review_item(session, item.id, w.reviewer, item.version)
    actions.return_item(session, item.id, w.verifier, item.version, "核实发现材料不实")
    assert item.state == "returned"


@pytest.mark.parametrize(
    ("scores", "deductions", "code"),
    [
        ({"1.1": 6, "1.2": 5}, {}, "score_out_of_range"),
        ({"1.1": -1, "1.2": 5}, {"1.1": "x"}, "score_out_of_range"),
        ({"1.1": 4, "1.2": 5}, {}, "deduction_reason_required"),
        ({"1.1": 5}, {}, "score_required"),
        ({"1.1": 5, "1.2": 5, "2.1": 1}, {}, "unknown_sub_item"),
        ({"1.1": "4.555", "1.2": 5}, {"1.1": "x"}, "score_precision"),
        ({"1.1": "abc", "1.2": 5}, {}, "invalid_score"),
        ({"1.1": True, "1.2": 5}, {}, "invalid_score"),
        ({"1.1": "NaN", "1.2": 5}, {}, "invalid_score"),
    ],
)
def test_score_validation(
    session: Session,
    store: LocalStore,
    world: World,
    scores: dict[str, object],
    deductions: dict[str, str],
    code: str,
) -> None:
    w = world
    item = to_verified(session, store, w)
    session.commit()
    with pytest.raises(InvalidValue) as err:
        actions.score_item(
            session, item.id, w.scorer, item.version, scores=scores, deductions=deductions
        )
    assert err.value.code == code
    session.rollback()
    assert session.get(Item, item.id).state == "verified"  # type: ignore[union-attr]


def test_a_reason_given_with_full_marks_is_kept_as_the_points_note(
    session: Session, store: LocalStore, world: World
) -> None:
    """Walk: a reason typed beside a full score was dropped silently — the deviation reason a
    routine point needs when given more than its suggestion with it. It is kept (row, audit
    payload), and the trail replays to the same row."""
    w = world
    item = to_verified(session, store, w)
    actions.score_item(
        session, item.id, w.scorer, item.version,
        scores={"1.1": 5, "1.2": "4"},
        deductions={"1.1": "  领导小组文件经实地核查属实  ", "1.2": "未见分工文件"},
    )  # fmt: skip
    session.commit()
    reasons = dict(
        session.execute(
            select(ScoringPoint.code, Score.deduction_reason)
            .join(Score, Score.scoring_point_id == ScoringPoint.id)
            .where(Score.item_id == item.id)
        ).all()
    )
    assert reasons == {"1.1": "领导小组文件经实地核查属实", "1.2": "未见分工文件"}
    payload = json.loads(events(session, item)[-1].payload)
    assert payload["deductions"]["1.1"] == "领导小组文件经实地核查属实"
    assert reconcile(session).differences == []


def test_stale_version_is_a_conflict(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    old = item.version
    actions.submit_item(session, item.id, w.member_a, old)
    with pytest.raises(Conflict) as err:
        actions.review_item(session, item.id, w.reviewer, old)
    assert err.value.code == "stale_version"
    with pytest.raises(BadRequest):
        transition_item(session, item.id, w.reviewer, TransitionRequest("review", "2"))  # type: ignore[arg-type]
    with pytest.raises(InvalidValue) as err2:
        transition_item(session, item.id, w.reviewer, TransitionRequest("explode", item.version))
    assert err2.value.code == "unknown_action"


def test_idempotency_key(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    req = TransitionRequest("submit", item.version)
    transition_item(session, item.id, w.member_a, req, idempotency_key="k-1")
    session.commit()
    before = len(events(session, item))
    again = transition_item(session, item.id, w.member_a, req, idempotency_key="k-1")
    session.commit()
    assert again.state == "submitted" and again.version == 2
    assert len(events(session, item)) == before
    with pytest.raises(InvalidValue) as err:
        transition_item(
            session, item.id, w.member_a, TransitionRequest("submit", 2), idempotency_key="k-1"
        )
    assert err.value.code == "idempotency_key_reused"


def _scored(session: Session, store: LocalStore, w: World) -> Item:
    item = to_verified(session, store, w)
    actions.score_item(
        session, item.id, w.scorer, item.version,
        scores={"1.1": 5, "1.2": 2}, deductions={"1.2": "未指定专人"},
    )  # fmt: skip
    return item


def test_appeal_window_once_and_other_scorer(
    session: Session, store: LocalStore, world: World
) -> None:
    w = world
    item = _scored(session, store, w)
    with pytest.raises(Conflict) as err:  # before publication: no window yet
        actions.appeal_item(session, item.id, w.member_a, item.version, "不服")
    assert err.value.code == "appeal_window_closed"
    now = utcnow()
    set_appeal_window(
        session, w.assessment, now - dt.timedelta(days=10), now - dt.timedelta(days=3),
        actor=w.admin,
    )  # fmt: skip
    with pytest.raises(Conflict):  # after the window
        actions.appeal_item(session, item.id, w.member_a, item.version, "不服")
    set_appeal_window(
        session, w.assessment, now - dt.timedelta(days=1), now + dt.timedelta(days=3),
        actor=w.admin,
    )  # fmt: skip
    # In the window, but the scores are hidden until the 公示: nothing to appeal against yet.
    with pytest.raises(Conflict) as err:
        actions.appeal_item(session, item.id, w.member_a, item.version, "不服")
    assert err.value.code == "appeal_window_closed"
    open_appeals(session, w, now - dt.timedelta(days=1), now + dt.timedelta(days=3))
    with pytest.raises(InvalidValue):
        actions.appeal_item(session, item.id, w.member_a, item.version, "")
    with pytest.raises(NotFound):
        actions.appeal_item(session, item.id, w.member_b, item.version, "不服")
    actions.appeal_item(session, item.id, w.member_a, item.version, "已按时报送")
    assert item.state == "appealed"
    with pytest.raises(Forbidden) as err:  # the original scorer does not decide the appeal
        actions.rescore_item(session, item.id, w.scorer, item.version, scores={"1.1": 5})
    assert err.value.code == "four_eyes"
    actions.rescore_item(
        session, item.id, w.scorer2, item.version, scores={"1.1": 5, "1.2": 5}, comment="已核实"
    )
    assert item.state == "scored" and item.total == Decimal("10.00")
    with pytest.raises(Conflict) as err:
        actions.appeal_item(session, item.id, w.member_a, item.version, "再次申诉")
    assert err.value.code == "appeal_used"


def test_reject_appeal_needs_reason(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = _scored(session, store, w)
    now = utcnow()
    open_appeals(session, w, now, now + dt.timedelta(days=3))
    actions.appeal_item(session, item.id, w.member_a, item.version, "理由")
    with pytest.raises(InvalidValue):
        actions.reject_appeal_item(session, item.id, w.scorer2, item.version, "")
    actions.reject_appeal_item(session, item.id, w.scorer2, item.version, "材料不支持")
    assert item.state == "scored" and item.total == Decimal("7.00")


def test_allowed_actions(session: Session, store: LocalStore, world: World) -> None:
    w = world
    item = w.item(session, w.dep_a, "1")
    assert actions.actions_for(session, item, w.member_a) == []  # no evidence yet
    add_evidence(session, store, item, w.member_a)
    assert actions.actions_for(session, item, w.member_a) == ["submit"]
    assert actions.actions_for(session, item, w.member_b) == []
    actions.submit_item(session, item.id, w.member_a, item.version)
    assert actions.actions_for(session, item, w.reviewer) == ["review", "return"]
    assert actions.actions_for(session, item, w.reviewer_in_a) == []
    assert actions.actions_for(session, item, w.auditor) == []
    actions.review_item(session, item.id, w.reviewer, item.version)
    assert actions.actions_for(session, item, w.verifier) == ["return", "verify"]


def test_disabled_user_cannot_act(session: Session, store: LocalStore, world: World) -> None:
    from workflow.users import set_active

    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    set_active(session, w.member_a, False, actor=w.admin)
    with pytest.raises(NotFound):
        actions.submit_item(session, item.id, w.member_a, item.version)
    assert State(item.state) == State.DRAFT


def test_withdraw_before_review_with_a_reason(
    session: Session, store: LocalStore, world: World
) -> None:
    """A department takes back a submission no reviewer has acted on; it resubmits later."""
    w = world
    item = w.item(session, w.dep_a, "1")
    add_evidence(session, store, item, w.member_a)
    actions.submit_item(session, item.id, w.member_a, item.version)
    withdraw = actions.TransitionRequest("withdraw", item.version)
    with pytest.raises(InvalidValue) as err:
        actions.transition_item(session, item.id, w.member_a, withdraw)
    assert err.value.code == "reason_required"
    with pytest.raises(NotFound):  # another department's item is not even there
        other = actions.TransitionRequest("withdraw", item.version, comment="撤回")
        actions.transition_item(session, item.id, w.member_b, other)
    with pytest.raises(Forbidden):
        by_office = actions.TransitionRequest("withdraw", item.version, comment="撤回")
        actions.transition_item(session, item.id, w.reviewer, by_office)
    assert "withdraw" in actions.actions_for(session, item, w.member_a)
    again = actions.TransitionRequest("withdraw", item.version, comment="材料有误，撤回修改")
    actions.transition_item(session, item.id, w.member_a, again)
    assert item.state == "draft" and item.round == 1
    with pytest.raises(Conflict) as err:
        actions.review_item(session, item.id, w.reviewer, item.version)
    assert err.value.code == "invalid_state"
    actions.submit_item(session, item.id, w.member_a, item.version)
    assert item.state == "submitted" and item.round == 2
    actions.review_item(session, item.id, w.reviewer, item.version)
    with pytest.raises(Conflict):  # review has started: too late to withdraw
        late = actions.TransitionRequest("withdraw", item.version, comment="再撤回")
        actions.transition_item(session, item.id, w.member_a, late)
    session.commit()
    assert reconcile(session).differences == []
