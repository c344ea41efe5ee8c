"""The item workflow as one table: every change to an item is a row.

A row says everything about one action: its trigger, the states it leaves from and goes to
(None: the item keeps its state, e.g. evidence attached to a draft), the guards, the payload
model, the effects, the facts the guards and effects need loaded, the audit event's name and
the label people read. Adding an action means adding a row and, where needed, one effect
function (workflow/effects.py) or guard (workflow/machine.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workflow import effects
from workflow.messages import N_
from workflow.payloads import (
    AttachPayload,
    Payload,
    RemovePayload,
    ScorePayload,
    SubmitPayload,
    VerifyPayload,
)
from workflow.states import State

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workflow.machine import FlowContext
    from workflow.models import Item

Effect = Callable[["Session", "Item", "FlowContext"], dict[str, Any]]

#: Facts the pipeline can load for the guards and effects (see workflow/pipeline.py).
FACTS = frozenset(
    {
        "points",
        "claims",
        "scores",
        "evidence",
        "routine_points",
        "suggestions",
        "lateness",
        "check_points",
        "publication",
    }
)


@dataclass(frozen=True)
class Transition:
    """One row of the table."""

    trigger: str
    sources: tuple[State, ...]
    dest: State | None
    guards: tuple[str, ...]
    label: str
    payload: type[Payload] = Payload
    effects: tuple[Effect, ...] = ()
    needs: frozenset[str] = frozenset()
    #: The audit event's action (the trigger by default).
    event: str | None = None
    #: A client's version is required (False: the pipeline takes the live one, e.g. removal).
    versioned: bool = True
    #: The error code when the version moved since the client read it (its general text).
    stale: str | None = None
    #: The message when the item's state does not allow the action.
    wrong_state: str | None = None

    @property
    def changes_state(self) -> bool:
        """Whether the action moves the item to another state (a workflow transition)."""
        return self.dest is not None


ROWS: tuple[Transition, ...] = (
    Transition(
        "submit",
        (State.DRAFT, State.RETURNED),
        State.SUBMITTED,
        ("is_department_member", "has_required_evidence", "has_change_note"),
        "提交",
        payload=SubmitPayload,
        effects=(effects.replace_claims, effects.stamp_submission),
        needs=frozenset({"points", "claims", "evidence", "routine_points", "lateness"}),
    ),
    Transition(
        "withdraw",
        (State.SUBMITTED,),
        State.DRAFT,
        ("is_department_member", "has_reason"),
        "撤回",
        effects=(effects.stamp_withdrawal,),
    ),
    Transition(
        "review",
        (State.SUBMITTED,),
        State.REVIEWED,
        ("is_reviewer", "is_not_own_department", "is_not_own_submission"),
        "初审通过",
        effects=(effects.stamp_reviewer,),
    ),
    Transition(
        "return",
        (State.SUBMITTED, State.REVIEWED),
        State.RETURNED,
        ("is_reviewer_or_verifier", "is_not_own_department", "is_not_own_submission", "has_reason"),
        "退回修改",
        effects=(effects.stamp_return,),
    ),
    Transition(
        "verify",
        (State.REVIEWED,),
        State.VERIFIED,
        (
            "is_verifier",
            "is_not_own_department",
            "is_not_own_submission",
            "is_not_round_reviewer",
            "has_all_rulings",
            "has_all_checks",
        ),
        "核实通过",
        payload=VerifyPayload,
        effects=(effects.rule_on_claims, effects.record_checks),
        needs=frozenset({"points", "claims", "check_points"}),
    ),
    Transition(
        "score",
        (State.VERIFIED,),
        State.SCORED,
        ("is_scorer", "is_not_own_department", "is_not_own_submission", "has_valid_scores"),
        "评分",
        payload=ScorePayload,
        effects=(effects.stamp_scorer, effects.write_scores),
        needs=frozenset({"points", "claims", "scores", "suggestions"}),
    ),
    Transition(
        "appeal",
        (State.SCORED,),
        State.APPEALED,
        ("is_department_member", "is_first_appeal", "is_within_appeal_window", "has_reason"),
        "申诉",
        effects=(effects.open_appeal,),
        needs=frozenset({"publication"}),
    ),
    Transition(
        "rescore",
        (State.APPEALED, State.SCORED),
        State.SCORED,
        (
            "is_appealed_or_reopened",
            "is_scorer",
            "is_not_own_department",
            "is_not_own_submission",
            "is_not_original_scorer",
            "has_valid_scores",
            "has_rescore_reason",
        ),
        "复核改分",
        payload=ScorePayload,
        effects=(effects.write_scores,),
        needs=frozenset({"points", "claims", "scores", "suggestions", "publication"}),
    ),
    Transition(
        "reject_appeal",
        (State.APPEALED,),
        State.SCORED,
        (
            "is_scorer",
            "is_not_own_department",
            "is_not_own_submission",
            "is_not_original_scorer",
            "has_reason",
        ),
        "驳回申诉",
        needs=frozenset({"scores"}),  # the appealed scores' author may not decide either
    ),
    # Evidence: the item keeps its state; the same lock, checks and audit as a transition.
    Transition(
        "attach_evidence",
        (State.DRAFT, State.RETURNED),
        None,
        ("manages_own_evidence", "has_known_purpose"),
        "上传佐证材料",
        payload=AttachPayload,
        effects=(effects.add_evidence,),
        needs=frozenset({"points"}),
        event="evidence_uploaded",
        stale="item_state_changed",
        wrong_state=N_("只有草稿或已退回的事项可以修改佐证材料"),
    ),
    Transition(
        "attach_appeal_evidence",
        (State.APPEALED,),
        None,
        ("manages_own_evidence", "has_known_purpose"),
        "上传申诉材料",
        payload=AttachPayload,
        effects=(effects.add_evidence,),
        needs=frozenset({"points"}),
        event="evidence_uploaded",
        stale="item_state_changed",
        wrong_state=N_("申诉材料只能在申诉处理期间上传"),
    ),
    Transition(
        "remove_evidence",
        (State.DRAFT, State.RETURNED),
        None,
        ("manages_own_evidence",),
        "删除佐证材料",
        payload=RemovePayload,
        effects=(effects.mark_evidence_removed,),
        event="evidence_removed",
        versioned=False,
        wrong_state=N_("只有草稿或已退回的事项可以修改佐证材料"),
    ),
)

ROW_OF = {t.trigger: t for t in ROWS}
#: The workflow transitions proper (the item changes state): the public actions.
TRANSITIONS = tuple(t for t in ROWS if t.changes_state)
ACTIONS = tuple(t.trigger for t in TRANSITIONS)
ACTION_LABELS = {t.trigger: t.label for t in TRANSITIONS}
# Guards that read the request's payload: a probe ("could this user do it now?") skips them.
PAYLOAD_GUARDS = frozenset(
    {
        "has_reason",
        "has_rescore_reason",
        "has_valid_scores",
        "has_all_rulings",
        "has_change_note",
        "has_all_checks",
    }
)
