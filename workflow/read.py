"""The engine's read model: what an item page and the item endpoint show, in a few queries.

`item_detail` loads an item with its assessment, department, indicator, claims and scores in
one query, its scoring points in one, its evidence with uploaders in one (removed files too
once the item was resubmitted), the routine records of a routine-fed indicator in one and
its history (with the actors) in one, and computes the allowed actions and the latest
resubmission's changes (`round_changes`), the verifier's checklist answers
(`latest_checks`) and, for a scored routine-fed item, whether its suggestions changed since
its latest score (`routine_drift`) from those same rows: at most five statements (without the
history, a resubmitted or verified item reads its submit/return/withdraw/verify events, and a
routine item its score/rescore events too, instead); a sixth only when the suggestion moved,
for the record kinds and periods that changed since the score.
The API, the portal and the CLI render it; none of them queries an item's parts on its own.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import ColumnElement, ScalarSelect, and_, func, null, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from workflow.assessments import assessment_status
from workflow.errors import NotFound
from workflow.machine import FlowContext, allowed_actions
from workflow.models import (
    Assessment,
    AuditEvent,
    Department,
    Evidence,
    Indicator,
    Item,
    NotInvolvedClaim,
    RoutineRecord,
    Score,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.notices import scores_visible_to
from workflow.permissions import can_read_item, is_department_member_of
from workflow.pipeline import routine_kinds
from workflow.routine import SCORE_ACTIONS, RoutineDrift, routine_drift
from workflow.security_log import hidden_from
from workflow.states import State

EDITABLE_STATES = (State.DRAFT.value, State.RETURNED.value)
#: Routine records that stand as evidence (awaiting review, or accepted).
LIVE_ROUTINE = ("submitted", "accepted")


@dataclass
class PointDetail:
    """A scoring point with what the item has on it: claim, ruling, score, evidence."""

    point: ScoringPoint
    claim: NotInvolvedClaim | None = None
    score: Score | None = None
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def is_claimed(self) -> bool:
        """Whether the department declared the point not involved (不涉及)."""
        return self.claim is not None

    @property
    def is_upheld(self) -> bool | None:
        """The verifier's ruling on the claim (None: no claim or not ruled yet)."""
        return self.claim.is_upheld if self.claim is not None else None


@dataclass
class HistoryEvent:
    """One audit event of the item, with the acting user when the account still exists."""

    event: AuditEvent
    user: User | None


@dataclass
class RoundChanges:
    """What the latest resubmission changed since the previous submission (for the reviewer).

    `change_note` is the department's 修改说明 (required after a return, optional after a
    withdraw). `ended_by` says what ended the previous round ("return" or "withdraw") and
    `ended_reason` gives its reason. `added` and `removed` are the evidence rows (any
    purpose) present at this submission and not at the previous one, and the reverse,
    compared by evidence id (by SHA-256 for rounds submitted before the ids were recorded).
    """

    round: int
    previous_round: int
    change_note: str | None
    ended_by: str | None
    ended_reason: str | None
    added: list[Evidence]
    removed: list[Evidence]


#: The events `round_changes` and `latest_checks` read (the API's item detail loads only these).
ROUND_EVENTS = ("submit", "return", "withdraw", "verify")
#: States an item reaches only through a verification (its checklist answers stand).
VERIFIED_STATES = (State.VERIFIED.value, State.SCORED.value, State.APPEALED.value)


@dataclass(frozen=True)
class CheckResult:
    """One check point (核查要点) as the verifier answered it (is the answer `yes`, `no`, `na`)."""

    code: str
    text: str
    method: str
    answer: str
    note: str | None


def latest_checks(events: Sequence[AuditEvent]) -> list[CheckResult] | None:
    """The checklist of the verification after the latest submission (None: none yet, or a
    verification without check points)."""
    last = None
    for e in events:
        if e.action == "submit":
            last = None
        elif e.action == "verify":
            last = e
    if last is None:
        return None
    checks = _payload(last).get("checks")
    if not isinstance(checks, list):
        return None
    return [
        CheckResult(
            str(c.get("code", "")),
            str(c.get("text", "")),
            str(c.get("method", "")),
            str(c.get("answer", "")),
            c.get("note") if isinstance(c.get("note"), str) else None,
        )
        for c in checks
        if isinstance(c, dict)
    ]


