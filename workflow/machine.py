"""The item workflow as data: one transition table built into a `transitions.Machine`.

The machine drives an `ItemFlow`, a light wrapper around an `Item` row and the request's
context (user, payload). Guards are conditions of the table; each raises a `DomainError`
with a precise message when it fails, and returns True otherwise, so `may_<trigger>()`
answers the UI and the trigger refuses with the right status code.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from transitions import Machine, MachineError

from workflow.assessments import local_minute
from workflow.errors import Conflict, Forbidden, InvalidValue
from workflow.messages import N_, Phrase, Term
from workflow.models import Item, User, utcnow
from workflow.payloads import AttachPayload, Payload
from workflow.permissions import is_department_member_of, is_own_department
from workflow.states import ROLE_LABELS, STATE_LABELS, Role, State
from workflow.table import (
    ACTION_LABELS,
    ACTIONS,
    PAYLOAD_GUARDS,
    ROW_OF,
    ROWS,
    TRANSITIONS,
    Transition,
)

#: What a file attached to an item is for ("appeal": supporting a pending appeal).
PURPOSES = ("evidence", "not_involved_proof", "appeal")

if TYPE_CHECKING:
    from workflow.calendar import Lateness
    from workflow.models import ScoringPoint

__all__ = [
    "ACTIONS",
    "ACTION_LABELS",
    "PAYLOAD_GUARDS",
    "ROWS",
    "TRANSITIONS",
    "FlowContext",
    "ItemFlow",
    "Transition",
    "allowed_actions",
    "fire",
]


# `return` is a Python keyword: the machine's trigger is named `return_` on the model.
TRIGGER_NAMES = {t.trigger: ("return_" if t.trigger == "return" else t.trigger) for t in ROWS}


@dataclass
class FlowContext:
    """What a guard may look at besides the item: the user, the payload, the time."""

    user: User
    comment: str | None = None
    scores: Mapping[str, Decimal] = field(default_factory=dict)
    deductions: Mapping[str, str] = field(default_factory=dict)
    rulings: Mapping[str, bool] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=utcnow)
    # Filled by the operation before firing: facts the guards need from the database.
    evidence_points: frozenset[str | None] = frozenset()
    # Routine-fed points (9.1, 9.2, 10.1) with live routine records: those are their evidence.
    routine_points: frozenset[str] = frozenset()
    proof_points: frozenset[str] = frozenset()
    claimed_points: frozenset[str] = frozenset()
    upheld_points: frozenset[str] = frozenset()
    point_max: Mapping[str, Decimal] = field(default_factory=dict)
    suggested: Mapping[str, Decimal] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The pipeline's own: the parsed payload, the scoring points, what the effects need.
    payload: Payload = field(default_factory=Payload)
    points: Sequence[ScoringPoint] = ()
    evidence_hashes: Sequence[str] = ()
    evidence_ids: Sequence[int] = ()
    # The indicator's check points (核查要点): [{"code", "text", "method"}].
    check_points: Sequence[Mapping[str, str]] = ()
    lateness: Lateness | None = None
    written: list[Any] = field(default_factory=list)

    @property
    def points_by_code(self) -> dict[str, ScoringPoint]:
        """The item's scoring points by code."""
        return {p.code: p for p in self.points}


