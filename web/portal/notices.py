"""Score notices in the portal: issue (POST), download what was issued, PDF, verification.

Downloading never issues: a GET returns the latest issued version or says none was issued.
Issuing is a POST with the session's CSRF token, by scorers and admins only (the engine
checks it again). `/verify/<code>` is public: anyone holding a printed notice checks it.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy.orm import Session

from scoring.pdf import office_binary
from web.common.ids import MAX_ID
from web.common.notice_files import send_notice, send_pdf, verify_base_url, verify_limit
from web.db import discard_on_error, get_db
from web.limits import limiter
from web.portal.auth import current_account, roles_required
from web.portal.common import (
    asked_assessment_or_404,
    asked_year,
    chosen_department,
    get_store,
    own_departments,
)
from workflow.errors import BadRequest, DomainError, NotFound
from workflow.models import Assessment, Department, Notice
from workflow.notices import (
    MAX_TYPED_CODE,
    NOTICE,
    SUMMARY,
    NoticeRecordAltered,
    current_notice,
    current_summary,
    get_readable_notice,
    issue_notes,
    issue_notice,
    issue_summary,
    issued_notes,
    latest_notice,
    list_notices,
    normalise_code,
    standing,
    verify_notice,
)
from workflow.permissions import READ_ALL_ROLES, can_read_department
from workflow.states import Role

bp = Blueprint("notices_portal", __name__)
ISSUER_ROLES = (Role.ADMIN, Role.SCORER)


def _department(db: Session, department_id: int) -> Department:
    """A department the user may read, of whichever year: its notices are its assessment's."""
    department = db.get(Department, department_id)
    if department is None or not can_read_department(current_account(), department.id):
        abort(404)
    return department


def _send_or_error(row: Notice) -> ResponseReturnValue:
    try:
        return send_notice(row)
    except NotFound:
        abort(404)


def _refused(exc: DomainError) -> ResponseReturnValue:
    return render_template("error.html", code=exc.status, message=exc.message), exc.status


def _department_notice(department_id: int) -> ResponseReturnValue:
    db = get_db()
    department = _department(db, department_id)
    assessment = department.assessment
    try:
        row = current_notice(db, assessment, department, current_account())
    except DomainError as exc:
        return _refused(exc)
    return _send_or_error(row)


@bp.get(f"/progress/departments/<int(max={MAX_ID}):department_id>/notice.docx")
@roles_required(*READ_ALL_ROLES)
def department_notice(department_id: int) -> ResponseReturnValue:
    """A department's latest issued notice (never issues one)."""
    return _department_notice(department_id)


@bp.post(f"/progress/departments/<int(max={MAX_ID}):department_id>/notices/issue")
@roles_required(*ISSUER_ROLES)
def issue_department_notice(department_id: int) -> ResponseReturnValue:
    """Issue a department's notice (ranked after publication, else 初步结果 if asked)."""
    db = get_db()
    department = _department(db, department_id)
    assessment = department.assessment
    preliminary = request.form.get("preliminary") == "1"
    try:
        with discard_on_error():
            issued = issue_notice(
                db,
                get_store(),
                assessment,
                department,
                current_account(),
                preliminary=preliminary,
                only_if_changed=True,
                verify_base_url=verify_base_url(),
            )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        row = issued.notice
        if issued.is_new:
            flash(gettext("已印发第 %(version)s 版", version=row.version), "success")
        else:
            flash(gettext("成绩未变，当前第 %(version)s 版仍然有效", version=row.version), "info")
        for note in issued_notes(row):
            flash(note.message, "warning")
    return redirect(url_for(".department_versions", department_id=department.id), code=303)


@bp.get(f"/progress/departments/<int(max={MAX_ID}):department_id>/notices")
@roles_required(*READ_ALL_ROLES)
def department_versions(department_id: int) -> ResponseReturnValue:
    """The issued versions of a department's notice, oldest first, with the issue form."""
    db = get_db()
    department = _department(db, department_id)
    assessment = department.assessment
    rows = list_notices(db, assessment, NOTICE, department, limit=500)
    return render_template(
        "progress/notices.html",
        assessment=assessment,
        department=department,
        rows=rows,
        standing=standing(db, rows[-1]) if rows else None,
        can_issue=current_account().has_role(*ISSUER_ROLES),
        published=assessment.published_at is not None,
        office_missing=office_binary() is None,
        number_notes=issue_notes(assessment),
    )


