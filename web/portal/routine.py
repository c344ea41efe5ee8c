"""Routine assessment (平时考核) pages: a department's records, the office's review and quotas."""

from __future__ import annotations

from typing import Any, BinaryIO, cast

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, joinedload, selectinload

from scoring.routine import KIND_LABELS, OUTCOME_LABELS, periods_between
from storage.base import content_disposition
from storage.errors import ObjectNotFound, StorageError
from web.common.exports import xlsx_response
from web.common.ids import MAX_ID
from web.common.routine_tables import matrix_csv, quota_table
from web.common.stored_files import open_as_recorded
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required, safe_next
from web.portal.common import (
    N_,
    asked_assessment_or_404,
    assessment_years,
    chosen_department,
    get_store,
    int_arg,
    keyset_page,
    own_departments,
)
from web.portal.forms import form_seen
from workflow.errors import DomainError, NotFound
from workflow.models import Assessment, Department, RoutineFile, RoutineRecord, User, utcnow
from workflow.permissions import READ_ALL_ROLES
from workflow.routine import (
    DEPARTMENT_KINDS,
    OFFICE_ROLES,
    STAFF_KINDS,
    correct_routine,
    correction_seen,
    get_routine,
    quota_matrix,
    reports_closed,
    review_routine,
    routine_overview,
    rules_of,
    submit_routine,
    withdraw_routine,
)
from workflow.spreadsheets import xlsx_bytes
from workflow.states import Role

bp = Blueprint("routine", __name__)

PAGE_SIZE = 50
# Chinese labels of the engine's data, listed so the catalog carries their English.
KIND_NAMES = [
    N_("“放管服”信息（月报）"),
    N_("经验做法/典型案例（季报）"),
    N_("参会情况"),
    N_("督查检查/迎检"),
    N_("临时性工作"),
]
STATUS_LABELS = {
    "submitted": N_("待审核"),
    "accepted": N_("已采纳"),
    "rejected": N_("已退回"),
    "withdrawn": N_("已撤销"),
}
OUTCOME_NAMES = [N_("按时完成（准时参会）"), N_("逾期完成（迟到）"), N_("未完成（缺席）")]
CELL_LABELS = {
    "met": N_("达标"),
    "late": N_("达标（含迟报）"),
    "short": N_("未达标"),
    "missing": N_("未报送"),
}
QUOTA_KINDS = ("monthly_info", "quarterly_case")


def kind_label(kind: str) -> str:
    """Return a routine kind's label in the page's language."""
    return gettext(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def status_label(status: str) -> str:
    """Return a routine status's label in the page's language."""
    return gettext(STATUS_LABELS[status]) if status in STATUS_LABELS else status


def outcome_label(outcome: str | None) -> str:
    """Return a task outcome's label in the page's language."""
    if not outcome:
        return ""
    return gettext(OUTCOME_LABELS[outcome]) if outcome in OUTCOME_LABELS else outcome


def _periods(assessment: Assessment) -> dict[str, list[str]]:
    """Every month and quarter of the counting window (the period select's options)."""
    rules = rules_of(assessment)
    return {
        unit: [p.label for p in periods_between(rules.counting_starts, rules.counting_ends, unit)]
        for unit in ("month", "quarter")
    }


def _own_department(db: Session, user: User) -> tuple[Department, list[Department]]:
    """The user's department in the year asked for (`year`), else as on the department's
    index (the year whose 公示 runs, else the newest); with every year's, for the year switch.

    Last year's December report is due in January, when next year's assessment may exist
    already: the year switch and the form's `year` keep it reachable. No department: 404.
    """
    departments = own_departments(db, user)
    department = chosen_department(db, departments)
    if department is None:
        abort(404)
    return department, departments


def _render_department(db: Session, user: User, form: Any = None, error: str | None = None) -> str:
    department, departments = _own_department(db, user)
    assessment = department.assessment
    overview = routine_overview(db, assessment, department.id, user, utcnow())
    return render_template(
        "routine/department.html",
        department=department,
        departments=departments,
        overview=overview,
        kinds=[k for k in KIND_LABELS if k in DEPARTMENT_KINDS],
        periods=_periods(assessment),
        cell_labels=CELL_LABELS,
        closed=reports_closed(assessment),
        form=form or {},
        error=error,
    )


@bp.get("/portal/routine")
@roles_required(Role.DEPARTMENT)
def department_page() -> ResponseReturnValue:
    """A department's routine records with status, counts per period and the submit form."""
    return _render_department(get_db(), current_account())


def _submit(user: User, assessment: Assessment, department_id: int | None) -> None:
    upload = request.files.get("file")
    has_file = upload is not None and bool(upload.filename)
    submit_routine(
        get_db(),
        get_store(),
        assessment,
        user,
        kind=request.form.get("kind", ""),
        period=request.form.get("period", ""),
        title=request.form.get("title", ""),
        stream=cast(BinaryIO, upload.stream) if has_file and upload is not None else None,
        filename=upload.filename if has_file and upload is not None else None,
        department_id=department_id,
        note=request.form.get("note"),
        outcome=request.form.get("outcome") or None,
        max_size=int(current_app.config["MAX_UPLOAD_BYTES"]),
    )


@bp.post("/portal/routine")
@roles_required(Role.DEPARTMENT)
def department_submit() -> ResponseReturnValue:
    """Submit a monthly report, a quarterly case or a task of the user's own department."""
    user = current_account()
    db = get_db()
    try:
        with discard_on_error():
            own, _ = _own_department(db, user)
            _submit(user, own.assessment, own.id)
    except (DomainError, StorageError) as exc:
        return _render_department(db, user, request.form, exc.message), exc.status
    flash(gettext("已报送，等待市职转办审核"), "success")
    return redirect(url_for("routine.department_page", year=own.assessment.year), code=303)


@bp.get(f"/portal/routine/files/<int(max={MAX_ID}):file_id>/download")
@roles_required()
def download(file_id: int) -> ResponseReturnValue:
    """Stream a routine file to a user who may read its record, as an attachment."""
    user = current_account()
    db = get_db()
    row = db.get(RoutineFile, file_id)
    if row is None:
        abort(404)
    try:
        get_routine(db, row.record_id, user)
    except NotFound:
        abort(404)
    try:
        reader = open_as_recorded(get_store(), row, "routine_file")
    except ObjectNotFound:
        abort(404)
    except StorageError as exc:
        return render_template("error.html", code=exc.status, message=exc.message), exc.status
    response = Response(reader.iter_chunks(), mimetype=row.content_type)
    response.call_on_close(reader.close)
    response.headers["Content-Disposition"] = content_disposition(row.filename)
    response.headers["Content-Length"] = str(row.size)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- the office --------------------------------------------------------------------------------


def _departments(db: Session, assessment: Assessment) -> list[Department]:
    return list(
        db.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position)
        ).scalars()
    )