class ItemFlow:
    """The model the machine drives: one item in one request's context."""

    state: State

    def __init__(self, item: Item, ctx: FlowContext) -> None:
        self.item = item
        self.ctx = ctx
        self.state = State(item.state)
        self.attached_once = False

    # -- role and department guards -------------------------------------------------
    def _require_role(self, *roles: Role) -> bool:  # one role, or two
        if not self.ctx.user.has_role(*roles):
            # The roles' Chinese names (translated with the message), not their codes.
            terms = [Term(ROLE_LABELS[r]) for r in roles]
            names: str = (
                terms[0]
                if len(terms) == 1
                else Phrase(N_("%(first)s或%(second)s"), {"first": terms[0], "second": terms[1]})
            )
            raise Forbidden(
                "需要以下角色之一：%(roles)s", code="role_required", params={"roles": names}
            )
        return True

    def is_department_member(self) -> bool:
        """Require a department user of the item's own department."""
        user = self.ctx.user
        if not is_department_member_of(user, self.item.department_id):
            raise Forbidden("只有本部门的填报人员可以执行此操作", code="not_own_department")
        return True

    def manages_own_evidence(self) -> bool:
        """Evidence is managed by the item's own department only."""
        user = self.ctx.user
        if not is_department_member_of(user, self.item.department_id):
            raise Forbidden("只有本部门的填报人员可以管理佐证材料", code="not_own_department")
        return True

    def has_known_purpose(self) -> bool:
        """An attachment is evidence, a not-involved proof (for a named point) or an appeal's."""
        payload = self.ctx.payload
        if not isinstance(payload, AttachPayload):  # pragma: no cover - the table pairs them
            return True
        if payload.purpose not in PURPOSES:
            raise InvalidValue(
                "未知的材料用途：%(purpose)s",
                code="bad_purpose",
                params={"purpose": payload.purpose},
            )
        if payload.purpose == "not_involved_proof" and not payload.sub_item:
            raise InvalidValue("不涉及证明材料须指定评分项", code="sub_item_required")
        if payload.sub_item and payload.sub_item not in self.ctx.point_max:
            raise InvalidValue(
                "评分项 %(sub_item)s 不属于本指标",
                code="unknown_sub_item",
                params={"sub_item": payload.sub_item},
            )
        return True

    def is_not_own_department(self) -> bool:
        """Refuse office actions on the acting user's own department (conflict of interest)."""
        if is_own_department(self.ctx.user, self.item.department_id):
            raise Forbidden("不能以审核人员身份处理本部门的考核事项", code="own_department")
        return True

    def is_not_own_submission(self) -> bool:
        """Refuse office actions to whoever did the item's department work: submitted it (in
        any round), withdrew it, attached or removed a file (a 不涉及 proof too), appealed.

        A department's member made a reviewer, verifier or scorer (a transfer to the office)
        leaves their unit, so `is_not_own_department` no longer sees them: they would judge
        their own submission or decide their own appeal. The item's row carries them
        (`contributor_ids`, read with the lock): the guard costs no query.
        """
        if self.ctx.user.id in (self.item.contributor_ids or ()):
            raise Forbidden(
                "不能审核本人曾为部门经办（提交、撤回、上传或删除材料、申诉）的考核事项，"
                "须由其他人员办理",
                code="own_submission",
            )
        return True

    def is_reviewer(self) -> bool:
        """Require the reviewer role (初审)."""
        return self._require_role(Role.REVIEWER)

    def is_verifier(self) -> bool:
        """Require the verifier role (核实)."""
        return self._require_role(Role.VERIFIER)

    def is_scorer(self) -> bool:
        """Require the scorer role (评分)."""
        return self._require_role(Role.SCORER)

    def is_reviewer_or_verifier(self) -> bool:
        """Require a reviewer, or a verifier once the item has been reviewed."""
        if self.state == State.REVIEWED:
            return self._require_role(Role.REVIEWER, Role.VERIFIER)
        return self._require_role(Role.REVIEWER)

    def is_not_round_reviewer(self) -> bool:
        """Four-eyes: the verifier of a round is not the user who reviewed it."""
        if self.item.reviewed_by_id == self.ctx.user.id:
            raise Forbidden("四眼原则：同一轮次的初审人不能担任核实人", code="four_eyes")
        return True

    def is_not_original_scorer(self) -> bool:
        """An appeal is decided by someone other than the original scorer, nor by whoever
        gave the scores appealed against (a rescore after a reopen made them its author)."""
        authors = {self.item.scored_by_id}
        if self.state == State.APPEALED:
            authors |= {s.scored_by_id for s in self.item.scores}
        if self.ctx.user.id in authors:
            if self.state != State.APPEALED:  # a correction after a reopen: no appeal
                raise Forbidden("重新开启后的更正须由原评分人以外的评分员进行", code="four_eyes")
            raise Forbidden("申诉须由原评分人以外的评分员处理", code="four_eyes")
        return True

    # -- state-of-the-item guards ---------------------------------------------------
    def has_required_evidence(self) -> bool:
        """Submit needs evidence, or per scoring point evidence or a proven not-involved claim."""
        ctx = self.ctx
        points = list(ctx.point_max)
        evidence: frozenset[str | None] = ctx.evidence_points | ctx.routine_points
        if not ctx.claimed_points:
            if not evidence:
                raise InvalidValue("提交前请至少上传一个佐证材料", code="evidence_required")
            return True
        unknown = ctx.claimed_points - set(points)
        if unknown:
            raise InvalidValue(
                "不涉及声明中的评分项不属于本指标：%(codes)s",
                params={"codes": "、".join(sorted(unknown))},
                code="unknown_sub_item",
            )
        missing_proof = sorted(ctx.claimed_points - ctx.proof_points)
        if missing_proof:
            raise InvalidValue(
                "声明不涉及的评分项须上传证明材料：%(codes)s",
                params={"codes": "、".join(missing_proof)},
                code="proof_required",
            )
        general = None in evidence
        missing = [
            p for p in points if p not in ctx.claimed_points and not general
            and p not in evidence
        ]  # fmt: skip
        if missing:
            raise InvalidValue(
                "以下评分项既无佐证材料也未声明不涉及：%(codes)s",
                params={"codes": "、".join(missing)},
                code="evidence_required",
            )
        return True

    def has_change_note(self) -> bool:
        """A resubmission after a return says what was changed (修改说明); a first one has none.

        After a withdraw (撤回) the note is optional: the withdrawal carries its own reason.
        """
        note = getattr(self.ctx.payload, "change_note", None)
        if self.state == State.RETURNED and not (note or "").strip():
            raise InvalidValue("退回后重新提交，请填写修改说明", code="change_note_required")
        if note and self.item.round == 0:
            raise InvalidValue("首次提交无需填写修改说明", code="change_note_not_applicable")
        return True

    def has_reason(self) -> bool:
        """Require a non-empty comment (return reason, appeal reason, rejection reason)."""
        if not (self.ctx.comment or "").strip():
            raise InvalidValue("请填写理由", code="reason_required")
        return True

    def has_rescore_reason(self) -> bool:
        """A rescore says why (复核说明): the department reads it beside the changed, or kept,
        scores, as it reads the reason of a rejected appeal."""
        if not (self.ctx.comment or "").strip():
            raise InvalidValue(
                "复核改分请填写复核说明：为何改分（或维持原分），部门将看到该说明",
                code="rescore_reason_required",
            )
        return True

    def has_all_rulings(self) -> bool:
        """Every not-involved claim gets a ruling at verify, and only claimed points do."""
        claimed = self.ctx.claimed_points
        given = set(self.ctx.rulings)
        extra = given - claimed
        if extra:
            raise InvalidValue(
                "以下评分项没有不涉及声明，无需认定：%(codes)s",
                params={"codes": "、".join(sorted(extra))},
                code="unknown_ruling",
            )
        missing = claimed - given
        if missing:
            raise InvalidValue(
                "请对不涉及声明作出认定：%(codes)s",
                code="ruling_required",
                params={"codes": "、".join(sorted(missing))},
            )
        return True

    def has_all_checks(self) -> bool:
        """Verify answers every check point (核查要点) of the indicator, and only those."""
        given = dict(getattr(self.ctx.payload, "checks", {}) or {})
        codes = [c["code"] for c in self.ctx.check_points]
        unknown = sorted(set(given) - set(codes))
        if unknown:
            raise InvalidValue(
                "以下核查要点不属于本指标：%(codes)s",
                code="unknown_check",
                params={"codes": "、".join(unknown)},
            )
        missing = [c for c in self.ctx.check_points if c["code"] not in given]
        if missing:
            raise InvalidValue(
                "请逐项回答核查要点：%(points)s",
                code="check_required",
                params={"points": "；".join(f"{c['code']} {c['text']}" for c in missing)},
            )
        return True

    def has_valid_scores(self) -> bool:
        """One score per scoring point, 0..max, a reason below max; upheld claims get max."""
        ctx = self.ctx
        # A reason typed for a point the indicator does not have would be lost: refused too.
        reasons = {code for code, text in ctx.deductions.items() if (text or "").strip()}
        unknown = (set(ctx.scores) | reasons) - set(ctx.point_max)
        if unknown:
            raise InvalidValue(
                "评分项不属于本指标：%(codes)s",
                code="unknown_sub_item",
                params={"codes": "、".join(sorted(unknown))},
            )
        for code, maximum in ctx.point_max.items():
            value = ctx.scores.get(code)
            if code in ctx.upheld_points:
                if value is not None and value != maximum:
                    raise InvalidValue(
                        "评分项 %(code)s 的不涉及声明已核实，应得满分 %(max)s，不能扣分",
                        params={"code": code, "max": maximum},
                        code="not_involved_full_marks",
                    )
                if code in reasons:  # its reason is 不涉及（已核实）: a typed one would be lost
                    raise InvalidValue(
                        "评分项 %(code)s 的不涉及声明已核实，记满分，无需填写扣分原因或说明",
                        params={"code": code},
                        code="not_involved_full_marks",
                    )
                continue
            if value is None:
                raise InvalidValue(
                    "缺少评分项 %(code)s 的得分", code="score_required", params={"code": code}
                )
            if value < 0 or value > maximum:
                raise InvalidValue(
                    "评分项 %(code)s 的得分须在 0 到 %(max)s 之间",
                    code="score_out_of_range",
                    params={"code": code, "max": maximum},
                )
            if value != value.quantize(Decimal("0.01")):
                raise InvalidValue(
                    "评分项 %(code)s 的得分最多两位小数",
                    code="score_precision",
                    params={"code": code},
                )
            suggested = ctx.suggested.get(code)
            if (
                suggested is not None
                and value != suggested
                and not (ctx.deductions.get(code) or "").strip()
            ):
                raise InvalidValue(
                    "评分项 %(code)s 的得分与平时考核建议分 %(suggested)s 不同，请说明理由",
                    params={"code": code, "suggested": suggested},
                    code="deviation_reason_required",
                )
            if value < maximum and not (ctx.deductions.get(code) or "").strip():
                raise InvalidValue(
                    "评分项 %(code)s 未得满分，请填写扣分原因",
                    code="deduction_reason_required",
                    params={"code": code},
                )
        return True

    def is_appealed_or_reopened(self) -> bool:
        """Rescore decides an appeal, or corrects a score after an admin reopened the results."""
        if self.state == State.APPEALED:
            return True
        if self.item.assessment.reopened_at is None:
            raise Conflict(
                "已评分事项只能通过申诉复核，或在管理员重新开启后更正", code="invalid_state"
            )
        return True

    def is_first_appeal(self) -> bool:
        """A department may appeal an item once."""
        if self.item.appeal_count > 0:
            raise Conflict("该事项已申诉过一次，不能再次申诉", code="appeal_used")
        return True

    def is_within_appeal_window(self) -> bool:
        """Appeals are taken only while the assessment's appeal window is open, and only
        against scores the department can see: while scores are hidden until publication (the
        default), a window set ahead (`set_appeal_window`) opens no appeal before the 公示."""
        assessment = self.item.assessment
        opens, closes = assessment.appeal_opens_at, assessment.appeal_closes_at
        if assessment.finalised_at is not None:
            # Set only by a reopen (a new publication clears it): the results are being
            # corrected, not final; appeals open again with the new publication's window.
            raise Conflict(
                "考核结果已重新开启更正，原申诉期已于 %(closes)s（北京时间）结束；"
                "重新公示后，可在新的申诉期内提出申诉",
                code="appeal_window_closed",
                params={
                    "closes": local_minute(closes or assessment.finalised_at, assessment.timezone)
                },
            )
        hidden = assessment.hide_scores_until_published and assessment.published_at is None
        if hidden or opens is None or closes is None:
            raise Conflict("考核结果尚未公示，申诉期未开始", code="appeal_window_closed")
        # When, as the publication page says it: a window set ahead of a 公示 that has started
        # was refused as 「尚未公示」, and a closed one did not say since when.
        if self.ctx.now < opens:
            raise Conflict(
                "申诉期自 %(opens)s（北京时间）开始，届时方可提出申诉",
                code="appeal_window_closed",
                params={"opens": local_minute(opens, assessment.timezone)},
            )
        if self.ctx.now >= closes:
            raise Conflict(
                "申诉期已于 %(closes)s（北京时间）结束，不能再提出申诉",
                code="appeal_window_closed",
                params={"closes": local_minute(closes, assessment.timezone)},
            )
        return True


