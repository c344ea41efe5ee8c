"""Bulk review, verify and return from the queue: select, preview, confirm, report.

The queue page posts the selection (ticked rows, every row of the page, or every item that
matches the filter, up to 500) with one action and one shared reason to `preview`, which shows
per item whether the action would pass and the guard's message (`workflow.bulk.preview`,
nothing written). Its confirm button posts the same items with a fresh Idempotency-Key to
`apply`: `workflow.bulk.apply_bulk` commits each item in its own transaction (this view
commits nothing) and stores the run, and the browser is sent to the run's report. A second
click or a reload of the confirm POST answers the stored run and applies nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from web.common.ids import MAX_ID
from web.db import get_db
from web.portal.auth import current_account, roles_required, signed_in_user
from web.portal.common import assessment_of_year, int_arg
from web.portal.review import queue_filters
from workflow.bulk import (
    MAX_BULK_ITEMS,
    BulkReport,
    BulkTarget,
    apply_bulk,
    load_run,
    preview,
)
from workflow.errors import DomainError, InvalidValue, NotFound
from workflow.models import Item, User
from workflow.states import Role, State

bp = Blueprint("bulk", __name__, url_prefix="/review/bulk")

BULK_ROLES = (Role.REVIEWER, Role.VERIFIER)
#: The queue tabs that offer bulk actions, and which role may take which action there.
TAB_ACTIONS: dict[State, tuple[tuple[str, tuple[Role, ...]], ...]] = {
    State.SUBMITTED: (("review", (Role.REVIEWER,)), ("return", (Role.REVIEWER,))),
    State.REVIEWED: (("verify", (Role.VERIFIER,)), ("return", (Role.REVIEWER, Role.VERIFIER))),
}
SCOPES = ("selected", "page", "filter")
MAX_KEY = 200


def bulk_actions_for(user: User | None, state: State) -> list[str]:
    """Return the bulk actions the queue tab of `state` offers this user (none: no checkboxes)."""
    if user is None:
        return []
    return [a for a, roles in TAB_ACTIONS.get(state, ()) if user.has_role(*roles)]


@bp.app_template_global("bulk_actions")
def bulk_actions(state: State) -> list[str]:
    """The queue template's question: which bulk actions does this tab offer the signed-in user?"""
    return bulk_actions_for(signed_in_user(), state)


def _targets(values: Iterable[str]) -> list[BulkTarget]:
    """Parse "id:version" pairs from the form; anything else is a 400."""
    targets = []
    for value in values:
        item_id, _, version = value.partition(":")
        if not (_is_number(item_id) and _is_number(version)):
            abort(400)
        targets.append(BulkTarget(int(item_id), int(version)))
    return targets


def _is_number(text: str) -> bool:
    """An id or version as the page wrote it: ASCII digits that fit the schema's 32 bits."""
    return text.isascii() and text.isdecimal() and len(text) <= 10 and int(text) <= MAX_ID


def _form_int(name: str) -> int | None:
    value = request.form.get(name, "")
    if not value:
        return None
    if not _is_number(value):
        abort(400)
    return int(value)


def _filter_args() -> dict[str, Any]:
    """The queue's filters as posted with the selection (to match them, and to go back)."""
    state = request.form.get("state", "")
    if state not in (s.value for s in TAB_ACTIONS):
        abort(400)
    args: dict[str, Any] = {"state": state}
    for name in ("year", "department", "indicator"):
        value = _form_int(name)
        if value is not None:
            args[name] = value
    for flag in ("overdue", "failed_checks"):
        if request.form.get(flag) == "1":
            args[flag] = 1
    return args


def _matching(db: Session, args: dict[str, Any]) -> list[BulkTarget]:
    """Every item of the queue tab that matches the filters, with its current version."""
    assessment = assessment_of_year(db, args.get("year"))
    if assessment is None:
        return []
    filters = queue_filters(
        assessment,
        State(args["state"]),
        args.get("department"),
        args.get("indicator"),
        bool(args.get("overdue")),
        bool(args.get("failed_checks")),
    )
    total = db.scalar(select(func.count()).select_from(Item).where(*filters)) or 0
    if total > MAX_BULK_ITEMS:
        raise InvalidValue(
            "符合筛选条件的事项共 %(count)s 个，批量办理一次最多 %(limit)s 个，"
            "请缩小筛选范围后分批办理",
            code="too_many_items",
            params={"count": total, "limit": MAX_BULK_ITEMS},
        )
    rows = db.execute(select(Item.id, Item.version).where(*filters).order_by(Item.id)).all()
    return [BulkTarget(item_id, version) for item_id, version in rows]


