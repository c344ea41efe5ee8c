"""Item operations: one verb, one operation.

Each checks permission through the machine's guards, fires the trigger, applies its side
effects, writes the audit event and flushes. Operations never commit: the request or
command boundary commits once, and any error rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session, selectinload

from workflow.assessments import ensure_not_final
from workflow.audit import canonical_json, record_event
from workflow.calendar import ensure_submission_allowed
from workflow.errors import BadRequest, Conflict, InvalidValue, NotFound
from workflow.machine import ACTIONS, FlowContext, ItemFlow, allowed_actions, fire
from workflow.models import (
    Evidence,
    IdempotencyRecord,
    Item,
    NotInvolvedClaim,
    RoutineRecord,
    Score,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.permissions import can_read_item
from workflow.security_log import hidden_from
from workflow.states import State

MAX_COMMENT = 5000
MAX_IDEMPOTENCY_KEY = 200


@dataclass
class TransitionRequest:
    """What a client asks of an item: the action and its payload."""

    action: str
    version: int
    comment: str | None = None
    scores: Mapping[str, Any] = field(default_factory=dict)
    deductions: Mapping[str, Any] = field(default_factory=dict)
    not_involved: Iterable[str] = ()
    rulings: Mapping[str, Any] = field(default_factory=dict)


def parse_points(value: Any, code: str) -> Decimal:
    """Accept a JSON number or decimal string as points; refuse anything else (422).

    A value with a minus sign is refused even when it is zero ("-0", "-0.00"), so that no
    negative zero reaches the scores, the audit payload or a notice.
    """
    if isinstance(value, bool) or value is None:
        raise InvalidValue(f"评分项 {code} 的得分无效", code="invalid_score")
    try:
        points = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise InvalidValue(f"评分项 {code} 的得分不是数字", code="invalid_score") from exc
    if not points.is_finite():
        raise InvalidValue(f"评分项 {code} 的得分不是有限数", code="invalid_score")
    if points.is_signed():  # "-0" too: a minus sign on a score is a slip, never silently 0
        raise InvalidValue(
            f"评分项 {code} 的得分不能为负数（不能带负号，包括 -0）", code="score_out_of_range"
        )
    return points


def _clean_text(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{what}必须是文本", code="invalid_type")
    text = value.strip()
    if len(text) > MAX_COMMENT:
        raise InvalidValue(f"{what}过长（最多 {MAX_COMMENT} 字）", code="too_long")
    return text or None


def _serialise_sqlite_writer(session: Session, item_id: int) -> None:
    """Take SQLite's write lock now, before anything is read under the item's "lock".

    SQLite has no row locks and ignores FOR UPDATE; a no-op write opens the transaction and
    takes the database's single write lock, so writers queue here exactly as PostgreSQL's
    FOR UPDATE makes them queue on the item row, and every later read sees the newest data.
    """
    table = cast(Table, Item.__table__)
    session.execute(update(table).where(table.c.id == item_id).values(id=table.c.id))


def get_item(session: Session, item_id: int, *, for_update: bool = False) -> Item:
    """Load an item (locked for update when asked) or raise NotFound.

    With `for_update` concurrent writers of the item queue up until this transaction ends:
    SELECT … FOR UPDATE on PostgreSQL, the database write lock on SQLite.
    """
    stmt = (
        select(Item)
        .where(Item.id == item_id)
        .options(selectinload(Item.scores), selectinload(Item.claims))
    )
    if for_update:
        if session.get_bind().dialect.name == "sqlite":
            _serialise_sqlite_writer(session, item_id)
        stmt = stmt.with_for_update(of=Item).execution_options(populate_existing=True)
    item = session.execute(stmt).scalar_one_or_none()
    if item is None:
        raise NotFound("考核事项不存在", code="item_not_found")
    return item


def get_readable_item(session: Session, item_id: int, user: User) -> Item:
    """Load an item the user may read; another department's item is a 404, not a 403."""
    item = get_item(session, item_id)
    if not can_read_item(user, item):
        hidden_from(user, "item", item.id, department_id=item.department_id)
        raise NotFound("考核事项不存在", code="item_not_found")
    return item


def scoring_points_of(session: Session, item: Item) -> list[ScoringPoint]:
    """Return the item's scoring points in scheme order."""
    return list(
        session.execute(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id == item.indicator_id)
            .order_by(ScoringPoint.position)
        ).scalars()
    )


