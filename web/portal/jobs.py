"""后台任务: start long work (notices, archives, exports, the verification) and follow it.

Starting is a POST (with the session's CSRF token) from where the work lives today (the
progress overview, the audit page) or from this page; the engine checks who may run what
(`workflow.jobs`) and audits it, the request boundary commits, and the message is put on the
queue after that commit. The pages show each job's progress bar and refresh themselves while
a job is queued or running; a finished job's file downloads from here.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import content_disposition
from storage.errors import ObjectNotFound
from web.common.ids import MAX_ID
from web.common.labels import local_time
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required
from web.portal.common import (
    asked_assessment,
    assessment_years,
    get_store,
    latest_assessment,
)
from web.tasks import enqueue_after_commit
from workflow import jobs
from workflow.errors import DomainError
from workflow.models import Assessment, Job
from workflow.permissions import READ_ALL_ROLES

bp = Blueprint("jobs_portal", __name__, url_prefix="/jobs")
REFRESH_SECONDS = 2
CONTENT_TYPES = {
    "zip": "application/zip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "txt": "text/plain; charset=utf-8",
}


def _active(rows: list[Job]) -> bool:
    return any(j.status in (jobs.QUEUED, jobs.RUNNING) for j in rows)


def job_starters(assessment: Assessment | None = None) -> list[tuple[str, str, dict[str, str]]]:
    """The jobs this user may start here: (label, kind, form fields); those of an assessment
    are for `assessment` (default: the newest)."""
    user = current_account()
    if assessment is None:
        assessment = latest_assessment(get_db())
    out: list[tuple[str, str, dict[str, str]]] = []
    if assessment is not None:
        aid = str(assessment.id)
        if jobs.may_request(user, jobs.NOTICES):
            fields = {"assessment_id": aid}
            if assessment.published_at is None:
                fields["preliminary"] = "1"
            out.append((gettext("印发全部部门考核结果通知书"), jobs.NOTICES, fields))
        if jobs.may_request(user, jobs.ARCHIVES):
            out.append((gettext("归档全部部门材料"), jobs.ARCHIVES, {"assessment_id": aid}))
        for table, label in (
            ("results", gettext("导出考核结果")),
            ("matrix", gettext("导出进度总览")),
        ):
            if jobs.may_request(user, jobs.EXPORT, {"table": table}):
                out.append((label, jobs.EXPORT, {"assessment_id": aid, "table": table}))
    if jobs.may_request(user, jobs.EXPORT, {"table": "audit"}):
        out.append((gettext("导出审计日志"), jobs.EXPORT, {"table": "audit"}))
    if jobs.may_request(user, jobs.AUDIT_VERIFY):
        out.append((gettext("校验审计链并核对数据"), jobs.AUDIT_VERIFY, {}))
    return out


@bp.get("")
@roles_required(*READ_ALL_ROLES)
def index() -> ResponseReturnValue:
    """The newest jobs (one's own; admins see all), with a progress bar each; the buttons
    start the jobs of the year asked for (`?year=`, default the newest)."""
    db = get_db()
    rows = jobs.list_jobs(db, current_account(), limit=50)
    assessment = asked_assessment(db)
    return render_template(
        "jobs/index.html",
        rows=rows,
        assessment=assessment,
        years=assessment_years(db),
        year_of=_years_by_id(db),
        starters=job_starters(assessment),
        refresh=REFRESH_SECONDS if _active(rows) else None,
        jobs=jobs,
        local_time=local_time,
    )


@bp.get(f"/<int(max={MAX_ID}):job_id>")
@roles_required(*READ_ALL_ROLES)
def show(job_id: int) -> ResponseReturnValue:
    """One job: progress, message, its file or its error."""
    try:
        job = jobs.get_job(get_db(), current_account(), job_id)
    except DomainError:
        abort(404)
    return render_template(
        "jobs/show.html",
        job=job,
        year_of=_years_by_id(get_db()),
        refresh=REFRESH_SECONDS if _active([job]) else None,
        jobs=jobs,
        local_time=local_time,
    )


def _years_by_id(db: Session) -> dict[int, int]:
    """Each assessment's year by its id: a job of an assessment is named with its year."""
    return {aid: year for aid, year in db.execute(select(Assessment.id, Assessment.year))}


def _form_params(kind: str) -> dict[str, object]:
    params: dict[str, object] = {}
    raw = request.form.get("assessment_id", "")
    if raw:
        params["assessment_id"] = (
            int(raw) if raw.isascii() and raw.isdecimal() and len(raw) < 11 else -1
        )
    if request.form.get("table"):
        params["table"] = request.form["table"]
    if kind == jobs.NOTICES:
        params["preliminary"] = request.form.get("preliminary") == "1"
    return params


@bp.post("")
@roles_required(*READ_ALL_ROLES)
def start() -> ResponseReturnValue:
    """Queue a job and show it (a refusal is shown on the list)."""
    kind = request.form.get("kind", "")
    db = get_db()
    try:
        with discard_on_error():
            started = jobs.start_job(db, current_account(), kind, _form_params(kind))
            job = started.job
            if not started.existing:
                enqueue_after_commit(db, job.id)
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".index"), code=303)
    if started.existing and job.status == jobs.RUNNING:
        flash(
            gettext(
                "相同的后台任务 #%(id)s 正在运行，未重复发起；它按开始运行时的数据生成，"
                "如需包含此后的修改，请在它完成后重新发起",
                id=job.id,
            ),
            "info",
        )
    elif started.existing:
        flash(
            gettext(
                "相同的后台任务 #%(id)s 尚未完成（%(status)s），未重复发起；完成后可在此下载",
                id=job.id,
                status=jobs.status_label(job.status),
            ),
            "info",
        )
    else:
        flash(gettext("后台任务 #%(id)s 已排队，完成后可在此下载", id=job.id), "success")
    return redirect(url_for(".show", job_id=job.id), code=303)


@bp.get(f"/<int(max={MAX_ID}):job_id>/download")
@roles_required(*READ_ALL_ROLES)
def download(job_id: int) -> ResponseReturnValue:
    """The finished job's file."""
    try:
        job, reader = jobs.open_result(get_db(), get_store(), current_account(), job_id)
    except (DomainError, ObjectNotFound):
        abort(404)
    extension = (job.filename or "").rsplit(".", 1)[-1]
    response = Response(
        reader.iter_chunks(),
        content_type=CONTENT_TYPES.get(extension, "application/octet-stream"),
        direct_passthrough=True,
    )
    response.call_on_close(reader.close)
    response.headers["Content-Disposition"] = content_disposition(job.filename or f"job-{job.id}")
    response.headers["Content-Length"] = str(job.size)
    response.headers["Cache-Control"] = "private, no-store"
    return response
