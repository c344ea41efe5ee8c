"""Bulk actions: review, verify or return many items at once, with one shared reason.

Anchor: Frappe's `bulk_workflow_approval` (frappe/model/workflow.py) runs fewer than 20
documents synchronously, queues up to 500, refuses more, applies each document in its own
transaction and reports each result. Here the limit is the same (`MAX_BULK_ITEMS`, more is a
422), but every run of up to 500 items runs synchronously: the job queue arrives with issue
14, and runs of `QUEUE_FROM` items or more are the ones it will take.

Two operations, both through the engine's own rules:

- `preview` (the dry run) answers, for each item, whether the action would pass now and, if
  not, the guard's code and message. It reads only: the machine's `may_<trigger>` probes with
  the shared reason as payload, after the same visibility, finality and version checks as
  `transition_item`.
- `apply_bulk` applies the action item by item through `transition_item`, each item in its
  own session and transaction with its own audit event, so a later failure never undoes an
  earlier item. It takes a sessionmaker, not a session: the caller's unit of work is not used.

Each item ends `ok`, `refused` (a guard, the state, an unknown item: with the code and the
message a single transition would give) or `conflict` (a stale version, or a concurrent change
the database caught). Under an Idempotency-Key the run and each item's outcome are stored
(`BulkRun`, `BulkRunItem`, apart from the single-item idempotency records): an item's outcome
row is written in the item's own transaction, so a retry with the key, even after a crash half
way, applies no item twice and answers the same report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from workflow.actions import (
    MAX_COMMENT,
    MAX_IDEMPOTENCY_KEY,
    TransitionRequest,
    scoring_points_of,
    transition_item,
)
from workflow.audit import canonical_json
from workflow.errors import BadRequest, DomainError, Forbidden, InvalidValue, NotFound
from workflow.messages import BULK_STALE_DETAIL, localize, text_for
from workflow.models import BulkRun, BulkRunItem, Indicator, Item, ScoringPoint, User, utcnow
from workflow.pipeline import check
from workflow.states import Role

BULK_ACTIONS = ("review", "verify", "return")
#: Frappe's limit: more items in one run are refused.
MAX_BULK_ITEMS = 500
#: From this many items Frappe queues the run; here the job queue comes with issue 14.
QUEUE_FROM = 20

OK = "ok"
REFUSED = "refused"
CONFLICT = "conflict"
STATUSES = (OK, REFUSED, CONFLICT)
#: Refusals that are a race with someone else rather than a rule: reported as `conflict`.
CONFLICT_CODES = frozenset({"stale_version", "concurrent_change"})
#: PostgreSQL's serialization failure and deadlock: a concurrent change, not a fault.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


@dataclass(frozen=True)
class BulkTarget:
    """One selected item and the version the client saw."""

    item_id: int
    version: int


@dataclass(frozen=True)
class BulkResult:
    """One item's outcome: `ok`, `refused` or `conflict`, with the refusal's code and message.

    The message is kept as its template and parameters (workflow/messages.py), so a stored
    report reads in the language of whoever looks at it later.
    """

    item_id: int
    status: str
    code: str | None = None
    template: str | None = None
    params: Mapping[str, object] = field(default_factory=dict)
    version: int | None = None  # the item's version after the action (before it, in a preview)

    @property
    def message(self) -> str | None:
        """The refusal in the current language; None when the item passed."""
        if self.template is None:
            return None
        return localize(self.template, self.params, self.code or "")

    def as_dict(self) -> dict[str, Any]:
        """Return the API's form of the result (a stale version's numbers as fields)."""
        stale = self.code == "stale_version"
        return {
            "item_id": self.item_id,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "current_version": self.params.get("current") if stale else None,
            "requested_version": self.params.get("requested") if stale else None,
        }


@dataclass
class BulkReport:
    """The results of a preview or a run, in the order the items were given."""

    action: str
    dry_run: bool
    results: list[BulkResult] = field(default_factory=list)
    run_id: int | None = None
    comment: str | None = None
    #: Verify: every check point of each item attested 是 (see `BulkRequest`).
    all_checks_yes: bool = False
    #: How many results were answered from the stored run of the Idempotency-Key (a retry).
    replayed: int = 0
    #: The key's run was stored before this request: it is returned (finished) or resumed
    #: (a first attempt died, or still runs), and the API says `Idempotent-Replayed: true`.
    resumed: bool = False

    def count(self, status: str) -> int:
        """Return how many items ended with `status`."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def counts(self) -> dict[str, int]:
        """Return the number of items per status."""
        return {s: self.count(s) for s in STATUSES}


