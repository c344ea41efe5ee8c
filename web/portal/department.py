"""The department portal: the department's items, evidence upload, submit and appeal."""

from __future__ import annotations

import datetime as dt
from typing import BinaryIO, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from scoring.pdf import office_binary
from storage.base import content_disposition
from storage.convert import DEFAULT_TIMEOUT, is_convertible, pdf_rendition
from storage.errors import ObjectNotFound, StorageError
from web.clock import request_now
from web.common.stored_files import open_as_recorded
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required
from web.portal.common import (
    chosen_department,
    get_store,
    live_evidence_counts,
    own_departments,
)
from web.portal.items import (
    PREVIEW_TYPES,
    apply_posted_action,
    load_item_view,
    readable_item_or_404,
    render_item_with_error,
)
from workflow.assessments import local_minute
from workflow.errors import DomainError, InvalidValue, NotFound
from workflow.evidence import (
    PURPOSES,
    attach_evidence_files,
    get_readable_evidence,
    remove_evidence,
)
from workflow.models import Category, Indicator, Item, ScoringPoint, User
from workflow.notices import NOTICE, latest_notice, scores_visible_to, standing
from workflow.permissions import is_own_department
from workflow.pipeline import check
from workflow.read import waiting_in_other_years
from workflow.states import Role, State

bp = Blueprint("portal", __name__, url_prefix="/portal")

DEPARTMENT_ACTIONS = ("submit", "withdraw", "appeal")
TEMPLATE = "portal/item.html"
#: What waits for a department in another year that is not final: items to (re)submit.
_WAITING_STATES = (State.DRAFT.value, State.RETURNED.value)


def _own_item(item_id: int, user: User) -> Item:
    """Load an item of the user's own department, else 404 (staff use the review pages)."""
    item = readable_item_or_404(get_db(), item_id, user)
    if not is_own_department(user, item.department_id):
        abort(404)
    return item


@bp.get("/")
@roles_required(Role.DEPARTMENT)
def index() -> ResponseReturnValue:
    """List the department's items of one year with state, score and the next step; the
    other years the department was assessed in are one click away."""
    user = current_account()
    db = get_db()
    departments = own_departments(db, user)
    department = chosen_department(db, departments)
    items = list(
        db.execute(
            select(Item)
            .join(Indicator, Indicator.id == Item.indicator_id)
            .join(Category, Category.id == Indicator.category_id)
            .where(Item.department_id == (department.id if department is not None else 0))
            .options(joinedload(Item.indicator).joinedload(Indicator.category))
            .order_by(Category.position, Indicator.position, Item.id)
        ).scalars()
    )
    counts = live_evidence_counts(db, [i.id for i in items])
    hidden = department is not None and not scores_visible_to(user, department.assessment)
    routine_indicators = set(
        db.execute(
            select(ScoringPoint.indicator_id).where(
                ScoringPoint.indicator_id.in_({i.indicator_id for i in items}),
                ScoringPoint.routine.is_not(None),
            )
        ).scalars()
    )
    scored = [i.total for i in items if i.total is not None]
    # While the department may appeal, a scored item's next step is that chance: asked of the
    # engine's own guards (the window, scores shown, results not final) on one such item.
    appeal_until = None
    first = next((i for i in items if i.state == State.SCORED.value and not i.appeal_count), None)
    if first is not None and not hidden:
        try:
            check(db, first, user, "appeal", now=request_now())
        except DomainError:
            pass
        else:
            assessment = first.assessment
            appeal_until = local_minute(cast(dt.datetime, assessment.appeal_closes_at),
                                        assessment.timezone)  # fmt: skip
    notice = (
        latest_notice(db, department.assessment, NOTICE, department)
        if department is not None and not hidden
        else None
    )
    return render_template(
        "portal/index.html",
        department=department,
        departments=departments,
        items=items,
        counts=counts,
        routine_indicators=routine_indicators,
        total=sum(scored) if scored and not hidden else None,
        # As the progress page and the exports count: scored (final) items; an appealed item
        # keeps its score in the sum until the appeal is decided, and is counted beside it.
        scored_count=sum(1 for i in items if i.state == State.SCORED.value),
        # An appealed item keeps its score until the appeal is decided: said beside the sum.
        appealed_count=sum(1 for i in items if i.state == State.APPEALED.value),
        scores_hidden=hidden,
        appeal_until=appeal_until,
        notice=notice,
        notice_standing=standing(db, notice) if notice is not None else None,
        office_missing=office_binary() is None,
        elsewhere=(
            waiting_in_other_years(
                db,
                department.assessment,
                _WAITING_STATES,
                request_now(),
                department_ids=[d.id for d in departments if d.id != department.id],
            )
            if department is not None and len(departments) > 1
            else []
        ),
        waiting_states=_WAITING_STATES,
    )


@bp.get("/items/<int:item_id>")
@roles_required(Role.DEPARTMENT)
def item_page(item_id: int) -> ResponseReturnValue:
    """Show one item: scoring points, evidence, upload, submit, scores, appeal, history."""
    user = current_account()
    item = _own_item(item_id, user)
    return render_template(TEMPLATE, view=load_item_view(get_db(), item, user))


