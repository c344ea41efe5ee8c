"""Assessments: the list, the scheme, the item queues and the results table."""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    MAX_ID,
    decode_cursor,
    department_ref,
    encode_cursor,
    indicator_ref,
    iso,
    json_response,
    points,
    query_flag,
    query_int,
    query_limit,
    query_str,
)
from web.api.contract import XLSX, contract, parse_body
from web.auth import api_user
from web.common.exports import xlsx_response
from web.db import get_db
from workflow.calendar import set_deadlines
from workflow.errors import BadRequest, Forbidden, NotFound
from workflow.exports import matrix_table
from workflow.exports import results_xlsx as results_workbook
from workflow.models import Assessment, Category, Department, Indicator, Item
from workflow.notices import result_settings_seen, scores_visible_to, set_result_settings
from workflow.permissions import can_read_all, department_id_for
from workflow.read import failed_checks_of, has_failed_checks, latest_verify_payload
from workflow.results import UNRANKED_REASON, assessment_results
from workflow.schemes import get_stored_scheme, load_scheme, use_scheme
from workflow.setup import create_assessment
from workflow.spreadsheets import xlsx_bytes
from workflow.states import State

AID = f"<int(max={MAX_ID}):aid>"
#: The list's cursor packs (year, id) into one number: year × 2³² + id (ids are 32-bit).
ASSESSMENT_KEY = 2**32


def get_assessment(aid: int) -> Assessment:
    """Load an assessment or raise NotFound."""
    assessment = get_db().get(Assessment, aid)
    if assessment is None:
        raise NotFound("考核不存在", code="assessment_not_found")
    return assessment


def assessment_body(a: Assessment) -> dict[str, Any]:
    """Return an assessment's line of the list."""
    return {
        "id": a.id,
        "code": a.code,
        "year": a.year,
        "title": a.title,
        "document_no": a.document_no,
        "issuer": a.issuer,
        "total_points": points(a.total_points),
        "converted_points": points(a.converted_points),
        "appeal_opens_at": iso(a.appeal_opens_at),
        "appeal_closes_at": iso(a.appeal_closes_at),
        "published_at": iso(a.published_at),
        "finalised_at": iso(a.finalised_at),
        "result_document_no": a.result_document_no,
        "notice_cc": a.notice_cc,
        "hide_scores_until_published": a.hide_scores_until_published,
        "settings_seen": result_settings_seen(a),
    }


def item_summary(
    item: Item, *, hide_scores: bool = False, failed_checks: list[str] | None = None
) -> dict[str, Any]:
    """Return an item's line in a list (the detail adds sub-items, evidence and actions).

    With `hide_scores` (a department before publication) the total is null. `failed_checks`:
    the check points its verification answered 否 (null before one with check points).
    """
    return {
        "id": item.id,
        "assessment_id": item.assessment_id,
        "department": department_ref(item.department),
        "indicator": indicator_ref(item.indicator),
        "state": item.state,
        "version": item.version,
        "round": item.round,
        "total": None if hide_scores else points(item.total),
        "updated_at": iso(item.updated_at),
        "is_submitted_late": item.is_submitted_late,
        "submit_due_on": item.submit_due_on.isoformat() if item.submit_due_on else None,
        "failed_checks": failed_checks,
    }


