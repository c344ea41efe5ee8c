"""What an action changes besides the state: one function per kind of change.

Each effect gets the locked item and the command's context (the parsed payload and the facts
the pipeline loaded), changes rows, and returns what it adds to the audit event's payload.
Effects never flush, commit or write the audit event: the pipeline does, once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from workflow.db import translate_conflicts
from workflow.errors import Conflict, InvalidValue, NotFound
from workflow.models import Evidence, Item, NotInvolvedClaim, Score, utcnow
from workflow.payloads import (
    AttachPayload,
    RemovePayload,
    ScorePayload,
    SubmitPayload,
    VerifyPayload,
)

if TYPE_CHECKING:
    from workflow.machine import FlowContext

Audited = dict[str, Any]


def note_contributor(item: Item, ctx: FlowContext) -> None:
    """The department's work on the item (a submit, a withdrawal, a file attached or removed,
    an appeal): its doer joins `contributor_ids`, whom the office's guard refuses the item
    (`own_submission`). A new list, so the change is seen and goes out with the item's one
    UPDATE; nothing changes when they are listed already."""
    ids = item.contributor_ids or []
    if ctx.user.id not in ids:
        item.contributor_ids = sorted([*ids, ctx.user.id])


def replace_claims(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Submit: the claims of this submission replace the last round's (rulings start afresh)."""
    payload = cast(SubmitPayload, ctx.payload)
    by_code = ctx.points_by_code
    if item.claims:  # one DELETE; the new claims may name the same points again
        for claim in item.claims:
            session.expunge(claim)
        session.execute(delete(NotInvolvedClaim).where(NotInvolvedClaim.item_id == item.id))
        set_committed_value(item, "claims", [])
    for code in payload.not_involved:
        item.claims.append(
            NotInvolvedClaim(scoring_point_id=by_code[code].id, claimed_by_id=ctx.user.id)
        )
    return {}


