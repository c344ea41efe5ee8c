"""The item page's data and the one way a posted action is applied, for both portals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from storage.convert import is_convertible, office_binary
from storage.errors import StorageError
from web.common.event_text import HistoryEntry, appeal_outcome, history_entries
from web.db import discard_on_error, get_db
from web.portal.forms import transition_from_form
from workflow.actions import (
    get_readable_item,
    scoring_points_of,
    transition_item,
)
from workflow.errors import DomainError, NotFound
from workflow.machine import ACTION_LABELS
from workflow.models import Evidence, Item, RoutineRecord, ScoringPoint, User
from workflow.read import CheckResult, RoundChanges, item_detail
from workflow.routine import RoutineDrift

# Types shown inline (as sniffed at upload, not as claimed by the client).
PREVIEW_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass
class PointView:
    """A scoring point with what the item has on it: claim, ruling, score."""

    point: ScoringPoint
    is_claimed: bool = False
    is_upheld: bool | None = None
    score: Decimal | None = None
    deduction_reason: str | None = None
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class ItemView:
    """Everything an item page shows."""

    item: Item
    points: list[PointView]
    evidence: list[Evidence]
    actions: list[str]
    history: list[HistoryEntry]
    can_edit_evidence: bool
    form: MultiDict[str, str]
    error: str | None = None
    preview: Evidence | None = None
    scores_hidden: bool = False  # a department before publication (公示) sees no score
    # Routine-fed indicators (9, 10): the routine records are their evidence.
    routine_kinds: list[str] = field(default_factory=list)
    routine_records: list[RoutineRecord] = field(default_factory=list)
    # The latest resubmission against the previous round (修改说明, files added and removed).
    round_changes: RoundChanges | None = None
    # The indicator's check points (核查要点) and the verifier's answers (None before).
    check_points: list[dict[str, str]] = field(default_factory=list)
    checks: list[CheckResult] | None = None
    # A scored routine item whose suggestions changed since its latest score.
    routine_drift: RoutineDrift | None = None
    # How the latest appeal was decided (驳回 or 复核改分), beside the appeal's reason.
    appeal_decision: HistoryEntry | None = None

    @property
    def is_routine(self) -> bool:
        """Tell whether the item is scored from routine records."""
        return bool(self.routine_kinds)

    @property
    def live_routine_records(self) -> list[RoutineRecord]:
        """The records that stand as evidence (awaiting review or accepted)."""
        return [r for r in self.routine_records if r.status in ("submitted", "accepted")]

    def can_preview(self, evidence: Evidence) -> bool:
        """Tell whether the file is shown inline: PDF, image, or an office document that
        LibreOffice converts to PDF."""
        return evidence.content_type in PREVIEW_TYPES or (
            is_convertible(evidence.content_type) and office_binary() is not None
        )

    def needs_converter(self, evidence: Evidence) -> bool:
        """Tell whether the file could be previewed if LibreOffice were installed."""
        return is_convertible(evidence.content_type) and office_binary() is None

    @property
    def claimed(self) -> list[PointView]:
        """The points the department claimed not to concern it."""
        return [p for p in self.points if p.is_claimed]


def load_item_view(
    db: Session, item: Item, user: User, form: MultiDict[str, str] | None = None
) -> ItemView:
    """The item page, rendered from the engine's read model (`item_detail`)."""
    detail = item_detail(db, item.id, user)
    hidden = detail.scores_hidden
    views = [
        PointView(
            point=p.point,
            is_claimed=p.is_claimed,
            is_upheld=p.is_upheld,
            score=detail.score_of(p),
            deduction_reason=None if hidden or p.score is None else p.score.deduction_reason,
            evidence=p.evidence,
        )
        for p in detail.points
    ]
    wanted = request.args.get("preview", "")
    shown = next(
        (
            e
            for e in detail.evidence
            if str(e.id) == wanted
            and (
                e.content_type in PREVIEW_TYPES
                or (is_convertible(e.content_type) and office_binary() is not None)
            )
        ),
        None,
    )
    return ItemView(
        appeal_decision=appeal_outcome(
            [(h.event, h.user) for h in detail.history], hide_scores=hidden
        ),
        preview=shown,
        item=detail.item,
        points=views,
        evidence=detail.evidence,
        actions=detail.actions,
        history=history_entries([(h.event, h.user) for h in detail.history], hide_scores=hidden),
        can_edit_evidence=detail.can_edit_evidence,
        form=form if form is not None else MultiDict(),
        scores_hidden=hidden,
        routine_kinds=detail.routine_kinds,
        routine_records=detail.routine_records,
        round_changes=detail.round_changes,
        check_points=detail.check_points,
        checks=detail.checks,
        routine_drift=detail.routine_drift,
    )


def readable_item_or_404(db: Session, item_id: int, user: User) -> Item:
    """Load an item the user may read, else answer 404."""
    try:
        return get_readable_item(db, item_id, user)
    except NotFound:
        abort(404)


def apply_posted_action(
    item_id: int,
    user: User,
    allowed: tuple[str, ...],
    template: str,
    page_endpoint: str,
    after: Callable[[Session], None] | None = None,
    **context: Any,
) -> ResponseReturnValue:
    """Apply the posted workflow action and commit; on refusal show the page with the reason.

    `after` runs in the same transaction once the action is applied (an appeal's files).
    """
    db = get_db()
    action = request.form.get("action", "")
    item = readable_item_or_404(db, item_id, user)
    if action not in allowed:
        abort(400)
    try:
        with discard_on_error():
            points = scoring_points_of(db, item)
            transition_item(db, item.id, user, transition_from_form(action, request.form, points))
            if after is not None:
                after(db)
    except (DomainError, StorageError) as exc:
        if isinstance(exc, NotFound):
            abort(404)
        return render_item_with_error(db, item_id, user, template, exc, **context)
    flash(gettext("已%(action)s", action=gettext(ACTION_LABELS[action])), "success")
    return redirect(url_for(page_endpoint, item_id=item_id), code=303)


def render_item_with_error(
    db: Session,
    item_id: int,
    user: User,
    template: str,
    exc: DomainError | StorageError,
    **context: Any,
) -> ResponseReturnValue:
    """Re-render the item page with the refusal's message and its status code."""
    item = readable_item_or_404(db, item_id, user)
    view = load_item_view(db, item, user, form=request.form)
    view.error = exc.message
    return render_template(template, view=view, **context), exc.status