def latest_verify_payload() -> ScalarSelect[str]:
    """The payload of the item's latest verification, as a column of a query over `Item` (a
    correlated subquery on `ix_audit_item_seq`: a list's rows carry it in the same statement).
    NULL for an item never verified; an item is verified once per submission and never goes
    back, so the latest verification is the one after the latest submission."""
    return (
        select(AuditEvent.payload)
        .where(AuditEvent.item_id == Item.id, AuditEvent.action == "verify")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
        .correlate(Item)
        .scalar_subquery()
    )


#: A check point answered 否 in a verification's payload. The payload is the chain's canonical
#: JSON (`workflow.audit.canonical_json`: sorted keys, no spaces), whose strings escape every
#: quote: the text occurs only where a check's `answer` is "no" (what `failed_checks_of` reads).
_FAILED_ANSWER = '"answer":"no"'


def has_failed_checks() -> ColumnElement[bool]:
    """Keep the items whose latest verification answered a check point 否 (`failed_checks`
    not empty), as a condition of a query over `Item` (the 只看有“否” filter): only items past
    verification have one, so the others are dropped before the payload is looked up."""
    return and_(
        Item.state.in_(VERIFIED_STATES),
        latest_verify_payload().like(f"%{_FAILED_ANSWER}%"),
    )


def failed_checks_of(payload: str | None) -> list[str] | None:
    """The check points (核查要点) a verification's payload answered 否, in the scheme's order:
    what the scorer deducts for. None when there is no verification with check points."""
    try:
        value = json.loads(payload) if payload else None
    except ValueError:
        return None
    checks = value.get("checks") if isinstance(value, dict) else None
    if not isinstance(checks, list):
        return None
    return [
        str(c.get("code", "")) for c in checks if isinstance(c, dict) and c.get("answer") == "no"
    ]