@dataclass(frozen=True)
class BulkRequest:
    """A checked bulk request: a supported action, 1–500 distinct items, the shared reason.

    `all_checks_yes` (verify only): the verifier attests that every check point (核查要点) of
    each item's indicator is 是; without it an item with check points is refused
    `check_required`, as a single verify without answers is.
    """

    action: str
    targets: tuple[BulkTarget, ...]
    comment: str | None
    all_checks_yes: bool = False

    def request_hash(self) -> str:
        """Return the hash an Idempotency-Key is bound to (action, items, versions, reason)."""
        body: dict[str, Any] = {
            "action": self.action,
            "items": [[t.item_id, t.version] for t in self.targets],
            "comment": self.comment,
        }
        if self.all_checks_yes:  # absent as before: older keys keep their hash
            body["all_checks_yes"] = True
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def all_yes(check_points: Iterable[Mapping[str, str]] | None) -> dict[str, dict[str, str]]:
    """Every check point answered 是 (the bulk verifier's attestation)."""
    return {c["code"]: {"answer": "yes"} for c in check_points or ()}


def ensure_bulk_role(user: User) -> None:
    """Refuse anyone but an active reviewer or verifier (403)."""
    if not (user.is_active and user.has_role(Role.REVIEWER, Role.VERIFIER)):
        raise Forbidden("只有初审员和核实员可以批量办理", code="role_required")


def check_request(
    action: str,
    targets: Iterable[BulkTarget],
    comment: str | None = None,
    all_checks_yes: bool = False,
) -> BulkRequest:
    """Check a bulk request as a whole before any item is looked at (422 when it is unusable)."""
    if action not in BULK_ACTIONS:
        raise InvalidValue(
            "批量办理只支持初审通过（review）、核实通过（verify）和退回修改（return）",
            code="bulk_action_not_supported",
        )
    chosen = tuple(targets)
    if not chosen:
        raise InvalidValue("请至少选择一个事项", code="no_items")
    if len(chosen) > MAX_BULK_ITEMS:
        raise InvalidValue(
            "批量办理一次最多 %(limit)s 个事项，本次选择了 %(count)s 个，请缩小范围后分批办理",
            code="too_many_items",
            params={"limit": MAX_BULK_ITEMS, "count": len(chosen)},
        )
    repeated = sorted(i for i, n in Counter(t.item_id for t in chosen).items() if n > 1)
    if repeated:
        raise InvalidValue(
            "同一事项选择了不止一次：%(ids)s",
            code="duplicate_items",
            params={"ids": "、".join(map(str, repeated[:20]))},
        )
    text = comment.strip() if isinstance(comment, str) else None
    if text is not None and len(text) > MAX_COMMENT:
        raise InvalidValue(
            "说明过长（最多 %(limit)s 字）", code="too_long", params={"limit": MAX_COMMENT}
        )
    text = text or None
    if action == "return" and text is None:
        raise InvalidValue("批量退回须填写统一的退回理由", code="reason_required")
    if all_checks_yes and action != "verify":
        raise InvalidValue("只有核实时可以回答核查要点", code="checks_on_verify_only")
    return BulkRequest(action, chosen, text, bool(all_checks_yes))


def _check_key(key: str | None) -> None:
    if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY):
        raise BadRequest("Idempotency-Key 无效", code="bad_idempotency_key")


def _bulk_wording(code: str | None, template: str | None) -> str | None:
    """Return the report's text of a refusal: a stale version says the item was changed after
    it was selected (a ticked row has no version to compare), whatever the single transition
    said; a run stored before keeps its parameters and reads the same."""
    return BULK_STALE_DETAIL if code == "stale_version" else template


def _outcome(item_id: int, exc: DomainError) -> BulkResult:
    status = CONFLICT if exc.code in CONFLICT_CODES else REFUSED
    return BulkResult(item_id, status, exc.code, _bulk_wording(exc.code, exc.template), exc.params)


def _concurrent(item_id: int) -> BulkResult:
    code = "concurrent_change"
    return BulkResult(item_id, CONFLICT, code, text_for(code))


