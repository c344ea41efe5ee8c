"""Background jobs over the API: start one (202), follow it, download its file.

`POST /api/v1/jobs` checks and queues the job in the request's unit of work; the message goes
onto the queue after the commit (`web.tasks.enqueue_after_commit`). A worker runs it
(`flask --app wsgi worker`); `GET /api/v1/jobs/{id}` shows its progress, and once it is done
`GET /api/v1/jobs/{id}/download` streams its file. A job is visible to whoever requested it
and to admins; to anyone else it is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from storage.base import content_disposition
from storage.errors import ObjectNotFound
from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import decode_cursor, encode_cursor, json_response, query_limit
from web.api.contract import NOT_MODIFIED, TEXT, XLSX, ZIP, contract, parse_body
from web.auth import api_user
from web.common.ids import MAX_ID
from web.common.notice_files import app_store
from web.common.stored_files import etag_of, unchanged_answer
from web.db import get_db
from web.tasks import enqueue_after_commit
from workflow import jobs
from workflow.audit import format_time
from workflow.errors import NotFound
from workflow.models import Job

JID = f"<int(max={MAX_ID}):jid>"


def job_body(job: Job) -> dict[str, Any]:
    """Serialise a job (the download URL once it is done)."""
    done = job.status == jobs.DONE and job.storage_key is not None
    return {
        "id": job.id,
        "kind": job.kind,
        "kind_label": jobs.kind_label(job),
        "params": dict(job.params or {}),
        "status": job.status,
        "status_label": jobs.status_label(job.status),
        "progress": {
            "done": job.progress_done,
            "total": job.progress_total,
            "percent": jobs.percent(job),
        },
        "message": job.message,
        "attempt": job.attempt,
        "filename": job.filename if done else None,
        "size": job.size if done else None,
        "sha256": job.sha256 if done else None,
        "download_url": url_for("api.download_job", jid=job.id) if done else None,
        "error_code": job.error_code,
        "error": job.error,
        "created_by": job.created_by.username if job.created_by is not None else None,
        "created_at": format_time(job.created_at),
        "started_at": format_time(job.started_at) if job.started_at else None,
        "finished_at": format_time(job.finished_at) if job.finished_at else None,
    }


@bp.post("/jobs")
@contract(
    "jobs",
    body=s.JobRequest,
    ok={202: (s.JobAccepted, "Queued; a worker runs it.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def start_job() -> Response:
    """Queue a job: notices or archives of every department, an export, the verification."""
    user = api_user()
    body = parse_body(s.JobRequest)
    params = body.model_dump(exclude_unset=True, exclude={"kind"})
    db = get_db()
    started = jobs.start_job(db, user, body.kind, params)
    job = started.job
    if not started.existing:  # the unfinished one has its message already
        enqueue_after_commit(db, job.id)
    url = url_for("api.get_job", jid=job.id)
    body_out = {"id": job.id, "status": job.status, "url": url, "existing": started.existing}
    response = json_response(body_out, 202)
    response.headers["Location"] = url
    return response


@bp.get("/jobs")
@contract("jobs", query=s.JobFilter, ok={200: (s.JobList, "Newest first.")})
def list_jobs() -> Response:
    """The newest jobs: one's own, or every job for admins."""
    user = api_user()
    limit = query_limit()
    rows = jobs.list_jobs(get_db(), user, limit=limit + 1, before=decode_cursor("job"))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("job", rows[-1].id) if more and rows else None
    return json_response({"jobs": [job_body(j) for j in rows], "next_cursor": next_cursor})


@bp.get(f"/jobs/{JID}")
@contract("jobs", ok={200: (s.JobOut, "The job.")}, errors=(404,))
def get_job(jid: int) -> Response:
    """A job's status and progress; `download_url` once it is done, `error` if it failed."""
    return json_response(job_body(jobs.get_job(get_db(), api_user(), jid)))


@bp.get(f"/jobs/{JID}/download")
@contract(
    "jobs",
    headers=s.ConditionalHeaders,
    ok={200: (ZIP, XLSX, TEXT), 304: NOT_MODIFIED},
    errors=(404, 409),
)
def download_job(jid: int) -> Response:
    """The finished job's file (409 `job_not_done` before; 304 for `If-None-Match`)."""
    try:
        job, reader = jobs.open_result(get_db(), app_store(), api_user(), jid)
    except ObjectNotFound as exc:
        raise NotFound("任务结果文件缺失，请重新运行", code="job_not_found") from exc
    unchanged = unchanged_answer(job.sha256) if job.sha256 else None
    if unchanged is not None:  # the caller holds this file (If-None-Match): not sent again
        reader.close()
        return unchanged
    content_type = {
        "zip": "application/zip",
        "xlsx": XLSX.content_type,
        "txt": "text/plain; charset=utf-8",
    }.get((job.filename or "").rsplit(".", 1)[-1], "application/octet-stream")
    response = Response(reader.iter_chunks(), content_type=content_type, direct_passthrough=True)
    response.call_on_close(reader.close)
    response.headers["Content-Disposition"] = content_disposition(job.filename or f"job-{job.id}")
    response.headers["Content-Length"] = str(job.size)
    if job.sha256:
        response.headers["ETag"] = etag_of(job.sha256)
    response.headers["Cache-Control"] = "private, no-store"
    return response
