"""The auditor's pages: the event log with filters, chain verification, CSV, .xlsx and JSONL
export (the rows and their labels: `web.common.audit_rows`, shared with the API and the job)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from web.common.audit_rows import (
    CSV_HEADERS,
    KEYED_VALUES,
    audit_xlsx,
    csv_row,
    describe_payload,
    export_batches,
    trail_time,
)
from web.common.event_text import ACTION_TEXT, EventNames, event_state_label
from web.common.exports import xlsx_response
from web.common.labels import DISPLAY_TZ, PURPOSE_LABELS, state_label
from web.db import get_db
from web.portal.auth import roles_required
from web.portal.common import N_, keyset_page
from workflow.audit import event_body, json_line
from workflow.models import AuditEvent, Department, Indicator, Item
from workflow.reconcile import (
    FIELD_LABELS,
    PUBLICATION_TIMES,
    TIME_SET,
    Difference,
    check_audit,
)
from workflow.spreadsheets import safe_csv_writer
from workflow.states import Role

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 100
#: Differences listed on the page (the count is always whole).
SHOWN_DIFFERENCES = 500
MIN_DAY, MAX_DAY = dt.date(1970, 1, 1), dt.date(9000, 12, 31)
AUDIT_ROLES = (Role.AUDITOR, Role.ADMIN)
LABELS = ACTION_TEXT


def _date_arg(name: str) -> dt.date | None:
    try:
        day = dt.date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None
    # Year 1 or 9999 would overflow when shifted to UTC or to the next day: not a filter.
    return day if MIN_DAY <= day <= MAX_DAY else None


def _filters() -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
    """Read the log's filters from the query string: actor, action, department, item, dates."""
    conditions: list[ColumnElement[bool]] = []
    args: dict[str, Any] = {}
    actor = request.args.get("actor", "").strip()[:64]
    if actor:
        conditions.append(AuditEvent.actor == actor)
        args["actor"] = actor
    action = request.args.get("action", "").strip()[:48]
    if action:
        conditions.append(AuditEvent.action == action)
        args["action"] = action
    for name, column in (("department", AuditEvent.department_id), ("item", AuditEvent.item_id)):
        value = request.args.get(name, "")
        if value.isdecimal() and len(value) < 10:
            conditions.append(column == int(value))
            args[name] = int(value)
    start, end = _date_arg("from"), _date_arg("to")
    if start is not None:  # dates are days in Asia/Shanghai
        conditions.append(AuditEvent.at >= dt.datetime.combine(start, dt.time(), DISPLAY_TZ))
        args["from"] = start.isoformat()
    if end is not None:
        next_day = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), DISPLAY_TZ)
        conditions.append(AuditEvent.at < next_day)
        args["to"] = end.isoformat()
    return conditions, args


@bp.get("/")
@roles_required(*AUDIT_ROLES)
def events() -> ResponseReturnValue:
    """List events newest first, filtered, with keyset pages (`?before=<seq>`)."""
    db = get_db()
    conditions, args = _filters()
    before = request.args.get("before", "")
    page_conditions = list(conditions)
    if before.isdecimal() and len(before) < 19:
        page_conditions.append(AuditEvent.seq < int(before))
    size = int(current_app.config.get("AUDIT_PAGE_SIZE", PAGE_SIZE))
    rows, more = keyset_page(
        db, select(AuditEvent).where(*page_conditions).order_by(AuditEvent.seq.desc()), size
    )
    departments = _departments(db)
    return render_template(
        "audit/events.html",
        rows=rows,
        args=args,
        labels=LABELS,
        departments=departments,
        names=EventNames.load(db, rows),
        state_text=event_state_label,
        describe=describe_payload,
        next_url=url_for("audit.events", before=rows[-1].seq, **args) if more and rows else None,
        first_url=url_for("audit.events", **args) if before else None,
        csv_url=url_for("audit.export", fmt="csv", **args),
        jsonl_url=url_for("audit.export", fmt="jsonl", **args),
        xlsx_url=url_for("audit.export_xlsx", **args),
    )


def _departments(db: Session) -> list[Department]:
    """Return the departments of every assessment, newest assessment first."""
    return list(
        db.execute(
            select(Department).order_by(Department.assessment_id.desc(), Department.position)
        ).scalars()
    )


# The reconciliation's field labels, for the English catalog (the engine holds the Chinese).
RECONCILE_LABELS = [
    N_("事项记录"),
    N_("事项数"),
    N_("审计记录无法重放"),
    N_("所属部门"),
    N_("状态"),
    N_("版本号"),
    N_("提交轮次"),
    N_("事项得分合计"),
    N_("初审人"),
    N_("核实人"),
    N_("评分人"),
    N_("提交人"),
    N_("申诉人"),
    N_("申诉次数"),
    N_("自评提交截止日"),
    N_("逾期提交"),
    N_("评分项得分"),
    N_("评分项扣分原因"),
    N_("佐证材料"),
    N_("不涉及声明及认定"),
    N_("部门总分"),
    N_("部门已评分事项数"),
    N_("公示开始时间"),
    N_("申诉开始时间"),
    N_("申诉截止时间"),
    N_("重新开启时间"),
    N_("结果最终确定时间"),
    N_("重新开启理由"),
    N_("公示页面范围"),
    N_("公示前向部门隐藏得分"),
]
RULING_LABELS = {"pending": N_("待认定"), "upheld": N_("认定不涉及"), "rejected": N_("不予认定")}
EVIDENCE_KEYS = {
    "sha256": "SHA-256",
    "removed": N_("已删除"),
    "purpose": N_("用途"),
    "sub_item": N_("评分项"),
}