def _machine_rows(*, probe: bool) -> list[dict[str, Any]]:
    """The table as `transitions` wants it; a probe leaves out the payload guards."""
    return [
        {
            "trigger": TRIGGER_NAMES[t.trigger],
            "source": list(t.sources),
            "dest": t.dest,  # None: an internal transition, the state stays
            "conditions": [g for g in t.guards if not (probe and g in PAYLOAD_GUARDS)],
        }
        for t in ROWS
    ]


_MACHINES = threading.local()


def _machine(probe: bool) -> Machine:
    """This thread's machine (one for firing, one for probes), built once from the table.

    A machine per thread, rather than one shared by every request, keeps threaded workers
    independent; adding and removing a model costs a fraction of building a machine.
    """
    name = "probe" if probe else "fire"
    machine: Machine | None = getattr(_MACHINES, name, None)
    if machine is None:
        machine = Machine(
            model=None,
            states=State,
            initial=State.DRAFT,
            transitions=_machine_rows(probe=probe),
            auto_transitions=False,
            ignore_invalid_triggers=False,
            send_event=False,
        )
        setattr(_MACHINES, name, machine)
    return machine


@contextmanager
def attached(flow: ItemFlow, *, probe: bool = False) -> Iterator[ItemFlow]:
    """Attach this thread's machine to the flow for the duration of the block."""
    machine = _machine(probe)
    if flow.attached_once:
        raise RuntimeError("an ItemFlow is attached to a machine once")  # pragma: no cover
    flow.attached_once = True
    machine.add_model(flow, initial=flow.state)
    try:
        yield flow
    finally:
        machine.remove_model(flow)


