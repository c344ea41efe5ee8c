"""Bulk transitions: review, verify or return up to 500 items in one request (workflow/bulk.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from web.api import schemas as s
from web.api.blueprint import bp
from web.api.common import idempotency_key, json_response
from web.api.contract import contract, parse_body
from web.auth import api_user
from web.db import get_db
from workflow.bulk import BulkReport, BulkTarget, apply_bulk, ensure_bulk_role, preview


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
    commits them); a retried Idempotency-Key answers the stored report (resuming a run that
    died half way) and applies nothing twice, marked `Idempotent-Replayed: true`. Runs of
    every size up to 500 are synchronous until the job queue (issue 14).
    """
    user = api_user()
    ensure_bulk_role(user)  # 403 before the body is looked at
    body = parse_body(s.BulkBody)
    action, comment, dry_run = body.action, body.comment, body.dry_run
    targets = [BulkTarget(entry.id, entry.version) for entry in body.items]
    key = idempotency_key()
    flag = body.all_checks_yes
    if dry_run:
        report = preview(get_db(), user, action, targets, comment, all_checks_yes=flag)
    else:
        factory = current_app.extensions["sessionmaker"]
        report = apply_bulk(
            factory, user.id, action, targets, comment, idempotency_key=key, all_checks_yes=flag
        )
    response = json_response(report_body(report))
    if report.resumed:
        # The key's stored run answers, as a single transition's replay does: returned when
        # finished, resumed (the rest applied now) when a first attempt died or still runs.
        response.headers["Idempotent-Replayed"] = "true"
    return response
