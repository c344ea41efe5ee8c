"""The Word score notices and summary table over the API (../shared/API.md).

Views are thin: authenticate with the bearer token, call one operation of
`workflow.notices`, commit once, stream the stored file. Refusals are DomainErrors,
answered as JSON by `web.errors`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from web.api import schemas as s
from web.api.common import (
    MAX_ID,
    decode_cursor,
    encode_cursor,
    json_response,
    query_limit,
)
from web.api.contract import DOCX, NOT_MODIFIED, PDF, contract, parse_body
from web.auth import api_user
from web.common.notice_files import (
    app_store,
    send_notice,
    send_pdf,
    verify_base_url,
    verify_limit,
)
from web.db import get_db
from web.limits import limiter
from workflow.audit import format_time
from workflow.errors import NotFound
from workflow.models import Assessment, Department, Notice
from workflow.notices import (
    NOTICE,
    Issued,
    Verification,
    current_notice,
    current_summary,
    get_readable_notice,
    issue_notice,
    issue_summary,
    issued_notes,
    list_notices,
    verify_notice,
)
from workflow.permissions import can_read_department

bp = Blueprint("notices", __name__, url_prefix="/api/v1")
# Ids past 32 bits cannot exist: a 404 from the router, never an out-of-range query.
AID = f"<int(max={MAX_ID}):aid>"
DID = f"<int(max={MAX_ID}):did>"
NID = f"<int(max={MAX_ID}):nid>"


def _assessment(aid: int) -> Assessment:
    found = get_db().get(Assessment, aid)
    if found is None:
        raise NotFound("考核不存在", code="assessment_not_found")
    return found


def _department(assessment: Assessment, did: int) -> Department:
    found = get_db().get(Department, did)
    if found is None or found.assessment_id != assessment.id:
        raise NotFound("部门不存在", code="department_not_found")
    return found


def _describe(row: Notice) -> dict[str, Any]:
    snapshot = row.snapshot or {}
    return {
        "id": row.id,
        "kind": row.kind,
        "assessment_id": row.assessment_id,
        "department_id": row.department_id,
        "version": row.version,
        "filename": row.filename,
        "sha256": row.sha256,
        "size": row.size,
        "issued_at": format_time(row.issued_at),
        "issued_by": row.issued_by.username if row.issued_by is not None else "cli",
        "total": snapshot.get("total"),
        "converted": snapshot.get("converted"),
        "rank": snapshot.get("rank"),
        "url": f"/api/v1/notices/{row.id}",
    }


def issued_body(issued: Issued) -> dict[str, Any]:
    """Describe an issued version with its verification code and where to check it."""
    row = issued.notice
    body = _describe(row)
    body["verification_code"] = row.verification_code
    body["verify_url"] = (row.snapshot or {}).get("verify_url") or None
    body["new"] = issued.is_new
    body["warnings"] = [note.as_json() for note in issued_notes(row)]
    return body


@bp.get(f"/assessments/{AID}/departments/{DID}/notice.docx")
@contract(
    "notices",
    headers=s.ConditionalHeaders,
    ok={200: DOCX, 304: NOT_MODIFIED},
    errors=(404, 409),
)
def department_notice(aid: int, did: int) -> Response:
    """The latest issued notice of a department; 404 when none was issued. Never issues."""
    user = api_user()
    assessment = _assessment(aid)
    department = _department(assessment, did)
    return send_notice(current_notice(get_db(), assessment, department, user))


@bp.post(f"/assessments/{AID}/departments/{DID}/notices")
@contract(
    "notices",
    body=s.NoticeRequest,
    ok={
        201: (s.NoticeIssued, "A new version."),
        200: (s.NoticeIssued, "Nothing changed: the version in force."),
    },
    errors=(403, 404, 409, 413, 415),
)
def issue_department_notice(aid: int, did: int) -> Response:
    """Issue a department's notice (scorer, admin): 201 when a new version, 200 when current.

    409 without the results' own number, while any item is not scored, or for a ranked notice
    before publication.
    """
    user = api_user()
    preliminary = parse_body(s.NoticeRequest).preliminary
    assessment = _assessment(aid)
    department = _department(assessment, did)
    if not can_read_department(user, department.id):
        raise NotFound("部门不存在", code="department_not_found")
    issued = issue_notice(
        get_db(),
        app_store(),
        assessment,
        department,
        user,
        preliminary=preliminary,
        only_if_changed=True,
        verify_base_url=verify_base_url(),
    )
    return json_response(issued_body(issued), 201 if issued.is_new else 200)


@bp.get(f"/assessments/{AID}/summary.docx")
@contract(
    "notices",
    headers=s.ConditionalHeaders,
    ok={200: DOCX, 304: NOT_MODIFIED},
    errors=(403, 404, 409),
)
def summary(aid: int) -> Response:
    """The latest issued summary table (staff, auditors); 404 when none. Never issues."""
    user = api_user()
    assessment = _assessment(aid)
    return send_notice(current_summary(get_db(), assessment, user))


@bp.post(f"/assessments/{AID}/summary")
@contract(
    "notices",
    ok={
        201: (s.NoticeIssued, "A new version."),
        200: (s.NoticeIssued, "Nothing changed: the version in force."),
    },
    errors=(403, 404, 409, 413, 415),
)
def issue_summary_table(aid: int) -> Response:
    """Issue the summary table (scorer, admin); provisional ranks before publication."""
    user = api_user()
    if request.content_length:
        parse_body(s.EmptyBody)
    assessment = _assessment(aid)
    issued = issue_summary(
        get_db(),
        app_store(),
        assessment,
        user,
        only_if_changed=True,
        verify_base_url=verify_base_url(),
    )
    return json_response(issued_body(issued), 201 if issued.is_new else 200)


@bp.get(f"/notices/{NID}.pdf")
@contract("notices", ok={200: PDF}, errors=(404, 409))
def notice_version_pdf(nid: int) -> Response:
    """One stored version rendered to PDF (LibreOffice headless)."""
    user = api_user()
    return send_pdf(get_readable_notice(get_db(), nid, user))


@bp.get("/verify/<code>")  # any length: past the longest code, a 400 (not the 404)
@limiter.limit(verify_limit)
@contract(
    "notices", ok={200: (s.NoticeCheck, "The document.")}, errors=(404, 409, 429), public=True
)
def verify(code: str) -> Response:
    """Check a printed notice by its verification code (anyone, rate-limited).

    400 `verification_code_malformed` for text that is no code, 404 for a code no version has,
    409 `notice_record_altered` (nothing of it) for a row that does not match its issuing event.
    """
    found = verify_notice(get_db(), code)
    return json_response(verification_body(found))


def verification_body(found: Verification) -> dict[str, Any]:
    """Return exactly the fields the verification page shows, nothing else."""
    return {
        "document_no": found.document_no,
        "year": found.year,
        "kind": found.kind,
        "unit": found.unit,
        "total": found.total,
        "converted": found.converted,
        "rank": found.rank,
        "tied": found.tied,
        "department_count": found.department_count,
        "preliminary": found.is_preliminary,
        "version": found.version,
        "issued_at": format_time(found.issued_at),
        "sha256": found.sha256,
        "standing": found.standing,
        "current": found.is_current,
    }


@bp.get(f"/notices/{NID}")
@contract(
    "notices",
    headers=s.ConditionalHeaders,
    ok={200: DOCX, 304: NOT_MODIFIED},
    errors=(403, 404, 409),
)
def notice_version(nid: int) -> Response:
    """One stored version, exactly as issued."""
    user = api_user()
    row = get_readable_notice(get_db(), nid, user)
    return send_notice(row)


@bp.get(f"/assessments/{AID}/departments/{DID}/notices")
@contract("notices", query=s.Page, ok={200: (s.NoticeList, "Versions.")}, errors=(404,))
def department_notices(aid: int, did: int) -> Response:
    """The issued versions of a department's notice, oldest first (`?limit=&cursor=`)."""
    user = api_user()
    assessment = _assessment(aid)
    department = _department(assessment, did)
    if not can_read_department(user, department.id):
        raise NotFound("部门不存在", code="department_not_found")
    limit = query_limit()
    after = decode_cursor("notice") or 0
    rows = list_notices(
        get_db(), assessment, NOTICE, department, after_version=after, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("notice", rows[-1].version) if more and rows else None
    return json_response({"notices": [_describe(r) for r in rows], "next_cursor": next_cursor})
