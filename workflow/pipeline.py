"""The one engine function every change to an item goes through: `execute(session, command)`.

In order, for every row of the table (workflow/table.py):

1. parse the payload with the row's model (before any lock: a bad body costs no lock);
2. one locking read of the item with its assessment, and the claims, scores and check points
   the row needs (a Core read when it needs none: workflow/itemrow.py);
3. visibility (another department's item is a 404), then the idempotency check;
4. the final-results check and the version check (for a row that judges the publication,
   appeal and rescore, step 2 also key-share locks the assessment: a publication or reopen
   in flight commits first and is what the row reads);
5. the facts the row needs (scoring points, evidence, routine records, calendar), each one
   query, only when needed;
6. the guards, through the `transitions` machine;
7. the effects, the new state; the item's changed columns in one Core UPDATE that moves the
   version by exactly one (`… WHERE id = :id AND version = :v`; on PostgreSQL the same
   statement appends a transition's audit event; an evidence row, no transition, keeps the
   version and writes the item only when it adds a contributor), then one flush of the rows
   the effects added or changed;
8. the audit event(s) not written by step 7, the notifications it causes (workflow/notify.py:
   inbox and outbox rows, delivered later by the worker), and the idempotency record.

A database conflict raised by the writes (a unique violation, a stale row, a deadlock or a
serialization failure) becomes `Conflict` here, so every face (API, portal, CLI, bulk) shows
the same 409; `run_command` retries such a conflict once in a fresh transaction. The pipeline
never commits: the caller's unit of work (`workflow.db.unit_of_work`) does, once.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, contains_eager, joinedload, sessionmaker

from scoring.routine import feeding_kinds
from workflow import itemrow, notify
from workflow.assessments import ensure_not_final
from workflow.audit import append_after, canonical_json, chained_values
from workflow.db import lock_row, translate_conflicts, unit_of_work
from workflow.errors import BadRequest, Conflict, InvalidValue, NotFound
from workflow.machine import FlowContext, ItemFlow, fire, probe
from workflow.messages import STALE_VERSION_DETAIL
from workflow.models import (
    Assessment,
    ChainHead,
    Department,
    Evidence,
    IdempotencyRecord,
    Indicator,
    Item,
    RoutineRecord,
    ScoringPoint,
    User,
    utcnow,
)
from workflow.payloads import Payload
from workflow.permissions import can_read_item
from workflow.security_log import hidden_from
from workflow.states import State
from workflow.table import ROW_OF, Transition

MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class Command:
    """One change asked of an item: who asks, what, on which version, with what payload."""

    action: str
    item_id: int
    actor: User
    version: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    now: dt.datetime | None = None


@dataclass
class Outcome:
    """What a command did: the item after it, its audit events and the rows it wrote."""

    item: Item
    replayed: bool = False
    written: list[Any] = field(default_factory=list)


def row_of(action: str) -> Transition:
    """Return the table's row for an action, or refuse an unknown one (422)."""
    row = ROW_OF.get(action) if isinstance(action, str) else None
    if row is None:
        raise InvalidValue(
            "未知的操作：%(action)s", code="unknown_action", params={"action": action}
        )
    return row


def lock_item(session: Session, item_id: int, needs: frozenset[str] = frozenset()) -> Item:
    """Load and lock the item with its assessment (and claims, scores when needed): one query.

    Concurrent writers of the item queue here until this transaction ends: SELECT … FOR
    UPDATE on PostgreSQL, the database write lock on SQLite.
    """
    return _locked(session, item_id, needs).item


_EAGER = frozenset({"points", "claims", "scores"})