# -- the dry run ----------------------------------------------------------------------------
def probe(
    session: Session,
    item: Item,
    user: User,
    action: str,
    version: int,
    comment: str | None,
    *,
    points: list[ScoringPoint] | None = None,
    now: dt.datetime | None = None,
    checks: Mapping[str, Any] | None = None,
) -> None:
    """Raise the DomainError `transition_item` would raise for this action now; change nothing.

    The order is the operation's: visibility, finality, version, then the machine's guards
    with the shared reason as payload (`may_<trigger>`, which evaluates the conditions without
    firing). Verify gets no rulings here, so an item with not-involved claims is refused with
    `ruling_required`: those need the item page.
    """
    check(
        session, item, user, action, {"comment": comment, "checks": checks or {}},
        version=version, now=now, with_payload=True, points=points,
    )  # fmt: skip


def preview(
    session: Session,
    user: User,
    action: str,
    targets: Iterable[BulkTarget],
    comment: str | None = None,
    *,
    now: dt.datetime | None = None,
    all_checks_yes: bool = False,
) -> BulkReport:
    """Tell, per item, whether the action would pass now, and why not; nothing is written."""
    ensure_bulk_role(user)
    req = check_request(action, targets, comment, all_checks_yes)
    now = now or utcnow()
    ids = [t.item_id for t in req.targets]
    with session.no_autoflush:
        items = {
            i.id: i
            for i in session.execute(
                select(Item)
                .where(Item.id.in_(ids))
                .options(
                    selectinload(Item.claims),
                    selectinload(Item.assessment),
                    selectinload(Item.indicator),
                )
            ).scalars()
        }
        points: dict[int, list[ScoringPoint]] = {}
        report = BulkReport(
            req.action, dry_run=True, comment=req.comment, all_checks_yes=req.all_checks_yes
        )
        for t in req.targets:
            item = items.get(t.item_id)
            try:
                if item is None:
                    raise NotFound("考核事项不存在", code="item_not_found")
                if item.indicator_id not in points:
                    points[item.indicator_id] = scoring_points_of(session, item)
                probe(
                    session,
                    item,
                    user,
                    req.action,
                    t.version,
                    req.comment,
                    points=points[item.indicator_id],
                    now=now,
                    checks=all_yes(item.indicator.check_points) if req.all_checks_yes else None,
                )
            except DomainError as exc:
                report.results.append(_outcome(t.item_id, exc))
                continue
            report.results.append(BulkResult(t.item_id, OK, version=item.version))
    return report


# -- the run ----------------------------------------------------------------------------------
def _is_concurrent_change(exc: DBAPIError) -> bool:
    """Tell whether a database error is a lost race (serialization failure, deadlock)."""
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def _stored(session: Session, run_id: int, item_id: int) -> BulkResult | None:
    row = session.execute(
        select(BulkRunItem).where(BulkRunItem.run_id == run_id, BulkRunItem.item_id == item_id)
    ).scalar_one_or_none()
    return None if row is None else _result_of(row)


def _result_of(row: BulkRunItem) -> BulkResult:
    template = _bulk_wording(row.code, row.message)
    return BulkResult(row.item_id, row.status, row.code, template, row.params or {}, row.version)


def _open_run(
    factory: sessionmaker[Session], user_id: int, req: BulkRequest, key: str
) -> tuple[int, dict[int, BulkResult], bool]:
    """Find or start the run of this key; return its id, the outcomes already stored, and
    whether the run was there before (this request returns or resumes it)."""
    digest = req.request_hash()
    with factory() as s:
        query = select(BulkRun).where(BulkRun.user_id == user_id, BulkRun.key == key)
        run = s.execute(query).scalar_one_or_none()
        existed = run is not None
        if run is None:
            run = BulkRun(
                user_id=user_id,
                key=key,
                request_hash=digest,
                action=req.action,
                comment=req.comment,
                item_count=len(req.targets),
            )
            s.add(run)
            try:
                s.commit()
            except IntegrityError:  # the same key, started a moment ago by a concurrent retry
                s.rollback()
                run = s.execute(query).scalar_one()
                existed = True
        if run.request_hash != digest:
            raise InvalidValue("该 Idempotency-Key 已用于另一个请求", code="idempotency_key_reused")
        done = {
            row.item_id: _result_of(row)
            for row in s.execute(select(BulkRunItem).where(BulkRunItem.run_id == run.id)).scalars()
        }
        return run.id, done, existed