def _payload(event: AuditEvent) -> dict[str, object]:
    try:
        value = json.loads(event.payload or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _keys(payload: dict[str, object], name: str) -> Counter[object]:
    value = payload.get(name)
    return Counter(value) if isinstance(value, list) else Counter()


def round_changes(events: Sequence[AuditEvent], files: Sequence[Evidence]) -> RoundChanges | None:
    """Compare the item's last two submit events; None before a second submission.

    `events` are the item's events in sequence order (others than ROUND_EVENTS are passed
    over), `files` every evidence row of the item, removed ones included.
    """
    submits = [e for e in events if e.action == "submit"]
    if len(submits) < 2:
        return None
    previous, last = submits[-2], submits[-1]
    before, after = _payload(previous), _payload(last)
    ended = [
        e for e in events if previous.seq < e.seq < last.seq and e.action in ("return", "withdraw")
    ]
    end = ended[-1] if ended else None
    by_id = {f.id: f for f in files}
    if "evidence_ids" in before and "evidence_ids" in after:
        old, new = _keys(before, "evidence_ids"), _keys(after, "evidence_ids")

        def row(key: object, removed: bool) -> Evidence | None:
            return by_id.get(key) if isinstance(key, int) else None
    else:  # rounds submitted before the ids were recorded: compare the hashes
        old, new = _keys(before, "evidence_sha256"), _keys(after, "evidence_sha256")

        def row(key: object, removed: bool) -> Evidence | None:
            same = [f for f in files if f.sha256 == key]
            preferred = [f for f in same if (f.removed_at is not None) == removed]
            found = preferred or same
            return found[0] if found else None

    added = [r for k in (new - old).elements() if (r := row(k, False)) is not None]
    removed = [r for k in (old - new).elements() if (r := row(k, True)) is not None]
    note = after.get("change_note")
    return RoundChanges(
        round=int(str(after.get("round") or 0)),
        previous_round=int(str(before.get("round") or 0)),
        change_note=note if isinstance(note, str) else None,
        ended_by=end.action if end is not None else None,
        ended_reason=end.comment if end is not None else None,
        added=sorted(added, key=lambda f: f.id),
        removed=sorted(removed, key=lambda f: f.id),
    )


@dataclass
class ItemDetail:
    """Everything about one item that a page, the API or the CLI shows to one user."""

    item: Item
    points: list[PointDetail]
    evidence: list[Evidence]
    actions: list[str]
    scores_hidden: bool
    can_edit_evidence: bool
    routine_kinds: list[str]
    routine_records: list[RoutineRecord]
    history: list[HistoryEvent]
    #: The latest resubmission against the previous round (None before a second one).
    round_changes: RoundChanges | None = None
    #: The verifier's answers to the check points (None before verification).
    checks: list[CheckResult] | None = None
    #: A scored routine item whose suggestions changed since its latest score (None: they
    #: did not, or the user may not see scores yet).
    routine_drift: RoutineDrift | None = None

    @property
    def check_points(self) -> list[dict[str, str]]:
        """The indicator's check points (核查要点) the verifier answers."""
        return list(self.item.indicator.check_points or [])

    @property
    def live_routine_records(self) -> list[RoutineRecord]:
        """The routine records that stand as the item's evidence."""
        return [r for r in self.routine_records if r.status in LIVE_ROUTINE]

    def score_of(self, p: PointDetail) -> Decimal | None:
        """The point's score, unless scores are hidden from this user."""
        return None if self.scores_hidden or p.score is None else p.score.points


def load_item(session: Session, item_id: int) -> Item:
    """The item with its assessment, department, indicator, claims and scores: one query."""
    item = (
        session.execute(
            select(Item)
            .where(Item.id == item_id)
            .options(
                joinedload(Item.assessment),
                joinedload(Item.department),
                joinedload(Item.indicator),
                joinedload(Item.claims),
                joinedload(Item.scores),
            )
            .execution_options(populate_existing=True)
        )
        .unique()
        .scalar_one_or_none()
    )
    if item is None:
        raise NotFound("考核事项不存在", code="item_not_found")
    return item


def item_detail(
    session: Session,
    item_id: int,
    user: User,
    *,
    history: bool = True,
    now: dt.datetime | None = None,
) -> ItemDetail:
    """Return the item as `user` may see it (another department's item is a 404)."""
    item = load_item(session, item_id)
    if not user.is_active or not can_read_item(user, item):
        hidden_from(user, "item", item.id, department_id=item.department_id)
        raise NotFound("考核事项不存在", code="item_not_found")
    points = list(
        session.execute(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id == item.indicator_id)
            .order_by(ScoringPoint.position)
        ).scalars()
    )
    # A resubmitted item needs its removed files too (what the last round removed).
    resubmitted = item.round >= 2
    wanted = [Evidence.item_id == item.id]
    if not resubmitted:
        wanted.append(Evidence.removed_at.is_(None))
    files = list(
        session.execute(
            select(Evidence)
            .where(*wanted)
            .options(joinedload(Evidence.uploaded_by))
            .order_by(Evidence.id)
        ).scalars()
    )
    evidence = [f for f in files if f.removed_at is None]
    by_id = {p.id: p for p in points}
    for ev in files:  # the point is one of these: no query per file
        if ev.scoring_point_id is not None and ev.scoring_point_id in by_id:
            set_committed_value(ev, "scoring_point", by_id[ev.scoring_point_id])
    kinds_of = {p.code: routine_kinds(item.assessment, p) for p in points if p.routine}
    kinds = sorted({k for ks in kinds_of.values() for k in ks})
    records: list[RoutineRecord] = []
    if kinds:
        records = list(
            session.execute(
                select(RoutineRecord)
                .where(
                    RoutineRecord.assessment_id == item.assessment_id,
                    RoutineRecord.department_id == item.department_id,
                    RoutineRecord.kind.in_(kinds),
                    RoutineRecord.status != "withdrawn",
                )
                .options(joinedload(RoutineRecord.files))
                .order_by(RoutineRecord.period, RoutineRecord.id)
            )
            .unique()
            .scalars()
        )
    events: list[HistoryEvent] = []
    if history:
        rows = session.execute(
            select(AuditEvent, User)
            .outerjoin(User, User.username == AuditEvent.actor)
            .where(AuditEvent.item_id == item.id)
            .order_by(AuditEvent.seq)
        ).all()
        events = [HistoryEvent(e, u) for e, u in rows]
    changes, checks = None, None
    round_events: list[AuditEvent] = [h.event for h in events]
    if resubmitted or item.state in VERIFIED_STATES:
        if not history:  # the score events too: a routine item's drift reads the latest
            round_events = list(
                session.execute(
                    select(AuditEvent)
                    .where(
                        AuditEvent.item_id == item.id,
                        AuditEvent.action.in_(ROUND_EVENTS + (SCORE_ACTIONS if kinds else ())),
                    )
                    .order_by(AuditEvent.seq)
                ).scalars()
            )
        changes = round_changes(round_events, files) if resubmitted else None
        checks = latest_checks(round_events)
    hidden = not scores_visible_to(user, item.assessment)
    drift = None
    scored = [e for e in round_events if e.action in SCORE_ACTIONS]
    if kinds and scored and not hidden:
        # The records loaded above are the department's of the points' kinds: no query.
        upheld = {c.scoring_point_id for c in item.claims if c.is_upheld}
        drift = routine_drift(
            session,
            item,
            points,
            now or utcnow(),
            event=scored[-1],
            records=records,
            excluded=frozenset(p.code for p in points if p.id in upheld),
        )

    claims = {c.scoring_point_id: c for c in item.claims}
    scores = {s.scoring_point_id: s for s in item.scores}
    details = [
        PointDetail(
            point=p,
            claim=claims.get(p.id),
            score=scores.get(p.id),
            evidence=[e for e in evidence if e.scoring_point_id == p.id],
        )
        for p in points
    ]
    live_kinds = {r.kind for r in records if r.status in LIVE_ROUTINE}
    code_of = {p.id: p.code for p in points}
    ctx = FlowContext(
        user=user,
        evidence_points=frozenset(
            code_of.get(e.scoring_point_id) if e.scoring_point_id is not None else None
            for e in evidence
            if e.purpose == "evidence"
        ),
        proof_points=frozenset(
            code_of[e.scoring_point_id]
            for e in evidence
            if e.purpose == "not_involved_proof" and e.scoring_point_id in code_of
        ),
        routine_points=frozenset(c for c, ks in kinds_of.items() if live_kinds.intersection(ks)),
        claimed_points=frozenset(code_of[c] for c in claims if c in code_of),
        upheld_points=frozenset(code_of[c] for c, v in claims.items() if v.is_upheld),
        point_max={p.code: p.max_points for p in points},
        points=points,
    )
    if now is not None:
        ctx.now = now
    actions = allowed_actions(item, ctx) if user.is_active else []
    return ItemDetail(
        item=item,
        points=details,
        evidence=evidence,
        actions=actions,
        scores_hidden=hidden,
        can_edit_evidence=(
            is_department_member_of(user, item.department_id) and item.state in EDITABLE_STATES
        ),
        routine_kinds=kinds,
        routine_records=records,
        history=events,
        round_changes=changes,
        checks=checks,
        routine_drift=drift,
    )