def routine_kinds(item: Item, point: ScoringPoint) -> list[str]:
    """Return the routine record kinds that feed a scoring point (empty if not routine)."""
    if not point.routine:
        return []
    spec = (item.assessment.routine_config or {}).get("suggestion", {}).get(point.code) or {}
    kinds = spec.get("kinds") or ([spec["kind"]] if spec.get("kind") else [point.routine])
    return [str(k) for k in kinds]


def routine_points_with_records(
    session: Session, item: Item, points: list[ScoringPoint]
) -> frozenset[str]:
    """Return the routine-fed points of the item that have live (not rejected) records."""
    wanted = {p.code: routine_kinds(item, p) for p in points if p.routine}
    if not wanted:
        return frozenset()
    kinds = {k for ks in wanted.values() for k in ks}
    present = set(
        session.execute(
            select(RoutineRecord.kind)
            .where(
                RoutineRecord.assessment_id == item.assessment_id,
                RoutineRecord.department_id == item.department_id,
                RoutineRecord.kind.in_(kinds),
                RoutineRecord.status.in_(("submitted", "accepted")),
            )
            .distinct()
        ).scalars()
    )
    return frozenset(code for code, ks in wanted.items() if present.intersection(ks))


def build_context(
    session: Session,
    item: Item,
    user: User,
    points: list[ScoringPoint] | None = None,
    **kw: Any,
) -> FlowContext:
    """Gather the facts the guards need: evidence, claims, rulings, maxima."""
    if points is None:
        points = scoring_points_of(session, item)
    code_of = {p.id: p.code for p in points}
    live = session.execute(
        select(Evidence.scoring_point_id, Evidence.purpose).where(
            Evidence.item_id == item.id, Evidence.removed_at.is_(None)
        )
    ).all()
    evidence_points = frozenset(
        code_of.get(sp) if sp is not None else None for sp, purpose in live if purpose == "evidence"
    )
    proof_points = frozenset(
        code_of[sp] for sp, purpose in live if purpose == "not_involved_proof" and sp in code_of
    )
    claimed = frozenset(code_of[c.scoring_point_id] for c in item.claims)
    routine_points = routine_points_with_records(session, item, points)
    upheld = frozenset(code_of[c.scoring_point_id] for c in item.claims if c.is_upheld)
    return FlowContext(
        user=user,
        evidence_points=evidence_points,
        routine_points=routine_points,
        proof_points=proof_points,
        claimed_points=claimed,
        upheld_points=upheld,
        point_max={p.code: p.max_points for p in points},
        **kw,
    )


def actions_for(session: Session, item: Item, user: User) -> list[str]:
    """Return the actions the user may take on the item now (for the UI and the API)."""
    if not user.is_active or not can_read_item(user, item):
        return []
    return allowed_actions(item, build_context(session, item, user))


