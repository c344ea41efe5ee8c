"""Score notices in the portal: download buttons, issued versions, the summary table."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from web.api.common import MAX_ID
from web.app import get_db
from web.notices import _send
from web.portal.auth import current_account, roles_required
from web.portal.common import add_error_pages, get_store, latest_assessment
from workflow.errors import DomainError, NotFound
from workflow.models import Assessment, Department, Notice
from workflow.notices import (
    NOTICE,
    current_notice,
    current_summary,
    get_readable_notice,
    list_notices,
)
from workflow.permissions import READ_ALL_ROLES, can_read_department
from workflow.states import Role

bp = Blueprint("notices_portal", __name__)
add_error_pages(bp)


def _assessment(db: Session) -> Assessment:
    assessment = latest_assessment(db)
    if assessment is None:
        abort(404)
    return assessment


def _department(db: Session, assessment: Assessment, department_id: int) -> Department:
    department = db.get(Department, department_id)
    if department is None or department.assessment_id != assessment.id:
        abort(404)
    if not can_read_department(current_account(), department.id):
        abort(404)
    return department


def _send_or_error(row: Notice) -> ResponseReturnValue:
    try:
        return _send(row)
    except NotFound:
        abort(404)


def _refused(db: Session, exc: DomainError) -> ResponseReturnValue:
    db.rollback()
    if isinstance(exc, NotFound):
        abort(404)
    return render_template("error.html", code=exc.status, message=exc.message), exc.status


def _department_notice(department_id: int) -> ResponseReturnValue:
    db = get_db()
    assessment = _assessment(db)
    department = _department(db, assessment, department_id)
    try:
        row = current_notice(db, get_store(), assessment, department, current_account())
    except DomainError as exc:
        return _refused(db, exc)
    db.commit()
    return _send_or_error(row)


@bp.get(f"/progress/departments/<int(max={MAX_ID}):department_id>/notice.docx")
@roles_required(*READ_ALL_ROLES)
def department_notice(department_id: int) -> ResponseReturnValue:
    """A department's current notice (issued first when the scores changed)."""
    return _department_notice(department_id)


@bp.get(f"/progress/departments/<int(max={MAX_ID}):department_id>/notices")
@roles_required(*READ_ALL_ROLES)
def department_versions(department_id: int) -> ResponseReturnValue:
    """The issued versions of a department's notice, oldest first."""
    db = get_db()
    assessment = _assessment(db)
    department = _department(db, assessment, department_id)
    rows = list_notices(db, assessment, NOTICE, department, limit=500)
    return render_template("progress/notices.html", department=department, rows=rows)


@bp.get("/progress/summary.docx")
@roles_required(*READ_ALL_ROLES)
def summary() -> ResponseReturnValue:
    """The summary table of all departments (staff, auditors)."""
    db = get_db()
    assessment = _assessment(db)
    try:
        row = current_summary(db, get_store(), assessment, current_account())
    except DomainError as exc:
        return _refused(db, exc)
    db.commit()
    return _send_or_error(row)


@bp.get("/portal/notice.docx")
@roles_required(Role.DEPARTMENT)
def own_notice() -> ResponseReturnValue:
    """The signed-in department user's own notice, once all of its items are scored."""
    user = current_account()
    if user.department_id is None:
        abort(404)
    return _department_notice(user.department_id)


@bp.get(f"/portal/notices/<int(max={MAX_ID}):notice_id>")
@roles_required()
def version(notice_id: int) -> ResponseReturnValue:
    """One issued version, byte for byte, to a user who may read it."""
    try:
        row = get_readable_notice(get_db(), notice_id, current_account())
    except NotFound:
        abort(404)
    return _send_or_error(row)