@functools.cache
def _lock_statement(
    eager: frozenset[str], check_points: bool = False, publication: bool = False
) -> Select[Any]:
    """The locking read for a row's needs, built once (statements are immutable).

    The assessment comes with the item, without its routine configuration (a large JSON
    document decoded per row): a routine-fed item loads that when it needs it. A row that
    needs the indicator's check points (verify) reads them in the same statement.
    """
    options: list[Any] = [contains_eager(Item.assessment).defer(Assessment.routine_config)]
    if "points" in eager:
        options.append(joinedload(Item.scoring_points))
    if "claims" in eager:
        options.append(joinedload(Item.claims))
    if "scores" in eager:
        options.append(joinedload(Item.scores))
    columns: list[Any] = [ChainHead.seq, ChainHead.hash]
    if check_points:
        columns.append(
            select(Indicator.check_points)
            .where(Indicator.id == Item.indicator_id)
            .scalar_subquery()
            .label("check_points")
        )
    stmt = (
        select(Item, *columns)
        .join(Item.assessment)
        .outerjoin(ChainHead, ChainHead.id == 1)
        .where(Item.id == bindparam("item_id"))
        .options(*options)
        .with_for_update(of=Item)
        .execution_options(populate_existing=True)
    )
    if publication:  # the assessment key-share locked in the same statement (itemrow)
        return stmt.suffix_with(itemrow.HOLD_ASSESSMENT, dialect="postgresql")
    return stmt


@dataclass
class _Locked:
    """What the locking read returns: the item, the chain head it saw, and facts read with it."""

    item: Item
    head: tuple[int, str] | None
    check_points: list[dict[str, Any]] | None = None


def _locked(session: Session, item_id: int, needs: frozenset[str]) -> _Locked:
    """Lock the item; with it, in the same query, the audit chain's head as it is now.

    The head is read, not locked: the event is appended after it in one statement when no
    other append came first (see `audit.append_after`).
    """
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE: take its write lock before anything is read under the
        # item's "lock", so writers queue here as PostgreSQL's row lock makes them queue.
        lock_row(session, Item, item_id)
    eager = needs & _EAGER
    publication = "publication" in needs
    if not eager:  # the item and its assessment only: a Core read (workflow/itemrow.py)
        locked = itemrow.read_locked(session, item_id, publication=publication)
        if locked is None:
            raise NotFound("考核事项不存在", code="item_not_found")
        return _Locked(*locked)
    with_checks = "check_points" in needs
    row = (
        session.execute(_lock_statement(eager, with_checks, publication), {"item_id": item_id})
        .unique()
        .first()
    )
    if row is None:
        raise NotFound("考核事项不存在", code="item_not_found")
    item, seq, head_hash = row[:3]
    head = None if seq is None else (seq, head_hash)
    return _Locked(item, head, (row[3] or []) if with_checks else None)


def _hold_routine_basis(session: Session, item: Item) -> None:
    """Share-lock the item's department before its routine suggestions are read.

    A change of the department's routine records that moves a suggestion (a review, a
    correction, a withdrawal) locks that row first (`routine._watch_scored`): one in flight
    commits before this score reads the suggestions, and one that starts later waits, then
    sees this item scored and tells its scorers. Scores of the department's items do not wait
    for each other.
    """
    session.execute(
        select(Department.id).where(Department.id == item.department_id).with_for_update(read=True)
    ).all()


def readable_item(session: Session, item_id: int, user: User) -> Item:
    """The item with its assessment (one query, no lock), if the user may read it; else 404."""
    item = session.execute(
        select(Item).join(Item.assessment).where(Item.id == item_id)
        .options(contains_eager(Item.assessment))
    ).scalar_one_or_none()  # fmt: skip
    if item is None:
        raise NotFound("考核事项不存在", code="item_not_found")
    _visible(session, item, user)
    return item


def _visible(session: Session, item: Item, user: User) -> None:
    if not user.is_active or not can_read_item(user, item):
        hidden_from(user, "item", item.id, department_id=item.department_id)
        raise NotFound("考核事项不存在", code="item_not_found")


def _request_hash(command: Command, payload: Payload) -> str:
    body = {
        "item": command.item_id,
        "action": command.action,
        "version": command.version,
        **payload.audited(),
    }
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def check_idempotency_key(key: str | None) -> None:
    """Refuse an empty or over-long key (400)."""
    if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY):
        raise BadRequest("Idempotency-Key 无效", code="bad_idempotency_key")