@bp.post("/items/<int:item_id>/action")
@roles_required(Role.DEPARTMENT)
def item_act(item_id: int) -> ResponseReturnValue:
    """Submit or appeal the item."""
    user = current_account()
    _own_item(item_id, user)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if request.form.get("action") != "appeal" or not files:
        return apply_posted_action(item_id, user, DEPARTMENT_ACTIONS, TEMPLATE, "portal.item_page")

    def attach_appeal_files(db: Session) -> None:
        # Stored as the appeal's evidence, each audited, in the appeal's transaction.
        attach_evidence_files(
            db,
            get_store(),
            item_id,
            user,
            [(cast(BinaryIO, f.stream), f.filename or "") for f in files],
            purpose="appeal",
            max_size=int(current_app.config["MAX_UPLOAD_BYTES"]),
        )

    return apply_posted_action(
        item_id, user, DEPARTMENT_ACTIONS, TEMPLATE, "portal.item_page", after=attach_appeal_files
    )


@bp.post("/items/<int:item_id>/evidence")
@roles_required(Role.DEPARTMENT)
def upload(item_id: int) -> ResponseReturnValue:
    """Attach one or several uploaded files to the item, all or none."""
    user = current_account()
    _own_item(item_id, user)
    db = get_db()
    files = [f for f in request.files.getlist("files") if f and f.filename]
    purpose = request.form.get("purpose") or "evidence"
    sub_item = request.form.get("sub_item") or None
    note = request.form.get("note") or None
    try:
        with discard_on_error():
            if not files:
                raise InvalidValue("请选择要上传的文件", code="file_required")
            if purpose not in PURPOSES:
                raise InvalidValue("未知的材料用途", code="bad_purpose")
            # Every file is stored first, then all rows are written under the item's lock.
            attach_evidence_files(
                db,
                get_store(),
                item_id,
                user,
                [(cast(BinaryIO, f.stream), f.filename or "") for f in files],
                sub_item=sub_item,
                purpose=purpose,
                note=note,
                max_size=int(current_app.config["MAX_UPLOAD_BYTES"]),
            )
    except (DomainError, StorageError) as exc:
        if isinstance(exc, NotFound):
            abort(404)
        return render_item_with_error(db, item_id, user, TEMPLATE, exc)
    flash(
        ngettext("已上传 %(n)s 个文件", "已上传 %(n)s 个文件", len(files), n=len(files)), "success"
    )
    target = url_for("portal.item_page", item_id=item_id)
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return jsonify(redirect=target)  # upload.js follows it after its progress bar
    return redirect(target, code=303)


@bp.post("/evidence/<int:evidence_id>/remove")
@roles_required(Role.DEPARTMENT)
def remove(evidence_id: int) -> ResponseReturnValue:
    """Remove an evidence file while the item is a draft or returned (kept for the record)."""
    user = current_account()
    db = get_db()
    try:
        row = get_readable_evidence(db, evidence_id, user)
    except NotFound:
        abort(404)
    item_id = row.item_id
    try:
        with discard_on_error():
            remove_evidence(db, evidence_id, user)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            # Removed already (another tab, a colleague): back to the item, saying so.
            flash(gettext("材料“%(name)s”已删除", name=row.filename), "warning")
            return redirect(url_for("portal.item_page", item_id=item_id), code=303)
        return render_item_with_error(db, item_id, user, TEMPLATE, exc)
    flash(gettext("已删除材料：%(name)s", name=row.filename), "success")
    return redirect(url_for("portal.item_page", item_id=item_id), code=303)


# A previewed file is its own sandboxed origin: no script, no forms, framed only by our pages.
# (Chromium's PDF viewer still renders under a CSP sandbox, unlike in an <iframe sandbox>.)
PREVIEW_CSP = "sandbox; default-src 'none'; img-src 'self'; frame-ancestors 'self'"


def _stream_evidence(evidence_id: int, *, inline: bool) -> ResponseReturnValue:
    """Stream an evidence file the user may read, as an attachment or an inline preview."""
    user = current_account()
    db = get_db()
    try:
        row = get_readable_evidence(db, evidence_id, user)
    except NotFound:
        abort(404)
    key, content_type, filename = row.storage_key, row.content_type, row.filename
    store = get_store()
    try:
        if inline and is_convertible(row.content_type):  # a Word/Excel/WPS file: its PDF
            key = pdf_rendition(
                store,
                source_key=row.storage_key,
                source_sha256=row.sha256,
                content_type=row.content_type,
                timeout=float(current_app.config.get("CONVERSION_TIMEOUT", DEFAULT_TIMEOUT)),
            )
            content_type, filename = "application/pdf", f"{row.filename}.pdf"
        elif inline and row.content_type not in PREVIEW_TYPES:
            abort(404)
        if key == row.storage_key:
            reader = open_as_recorded(store, row, "evidence")
        else:  # the rendition, made from the source once it matched its row
            reader = store.open(key)
    except ObjectNotFound:
        abort(404)
    except StorageError as exc:
        return render_template("error.html", code=exc.status, message=exc.message), exc.status
    response = Response(reader.iter_chunks(), mimetype=content_type)
    response.call_on_close(reader.close)
    response.headers["Content-Disposition"] = content_disposition(filename, inline=inline)
    response.headers["Content-Length"] = str(reader.size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    if inline:
        response.headers["Content-Security-Policy"] = PREVIEW_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/evidence/<int:evidence_id>/download")
@roles_required()
def download(evidence_id: int) -> ResponseReturnValue:
    """Send an evidence file to a user who may read its item, as an attachment."""
    return _stream_evidence(evidence_id, inline=False)


@bp.get("/evidence/<int:evidence_id>/preview")
@roles_required()
def preview(evidence_id: int) -> ResponseReturnValue:
    """Show a PDF or an image inline, sandboxed; other types are download-only."""
    return _stream_evidence(evidence_id, inline=True)
