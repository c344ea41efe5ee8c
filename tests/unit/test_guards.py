"""The machine's guards, judged without a database: plain objects in, a refusal or a pass out.

Every guard of the table is exercised here on model objects that were never stored, through
the same `fire` and `probe` the pipeline uses; the database tests check the same rules end
to end.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from workflow.errors import Conflict, DomainError, Forbidden, InvalidValue
from workflow.machine import FlowContext, ItemFlow, allowed_actions, fire, probe
from workflow.models import Assessment, Item, User
from workflow.payloads import AttachPayload, Payload
from workflow.permissions import DETACHED
from workflow.states import State
from workflow.table import PAYLOAD_GUARDS, ROWS

NOW = dt.datetime(2018, 12, 20, 9, 0, tzinfo=dt.UTC)
MAXIMA = {"1.1": Decimal(5), "1.2": Decimal(5)}


def user(uid: int, *roles: str, department: int | None = None) -> User:
    """A user never stored; `department` is their department in assessment 1 (the items')."""
    u = User(id=uid, username=f"u{uid}", roles=list(roles), is_active=True)
    u.__dict__[DETACHED] = {1: department} if department is not None else {}
    return u


MEMBER = user(1, "department", department=10)
OTHER_MEMBER = user(2, "department", department=11)
REVIEWER = user(3, "reviewer")
VERIFIER = user(4, "verifier")
SCORER = user(5, "scorer")
SCORER2 = user(6, "scorer")
REVIEWER_IN_A = user(7, "reviewer", "department", department=10)


def item(state: State, **kw: Any) -> Item:
    assessment = Assessment(id=1, reopened_at=None, finalised_at=None, appeal_opens_at=None,
                            appeal_closes_at=None)  # fmt: skip
    fields: dict[str, Any] = {"id": 100, "department_id": 10, "state": state.value,
                              "version": 3, "round": 1, "appeal_count": 0,
                              "reviewed_by_id": None, "scored_by_id": None}  # fmt: skip
    it = Item(**{**fields, **kw})
    it.assessment = assessment
    return it


def ctx(who: User, **kw: Any) -> FlowContext:
    facts: dict[str, Any] = {"point_max": MAXIMA, "evidence_points": frozenset({None}), "now": NOW}
    facts.update(kw)
    return FlowContext(user=who, **facts)


def refusal(it: Item, c: FlowContext, action: str) -> tuple[type[DomainError], str]:
    with pytest.raises(DomainError) as caught:
        fire(ItemFlow(it, c), action)
    return type(caught.value), caught.value.code


def test_every_guard_of_the_table_is_a_method() -> None:
    for row in ROWS:
        for guard in row.guards:
            assert callable(getattr(ItemFlow, guard, None)), (row.trigger, guard)
    assert {
        "has_reason", "has_rescore_reason", "has_valid_scores", "has_all_rulings",
        "has_change_note", "has_all_checks",
    } == PAYLOAD_GUARDS  # fmt: skip


def test_submit_by_the_department_with_evidence() -> None:
    assert fire(ItemFlow(item(State.DRAFT), ctx(MEMBER)), "submit") == State.SUBMITTED
    assert refusal(item(State.DRAFT), ctx(OTHER_MEMBER), "submit") == (
        Forbidden,
        "not_own_department",
    )
    assert refusal(item(State.DRAFT), ctx(REVIEWER), "submit") == (Forbidden, "not_own_department")
    no_files = ctx(MEMBER, evidence_points=frozenset())
    assert refusal(item(State.DRAFT), no_files, "submit") == (InvalidValue, "evidence_required")
    assert refusal(item(State.SUBMITTED), ctx(MEMBER), "submit") == (Conflict, "invalid_state")


def test_not_involved_claims_need_proof_and_cover_the_rest() -> None:
    claimed = ctx(MEMBER, evidence_points=frozenset({"1.2"}), claimed_points=frozenset({"1.1"}))
    assert refusal(item(State.DRAFT), claimed, "submit") == (InvalidValue, "proof_required")
    proven = ctx(MEMBER, evidence_points=frozenset({"1.2"}), claimed_points=frozenset({"1.1"}),
                 proof_points=frozenset({"1.1"}))  # fmt: skip
    assert fire(ItemFlow(item(State.DRAFT), proven), "submit") == State.SUBMITTED
    uncovered = ctx(MEMBER, evidence_points=frozenset(), claimed_points=frozenset({"1.1"}),
                    proof_points=frozenset({"1.1"}))  # fmt: skip
    assert refusal(item(State.DRAFT), uncovered, "submit") == (InvalidValue, "evidence_required")


def test_withdraw_by_the_department_with_a_reason_before_review() -> None:
    assert refusal(item(State.SUBMITTED), ctx(MEMBER), "withdraw") == (
        InvalidValue, "reason_required"
    )  # fmt: skip
    assert refusal(item(State.SUBMITTED), ctx(REVIEWER, comment="x"), "withdraw") == (
        Forbidden, "not_own_department"
    )  # fmt: skip
    assert refusal(item(State.REVIEWED), ctx(MEMBER, comment="x"), "withdraw") == (
        Conflict, "invalid_state"
    )  # fmt: skip
    assert fire(ItemFlow(item(State.SUBMITTED), ctx(MEMBER, comment="x")), "withdraw") == (
        State.DRAFT
    )
    assert allowed_actions(item(State.SUBMITTED), ctx(MEMBER)) == ["withdraw"]


def test_office_actions_refuse_the_own_department_and_the_wrong_role() -> None:
    assert refusal(item(State.SUBMITTED), ctx(REVIEWER_IN_A), "review") == (
        Forbidden, "own_department"
    )  # fmt: skip
    assert refusal(item(State.SUBMITTED), ctx(VERIFIER), "review") == (Forbidden, "role_required")
    assert fire(ItemFlow(item(State.SUBMITTED), ctx(REVIEWER)), "review") == State.REVIEWED


def test_office_actions_refuse_every_contributor_of_the_department() -> None:
    """Anyone on the item's `contributor_ids` (a past submitter, an uploader, the appellant),
    now of the office and of no department, is refused; an office user not on it is not."""
    worked = item(State.SUBMITTED, contributor_ids=[REVIEWER.id, 99])
    assert refusal(worked, ctx(REVIEWER), "review") == (Forbidden, "own_submission")
    assert allowed_actions(worked, ctx(REVIEWER)) == []
    assert fire(ItemFlow(item(State.SUBMITTED, contributor_ids=[99]), ctx(REVIEWER)),
                "review") == State.REVIEWED  # fmt: skip


def test_return_needs_a_reason_and_a_verifier_only_after_review() -> None:
    assert refusal(item(State.SUBMITTED), ctx(REVIEWER), "return") == (
        InvalidValue, "reason_required"
    )  # fmt: skip
    assert refusal(item(State.SUBMITTED), ctx(VERIFIER, comment="补充"), "return") == (
        Forbidden, "role_required"
    )  # fmt: skip
    flow = ItemFlow(item(State.REVIEWED), ctx(VERIFIER, comment="补充"))
    assert fire(flow, "return") == State.RETURNED


def test_four_eyes_at_verify_and_rulings_on_every_claim() -> None:
    reviewed = item(State.REVIEWED, reviewed_by_id=VERIFIER.id)
    assert refusal(reviewed, ctx(VERIFIER), "verify") == (Forbidden, "four_eyes")
    claims = ctx(VERIFIER, claimed_points=frozenset({"1.1"}))
    assert refusal(item(State.REVIEWED), claims, "verify") == (InvalidValue, "ruling_required")
    extra = ctx(VERIFIER, rulings={"1.2": True})
    assert refusal(item(State.REVIEWED), extra, "verify") == (InvalidValue, "unknown_ruling")
    ruled = ctx(VERIFIER, claimed_points=frozenset({"1.1"}), rulings={"1.1": True})
    assert fire(ItemFlow(item(State.REVIEWED), ruled), "verify") == State.VERIFIED


@pytest.mark.parametrize(
    ("scores", "deductions", "code"),
    [
        ({"1.1": Decimal(5)}, {}, "score_required"),
        ({"1.1": Decimal(6), "1.2": Decimal(5)}, {}, "score_out_of_range"),
        ({"1.1": Decimal("4.555"), "1.2": Decimal(5)}, {"1.1": "x"}, "score_precision"),
        ({"1.1": Decimal(4), "1.2": Decimal(5)}, {}, "deduction_reason_required"),
        ({"1.1": Decimal(5), "1.2": Decimal(5), "9.9": Decimal(1)}, {}, "unknown_sub_item"),
    ],
)
def test_scores_are_judged_point_by_point(
    scores: dict[str, Decimal], deductions: dict[str, str], code: str
) -> None:
    c = ctx(SCORER, scores=scores, deductions=deductions)
    assert refusal(item(State.VERIFIED), c, "score") == (InvalidValue, code)


def test_a_reason_that_could_not_be_kept_is_refused_not_dropped() -> None:
    """A reason typed for a point the indicator lacks, or for an upheld not-involved point
    (whose reason is 不涉及（已核实））, was dropped with a 200: refused, by its point."""
    full = {"1.1": Decimal(5), "1.2": Decimal(5)}
    stray = ctx(SCORER, scores=full, deductions={"9.9": "别处的原因"})
    assert refusal(item(State.VERIFIED), stray, "score") == (InvalidValue, "unknown_sub_item")
    blank = ctx(SCORER, scores=full, deductions={"9.9": " "})  # nothing typed: nothing lost
    assert fire(ItemFlow(item(State.VERIFIED), blank), "score") == State.SCORED
    upheld = ctx(SCORER, scores={"1.2": Decimal(5)}, upheld_points=frozenset({"1.1"}),
                 deductions={"1.1": "已核实"})  # fmt: skip
    assert refusal(item(State.VERIFIED), upheld, "score") == (
        InvalidValue, "not_involved_full_marks"
    )  # fmt: skip
    # A note with full marks is no error: it is kept (workflow.effects.write_scores).
    noted = ctx(SCORER, scores=full, deductions={"1.1": "经实地核查已整改"})
    assert fire(ItemFlow(item(State.VERIFIED), noted), "score") == State.SCORED


def test_an_upheld_claim_gets_full_marks_and_a_suggestion_needs_a_reason() -> None:
    upheld = ctx(SCORER, upheld_points=frozenset({"1.1"}), scores={"1.1": Decimal(3),
                 "1.2": Decimal(5)})  # fmt: skip
    assert refusal(item(State.VERIFIED), upheld, "score") == (
        InvalidValue, "not_involved_full_marks"
    )  # fmt: skip
    suggested = ctx(SCORER, scores={"1.1": Decimal(5), "1.2": Decimal(5)},
                    suggested={"1.2": Decimal(4)})  # fmt: skip
    assert refusal(item(State.VERIFIED), suggested, "score") == (
        InvalidValue, "deviation_reason_required"
    )  # fmt: skip
    full = ctx(SCORER, scores={"1.1": Decimal(5), "1.2": Decimal(5)})
    assert fire(ItemFlow(item(State.VERIFIED), full), "score") == State.SCORED


def test_appeals_once_within_the_window_decided_by_another_scorer() -> None:
    scored = item(State.SCORED, scored_by_id=SCORER.id)
    reason = ctx(MEMBER, comment="不服")
    assert refusal(scored, reason, "appeal") == (Conflict, "appeal_window_closed")
    scored.assessment.appeal_opens_at = NOW - dt.timedelta(days=1)
    scored.assessment.appeal_closes_at = NOW + dt.timedelta(days=1)
    assert fire(ItemFlow(scored, reason), "appeal") == State.APPEALED
    used = item(State.SCORED, appeal_count=1)
    assert refusal(used, reason, "appeal") == (Conflict, "appeal_used")
    appealed = item(State.APPEALED, scored_by_id=SCORER.id)
    assert refusal(appealed, ctx(SCORER, comment="驳回"), "reject_appeal") == (
        Forbidden, "four_eyes"
    )  # fmt: skip
    assert fire(ItemFlow(appealed, ctx(SCORER2, comment="驳回")), "reject_appeal") == State.SCORED
    assert refusal(item(State.SCORED), ctx(SCORER2), "rescore") == (Conflict, "invalid_state")


def test_a_rescore_says_why_as_a_rejection_does() -> None:
    """Walk: 驳回申诉 needed a reason and 复核改分 did not, so a department saw its appealed
    score changed (or kept) with no word of why. The rescore is refused without its 复核说明,
    with a code of its own; the button still shows before anything is typed (a probe)."""
    appealed = item(State.APPEALED, scored_by_id=SCORER.id)
    full = {"1.1": Decimal(5), "1.2": Decimal(5)}
    for blank in (None, "", "  \n "):
        assert refusal(appealed, ctx(SCORER2, scores=full, comment=blank), "rescore") == (
            InvalidValue, "rescore_reason_required"
        )  # fmt: skip
    with pytest.raises(InvalidValue) as refused:
        fire(ItemFlow(appealed, ctx(SCORER2, scores=full)), "rescore")
    assert "部门将看到" in refused.value.message
    assert "rescore" in allowed_actions(appealed, ctx(SCORER2))
    said = ctx(SCORER2, scores=full, comment="补充材料证明已成立领导小组")
    assert fire(ItemFlow(appealed, said), "rescore") == State.SCORED
    # A correction after a reopen is read by the department too: it says why as well.
    reopened = item(State.SCORED, scored_by_id=SCORER.id)
    reopened.assessment.reopened_at = NOW
    assert refusal(reopened, ctx(SCORER2, scores=full), "rescore") == (
        InvalidValue, "rescore_reason_required"
    )  # fmt: skip


def test_an_appeal_outside_the_window_is_told_when_the_window_is() -> None:
    """A window set ahead of a 公示 that has started was refused as 「考核结果尚未公示」, and a
    closed one said only 「申诉期已结束」: the department was told neither when."""
    scored = item(State.SCORED, scored_by_id=SCORER.id)
    scored.assessment.timezone = "Asia/Shanghai"
    scored.assessment.published_at = NOW - dt.timedelta(days=1)
    reason = ctx(MEMBER, comment="不服")
    scored.assessment.appeal_opens_at = NOW + dt.timedelta(hours=2)  # 19:00 in Beijing
    scored.assessment.appeal_closes_at = NOW + dt.timedelta(days=5)
    with pytest.raises(Conflict) as ahead:
        fire(ItemFlow(scored, reason), "appeal")
    assert ahead.value.code == "appeal_window_closed"
    assert str(ahead.value) == "申诉期自 2018-12-20 19:00（北京时间）开始，届时方可提出申诉"
    scored.assessment.appeal_opens_at = NOW - dt.timedelta(days=5)
    scored.assessment.appeal_closes_at = NOW - dt.timedelta(hours=1)
    with pytest.raises(Conflict) as closed:
        fire(ItemFlow(scored, reason), "appeal")
    assert str(closed.value) == "申诉期已于 2018-12-20 16:00（北京时间）结束，不能再提出申诉"


def test_evidence_is_managed_by_the_department_in_editable_states() -> None:
    attach = ctx(MEMBER, payload=AttachPayload(purpose="evidence"))
    assert fire(ItemFlow(item(State.DRAFT), attach), "attach_evidence") == State.DRAFT
    assert refusal(item(State.SUBMITTED), attach, "attach_evidence") == (Conflict, "invalid_state")
    bogus = ctx(MEMBER, payload=AttachPayload(purpose="bogus"))
    assert refusal(item(State.DRAFT), bogus, "attach_evidence") == (InvalidValue, "bad_purpose")
    proof = ctx(MEMBER, payload=AttachPayload(purpose="not_involved_proof"))
    assert refusal(item(State.DRAFT), proof, "attach_evidence") == (
        InvalidValue, "sub_item_required"
    )  # fmt: skip
    other = ctx(OTHER_MEMBER, payload=Payload())
    assert refusal(item(State.DRAFT), other, "remove_evidence") == (
        Forbidden, "not_own_department"
    )  # fmt: skip


def test_probes_leave_out_the_payload_and_change_nothing() -> None:
    it = item(State.SUBMITTED)
    probe(ItemFlow(it, ctx(REVIEWER)), "return")  # no reason typed yet: the button shows
    with pytest.raises(InvalidValue):
        probe(ItemFlow(it, ctx(REVIEWER)), "return", with_payload=True)
    assert it.state == State.SUBMITTED.value
    assert allowed_actions(it, ctx(REVIEWER)) == ["review", "return"]
    assert allowed_actions(it, ctx(MEMBER)) == ["withdraw"]


def test_a_missing_role_is_named_in_words_not_codes() -> None:
    """The refusal names the roles as people call them (it said 需要以下角色之一：verifier)."""
    with pytest.raises(Forbidden) as one:
        fire(ItemFlow(item(State.REVIEWED), ctx(REVIEWER)), "verify")
    assert one.value.message == "需要以下角色之一：核实员"
    with pytest.raises(Forbidden) as two:
        fire(ItemFlow(item(State.REVIEWED), ctx(MEMBER, comment="补充")), "return")
    assert two.value.message == "需要以下角色之一：初审员或核实员"


def test_a_correction_after_a_reopen_is_refused_to_its_scorer_as_a_correction() -> None:
    """Walk: the first scorer opening a reopened item (never appealed) to correct it was told
    申诉须由原评分人以外的评分员处理, yet there was no appeal (the rule stays the same)."""
    reopened = item(State.SCORED, scored_by_id=SCORER.id)
    reopened.assessment.reopened_at = reopened.assessment.finalised_at = NOW
    full = {"1.1": Decimal(5), "1.2": Decimal(5)}
    with pytest.raises(Forbidden) as refused:
        fire(ItemFlow(reopened, ctx(SCORER, scores=full, comment="更正")), "rescore")
    assert refused.value.code == "four_eyes"
    assert "申诉" not in refused.value.message and "更正" in refused.value.message
    assert fire(ItemFlow(reopened, ctx(SCORER2, scores=full, comment="更正")), "rescore") == (
        State.SCORED
    )
    appealed = item(State.APPEALED, scored_by_id=SCORER.id)
    with pytest.raises(Forbidden) as refused:
        fire(ItemFlow(appealed, ctx(SCORER, scores=full, comment="复核")), "rescore")
    assert "申诉须由原评分人以外的评分员处理" in refused.value.message
