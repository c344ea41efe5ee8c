"""Units across years: the list, lineage changes (admin), a unit's results by year."""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import select

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    MAX_ID,
    decode_cursor,
    encode_cursor,
    iso,
    json_response,
    points,
    query_limit,
)
from web.api.contract import contract, parse_body
from web.auth import api_user
from web.clock import request_now
from web.db import get_db
from workflow.errors import Forbidden, NotFound
from workflow.models import Department, Unit, UnitChange, User
from workflow.notices import scores_visible_to
from workflow.permissions import can_read_all, is_office_staff, own_department_ids
from workflow.results import UNRANKED_REASON
from workflow.units import (
    Lineage,
    all_units,
    apply_change,
    get_unit,
    lineages,
    local_day,
    unit_history,
)

UID = f"<int(max={MAX_ID}):uid>"


def unit_ref(unit: Unit) -> dict[str, Any]:
    """The short form of a unit."""
    return {"id": unit.id, "name": unit.name}


def unit_body(unit: Unit, lineage: Lineage, by_id: dict[int, Unit]) -> dict[str, Any]:
    """A unit as GET /units shows it."""
    return {
        "id": unit.id,
        "name": unit.name,
        "full_name": unit.full_name,
        "status": unit.status,
        "names": [
            {
                "name": n.name,
                "full_name": n.full_name,
                "from": n.valid_from.isoformat() if n.valid_from else None,
                "to": n.valid_to.isoformat() if n.valid_to else None,
            }
            for n in unit.names
        ],
        "aliases": [a.alias for a in unit.aliases if a.kind == "alias"],
        "offices": [a.alias for a in unit.aliases if a.kind == "office"],
        "predecessors": [unit_ref(by_id[u]) for u in lineage.predecessors if u in by_id],
        "successors": [unit_ref(by_id[u]) for u in lineage.successors if u in by_id],
    }


def change_body(change: UnitChange, by_id: dict[int, Unit]) -> dict[str, Any]:
    """A lineage change as the API shows it."""
    return {
        "id": change.id,
        "kind": change.kind,
        "effective_on": change.effective_on.isoformat(),
        "document_no": change.document_no,
        "reason": change.reason,
        "from": [unit_ref(by_id[u]) for u in change.from_ids],
        "to": [unit_ref(by_id[u]) for u in change.to_ids],
        "created_at": iso(change.created_at),
    }


def _staff(user: User) -> None:
    if not can_read_all(user):  # a role the caller lacks, not something hidden: 403
        raise Forbidden("只有市职转办人员和审计员可以查看单位列表", code="role_required")


@bp.get("/units")
@contract("units", query=s.Page, ok={200: (s.UnitList, "Units across years.")}, errors=(403,))
def list_units() -> Response:
    """List the units (被考核单位) across years with names, aliases and lineage (staff)."""
    _staff(api_user())
    db = get_db()
    limit = query_limit()
    after = decode_cursor("unit") or 0
    units = all_units(db)
    by_id = {u.id: u for u in units}
    graph = lineages(db)
    page = sorted((u for u in units if u.id > after), key=lambda u: u.id)
    more = len(page) > limit
    page = page[:limit]
    return json_response(
        {
            "units": [unit_body(u, graph.get(u.id, Lineage()), by_id) for u in page],
            "next_cursor": encode_cursor("unit", page[-1].id) if more and page else None,
        }
    )


@bp.post("/units/changes")
@contract(
    "units",
    body=s.UnitChangeBody,
    ok={201: (s.UnitChange, "The change, applied and audited.")},
    errors=(403, 404, 413, 415, 422),
)
def create_unit_change() -> Response:
    """Apply a lineage change: create, rename, merge, split or dissolve (admin); audited."""
    user = api_user()
    body = parse_body(s.UnitChangeBody)
    db = get_db()
    change = apply_change(
        db,
        kind=body.kind,
        effective_on=body.effective_on,
        document_no=body.document_no,
        reason=body.reason,
        from_ids=body.from_,
        to=[t.model_dump() for t in body.to],
        actor=user,
        today=local_day(request_now()),
    )
    by_id = {u.id: u for u in all_units(db)}
    return json_response(change_body(change, by_id), 201)


def _may_read_unit(user: User, unit: Unit) -> bool:
    """Staff, and the unit's own users (theirs, or one their unit became or came from)."""
    if can_read_all(user) or user.unit_id == unit.id:
        return True
    deps = get_db().scalars(select(Department.id).where(Department.unit_id == unit.id))
    return bool(set(deps) & own_department_ids(user))


@bp.get(f"/units/{UID}/history")
@contract("units", ok={200: (s.UnitHistory, "The unit's results by year.")}, errors=(404,))
def get_unit_history(uid: int) -> Response:
    """A unit's total, converted score, rank and indicator scores per year; a predecessor's
    years are marked with `via` (staff; the unit's own users, once results are shown)."""
    user = api_user()
    db = get_db()
    unit = get_unit(db, uid)
    if not _may_read_unit(user, unit):
        raise NotFound("单位不存在：%(id)s", code="unit_not_found", params={"id": uid})
    staff = is_office_staff(user) or can_read_all(user)
    years = unit_history(
        db, unit, hide=None if staff else (lambda a: not scores_visible_to(user, a))
    )
    return json_response(
        {
            "unit": unit_ref(unit),
            "years": [
                {
                    "year": y.year,
                    "assessment_id": y.assessment_id,
                    "department_id": y.department_id,
                    "name": y.name,
                    "total": points(y.total),
                    "converted": points(y.converted),
                    "rank": y.rank,
                    "unranked_reason": None if y.rank is not None else UNRANKED_REASON,
                    "complete": y.complete,
                    "via": unit_ref(y.via) if y.via is not None else None,
                    "indicators": [
                        {
                            "code": i.code,
                            "title": i.title,
                            "max_points": points(i.max_points),
                            "score": points(i.score),
                        }
                        for i in y.indicators
                    ],
                }
                for y in years
            ],
        }
    )