def wrong_state(row: Transition, state: State) -> Conflict:
    """The refusal of an action the item's state does not allow."""
    if row.wrong_state is not None:
        return Conflict(row.wrong_state, code="invalid_state")
    return Conflict(
        "当前状态（%(state)s）不允许执行“%(action)s”",
        code="invalid_state",
        params={"state": Term(STATE_LABELS[state]), "action": Term(row.label)},
    )


def fire(flow: ItemFlow, action: str) -> State:
    """Fire `action` on the flow; return the new state or raise a DomainError."""
    if action not in TRIGGER_NAMES:
        raise InvalidValue(
            "未知的操作：%(action)s", code="unknown_action", params={"action": action}
        )
    row = ROW_OF[action]
    if flow.attached_once:
        raise RuntimeError("an ItemFlow is attached to a machine once")  # pragma: no cover
    flow.attached_once = True
    # The machine's event fires on the flow without adding the flow to the machine as a model
    # (which binds a method per trigger and state to it, and costs more than the transition).
    event = _machine(probe=False).events[TRIGGER_NAMES[action]]
    try:
        ok = event.trigger(flow)
    except MachineError as exc:
        raise wrong_state(row, flow.state) from exc
    if not ok:  # pragma: no cover - guards raise instead of returning False
        raise Conflict(
            "不允许执行“%(action)s”", code="guard_failed", params={"action": Term(row.label)}
        )
    return flow.state


def probe(flow: ItemFlow, action: str, *, with_payload: bool = False) -> None:
    """Check whether `action` could be taken now; the payload's checks only `with_payload`.

    Raise the DomainError the action would raise; change nothing (the machine's `may_`).
    """
    row = ROW_OF[action]
    if flow.state not in row.sources:
        raise wrong_state(row, flow.state)
    with attached(flow, probe=not with_payload):
        if not getattr(flow, f"may_{TRIGGER_NAMES[action]}")():  # pragma: no cover
            raise Conflict(
                "不允许执行“%(action)s”", code="guard_failed", params={"action": Term(row.label)}
            )


def allowed_actions(item: Item, ctx: FlowContext) -> list[str]:
    """Return the workflow actions this user could take now (payload checks are left out).

    Each probe gets a flow of its own: a machine binds its triggers to the model object once,
    and a flow is never attached twice (to a second machine it would keep the first one's).
    """
    result = []
    for t in TRANSITIONS:
        if State(item.state) not in t.sources:
            continue
        try:
            probe(ItemFlow(item, ctx), t.trigger)
        except (Forbidden, Conflict, InvalidValue):
            continue
        result.append(t.trigger)
    return result