def _replayed(session: Session, command: Command, key_hash: str) -> bool:
    """Tell whether this key was applied already (to the same request; else a 422)."""
    seen = session.execute(
        select(IdempotencyRecord.request_hash).where(
            IdempotencyRecord.user_id == command.actor.id,
            IdempotencyRecord.key == command.idempotency_key,
        )
    ).scalar_one_or_none()
    if seen is None:
        return False
    if seen != key_hash:
        raise InvalidValue("该 Idempotency-Key 已用于另一个请求", code="idempotency_key_reused")
    return True


def scoring_points(session: Session, item: Item) -> list[ScoringPoint]:
    """The item's scoring points in scheme order."""
    return list(
        session.execute(
            select(ScoringPoint)
            .where(ScoringPoint.indicator_id == item.indicator_id)
            .order_by(ScoringPoint.position)
        ).scalars()
    )


def routine_kinds(assessment: Assessment, point: ScoringPoint) -> list[str]:
    """Return the routine record kinds that feed a scoring point (empty if not routine)."""
    if not point.routine:
        return []
    spec = (assessment.routine_config or {}).get("suggestion", {}).get(point.code)
    return feeding_kinds(spec, point.routine)


def routine_points_with_records(
    session: Session, item: Item, points: list[ScoringPoint]
) -> frozenset[str]:
    """Return the routine-fed points of the item that have live (not rejected) records."""
    wanted = {p.code: routine_kinds(item.assessment, p) for p in points if p.routine}
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


def gather(
    session: Session,
    item: Item,
    user: User,
    needs: frozenset[str],
    *,
    payload: Payload | None = None,
    now: dt.datetime | None = None,
    points: list[ScoringPoint] | None = None,
    check_points: list[dict[str, Any]] | None = None,
) -> FlowContext:
    """Load the facts `needs` names for the guards and effects; each at most one query.

    `points` and `check_points`, when given, were read already (with the lock).
    """
    now = now or utcnow()
    payload = payload or Payload()
    ctx = FlowContext(
        user=user,
        now=now,
        payload=payload,
        comment=payload.comment,
        scores=getattr(payload, "scores", {}),
        deductions=getattr(payload, "deductions", {}),
        rulings=getattr(payload, "rulings", {}),
    )
    if "points" in needs or points is not None:
        points = points if points is not None else scoring_points(session, item)
        ctx.points = points
        ctx.point_max = {p.code: p.max_points for p in points}
    code_of = {p.id: p.code for p in ctx.points}
    if "claims" in needs:
        ctx.claimed_points = frozenset(code_of[c.scoring_point_id] for c in item.claims)
        ctx.upheld_points = frozenset(
            code_of[c.scoring_point_id] for c in item.claims if c.is_upheld
        )
    if "evidence" in needs:
        live = session.execute(
            select(Evidence.scoring_point_id, Evidence.purpose, Evidence.sha256, Evidence.id)
            .where(Evidence.item_id == item.id, Evidence.removed_at.is_(None))
            .order_by(Evidence.id)
        ).all()
        ctx.evidence_points = frozenset(
            code_of.get(sp) if sp is not None else None for sp, purpose, _, _ in live
            if purpose == "evidence"
        )  # fmt: skip
        ctx.proof_points = frozenset(
            code_of[sp] for sp, purpose, _, _ in live if purpose == "not_involved_proof"
            and sp in code_of
        )  # fmt: skip
        ctx.evidence_hashes = [sha for _, _, sha, _ in live]
        ctx.evidence_ids = [eid for _, _, _, eid in live]
    if check_points is not None:
        ctx.check_points = check_points
    elif "check_points" in needs:
        ctx.check_points = (
            session.scalar(select(Indicator.check_points).where(Indicator.id == item.indicator_id))
            or []
        )
    if "routine_points" in needs:
        ctx.routine_points = routine_points_with_records(session, item, list(ctx.points))
    if "suggestions" in needs:
        from workflow.routine import suggestions_for_points  # routine imports the engine

        ctx.suggested = suggestions_for_points(session, item, list(ctx.points), now)
    return ctx


