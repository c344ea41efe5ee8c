"""Item operations for callers that know the verb; all of them go through the pipeline.

`transition_item` turns a `TransitionRequest` into a `Command` for `workflow.pipeline.execute`,
the one engine function every change to an item goes through. The read helpers here
(`get_readable_item`, `actions_for`) serve the pages and the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from workflow.errors import NotFound
from workflow.machine import FlowContext, allowed_actions
from workflow.models import Item, ScoringPoint, User
from workflow.payloads import MAX_COMMENT, parse_points
from workflow.permissions import can_read_item
from workflow.pipeline import (
    MAX_IDEMPOTENCY_KEY,
    Command,
    execute,
    gather,
    lock_item,
    routine_points_with_records,
    scoring_points,
)
from workflow.pipeline import routine_kinds as _routine_kinds
from workflow.security_log import hidden_from

__all__ = [
    "MAX_COMMENT",
    "MAX_IDEMPOTENCY_KEY",
    "TransitionRequest",
    "actions_for",
    "get_item",
    "get_readable_item",
    "parse_points",
    "routine_kinds",
    "routine_points_with_records",
    "scoring_points_of",
    "transition_command",
    "transition_item",
]


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
    #: 修改说明: what a resubmission after a return changed (required then).
    change_note: str | None = None
    #: Verify: check point code → {"answer": "yes"|"no"|"na", "note": optional text}.
    checks: Mapping[str, Any] = field(default_factory=dict)

    def as_payload(self) -> dict[str, Any]:
        """The raw payload the action's model parses."""
        return {
            "comment": self.comment,
            "scores": self.scores,
            "deductions": self.deductions,
            "not_involved": list(self.not_involved),
            "rulings": self.rulings,
            "change_note": self.change_note,
            "checks": self.checks,
        }


def get_item(session: Session, item_id: int, *, for_update: bool = False) -> Item:
    """Load an item (locked for update when asked, see `pipeline.lock_item`) or raise NotFound."""
    if for_update:
        return lock_item(session, item_id, frozenset({"claims", "scores"}))
    stmt = (
        select(Item)
        .where(Item.id == item_id)
        .options(selectinload(Item.scores), selectinload(Item.claims))
    )
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
    return scoring_points(session, item)


def routine_kinds(item: Item, point: ScoringPoint) -> list[str]:
    """Return the routine record kinds that feed a scoring point (empty if not routine)."""
    return _routine_kinds(item.assessment, point)


def build_context(
    session: Session, item: Item, user: User, points: list[ScoringPoint] | None = None
) -> FlowContext:
    """Gather every fact a probe of any action needs (evidence, claims, routine, maxima)."""
    needs = frozenset({"points", "claims", "evidence", "routine_points"})
    return gather(session, item, user, needs, points=points)


def actions_for(session: Session, item: Item, user: User) -> list[str]:
    """Return the actions the user may take on the item now (for the UI and the API)."""
    if not user.is_active or not can_read_item(user, item):
        return []
    return allowed_actions(item, build_context(session, item, user))


def transition_item(
    session: Session,
    item_id: int,
    user: User,
    req: TransitionRequest,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Item:
    """Apply one workflow action to an item, audited, or raise a DomainError (the pipeline).

    The item row is locked for the transaction, so concurrent requests on one item queue
    up; the second sees the new version and gets a 409. `now` fixes the clock for tests.
    """
    command = transition_command(item_id, user, req, idempotency_key=idempotency_key, now=now)
    return execute(session, command).item


def transition_command(
    item_id: int,
    user: User,
    req: TransitionRequest,
    *,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> Command:
    """The pipeline's command for a client's request (see `pipeline.run_command`)."""
    return Command(
        action=req.action,
        item_id=item_id,
        actor=user,
        version=req.version,
        payload=req.as_payload(),
        idempotency_key=idempotency_key,
        now=now,
    )


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