def _render_office(db: Session, form: Any = None, error: str | None = None) -> str:
    assessment = asked_assessment_or_404(db)
    status = request.args.get("status", "submitted")
    if status not in STATUS_LABELS:
        status = "submitted"
    department_id, after = int_arg("department"), int_arg("after")
    kind = request.args.get("kind", "")
    period = request.args.get("period", "")
    filters: list[ColumnElement[bool]] = [
        RoutineRecord.assessment_id == assessment.id,
        RoutineRecord.status == status,
    ]
    # The page's year rides on every link and form, so that paging, filtering and the forms
    # stay on it once next year's assessment exists.
    args: dict[str, Any] = {"status": status, "year": assessment.year}
    if department_id is not None:
        filters.append(RoutineRecord.department_id == department_id)
        args["department"] = department_id
    if kind in KIND_LABELS:
        filters.append(RoutineRecord.kind == kind)
        args["kind"] = kind
    if period:
        filters.append(RoutineRecord.period == period)
        args["period"] = period
    if after is not None:
        filters.append(RoutineRecord.id > after)
    size = int(current_app.config.get("REVIEW_PAGE_SIZE", PAGE_SIZE))
    rows, more = keyset_page(
        db,
        select(RoutineRecord)
        .where(*filters)
        .options(joinedload(RoutineRecord.department), selectinload(RoutineRecord.files))
        .order_by(RoutineRecord.id),
        size,
    )
    periods = _periods(assessment)
    return render_template(
        "routine/office.html",
        assessment=assessment,
        years=assessment_years(db),
        rows=rows,
        next_url=url_for("routine.office_page", after=rows[-1].id, **args) if more else None,
        first_url=url_for("routine.office_page", **args) if after else None,
        args=args,
        status=status,
        statuses=STATUS_LABELS,
        departments=_departments(db, assessment),
        kinds=list(KIND_LABELS),
        staff_kinds=[k for k in KIND_LABELS if k in STAFF_KINDS],
        periods=periods,
        all_periods=periods["month"] + periods["quarter"],
        can_act=current_account().has_role(*OFFICE_ROLES),
        outcomes=OUTCOME_LABELS,
        # What each correction form shows now (its hidden `seen`).
        seen={r.id: correction_seen(r) for r in rows},
        form=form or {},
        error=error,
    )


@bp.get("/review/routine")
@roles_required(*READ_ALL_ROLES)
def office_page() -> ResponseReturnValue:
    """Records by status (awaiting review first) with filters, review forms, record form."""
    return _render_office(get_db())