def _lateness(session: Session, item: Item, ctx: FlowContext) -> None:
    from workflow.calendar import ensure_submission_allowed  # calendar reads items

    ctx.lateness = ensure_submission_allowed(session, item.assessment, item, ctx.now)


def execute(session: Session, command: Command) -> Outcome:
    """Run one command through the pipeline (see the module's docstring); never commits."""
    row = row_of(command.action)
    user = command.actor
    if row.versioned and (
        isinstance(command.version, bool) or not isinstance(command.version, int)
    ):
        raise BadRequest("缺少或无效的 version（整数）", code="version_required")
    check_idempotency_key(command.idempotency_key)
    payload = row.payload.parse(command.payload)
    if not user.is_active:
        raise NotFound("考核事项不存在", code="item_not_found")

    locked = _locked(session, command.item_id, row.needs)
    item, head = locked.item, locked.head
    _visible(session, item, user)
    key_hash = None
    if command.idempotency_key is not None:
        key_hash = _request_hash(command, payload)
        if _replayed(session, command, key_hash):
            return Outcome(item, replayed=True)
    if "suggestions" in row.needs and any(p.routine for p in item.scoring_points):
        _hold_routine_basis(session, item)
    # Results that are final change only after an admin's reopen.
    ensure_not_final(item.assessment)
    if row.versioned and command.version != item.version:
        if row.stale is not None:
            raise Conflict(code=row.stale)
        raise Conflict(
            STALE_VERSION_DETAIL,
            code="stale_version",
            params={"current": item.version, "requested": command.version},
        )

    ctx = gather(
        session, item, user, row.needs, payload=payload, now=command.now,
        points=item.scoring_points if "points" in row.needs else None,
        check_points=locked.check_points,
    )  # fmt: skip
    if "lateness" in row.needs and State(item.state) in row.sources:
        _lateness(session, item, ctx)
    if row.trigger == "submit":  # the claims of this submission are the guards' facts
        _claims_of_submission(ctx)
    from_state, version, total_before = item.state, item.version, item.total
    with session.no_autoflush:  # nothing is written before the item's one UPDATE
        new_state = fire(ItemFlow(item, ctx), row.trigger)
        audited: dict[str, Any] = {}
        for effect in row.effects:
            audited.update(effect(session, item, ctx))
        if row.changes_state:
            item.state = new_state.value
            item.updated_at = ctx.now
    changes = itemrow.changes_of(item)
    event: dict[str, Any] | None = None
    if row.changes_state:
        audited["version"] = version + 1 if changes else version
        audited["round"] = item.round
        fields: dict[str, Any] = {
            "actor": user,
            "action": row.event or row.trigger,
            "target_type": "item",
            "target_id": item.id,
            "item_id": item.id,
            "department_id": item.department_id,
            "from_state": from_state,
            "to_state": new_state.value,
            "comment": ctx.comment,
            "payload": audited,
        }
        if changes and head is not None and session.get_bind().dialect.name == "postgresql":
            event = chained_values(*head, **fields)
    with translate_conflicts():
        # One Core UPDATE of the item's changed columns moves the version by exactly one (on
        # PostgreSQL the same statement appends the audit event); the flush then writes the
        # rows the effects added or changed (claims, scores).
        # An evidence row changes no state and keeps the version (the first file of a member
        # adds them to the item's contributors: the one column it may write).
        appended = itemrow.write_item(
            session, item, version, changes, event, bump=row.changes_state
        )
        session.flush()
    if row.changes_state:
        if event is None or not appended:  # SQLite, no head seen, or another append came first
            append_after(session, None if event is not None else head, **fields)
        if row.trigger in notify.ITEM_TRIGGERS:  # in this transaction: both land or neither
            notify.on_transition(
                session, row.trigger, from_state, item, user, ctx.comment, ctx.now,
                total_before=total_before,
            )  # fmt: skip
    else:
        for n, written in enumerate(ctx.written):
            _record_evidence_event(session, row, item, user, written, ctx, head if n == 0 else None)
    if key_hash is not None:
        session.add(
            IdempotencyRecord(
                user_id=user.id,
                key=command.idempotency_key,
                request_hash=key_hash,
                item_id=item.id,
                result_version=item.version,
            )
        )
        with translate_conflicts():
            session.flush()
    return Outcome(item, written=list(ctx.written))


