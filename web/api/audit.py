"""The audit trail over HTTP: events with filters, and chain verification (auditor, admin)."""

from __future__ import annotations

from flask import Response
from flask_babel import force_locale
from sqlalchemy import ColumnElement, select

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import (
    MAX_SEQ,
    decode_cursor,
    encode_cursor,
    event_body,
    json_response,
    query_int,
    query_limit,
    query_str,
)
from web.api.contract import XLSX, contract
from web.auth import api_user
from web.common.audit_rows import audit_xlsx
from web.common.exports import xlsx_response
from web.db import get_db
from workflow.errors import Forbidden
from workflow.models import AuditEvent, User
from workflow.reconcile import check_audit
from workflow.states import Role


def require_auditor() -> User:
    """Return the caller if an auditor or admin, else raise Forbidden (403)."""
    user = api_user()
    if not user.has_role(Role.AUDITOR, Role.ADMIN):
        raise Forbidden("只有审计员和管理员可以查看审计记录", code="forbidden")
    return user


@bp.get("/audit/events")
@contract("audit", query=s.EventFilter, ok={200: (s.EventList, "Events.")}, errors=(403,))
def list_events() -> Response:
    """List audit events in sequence order after `after_seq` (or the cursor), filtered."""
    require_auditor()
    limit = query_limit()
    after = query_int("after_seq", maximum=MAX_SEQ)
    cursor = decode_cursor("audit")
    start = max(after or 0, cursor or 0)
    actor = query_str("actor", max_length=64)
    action = query_str("action", max_length=48)
    stmt = (
        select(AuditEvent).where(AuditEvent.seq > start).order_by(AuditEvent.seq).limit(limit + 1)
    )
    if actor is not None:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    rows = list(get_db().execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("audit", rows[-1].seq) if more and rows else None
    return json_response(
        {
            "events": [event_body(e) for e in rows],
            "next_cursor": next_cursor,
            "next_after_seq": rows[-1].seq if more and rows else None,
        }
    )


@bp.get("/audit/events.xlsx")
@contract("exports", query=s.EventExportFilter, ok={200: XLSX}, errors=(403,))
def events_xlsx() -> Response:
    """The audit log as Excel (auditor, admin): `actor`, `action`, `after_seq` filter it.

    The portal's file (`web.common.audit_rows`): names, fields and values in words, Beijing
    times, the raw JSON last; in Chinese whatever `Accept-Language` asks, as the job's.
    """
    require_auditor()
    after = query_int("after_seq", maximum=MAX_SEQ) or 0
    actor = query_str("actor", max_length=64)
    action = query_str("action", max_length=48)
    conditions: list[ColumnElement[bool]] = [AuditEvent.seq > after]
    if actor is not None:
        conditions.append(AuditEvent.actor == actor)
    if action is not None:
        conditions.append(AuditEvent.action == action)
    with force_locale("zh"):  # a file of the API: Chinese, as its other .xlsx files
        content = audit_xlsx(get_db(), conditions)
    return xlsx_response(content, "审计日志")


@bp.get("/audit/verify")
@contract("audit", ok={200: (s.Verification, "The outcome.")}, errors=(403,))
def verify() -> Response:
    """Recompute the chain (name the first bad sequence number) and reconcile the tables."""
    require_auditor()
    return json_response(check_audit(get_db()).as_dict())