def _request_hash(item_id: int, req: TransitionRequest) -> str:
    body = {
        "item": item_id,
        "action": req.action,
        "version": req.version,
        "comment": req.comment,
        "scores": {k: str(v) for k, v in dict(req.scores).items()},
        "deductions": dict(req.deductions),
        "not_involved": sorted(req.not_involved),
        "rulings": dict(req.rulings),
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def transition_item(
    session: Session,
    item_id: int,
    user: User,
    req: TransitionRequest,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Item:
    """Apply one workflow action to an item, audited, or raise a DomainError.

    The item row is locked for the transaction, so concurrent requests on one item queue
    up; the second sees the new version and gets a 409. `now` fixes the clock for tests.
    """
    now = now or utcnow()
    if req.action not in ACTIONS:
        raise InvalidValue(f"未知的操作：{req.action}", code="unknown_action")
    if isinstance(req.version, bool) or not isinstance(req.version, int):
        raise BadRequest("缺少或无效的 version（整数）", code="version_required")
    if not user.is_active:
        raise NotFound("考核事项不存在", code="item_not_found")
    # One locked load: concurrent requests on this item queue here.
    item = get_item(session, item_id, for_update=True)
    if not can_read_item(user, item):
        hidden_from(user, "item", item.id, department_id=item.department_id)
        raise NotFound("考核事项不存在", code="item_not_found")

    key_hash = None
    if idempotency_key is not None:
        if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise BadRequest("Idempotency-Key 无效", code="bad_idempotency_key")
        key_hash = _request_hash(item_id, req)
        seen = session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user.id, IdempotencyRecord.key == idempotency_key
            )
        ).scalar_one_or_none()
        if seen is not None:
            if seen.request_hash != key_hash:
                raise InvalidValue(
                    "该 Idempotency-Key 已用于另一个请求", code="idempotency_key_reused"
                )
            return item

    # Results that are final change only after an admin's reopen.
    ensure_not_final(item.assessment)

    if req.version != item.version:
        raise Conflict(
            f"事项已被他人更新（当前版本 {item.version}，请求版本 {req.version}），请刷新后重试",
            code="stale_version",
        )

    comment = _clean_text(req.comment, "说明")
    scores = {str(k): parse_points(v, str(k)) for k, v in dict(req.scores).items()}
    deductions = {str(k): _clean_text(v, "扣分原因") or "" for k, v in dict(req.deductions).items()}
    rulings: dict[str, bool] = {}
    for code, value in dict(req.rulings).items():
        if not isinstance(value, bool):
            raise BadRequest(f"评分项 {code} 的认定必须是 true 或 false", code="invalid_type")
        rulings[str(code)] = value
    not_involved = sorted({str(c) for c in req.not_involved})

    points = scoring_points_of(session, item)
    by_code = {p.code: p for p in points}
    if req.action == "submit":
        _replace_claims(session, item, user, not_involved, by_code)
    elif not_involved:
        raise InvalidValue("只有提交时可以声明不涉及", code="not_involved_on_submit_only")

    suggested: dict[str, Decimal] = {}
    if req.action in ("score", "rescore"):
        from workflow.routine import suggestions_for  # routine imports nothing of actions

        suggested = {
            code: s.points
            for code, s in suggestions_for(
                session, item.assessment, item.department_id, now
            ).items()
            if code in by_code
        }
    ctx = build_context(
        session,
        item,
        user,
        points,
        comment=comment,
        scores=scores,
        deductions=deductions,
        rulings=rulings,
        suggested=suggested,
        now=now,
    )
    lateness = None
    if req.action == "submit":
        lateness = ensure_submission_allowed(session, item.assessment, item, ctx.now)
    from_state = item.state
    new_state = fire(ItemFlow(item, ctx), req.action)
    with session.no_autoflush:  # one UPDATE, so the version moves by exactly one
        payload = _apply_effects(session, item, user, req.action, ctx, by_code)
        if lateness is not None:  # a first submission: the calendar's verdict is kept
            item.submit_due_on = lateness.due_on
            item.is_submitted_late = lateness.is_late
            payload["submit_due_on"] = lateness.due_on
            payload["is_late"] = lateness.is_late
            payload["working_days_late"] = lateness.working_days_late
        item.state = new_state.value
        item.updated_at = ctx.now
    session.flush()  # bumps item.version (version_id_col)
    payload["version"] = item.version
    payload["round"] = item.round
    record_event(
        session,
        actor=user,
        action=req.action,
        target_type="item",
        target_id=item.id,
        item_id=item.id,
        department_id=item.department_id,
        from_state=from_state,
        to_state=new_state.value,
        comment=comment,
        payload=payload,
    )
    if idempotency_key is not None and key_hash is not None:
        session.add(
            IdempotencyRecord(
                user_id=user.id,
                key=idempotency_key,
                request_hash=key_hash,
                item_id=item.id,
                result_version=item.version,
            )
        )
        session.flush()
    return item


def _replace_claims(
    session: Session,
    item: Item,
    user: User,
    codes: list[str],
    by_code: Mapping[str, ScoringPoint],
) -> None:
    """Replace the item's not-involved claims with this submission's (rulings start afresh)."""
    unknown = [c for c in codes if c not in by_code]
    if unknown:
        raise InvalidValue(
            f"不涉及声明中的评分项不属于本指标：{'、'.join(unknown)}", code="unknown_sub_item"
        )
    if State(item.state) not in (State.DRAFT, State.RETURNED):
        return  # the machine refuses the submit itself, with the proper message
    for claim in list(item.claims):
        item.claims.remove(claim)
        session.delete(claim)
    session.flush()
    for code in codes:
        item.claims.append(
            NotInvolvedClaim(scoring_point_id=by_code[code].id, claimed_by_id=user.id)
        )
    session.flush()