def _items(db: Session, ids: Iterable[int]) -> dict[int, Item]:
    """Load the items a report names, with department and indicator, in one query."""
    wanted = list(ids)
    if not wanted:
        return {}
    return {
        i.id: i
        for i in db.execute(
            select(Item)
            .where(Item.id.in_(wanted))
            .options(joinedload(Item.department), joinedload(Item.indicator))
        ).scalars()
    }


def _refused(
    exc: DomainError,
    back: str,
    retry: list[BulkTarget] | None = None,
    filter_args: dict[str, Any] | None = None,
) -> ResponseReturnValue:
    """The whole request was refused (no items, too many, no reason): say why, with a way back.

    A return without its reason keeps the ticked items (`retry`): the page asks for the
    reason and previews them again, instead of sending the user back to tick them anew.
    """
    return render_template(
        "review/bulk_refused.html",
        error=exc.message,
        back=back,
        retry=retry if exc.code == "reason_required" else None,
        filter_args=filter_args or {},
    ), exc.status


@bp.post("/preview")
@roles_required(*BULK_ROLES)
def preview_page() -> ResponseReturnValue:
    """Show, per selected item, whether the action would pass and why not; change nothing."""
    user = current_account()
    db = get_db()
    args = _filter_args()
    back = url_for("review.queue", **args)
    action = request.form.get("action", "")
    comment = request.form.get("comment", "")
    scope = request.form.get("scope", "selected")
    if scope not in SCOPES:
        abort(400)
    targets: list[BulkTarget] = []
    try:
        if scope == "filter":
            targets = _matching(db, args)
        else:
            targets = _targets(request.form.getlist("item" if scope == "selected" else "page_item"))
        report = preview(
            db, user, action, targets, comment,
            all_checks_yes=request.form.get("all_checks_yes") == "1",
        )  # fmt: skip
    except DomainError as exc:
        return _refused(exc, back, targets, args)
    return render_template(
        "review/bulk_preview.html",
        report=report,
        targets=targets,
        items=_items(db, (t.item_id for t in targets)),
        key=uuid.uuid4().hex,
        back=back,
        filter_args=args,
    )


@bp.post("/apply")
@roles_required(*BULK_ROLES)
def apply_page() -> ResponseReturnValue:
    """Apply the previewed action, item by item (the engine commits each), then show the run."""
    user = current_account()
    args = _filter_args()
    back = url_for("review.queue", **args)
    key = request.form.get("key", "")
    if not key or len(key) > MAX_KEY or not key.isascii() or not key.isprintable():
        abort(400)
    targets = _targets(request.form.getlist("item"))
    factory = current_app.extensions["sessionmaker"]
    try:
        report = apply_bulk(
            factory,
            user.id,
            request.form.get("action", ""),
            targets,
            request.form.get("comment", ""),
            idempotency_key=key,
            all_checks_yes=request.form.get("all_checks_yes") == "1",
        )
    except DomainError as exc:
        return _refused(exc, back)
    return redirect(url_for("bulk.run_page", run_id=report.run_id, **args), code=303)


@bp.get("/runs/<int:run_id>")
@roles_required(*BULK_ROLES)
def run_page(run_id: int) -> ResponseReturnValue:
    """The report of a run: succeeded, refused with the reason, conflicted; per item."""
    user = current_account()
    db = get_db()
    try:
        report: BulkReport = load_run(db, run_id, user)
    except NotFound:
        abort(404)
    state = request.args.get("state", "")
    back_args: dict[str, Any] = {
        k: v
        for k, v in (
            ("state", state if state in (s.value for s in TAB_ACTIONS) else None),
            ("year", int_arg("year")),
            ("department", int_arg("department")),
            ("indicator", int_arg("indicator")),
        )
        if v is not None
    }
    return render_template(
        "review/bulk_report.html",
        report=report,
        items=_items(db, (r.item_id for r in report.results)),
        back=url_for("review.queue", **back_args),
    )