@dataclass
class QueuePage:
    """One page of an office queue: the counts per tab, the rows, the filters' choices."""

    counts: dict[str, int]
    rows: list[Item]
    has_more: bool
    departments: list[Department]
    indicators: list[Indicator]
    #: Per row of a queue after verification (待评分, 申诉), the check points its verifier
    #: answered 否 (`failed_checks_of`): the scorer sees those items first.
    failed_checks: dict[int, list[str]] = field(default_factory=dict)


def queue_conditions(
    assessment_id: int,
    state: str,
    *,
    department_id: int | None = None,
    indicator_id: int | None = None,
    overdue_states: Sequence[str] | None = None,
    failed_checks_only: bool = False,
) -> list[ColumnElement[bool]]:
    """The conditions of one queue tab with its filters (the page, and a bulk selection).

    `overdue_states`, when given, keeps only items whose stage deadline has passed (the
    states the calendar names overdue; an empty list keeps none). `failed_checks_only` keeps
    only items whose verification answered a check point 否 (`has_failed_checks`).
    """
    conditions: list[ColumnElement[bool]] = [
        Item.assessment_id == assessment_id,
        Item.state == state,
    ]
    if department_id is not None:
        conditions.append(Item.department_id == department_id)
    if indicator_id is not None:
        conditions.append(Item.indicator_id == indicator_id)
    if overdue_states is not None:
        conditions.append(Item.state.in_(list(overdue_states)))
    if failed_checks_only:
        conditions.append(has_failed_checks())
    return conditions