def _apply_effects(
    session: Session,
    item: Item,
    user: User,
    action: str,
    ctx: FlowContext,
    by_code: Mapping[str, ScoringPoint],
) -> dict[str, Any]:
    """Apply what an action changes besides the state; return the audit payload."""
    payload: dict[str, Any] = {}
    now = ctx.now
    if action == "submit":
        item.round += 1
        item.submitted_at = now
        item.reviewed_by_id = None
        item.verified_by_id = None
        item.return_reason = None
        hashes = session.execute(
            select(Evidence.sha256)
            .where(Evidence.item_id == item.id, Evidence.removed_at.is_(None))
            .order_by(Evidence.id)
        ).scalars()
        payload["evidence_sha256"] = list(hashes)
        payload["not_involved"] = sorted(ctx.claimed_points)
        if ctx.routine_points:
            payload["routine_points"] = sorted(ctx.routine_points)
    elif action == "review":
        item.reviewed_by_id = user.id
    elif action == "return":
        item.return_reason = ctx.comment
        item.reviewed_by_id = None
    elif action == "verify":
        item.verified_by_id = user.id
        code_of = {p.id: c for c, p in by_code.items()}
        for claim in item.claims:
            claim.is_upheld = ctx.rulings[code_of[claim.scoring_point_id]]
            claim.ruled_by_id = user.id
            claim.ruled_at = now
        payload["rulings"] = dict(ctx.rulings)
    elif action in ("score", "rescore"):
        if action == "score":
            item.scored_by_id = user.id
            item.scored_at = now
        payload.update(_write_scores(session, item, user, ctx, by_code))
    elif action == "appeal":
        item.appeal_count += 1
        item.appeal_reason = ctx.comment
        item.appealed_at = now
    return payload


def _write_scores(
    session: Session,
    item: Item,
    user: User,
    ctx: FlowContext,
    by_code: Mapping[str, ScoringPoint],
) -> dict[str, Any]:
    """Write one Score per scoring point and the item total; return the audited figures."""
    existing = {s.scoring_point_id: s for s in item.scores}
    written: dict[str, Decimal] = {}
    reasons: dict[str, str] = {}
    for code, point in by_code.items():
        if code in ctx.upheld_points:
            value, reason = point.max_points, "不涉及（已核实）"
        else:
            value = ctx.scores[code]
            reason = (ctx.deductions.get(code) or "").strip() if value < point.max_points else ""
        value = value.quantize(Decimal("0.01"))
        row = existing.get(point.id)
        if row is None:
            row = Score(scoring_point_id=point.id, points=value, scored_by_id=user.id)
            item.scores.append(row)
        row.points = value
        row.deduction_reason = reason or None
        row.scored_by_id = user.id
        row.scored_at = ctx.now
        written[code] = value
        if reason:
            reasons[code] = reason
    total = sum(written.values(), Decimal("0.00"))
    item.total = total
    payload: dict[str, Any] = {"scores": written, "deductions": reasons, "total": total}
    if ctx.suggested:
        payload["suggested"] = dict(ctx.suggested)
    return payload


# One verb, one operation: thin names over `transition_item` for callers that know the verb.
def submit_item(session: Session, item_id: int, user: User, version: int, **kw: Any) -> Item:
    """Submit an item with its evidence (and optional not-involved claims)."""
    return transition_item(session, item_id, user, TransitionRequest("submit", version, **kw))


def review_item(session: Session, item_id: int, user: User, version: int, **kw: Any) -> Item:
    """Pass an item at first review (初审)."""
    return transition_item(session, item_id, user, TransitionRequest("review", version, **kw))


def return_item(
    session: Session, item_id: int, user: User, version: int, comment: str, **kw: Any
) -> Item:
    """Send an item back for revision with a reason."""
    req = TransitionRequest("return", version, comment=comment, **kw)
    return transition_item(session, item_id, user, req)


def verify_item(session: Session, item_id: int, user: User, version: int, **kw: Any) -> Item:
    """Confirm an item's materials (核实) and rule on not-involved claims."""
    return transition_item(session, item_id, user, TransitionRequest("verify", version, **kw))


def score_item(session: Session, item_id: int, user: User, version: int, **kw: Any) -> Item:
    """Score a verified item, one score per scoring point."""
    return transition_item(session, item_id, user, TransitionRequest("score", version, **kw))


def appeal_item(
    session: Session, item_id: int, user: User, version: int, comment: str, **kw: Any
) -> Item:
    """Appeal a scored item once, within the appeal window."""
    req = TransitionRequest("appeal", version, comment=comment, **kw)
    return transition_item(session, item_id, user, req)


def rescore_item(session: Session, item_id: int, user: User, version: int, **kw: Any) -> Item:
    """Decide an appeal by scoring the item again."""
    return transition_item(session, item_id, user, TransitionRequest("rescore", version, **kw))


def reject_appeal_item(
    session: Session, item_id: int, user: User, version: int, comment: str, **kw: Any
) -> Item:
    """Decide an appeal by keeping the scores, with a reason."""
    req = TransitionRequest("reject_appeal", version, comment=comment, **kw)
    return transition_item(session, item_id, user, req)
