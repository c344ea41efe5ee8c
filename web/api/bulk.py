"""Bulk transitions: review, verify or return up to 500 items in one request (workflow/bulk.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from web.api import bp
from web.api import schemas as s
from web.api.common import MAX_ID, check_fields, json_body, json_response
from web.api.contract import contract
from web.api.items import _idempotency_key
from web.app import get_db
from web.auth import api_user
from workflow.bulk import BulkReport, BulkTarget, apply_bulk, ensure_bulk_role, preview
from workflow.errors import BadRequest

BULK_FIELDS = ("action", "items", "comment", "dry_run")
ITEM_FIELDS = ("id", "version")


def _is_int(value: Any, low: int = 0, high: int = MAX_ID) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse_targets(items: Any) -> list[BulkTarget]:
    """Check `items`: a list of {"id", "version"} objects with integer values (400 otherwise)."""
    if not isinstance(items, list):
        raise BadRequest("items 须为对象的数组，每个对象含 id 和 version", code="invalid_type")
    targets = []
    for n, entry in enumerate(items):
        if not isinstance(entry, dict) or set(entry) != set(ITEM_FIELDS):
            raise BadRequest(
                "items[%(n)s] 须为只含 id 和 version 的对象", code="invalid_type", params={"n": n}
            )
        if not _is_int(entry["id"], 1) or not _is_int(entry["version"]):
            raise BadRequest(
                "items[%(n)s] 的 id 和 version 须为范围内的整数",
                code="invalid_type",
                params={"n": n},
            )
        targets.append(BulkTarget(entry["id"], entry["version"]))
    return targets


def report_body(report: BulkReport) -> dict[str, Any]:
    """Return the answer: one result per item, in the order given, and the counts."""
    return {
        "action": report.action,
        "dry_run": report.dry_run,
        "results": [r.as_dict() for r in report.results],
        "counts": report.counts,
    }


@bp.post("/bulk-transitions")
@contract(
    "items",
    body=s.BulkBody,
    headers=s.BulkHeaders,
    ok={200: (s.BulkReport, "One result per item, in the order given.")},
    errors=(403, 413, 415, 422),
)
def post_bulk_transitions() -> Response:
    """Preview (`dry_run`) or apply one action to up to 500 items; report each item.

    Applying runs each item in its own transaction with its own audit event (the engine
    commits them); a retried Idempotency-Key answers the stored report and applies nothing
    twice. Runs of every size up to 500 are synchronous until the job queue (issue 14).
    """
    user = api_user()
    ensure_bulk_role(user)  # 403 before the body is looked at
    data = json_body()
    check_fields(data, BULK_FIELDS)
    action = data.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest("缺少或无效的 action（文本）", code="invalid_type")
    comment = data.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise BadRequest("comment 须为文本", code="invalid_type")
    dry_run = data.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("dry_run 须为 true 或 false", code="invalid_type")
    targets = parse_targets(data.get("items"))
    key = _idempotency_key()
    if dry_run:
        report = preview(get_db(), user, action, targets, comment)
    else:
        factory = current_app.extensions["sessionmaker"]
        report = apply_bulk(factory, user.id, action, targets, comment, idempotency_key=key)
    return json_response(report_body(report))