@bp.get("/progress/summary.docx")
@roles_required(*READ_ALL_ROLES)
def summary() -> ResponseReturnValue:
    """The latest issued summary table (staff, auditors)."""
    db = get_db()
    assessment = asked_assessment_or_404(db)
    try:
        row = current_summary(db, assessment, current_account())
    except DomainError as exc:
        return _refused(exc)
    return _send_or_error(row)


@bp.post("/progress/summary")
@roles_required(*ISSUER_ROLES)
def issue_summary_table() -> ResponseReturnValue:
    """Issue the summary table (provisional ranks before publication)."""
    db = get_db()
    assessment = asked_assessment_or_404(db)
    try:
        with discard_on_error():
            issued = issue_summary(
                db,
                get_store(),
                assessment,
                current_account(),
                only_if_changed=True,
                verify_base_url=verify_base_url(),
            )
    except DomainError as exc:
        flash(exc.message, "error")
    else:
        version = issued.notice.version
        if issued.is_new:
            flash(gettext("已印发汇总表第 %(version)s 版", version=version), "success")
        else:
            flash(gettext("成绩未变，汇总表第 %(version)s 版仍然有效", version=version), "info")
        for note in issued_notes(issued.notice):
            flash(note.message, "warning")
    year = asked_year()
    back = url_for("progress.matrix", year=year) if year is not None else url_for("progress.matrix")
    return redirect(back + "#notices", code=303)


@bp.get("/portal/notice.docx")
@roles_required(Role.DEPARTMENT)
def own_notice() -> ResponseReturnValue:
    """The signed-in department user's own latest notice, once results are shown to them: of
    the year asked for (`?year=`), else the year their index opens on (the one under 公示,
    else the newest)."""
    department = chosen_department(get_db(), own_departments(get_db(), current_account()))
    if department is None:
        abort(404)
    return _department_notice(department.id)


@bp.get(f"/portal/notices/<int(max={MAX_ID}):notice_id>")
@roles_required()
def version(notice_id: int) -> ResponseReturnValue:
    """One issued version, byte for byte, to a user who may read it."""
    try:
        row = get_readable_notice(get_db(), notice_id, current_account())
    except NotFound:
        abort(404)
    return _send_or_error(row)


@bp.get(f"/portal/notices/<int(max={MAX_ID}):notice_id>.pdf")
@roles_required()
def version_pdf(notice_id: int) -> ResponseReturnValue:
    """One issued version rendered to PDF (LibreOffice); says what is missing otherwise."""
    try:
        row = get_readable_notice(get_db(), notice_id, current_account())
        return send_pdf(row)
    except NotFound:
        abort(404)
    except DomainError as exc:
        return _refused(exc)


def latest_summary(db: Session, assessment: Assessment) -> Notice | None:
    """Return the latest issued summary, for the progress page's links."""
    return latest_notice(db, assessment, SUMMARY, None)


@bp.get("/verify")
def verify_entry() -> ResponseReturnValue:
    """Where someone holding a paper notice types its code (`?code=`: on to its check).

    The code goes on in its printed form (`7QF2-MX9Z-…`), however it was typed or copied;
    text that is no code stays here, with the form and what is wrong (400).
    """
    typed = request.args.get("code", "").strip()
    if not typed:
        return render_template("verify.html", entry=True, found=None, code="")
    code = normalise_code(typed)
    if code is None:
        return _malformed(typed)
    return redirect(url_for("notices_portal.verify_page", code=code), code=303)


@bp.get("/verify/<code>")  # any length: past the longest code, the malformed answer (400)
@limiter.limit(verify_limit)
def verify_page(code: str) -> ResponseReturnValue:
    """Public check of a printed notice: number, unit, scores, time, SHA-256, current or not.

    A row that does not match its issuing event is answered 409 with no figure of it.
    """
    try:
        found = verify_notice(get_db(), code)
    except BadRequest:
        return _malformed(code)
    except NotFound:
        return render_template("verify.html", found=None, code=code[:MAX_TYPED_CODE]), 404
    except NoticeRecordAltered:  # nothing of the record is shown: the trail does not back it
        return render_template(
            "verify.html", altered=True, found=None, code=code[:MAX_TYPED_CODE]
        ), 409
    return render_template("verify.html", found=found, code=code)


def _malformed(typed: str) -> ResponseReturnValue:
    """The verify page with its form and the answer for text that is no code (400)."""
    return render_template(
        "verify.html", malformed=True, found=None, code=typed[:MAX_TYPED_CODE]
    ), 400