def queue_page(
    session: Session,
    assessment: Assessment,
    state: str,
    tab_states: Sequence[str],
    *,
    department_id: int | None = None,
    indicator_id: int | None = None,
    overdue_states: Sequence[str] | None = None,
    failed_checks_only: bool = False,
    after: int | None = None,
    size: int = 50,
) -> QueuePage:
    """A queue page in four queries: counts per tab, the page (keyset on id) with each
    item's department and indicator, and the departments and indicators to filter by."""
    filters: list[ColumnElement[bool]] = [Item.assessment_id == assessment.id]
    if department_id is not None:
        filters.append(Item.department_id == department_id)
    if indicator_id is not None:
        filters.append(Item.indicator_id == indicator_id)
    if overdue_states is not None:  # 只看逾期: the tabs count what the filter lists
        filters.append(Item.state.in_(list(overdue_states)))
    if failed_checks_only:  # 只看有“否”: likewise (the tabs before verification count none)
        filters.append(has_failed_checks())
    counts = {
        s: n
        for s, n in session.execute(
            select(Item.state, func.count())
            .where(*filters, Item.state.in_(list(tab_states)))
            .group_by(Item.state)
        ).all()
    }
    conditions = queue_conditions(
        assessment.id, state, department_id=department_id, indicator_id=indicator_id,
        overdue_states=overdue_states, failed_checks_only=failed_checks_only,
    )  # fmt: skip
    if after is not None:
        conditions.append(Item.id > after)
    # The verification's answers ride on the page's statement (no query of their own).
    found = session.execute(
        select(Item, latest_verify_payload() if state in VERIFIED_STATES else null())
        .where(*conditions)
        .options(joinedload(Item.department), joinedload(Item.indicator))
        .order_by(Item.id)
        .limit(size + 1)
    ).all()
    rows = [item for item, _ in found]
    failed = {
        item.id: codes for item, payload in found[:size] if (codes := failed_checks_of(payload))
    }
    departments = list(
        session.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position, Department.id)
        ).scalars()
    )
    indicators = list(
        session.execute(
            select(Indicator)
            .where(Indicator.assessment_id == assessment.id)
            .order_by(Indicator.position, Indicator.id)
        ).scalars()
    )
    return QueuePage(counts, rows[:size], len(rows) > size, departments, indicators, failed)


def waiting_in_other_years(
    session: Session,
    shown: Assessment,
    tab_states: Sequence[str],
    now: dt.datetime,
    *,
    department_ids: Sequence[int] | None = None,
) -> list[tuple[Assessment, dict[str, int]]]:
    """The work waiting in the other years' assessments that are not final: per assessment
    (the newest year first), its items per state of `tab_states`, for those with any; only
    the items of `department_ids` when given (a department's own, every year's).

    Once next year's assessment has started, last year's appeals during its 公示 (and any
    item still in review, or returned to its department) wait there: the newest year's
    pages name them.
    """
    conditions = [Item.assessment_id != shown.id, Item.state.in_(list(tab_states))]
    if department_ids is not None:
        conditions.append(Item.department_id.in_(list(department_ids)))
    counts: dict[int, dict[str, int]] = {}
    for assessment_id, state, n in session.execute(
        select(Item.assessment_id, Item.state, func.count())
        .where(*conditions)
        .group_by(Item.assessment_id, Item.state)
    ):
        counts.setdefault(assessment_id, {})[state] = n
    if not counts:
        return []
    # A final year keeps no work (its leftovers cannot change). Only the years with waiting
    # items are looked at: a history of final years costs the one count.
    others = session.scalars(
        select(Assessment)
        .where(Assessment.id.in_(list(counts)))
        .order_by(Assessment.year.desc(), Assessment.id.desc())
    ).all()
    return [(a, counts[a.id]) for a in others if assessment_status(a, now) != "final"]