def _apply_one(
    factory: sessionmaker[Session],
    user_id: int,
    req: BulkRequest,
    target: BulkTarget,
    position: int,
    run_id: int | None,
    now: dt.datetime | None,
) -> BulkResult:
    """Apply the action to one item in its own transaction; its outcome row commits with it."""
    with factory() as s:
        try:
            user = s.get_one(User, user_id)
            request = TransitionRequest(req.action, target.version, comment=req.comment)
            if req.all_checks_yes:
                request.checks = all_yes(
                    s.scalar(
                        select(Indicator.check_points)
                        .join(Item, Item.indicator_id == Indicator.id)
                        .where(Item.id == target.item_id)
                    )
                )
            item = transition_item(s, target.item_id, user, request, now=now)
            result = BulkResult(target.item_id, OK, version=item.version)
            if run_id is not None:
                s.add(_row(run_id, position, result))
            s.commit()
            return result
        except DomainError as exc:
            s.rollback()
            result = _outcome(target.item_id, exc)
        except (IntegrityError, StaleDataError):
            s.rollback()
            result = _concurrent(target.item_id)
        except DBAPIError as exc:
            s.rollback()
            if not _is_concurrent_change(exc):
                raise
            result = _concurrent(target.item_id)
        if run_id is None:
            return result
        # A concurrent retry of the same run may have applied the item meanwhile: its outcome
        # stands. Otherwise the refusal is stored too, so that the retried report is the same.
        stored = _stored(s, run_id, target.item_id)
        if stored is not None:
            return stored
        s.add(_row(run_id, position, result))
        try:
            s.commit()
        except IntegrityError:
            s.rollback()
            stored = _stored(s, run_id, target.item_id)
            if stored is None:  # pragma: no cover - the unique pair was just violated
                raise
            return stored
        return result


def _storable(params: Mapping[str, object]) -> dict[str, Any]:
    """Return the parameters as JSON values (a Term stays its Chinese word)."""
    return {
        k: v if isinstance(v, int | float) and not isinstance(v, bool) else str(v)
        for k, v in params.items()
    }


def _row(run_id: int, position: int, result: BulkResult) -> BulkRunItem:
    return BulkRunItem(
        run_id=run_id,
        item_id=result.item_id,
        position=position,
        status=result.status,
        code=result.code,
        message=result.template,
        params=_storable(result.params) or None,
        version=result.version,
    )


def apply_bulk(
    factory: sessionmaker[Session],
    user_id: int,
    action: str,
    targets: Iterable[BulkTarget],
    comment: str | None = None,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
    all_checks_yes: bool = False,
) -> BulkReport:
    """Apply the action to every item, each in its own transaction and audit event.

    Runs synchronously (up to `MAX_BULK_ITEMS`); with `idempotency_key` the run is stored and
    a retry answers the stored outcomes without applying any item twice, then finishes what a
    crash left undone. `factory` makes the sessions: one per item, committed or rolled back
    before the next item starts.
    """
    _check_key(idempotency_key)
    with factory() as s:
        user = s.get(User, user_id)
        if user is None:
            raise Forbidden("只有初审员和核实员可以批量办理", code="role_required")
        ensure_bulk_role(user)
    req = check_request(action, targets, comment, all_checks_yes)
    run_id: int | None = None
    done: dict[int, BulkResult] = {}
    resumed = False
    if idempotency_key is not None:
        run_id, done, resumed = _open_run(factory, user_id, req, idempotency_key)
    report = BulkReport(
        req.action, dry_run=False, run_id=run_id, comment=req.comment, resumed=resumed
    )
    for position, target in enumerate(req.targets):
        earlier = done.get(target.item_id)
        if earlier is not None:
            report.results.append(earlier)
            report.replayed += 1
            continue
        report.results.append(_apply_one(factory, user_id, req, target, position, run_id, now))
    if run_id is not None:
        with factory() as s:
            run = s.get_one(BulkRun, run_id)
            if run.finished_at is None:
                run.finished_at = utcnow()
                s.commit()
    return report


def load_run(session: Session, run_id: int, user: User) -> BulkReport:
    """Return a stored run's report; only its own user sees it (another's is a 404)."""
    run = session.get(BulkRun, run_id)
    if run is None or run.user_id != user.id:
        raise NotFound("批量办理记录不存在", code="bulk_run_not_found")
    rows: Sequence[BulkRunItem] = session.execute(
        select(BulkRunItem).where(BulkRunItem.run_id == run.id).order_by(BulkRunItem.position)
    ).scalars().all()  # fmt: skip
    return BulkReport(
        run.action,
        dry_run=False,
        results=[_result_of(r) for r in rows],
        run_id=run.id,
        comment=run.comment,
    )