def _field_label(difference: Difference) -> str:
    """Return the difference's field in the reader's language, with its point or file."""
    base, _, rest = difference.field.partition("[")
    label = gettext(FIELD_LABELS[base]) if base in FIELD_LABELS else difference.field
    if not rest:
        return label
    key, _, sub = rest.partition("].")
    key = key.rstrip("]")
    if base == "evidence":
        label = f"{label} #{key}"
        return f"{label} · {gettext(EVIDENCE_KEYS[sub])}" if sub in EVIDENCE_KEYS else label
    return f"{label} {key}"


def _value(field: str, value: Any) -> str:
    """Show a live or replayed value as a person reads it (never a Python repr)."""
    if value is None:
        return gettext("（无）")
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    if field == "state":
        return state_label(str(value))
    if field in PUBLICATION_TIMES:  # UTC in the trail: Beijing time, as the pages show it
        return gettext("已设置") if value == TIME_SET else trail_time(str(value))
    if field == "publication_page" and value in KEYED_VALUES[field]:
        return gettext(KEYED_VALUES[field][str(value)])
    if field.endswith(".purpose") or field == "purpose":
        return gettext(PURPOSE_LABELS.get(str(value), str(value)))
    if field.startswith("not_involved[") and value in RULING_LABELS:
        return gettext(RULING_LABELS[value])
    if isinstance(value, dict):  # a whole evidence row, or a whole item, on one side only
        shown = {**EVIDENCE_KEYS, "state": N_("状态")}
        return "; ".join(
            f"{gettext(label)}: {_value(key, value[key])}"
            for key, label in shown.items()
            if key in value
        )
    return str(value)


@bp.get("/verify")
@roles_required(*AUDIT_ROLES)
def verify() -> ResponseReturnValue:
    """Recompute every hash of the chain, reconcile the tables with it, show both."""
    db = get_db()
    check = check_audit(db)
    shown = check.tables.differences[:SHOWN_DIFFERENCES]
    item_ids = {d.item_id for d in shown if d.item_id is not None}
    items = {
        item_id: f"{dep} · {gettext('指标')} {code}"
        for item_id, dep, code in db.execute(
            select(Item.id, Department.name, Indicator.code)
            .join(Department, Department.id == Item.department_id)
            .join(Indicator, Indicator.id == Item.indicator_id)
            .where(Item.id.in_(item_ids))
        )
    }
    dep_ids = {d.department_id for d in shown if d.department_id is not None}
    departments = dict(
        db.execute(select(Department.id, Department.name).where(Department.id.in_(dep_ids))).all()
    )
    rows = [
        {
            "item_id": d.item_id,
            "item": items.get(d.item_id, "") if d.item_id is not None else "",
            "department": departments.get(d.department_id, "") if d.department_id else "",
            "assessment_id": d.assessment_id,
            "field": _field_label(d),
            "code": d.field,
            "live": _value(d.field, d.live),
            "from_events": _value(d.field, d.from_events),
        }
        for d in shown
    ]
    return render_template(
        "audit/verify.html", result=check.chain, tables=check.tables, differences=rows
    )


def _export_rows(db: Session, conditions: list[ColumnElement[bool]]) -> Iterator[AuditEvent]:
    for batch in export_batches(db, conditions):
        yield from batch


def _record(event: AuditEvent) -> dict[str, Any]:
    body = event_body(event)
    body["payload"] = json.loads(event.payload or "{}")
    body["prev_hash"] = event.prev_hash
    body["hash"] = event.hash
    return body


@bp.get("/export.xlsx")
@roles_required(*AUDIT_ROLES)
def export_xlsx() -> ResponseReturnValue:
    """Export the filtered events as Excel: the CSV's columns in the page's language."""
    conditions, _ = _filters()
    return xlsx_response(audit_xlsx(get_db(), conditions), gettext("审计日志"))


@bp.get("/export.<any(csv, jsonl):fmt>")
@roles_required(*AUDIT_ROLES)
def export(fmt: str) -> ResponseReturnValue:
    """Export the filtered events as CSV (UTF-8 with BOM, for Excel/WPS) or JSON Lines."""
    db = get_db()
    conditions, _ = _filters()
    stamp = dt.datetime.now(DISPLAY_TZ).strftime("%Y%m%d-%H%M%S")
    # The body streams after the view returned and its unit was finished: these reads run in
    # a transaction of their own, which teardown ends when the stream closes.

    def csv_lines() -> Iterator[str]:
        yield "\ufeff"
        buffer = io.StringIO()
        writer = safe_csv_writer(buffer)
        writer.writerow([gettext(h) for h in CSV_HEADERS])
        for batch in export_batches(db, conditions):
            names = EventNames.load(db, batch)
            for event in batch:
                writer.writerow(csv_row(event, names))
                if buffer.tell() > 64 * 1024:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    def jsonl_lines() -> Iterator[str]:
        for event in _export_rows(db, conditions):
            yield json_line(_record(event))

    if fmt == "csv":
        body, mimetype = csv_lines(), "text/csv; charset=utf-8"
    else:
        body, mimetype = jsonl_lines(), "application/x-ndjson; charset=utf-8"
    # content_type, not mimetype: werkzeug adds a charset to a text/* mimetype (twice over).
    response = Response(stream_with_context(body), content_type=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
