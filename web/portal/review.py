"""The office's review queues and item page: review, return, verify, score, appeals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import ColumnElement

from scoring.routine import Suggestion
from web.clock import request_now
from web.db import get_db
from web.portal.auth import current_account, roles_required
from web.portal.common import N_, asked_assessment, asked_year, assessment_years, int_arg
from web.portal.deadlines import deadline_info
from web.portal.items import apply_posted_action, load_item_view, readable_item_or_404
from workflow.bulk import MAX_BULK_ITEMS
from workflow.machine import ACTIONS
from workflow.models import Assessment, Item, utcnow
from workflow.permissions import READ_ALL_ROLES
from workflow.read import queue_conditions, queue_page, waiting_in_other_years
from workflow.routine import suggested_reason, suggestions_for
from workflow.states import Role, State

bp = Blueprint("review", __name__, url_prefix="/review")

TEMPLATE = "review/item.html"
PAGE_SIZE = 50
OFFICE_ACTIONS = tuple(a for a in ACTIONS if a not in ("submit", "appeal"))


@dataclass(frozen=True)
class Tab:
    """A queue: the items waiting in one state."""

    state: State
    label: str
    role: Role


TABS = (
    Tab(State.SUBMITTED, N_("待初审"), Role.REVIEWER),
    Tab(State.REVIEWED, N_("待核实"), Role.VERIFIER),
    Tab(State.VERIFIED, N_("待评分"), Role.SCORER),
    Tab(State.APPEALED, N_("申诉"), Role.SCORER),
)


def queue_filters(
    assessment: Assessment,
    state: State,
    department_id: int | None,
    indicator_id: int | None,
    overdue_only: bool,
    failed_checks_only: bool = False,
) -> list[ColumnElement[bool]]:
    """Return the conditions of one queue tab with its filters (the page and bulk selection)."""
    return queue_conditions(
        assessment.id, state.value, department_id=department_id, indicator_id=indicator_id,
        overdue_states=_overdue_states(assessment) if overdue_only else None,
        failed_checks_only=failed_checks_only,
    )  # fmt: skip


def _overdue_states(assessment: Assessment) -> list[str]:
    """The states whose stage deadline has passed: all of their items are overdue."""
    info = deadline_info(assessment.id)
    return info.overdue_states if info else []


@bp.get("/")
@roles_required(*READ_ALL_ROLES)
def queue() -> ResponseReturnValue:
    """Show a queue with counts per tab, filters by department and indicator, 只看逾期 and
    只看有“否” (a check point answered 否 at verification), keyset pages."""
    user = current_account()
    db = get_db()
    # The newest year's by default; `?year=` for another (last year's appeals during its
    # 公示, after next year's assessment has started).
    year = asked_year()  # a malformed or unknown year says so, as on every page with years
    assessment = asked_assessment(db)
    default = next((t for t in TABS if user.has_role(t.role)), TABS[0])
    tab = next((t for t in TABS if t.state.value == request.args.get("state")), default)
    department_id, indicator_id = int_arg("department"), int_arg("indicator")
    overdue_only = request.args.get("overdue") == "1"
    failed_checks_only = request.args.get("failed_checks") == "1"
    after = int_arg("after")
    if assessment is None:
        return render_template("review/queue.html", assessment=None, tabs=TABS, tab=tab, years=[])

    page = queue_page(
        db,
        assessment,
        tab.state.value,
        [t.state.value for t in TABS],
        department_id=department_id,
        indicator_id=indicator_id,
        overdue_states=_overdue_states(assessment) if overdue_only else None,
        failed_checks_only=failed_checks_only,
        after=after,
        size=int(current_app.config.get("REVIEW_PAGE_SIZE", PAGE_SIZE)),
    )
    counts, rows, has_more = page.counts, page.rows, page.has_more
    filter_args: dict[str, Any] = {
        k: v
        for k, v in (
            ("year", year),
            ("department", department_id),
            ("indicator", indicator_id),
            ("overdue", 1 if overdue_only else None),
            ("failed_checks", 1 if failed_checks_only else None),
        )
        if v is not None
    }
    next_url = (
        url_for("review.queue", state=tab.state.value, after=rows[-1].id, **filter_args)
        if has_more
        else None
    )
    return render_template(
        "review/queue.html",
        assessment=assessment,
        tabs=TABS,
        tab=tab,
        counts=counts,
        rows=rows,
        next_url=next_url,
        first_url=(
            url_for("review.queue", state=tab.state.value, **filter_args) if after else None
        ),
        filter_args=filter_args,
        departments=page.departments,
        indicators=page.indicators,
        failed_checks=page.failed_checks,
        department_id=department_id,
        indicator_id=indicator_id,
        overdue_only=overdue_only,
        failed_checks_only=failed_checks_only,
        max_bulk=MAX_BULK_ITEMS,
        year=year,
        years=assessment_years(db),
        elsewhere=waiting_in_other_years(
            db, assessment, [t.state.value for t in TABS], request_now()
        ),
    )


@bp.get("/items/<int:item_id>")
@roles_required(*READ_ALL_ROLES)
def item_page(item_id: int) -> ResponseReturnValue:
    """Show an item with its evidence and the actions this user may take."""
    user = current_account()
    db = get_db()
    item = readable_item_or_404(db, item_id, user)
    return render_template(TEMPLATE, view=load_item_view(db, item, user), **_routine(item))


def _routine(item: Item) -> dict[str, Any]:
    """Suggested scores of the item's routine points (9.1, 9.2, 10.1), from the records, and
    the deduction reasons they give (`suggested_reasons`, in Chinese: the department reads
    them, whatever the scorer's interface language)."""
    db = get_db()
    assessment = db.get_one(Assessment, item.assessment_id)
    suggestions: dict[str, Suggestion] = suggestions_for(
        db, assessment, item.department_id, utcnow()
    )
    reasons = {code: suggested_reason(s) for code, s in suggestions.items()}
    return {
        "suggestions": suggestions,
        "suggested_reasons": {code: r for code, r in reasons.items() if r},
    }


@bp.post("/items/<int:item_id>/action")
@roles_required(*READ_ALL_ROLES)
def item_act(item_id: int) -> ResponseReturnValue:
    """Apply review, return, verify, score, rescore or reject_appeal."""
    user = current_account()
    item = readable_item_or_404(get_db(), item_id, user)
    return apply_posted_action(
        item_id,
        user,
        OFFICE_ACTIONS,
        TEMPLATE,
        "review.item_page",
        **_routine(item),
    )