@bp.post("/review/routine")
@roles_required(*OFFICE_ROLES)
def office_record() -> ResponseReturnValue:
    """Record a meeting, an inspection or a task for any department."""
    db = get_db()
    assessment = asked_assessment_or_404(db)
    raw = request.form.get("department_id", "")
    department_id = int(raw) if raw.isdecimal() and len(raw) < 11 else None
    if department_id is not None and department_id > MAX_ID:
        abort(404)
    try:
        with discard_on_error():
            _submit(current_account(), assessment, department_id)
    except (DomainError, StorageError) as exc:
        return _render_office(db, request.form, exc.message), exc.status
    flash(gettext("已登记平时考核记录"), "success")
    return redirect(url_for("routine.office_page", year=assessment.year), code=303)


@bp.post(f"/review/routine/<int(max={MAX_ID}):record_id>/review")
@roles_required(*OFFICE_ROLES)
def office_review(record_id: int) -> ResponseReturnValue:
    """Accept or reject (with a reason) a routine record."""
    db = get_db()
    status = request.form.get("status", "")
    try:
        with discard_on_error():
            review_routine(
                db, record_id, current_account(), status, request.form.get("reason"),
                expected_status=request.form.get("seen") or None,
            )  # fmt: skip
    except DomainError as exc:
        if isinstance(exc, NotFound):
            abort(404)
        form = {**request.form, "record_id": str(record_id)}
        return _render_office(db, form, exc.message), exc.status
    flash(gettext("已采纳") if status == "accepted" else gettext("已退回"), "success")
    back = safe_next(request.form.get("back")) or ""
    if not back.startswith("/review/routine"):
        back = url_for("routine.office_page")
    return redirect(back, code=303)


def _back() -> str:
    back = request.form.get("back", "")
    return back if back.startswith("/review/routine") else url_for("routine.office_page")


@bp.post(f"/review/routine/<int(max={MAX_ID}):record_id>/<any(correct, withdraw):verb>")
@roles_required(*OFFICE_ROLES)
def office_change(record_id: int, verb: str) -> ResponseReturnValue:
    """Correct or withdraw a record the office registered, with a reason (audited)."""
    db = get_db()
    user = current_account()
    try:
        with discard_on_error():
            if verb == "correct":
                correct_routine(
                    db,
                    record_id,
                    user,
                    reason=request.form.get("reason"),
                    period=request.form.get("period"),
                    title=request.form.get("title"),
                    note=request.form.get("note"),
                    outcome=request.form.get("outcome"),
                    seen=form_seen(request.form),
                )
            else:
                withdraw_routine(db, record_id, user, reason=request.form.get("reason"))
    except DomainError as exc:
        if isinstance(exc, NotFound):
            abort(404)
        form = {**request.form, "record_id": str(record_id)}
        return _render_office(db, form, exc.message), exc.status
    flash(gettext("已更正记录") if verb == "correct" else gettext("已撤销记录"), "success")
    return redirect(_back(), code=303)


@bp.get("/review/routine/quota")
@roles_required(*READ_ALL_ROLES)
def quota_page() -> ResponseReturnValue:
    """Departments × months and quarters: met, late, short or missing — the reminder list."""
    db = get_db()
    assessment = asked_assessment_or_404(db)
    now = utcnow()
    matrices = [(kind, quota_matrix(db, assessment, kind, now)) for kind in QUOTA_KINDS]
    return render_template(
        "routine/quota.html",
        assessment=assessment,
        years=assessment_years(db),
        matrices=matrices,
        cell_labels=CELL_LABELS,
    )


def _quota_request(db: Session) -> tuple[Assessment, str]:
    """Return the current assessment and the asked kind of a quota export (404 otherwise)."""
    assessment = asked_assessment_or_404(db)
    kind = request.args.get("kind", "monthly_info")
    if kind not in QUOTA_KINDS:
        abort(404)
    return assessment, kind


@bp.get("/review/routine/quota.xlsx")
@roles_required(*READ_ALL_ROLES)
def quota_xlsx() -> ResponseReturnValue:
    """The matrix of a kind as Excel."""
    db = get_db()
    assessment, kind = _quota_request(db)
    headers, rows = quota_table(db, assessment, kind)
    label = KIND_LABELS[kind]
    content = xlsx_bytes(label, headers, rows, caption=f"{assessment.title} {label}报送情况")
    return xlsx_response(content, f"{assessment.year}-{label}-报送情况")


@bp.get("/review/routine/quota.csv")
@roles_required(*READ_ALL_ROLES)
def quota_csv() -> ResponseReturnValue:
    """The matrix of a kind as CSV, UTF-8 with BOM (opens in Excel/WPS)."""
    db = get_db()
    assessment, kind = _quota_request(db)
    body = "\ufeff" + matrix_csv(db, assessment, kind)
    response = Response(body.encode("utf-8"), mimetype="text/csv")
    name = f"{assessment.year}-{KIND_LABELS[kind]}-报送情况.csv"
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers["Cache-Control"] = "private, no-store"
    return response