def stamp_submission(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Submit: a new round, the evidence (ids and hashes) and claims it was submitted with.

    The ids let the next round be compared with this one (files added and removed).
    """
    item.round += 1
    item.submitted_at = ctx.now
    item.submitted_by_id = ctx.user.id
    note_contributor(item, ctx)
    item.reviewed_by_id = None
    item.verified_by_id = None
    item.return_reason = None
    audited: Audited = {
        "evidence_sha256": list(ctx.evidence_hashes),
        "evidence_ids": list(ctx.evidence_ids),
        "not_involved": sorted(ctx.claimed_points),
    }
    change_note = cast(SubmitPayload, ctx.payload).change_note
    if change_note:  # 修改说明: the reviewer reads it with the files added and removed
        audited["change_note"] = change_note
    if ctx.routine_points:
        audited["routine_points"] = sorted(ctx.routine_points)
    lateness = ctx.lateness
    if lateness is not None:  # a first submission: the calendar's verdict is kept
        item.submit_due_on = lateness.due_on
        item.is_submitted_late = lateness.is_late
        audited["submit_due_on"] = lateness.due_on
        audited["is_late"] = lateness.is_late
        audited["working_days_late"] = lateness.working_days_late
    return audited


def stamp_withdrawal(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Withdraw (撤回): the department takes back a submission no reviewer has acted on.

    The item is a draft again; the round counts on, so the next submit is a resubmission
    (the first submission's timeliness stands) and its evidence is compared with this one's.
    """
    item.reviewed_by_id = None
    item.verified_by_id = None
    note_contributor(item, ctx)
    return {}


def stamp_reviewer(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Review: the reviewer of this round (the verifier must be someone else)."""
    item.reviewed_by_id = ctx.user.id
    return {}


def stamp_return(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Return: the reason is kept on the item for the department to read."""
    item.return_reason = ctx.comment
    item.reviewed_by_id = None
    return {}


def rule_on_claims(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Verify: the verifier and the ruling on every not-involved claim."""
    item.verified_by_id = ctx.user.id
    code_of = {p.id: p.code for p in ctx.points}
    for claim in item.claims:
        claim.is_upheld = ctx.rulings[code_of[claim.scoring_point_id]]
        claim.ruled_by_id = ctx.user.id
        claim.ruled_at = ctx.now
    return {"rulings": dict(ctx.rulings)}


def record_checks(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Verify: the answer to each check point (核查要点), with its wording and method as the
    verifier saw them, in the scheme's order (nothing when the indicator has none)."""
    if not ctx.check_points:
        return {}
    answers = cast(VerifyPayload, ctx.payload).checks
    return {
        "checks": [
            {
                "code": c["code"],
                "text": c["text"],
                "method": c["method"],
                "answer": answers[c["code"]].answer,
                "note": answers[c["code"]].note,
            }
            for c in ctx.check_points
        ]
    }


def stamp_scorer(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Score (not rescore): the original scorer, whom an appeal may not be decided by."""
    item.scored_by_id = ctx.user.id
    item.scored_at = ctx.now
    return {}


def write_scores(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Score and rescore: one Score per scoring point and the item's total.

    A point's reason is kept at any score: below the maximum it is the deduction's reason; at
    the maximum, a note the scorer typed (why a routine point gets more than its suggestion,
    which the guard requires, or what was put right), shown with the score as 说明. It was
    dropped there, silently, the required deviation reason with it.
    """
    payload = cast(ScorePayload, ctx.payload)
    existing = {s.scoring_point_id: s for s in item.scores}
    written: dict[str, Decimal] = {}
    reasons: dict[str, str] = {}
    new_rows: list[dict[str, Any]] = []
    for point in ctx.points:
        code = point.code
        if code in ctx.upheld_points:
            value, reason = point.max_points, "不涉及（已核实）"
        else:
            value = payload.scores[code]
            reason = (payload.deductions.get(code) or "").strip()
        value = value.quantize(Decimal("0.01"))
        row = existing.get(point.id)
        if row is None:
            new_rows.append(
                {
                    "item_id": item.id,
                    "scoring_point_id": point.id,
                    "points": value,
                    "deduction_reason": reason or None,
                    "scored_by_id": ctx.user.id,
                    "scored_at": ctx.now,
                }
            )
        else:
            row.points = value
            row.deduction_reason = reason or None
            row.scored_by_id = ctx.user.id
            row.scored_at = ctx.now
        written[code] = value
        if reason:
            reasons[code] = reason
    if new_rows:
        # New rows in one Core INSERT, not through the session's unit of work (a first score
        # writes every point's row: the flush's bookkeeping cost more than the statement).
        # The item's collection loads again when read.
        with translate_conflicts():  # as a flush's unique violation would be: a 409
            session.execute(insert(cast(Table, Score.__table__)), new_rows)
        session.expire(item, ["scores"])
    total = sum(written.values(), Decimal("0.00"))
    item.total = total
    audited: Audited = {"scores": written, "deductions": reasons, "total": total}
    if ctx.suggested:
        audited["suggested"] = dict(ctx.suggested)
        # When the records gave them: a counting period running then and over now moved them.
        audited["suggested_at"] = ctx.now
    return audited


def open_appeal(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Appeal: counted (once per item), with the reason and the time."""
    item.appeal_count += 1
    item.appeal_reason = ctx.comment
    item.appealed_at = ctx.now
    item.appealed_by_id = ctx.user.id
    note_contributor(item, ctx)
    return {}


def add_evidence(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Attach: one evidence row per stored file (the audit event names them all)."""
    payload = cast(AttachPayload, ctx.payload)
    point_id = None
    if payload.sub_item:
        point = ctx.points_by_code.get(payload.sub_item)
        if point is None:
            raise InvalidValue(
                "评分项 %(sub_item)s 不属于本指标",
                code="unknown_sub_item",
                params={"sub_item": payload.sub_item},
            )
        point_id = point.id
    _refuse_duplicates(session, item, point_id, payload)
    rows = [
        Evidence(
            item_id=item.id,
            scoring_point_id=point_id,
            purpose=payload.purpose,
            filename=f.filename,
            note=payload.note,
            size=f.size,
            sha256=f.sha256,
            content_type=f.content_type,
            storage_key=f.key,
            uploaded_by_id=ctx.user.id,
        )
        for f in payload.files
    ]
    session.add_all(rows)
    ctx.written = list(rows)
    note_contributor(item, ctx)
    return {}


def _refuse_duplicates(
    session: Session, item: Item, point_id: int | None, payload: AttachPayload
) -> None:
    """Refuse files whose content is already live on the item for the same point and purpose.

    Runs under the item's lock, so of two identical uploads at once the second sees the
    first's row. Two identical files within one upload are refused too; a refusal stores no
    row at all (the upload is all or nothing).
    """
    first_of: dict[str, str] = {}
    for f in payload.files:
        if f.sha256 in first_of:
            raise InvalidValue(
                "本次上传中“%(filename)s”与“%(earlier)s”内容相同，请只上传一份",
                code="duplicate_in_upload",
                params={"filename": f.filename, "earlier": first_of[f.sha256]},
            )
        first_of[f.sha256] = f.filename
    if not first_of:
        return
    same_point = (
        Evidence.scoring_point_id.is_(None)
        if point_id is None
        else Evidence.scoring_point_id == point_id
    )
    earlier = session.execute(
        select(Evidence.filename, Evidence.sha256)
        .where(
            Evidence.item_id == item.id,
            Evidence.removed_at.is_(None),
            Evidence.purpose == payload.purpose,
            same_point,
            Evidence.sha256.in_(list(first_of)),
        )
        .order_by(Evidence.id)
        .limit(1)
    ).first()
    if earlier is None:
        return
    if len(payload.files) == 1:
        raise Conflict(
            "该文件已上传（与“%(earlier)s”内容相同）",
            code="duplicate_evidence",
            params={"earlier": earlier.filename},
        )
    raise Conflict(
        "“%(filename)s”已上传（与“%(earlier)s”内容相同），本次上传的文件均未保存",
        code="duplicate_evidence",
        params={"filename": first_of[earlier.sha256], "earlier": earlier.filename},
    )


def mark_evidence_removed(session: Session, item: Item, ctx: FlowContext) -> Audited:
    """Remove: the row is marked removed (the object is kept for the record)."""
    payload = cast(RemovePayload, ctx.payload)
    row = session.get(Evidence, payload.evidence_id, populate_existing=True)
    if row is None or row.item_id != item.id or row.removed_at is not None:
        raise NotFound("材料不存在或已删除", code="evidence_not_found")
    row.removed_at = utcnow()
    row.removed_by_id = ctx.user.id
    ctx.written = [row]
    note_contributor(item, ctx)
    return {}