@bp.get("/assessments")
@contract("assessments", query=s.Page, ok={200: (s.AssessmentList, "The assessments.")})
def list_assessments() -> Response:
    """List the assessments, newest year first (any user).

    "Newest" is by year, as everywhere else (`GET /me`'s department, the commands' default
    year): a year entered late (say 2017 after 2019) stands after the years that follow it.
    Keyset pages on (year, id); the cursor carries both.
    """
    api_user()
    limit = query_limit()
    after = decode_cursor("assessment")
    stmt = (
        select(Assessment).order_by(Assessment.year.desc(), Assessment.id.desc()).limit(limit + 1)
    )
    if after is not None:
        year, last_id = divmod(after, ASSESSMENT_KEY)
        stmt = stmt.where(
            or_(
                Assessment.year < year,
                and_(Assessment.year == year, Assessment.id < last_id),
            )
        )
    rows = list(get_db().execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        next_cursor = encode_cursor("assessment", rows[-1].year * ASSESSMENT_KEY + rows[-1].id)
    return json_response(
        {"assessments": [assessment_body(a) for a in rows], "next_cursor": next_cursor}
    )


@bp.get(f"/assessments/{AID}")
@contract("assessments", ok={200: (s.Scheme, "The scheme.")}, errors=(404,))
def get_scheme(aid: int) -> Response:
    """Return the scheme of an assessment: categories, indicators, sub-items, departments."""
    api_user()
    a = get_assessment(aid)
    db = get_db()
    categories = db.execute(
        select(Category)
        .where(Category.assessment_id == a.id)
        .order_by(Category.position)
        .options(selectinload(Category.indicators).selectinload(Indicator.scoring_points))
    ).scalars()
    departments = db.execute(
        select(Department)
        .where(Department.assessment_id == a.id)
        .order_by(Department.position)
        .options(selectinload(Department.aliases))
    ).scalars()
    body = assessment_body(a)
    body["categories"] = [
        {
            "code": c.code,
            "title": c.title,
            "max_points": points(c.max_points),
            "indicators": [
                {
                    **indicator_ref(i),
                    "evidence_basis": i.evidence_basis,
                    "check_points": [
                        {"code": k["code"], "text": k["text"], "method": k["method"]}
                        for k in i.check_points or []
                    ],
                    "sub_items": [
                        {"code": p.code, "title": p.title, "max_points": points(p.max_points)}
                        for p in i.scoring_points
                    ],
                }
                for i in c.indicators
            ],
        }
        for c in categories
    ]
    body["departments"] = [
        {
            "id": d.id,
            "name": d.name,
            "full_name": d.full_name,
            "aliases": [al.alias for al in d.aliases],
        }
        for d in departments
    ]
    return json_response(body)


@bp.patch(f"/assessments/{AID}/settings")
@contract(
    "assessments",
    body=s.SettingsBody,
    ok={200: (s.Assessment, "The assessment with its settings.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def update_settings(aid: int) -> Response:
    """Set the results notice's number, 抄送 and score hiding (admin; audited). With `seen`
    (the `settings_seen` read before), a change by someone else in between is a 409."""
    user = api_user()
    body = parse_body(s.SettingsBody)
    a = get_assessment(aid)
    set_result_settings(
        get_db(),
        a,
        actor=user,
        document_no=body.result_document_no,
        cc=body.notice_cc,
        hide_scores=body.hide_scores_until_published,
        seen=body.seen,
    )
    return json_response(assessment_body(a))


@bp.get(f"/assessments/{AID}/items")
@contract("items", query=s.ItemFilter, ok={200: (s.ItemList, "Items in id order.")}, errors=(404,))
def list_items(aid: int) -> Response:
    """List items by id (keyset cursor); a department user sees only their own department's."""
    user = api_user()
    assessment = get_assessment(aid)
    hide = not scores_visible_to(user, assessment)
    limit = query_limit()
    after = decode_cursor("item")
    department = query_int("department")
    state = query_str("state")
    indicator = query_str("indicator", max_length=16)
    failed_only = query_flag("failed_checks")
    if state is not None and state not in {s.value for s in State}:
        raise BadRequest("未知的状态：%(state)s", code="invalid_parameter", params={"state": state})
    stmt = (
        select(Item, latest_verify_payload())
        .where(Item.assessment_id == aid)
        .options(selectinload(Item.department), selectinload(Item.indicator))
        .order_by(Item.id)
        .limit(limit + 1)
    )
    if not can_read_all(user):
        # A department user: their own department only, whatever the filter says.
        stmt = stmt.where(Item.department_id == (department_id_for(user, aid) or 0))
    if department is not None:
        stmt = stmt.where(Item.department_id == department)
    if state is not None:
        stmt = stmt.where(Item.state == state)
    if indicator is not None:
        stmt = stmt.join(Indicator, Indicator.id == Item.indicator_id).where(
            Indicator.code == indicator
        )
    if failed_only:
        stmt = stmt.where(has_failed_checks())
    if after is not None:
        stmt = stmt.where(Item.id > after)
    rows = get_db().execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("item", rows[-1][0].id) if more and rows else None
    return json_response(
        {
            "items": [
                item_summary(i, hide_scores=hide, failed_checks=failed_checks_of(payload))
                for i, payload in rows
            ],
            "next_cursor": next_cursor,
        }
    )


@bp.get(f"/assessments/{AID}/results")
@contract("assessments", ok={200: (s.Results, "Best first.")}, errors=(403, 404))
def get_results(aid: int) -> Response:
    """Return totals, converted scores and ranks per department (staff and auditors); a
    department still being scored has no rank (`unranked_reason`)."""
    user = api_user()
    if not can_read_all(user):
        raise Forbidden("只有考核办工作人员和审计员可以查看结果", code="forbidden")
    a = get_assessment(aid)
    found = assessment_results(get_db(), a)
    by_id, table = found.departments, found.rows
    return json_response(
        {
            "assessment_id": a.id,
            "results": [
                {
                    "department": department_ref(by_id[r.department_id]),
                    "total": points(r.total),
                    "converted": points(r.converted),
                    "rank": r.rank,
                    "unranked_reason": None if r.is_ranked else UNRANKED_REASON,
                    "complete": r.is_complete,
                    "items_scored": r.items_scored,
                    "items_total": r.items_total,
                }
                for r in table
            ],
        }
    )


def _require_reader(user_aid: int) -> Assessment:
    user = api_user()
    if not can_read_all(user):
        raise Forbidden("只有考核办工作人员和审计员可以导出结果", code="forbidden")
    return get_assessment(user_aid)


@bp.get(f"/assessments/{AID}/results.xlsx")
@contract("exports", ok={200: XLSX}, errors=(403, 404))
def results_xlsx(aid: int) -> Response:
    """The results table as Excel: Chinese headers, best first (staff, auditors)."""
    a = _require_reader(aid)
    return xlsx_response(results_workbook(get_db(), a), f"{a.year}年度考核结果")


@bp.get(f"/assessments/{AID}/matrix.xlsx")
@contract("exports", ok={200: XLSX}, errors=(403, 404))
def matrix_xlsx(aid: int) -> Response:
    """The progress matrix (departments × indicators) as Excel (staff, auditors)."""
    a = _require_reader(aid)
    headers, rows = matrix_table(get_db(), a)
    content = xlsx_bytes("进度总览", headers, rows, caption=f"{a.title} 进度总览")
    return xlsx_response(content, f"{a.year}年度进度总览")


@bp.post("/assessments")
@contract(
    "assessments",
    body=s.AssessmentCreateBody,
    ok={201: (s.AssessmentCreated, "The new assessment with its items.")},
    errors=(403, 404, 409, 413, 415, 422),
)
def create_assessment_view() -> Response:
    """Start a new year under a stored scheme for the mapped units (admin); audited.

    `units` omitted: the lineage's proposal (merged units as one, split ones each)."""
    user = api_user()
    body = parse_body(s.AssessmentCreateBody)
    db = get_db()
    record = get_stored_scheme(db, body.scheme_id)
    assessment = create_assessment(
        db,
        load_scheme(db, record.id),
        year=body.year,
        result_document_no=body.result_document_no,
        issuer=body.issuer,
        unit_ids=body.units,
        actor=user,
    )
    use_scheme(db, record, assessment, actor=user)
    if body.deadlines:
        set_deadlines(db, assessment, dict(body.deadlines), actor=user)
    return json_response(created_body(db, assessment), 201)


def created_body(db: Any, assessment: Assessment) -> dict[str, Any]:
    """The new assessment, its departments and items."""
    deps = list(
        db.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position)
        ).scalars()
    )
    items = db.execute(
        select(Item.id, Item.department_id, Indicator.code, Item.state)
        .join(Indicator, Indicator.id == Item.indicator_id)
        .where(Item.assessment_id == assessment.id)
        .order_by(Item.id)
    ).all()
    return {
        **assessment_body(assessment),
        "scheme_id": assessment.scheme_id,
        "departments": [{**(department_ref(d) or {}), "unit_id": d.unit_id} for d in deps],
        "items": [
            {"id": i, "department_id": d, "indicator_code": c, "state": st} for i, d, c, st in items
        ],
    }