def _claims_of_submission(ctx: FlowContext) -> None:
    """Submit judges the claims it brings, not last round's (they are replaced)."""
    codes = frozenset(getattr(ctx.payload, "not_involved", ()))
    unknown = sorted(codes - set(ctx.point_max))
    if unknown:
        raise InvalidValue(
            "不涉及声明中的评分项不属于本指标：%(codes)s",
            code="unknown_sub_item",
            params={"codes": "、".join(unknown)},
        )
    ctx.claimed_points = codes
    ctx.upheld_points = frozenset()


def _record_evidence_event(
    session: Session,
    row: Transition,
    item: Item,
    user: User,
    ev: Evidence,
    ctx: FlowContext,
    head: tuple[int, str] | None,
) -> None:
    if row.trigger == "remove_evidence":
        payload: dict[str, Any] = {
            "evidence_id": ev.id,
            "filename": ev.filename,
            "sha256": ev.sha256,
        }
    else:
        code = {p.id: p.code for p in ctx.points}.get(ev.scoring_point_id or -1)
        payload = {
            "evidence_id": ev.id,
            "filename": ev.filename,
            "size": ev.size,
            "sha256": ev.sha256,
            "content_type": ev.content_type,
            "sub_item": code,
            "purpose": ev.purpose,
        }
        if ev.note:  # shown to the reviewers under the file's name: recorded with it
            payload["note"] = ev.note
    append_after(
        session,
        head,
        actor=user,
        action=row.event or row.trigger,
        target_type="evidence",
        target_id=ev.id,
        item_id=item.id,
        department_id=item.department_id,
        payload=payload,
    )


def check(
    session: Session,
    item: Item,
    user: User,
    action: str,
    payload: Mapping[str, Any] | None = None,
    *,
    version: int | None = None,
    now: dt.datetime | None = None,
    with_payload: bool = False,
    points: list[ScoringPoint] | None = None,
) -> None:
    """Tell whether `action` could be taken on the item now, changing nothing.

    Raise the DomainError the command would raise, in the pipeline's order: visibility,
    finality, version (when given), then the machine's guards (`may_<trigger>`). The guards
    that judge a payload are left out unless `with_payload` (a bulk preview gives its shared
    reason; a page asking "which buttons?" has no payload yet). For a pre-check before an
    upload, a bulk preview, the buttons of a page.
    """
    row = row_of(action)
    parsed = row.payload.parse(payload or {})
    _visible(session, item, user)
    ensure_not_final(item.assessment)
    if version is not None and version != item.version:
        raise Conflict(
            STALE_VERSION_DETAIL,
            code="stale_version",
            params={"current": item.version, "requested": version},
        )
    needs = row.needs - {"lateness", "suggestions"}
    ctx = gather(session, item, user, needs, payload=parsed, now=now, points=points)
    probe(ItemFlow(item, ctx), action, with_payload=with_payload)


#: Opens one unit of work and yields its session: `workflow.db.unit_of_work` over a session
#: factory (commits at the end), or a request's (web.db.discard_on_error: rolls the request's
#: transaction back on an error and leaves the commit to the request boundary).
UnitOfWork = Callable[[], AbstractContextManager[Session]]


def run_command(unit: sessionmaker[Session] | UnitOfWork, command: Command) -> Outcome:
    """Run a command in a unit of work; a database conflict is retried once, in a fresh one.

    `unit` is a session factory (CLI, bulk actions, jobs: each command is one transaction,
    committed here) or a function opening the caller's unit of work (a request's).
    """
    open_unit: UnitOfWork = (
        functools.partial(unit_of_work, unit) if isinstance(unit, sessionmaker) else unit
    )
    for attempt in (1, 2):
        try:
            with open_unit() as session:
                outcome = execute(session, command)
                session.flush()
            return outcome
        except Conflict as exc:
            if attempt == 2 or not getattr(exc, "retryable", False):
                raise
    raise AssertionError("unreachable")  # pragma: no cover
