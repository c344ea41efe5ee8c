"""The auditor's pages: the event log with filters, chain verification, CSV, .xlsx and JSONL
export (the rows and their labels: `web.common.audit_rows`, shared with the API and the job)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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
from sqlalchemy import ColumnElement, false, or_, select
from sqlalchemy.orm import Session, joinedload

from scoring.routine import KIND_LABELS as ROUTINE_KIND_LABELS
from scoring.routine import OUTCOME_LABELS
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
from workflow.calendar import STAGE_LABELS
from workflow.models import Assessment, AuditEvent, Department, Indicator, Item, Unit, User
from workflow.reconcile import (
    FIELD_LABELS,
    PUBLICATION_TIMES,
    RECORD_FIELD_LABELS,
    RECORD_KINDS,
    TIME_SET,
    Difference,
    check_audit,
    snapshot_path_text,
)
from workflow.routine import ROUTINE_STATUS_LABELS
from workflow.spreadsheets import safe_csv_writer
from workflow.states import ROLE_LABELS, Role
from workflow.units import KIND_LABELS as UNIT_KIND_LABELS
from workflow.units import STATUS_LABELS as UNIT_STATUS_LABELS
from workflow.units import change_events_naming

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


def _filters(db: Session) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
    """Read the log's filters from the query string: actor, action, department, item, dates.

    A department's events are those recorded for it, and the unit changes (merge, split,
    rename, dissolution) that name its unit: they concern every year's department of it."""
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
        value = request.args.get(name, "").strip()
        if value.isdecimal() and len(value) < 10:
            condition = column == int(value)
            department = db.get(Department, int(value)) if name == "department" else None
            changes = change_events_naming(db, department.unit_id) if department else []
            conditions.append(or_(condition, AuditEvent.seq.in_(changes)) if changes else condition)
            args[name] = int(value)
        elif value.isdecimal() and len(value) <= 40:
            # Longer than any id: a number all the same, which no event names.
            conditions.append(false())
            args[name] = value
    start, end = _date_arg("from"), _date_arg("to")
    if start is not None:  # dates are days in Asia/Shanghai
        conditions.append(AuditEvent.at >= dt.datetime.combine(start, dt.time(), DISPLAY_TZ))
        args["from"] = start.isoformat()
    if end is not None:
        next_day = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), DISPLAY_TZ)
        conditions.append(AuditEvent.at < next_day)
        args["to"] = end.isoformat()
    return conditions, args


def _ignored_filters(args: Mapping[str, Any]) -> list[str]:
    """Say which typed filters could not be read (they are left out, so the page and its
    exports show more than asked), and a period that ends before it starts."""
    notes = []
    item = request.args.get("item", "").strip()
    if item and "item" not in args:
        notes.append(
            gettext("事项编号“%(value)s”不是有效的编号（只填数字），未按事项筛选", value=item[:20])
        )
    department = request.args.get("department", "").strip()
    if department and "department" not in args:  # the form's list sends ids; a hand-made URL
        notes.append(gettext("部门编号“%(value)s”无效，未按部门筛选", value=department[:20]))
    for name in ("from", "to"):
        value = request.args.get(name, "").strip()
        if value and name not in args:
            notes.append(
                gettext("日期“%(value)s”无效（格式为 年-月-日），未按该日期筛选", value=value[:20])
            )
    if "from" in args and "to" in args and args["from"] > args["to"]:
        notes.append(gettext("开始日期晚于结束日期，没有符合条件的记录"))
    return notes


@bp.get("/")
@roles_required(*AUDIT_ROLES)
def events() -> ResponseReturnValue:
    """List events newest first, filtered, with keyset pages (`?before=<seq>`)."""
    db = get_db()
    conditions, args = _filters(db)
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
        ignored=_ignored_filters(args),
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
    """Return the departments of every assessment (with it: the filter groups them by year),
    newest assessment first."""
    return list(
        db.execute(
            select(Department)
            .options(joinedload(Department.assessment))
            .order_by(Department.assessment_id.desc(), Department.position)
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
    N_("部门经办人"),
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
    N_("用户账号"),
    N_("平时考核记录"),
    N_("考核阶段截止"),
    N_("工作日调整"),
    N_("用户名"),
    N_("角色"),
    N_("账号启用"),
    N_("所属单位"),
    N_("类型"),
    N_("期间"),
    N_("标题"),
    N_("审核状态"),
    N_("完成情况"),
    N_("逾期报送"),
    N_("开始日期"),
    N_("截止日期"),
    N_("工作日数"),
    N_("调整为工作日"),
    N_("调整原因"),
    N_("考核细则分值"),
    N_("分值指纹（SHA-256）"),
    N_("指标分值"),
    N_("核查要点"),
    N_("评分项分值"),
    N_("评分项名称"),
    N_("被考核单位"),
    N_("简称"),
    N_("全称"),
    N_("单位状态"),
    N_("别名及挂牌机构"),
    N_("单位调整记录"),
    N_("调整类型"),
    N_("生效日期"),
    N_("调整依据文号"),
    N_("操作人"),
    N_("原单位"),
    N_("调整后单位"),
    N_("API 令牌"),
    N_("密码指纹（SHA-256）"),
    N_("令牌所属用户"),
    N_("到期时间"),
    N_("已吊销"),
    N_("令牌指纹（SHA-256）"),
    N_("考核结果文件"),
    N_("通知书信头"),
    N_("所属考核"),
    N_("版本"),
    N_("文件名"),
    N_("文件 SHA-256"),
    N_("文件大小（字节）"),
    N_("存储位置"),
    N_("信头 SHA-256"),
    N_("初步结果"),
    N_("验证码"),
    N_("印发人"),
    N_("上传人"),
    N_("内容快照指纹（SHA-256）"),
    N_("内容快照"),
    N_("年度考核"),
    N_("被考核部门"),
    N_("考核代码"),
    N_("结果通知书标题"),
    N_("考核细则文号"),
    N_("考核细则成文日期"),
    N_("申诉期天数"),
    N_("时区"),
    N_("逾期不得提交自评"),
    N_("结果通知书发文字号"),
    N_("平时考核规则指纹（SHA-256）"),
    # The parts of a snapshot's path (workflow.reconcile.SNAPSHOT_LABELS).
    N_("年度"),
    N_("发文字号"),
    N_("发文机关"),
    N_("成文日期"),
    N_("考核得分"),
    N_("总分值"),
    N_("折合分"),
    N_("折合分值"),
    N_("排名"),
    N_("排名并列"),
    N_("部门数"),
    N_("类别"),
    N_("指标"),
    N_("评分项"),
    N_("编号"),
    N_("分值"),
    N_("得分"),
    N_("扣分原因"),
    N_("认定不涉及"),
    N_("抄送"),
    N_("核验网址"),
    N_("类别名称"),
    N_("类别分值"),
    N_("汇总表行"),
    N_("各类别得分"),
]
RULING_LABELS = {"pending": N_("待认定"), "upheld": N_("认定不涉及"), "rejected": N_("不予认定")}
EVIDENCE_KEYS = {
    "sha256": "SHA-256",
    "removed": N_("已删除"),
    "purpose": N_("用途"),
    "sub_item": N_("评分项"),
}


#: Codes shown in words, by the field of a record they are a value of.
NOTICE_KINDS = {"notice": N_("考核结果通知书"), "summary": N_("考核结果汇总表")}
RECORD_VALUES: dict[str, Mapping[str, str]] = {
    "status": ROUTINE_STATUS_LABELS,
    "outcome": OUTCOME_LABELS,
    "kind": {**ROUTINE_KIND_LABELS, **NOTICE_KINDS},
    "unit_status": UNIT_STATUS_LABELS,
    "change_kind": UNIT_KIND_LABELS,
}


#: The fields of a lineage change that list units (ids: shown as the units' names).
_UNIT_LISTS = frozenset({"from_units", "to_units"})
#: A record's fields that name an account (shown by its user name).
USER_FIELDS = frozenset({"issued_by_id", "uploaded_by_id", "created_by_id", "user_id"})


@dataclass(frozen=True)
class _Names:
    """The names the differences' ids stand for (accounts, units, departments, years)."""

    users: Mapping[int, str]
    units: Mapping[int, str]
    departments: Mapping[int, str]
    years: Mapping[int, int]


def _names(db: Session, shown: list[Difference], departments: Mapping[int, str]) -> _Names:
    """Look up the names of the accounts and units and the years of the assessments the
    differences name (a few rows)."""
    user_ids: set[int] = set()
    unit_ids: set[int] = set()
    assessment_ids: set[int] = set()
    for d in shown:
        kind, key, sub = _record_field(d.field)
        if kind == "assessment" and key.isdecimal():
            assessment_ids.add(int(key))
        if kind == "user" and key.isdecimal():
            user_ids.add(int(key))
        if kind == "unit" and key.isdecimal():
            unit_ids.add(int(key))
        if sub == "unit_id":
            unit_ids |= {v for v in (d.live, d.from_events) if isinstance(v, int)}
        if sub in _UNIT_LISTS:
            unit_ids |= {u for v in (d.live, d.from_events) if isinstance(v, list) for u in v}
        if kind == "token" and not sub:  # a whole token on one side: its user
            user_ids |= {
                v["user_id"]
                for v in (d.live, d.from_events)
                if isinstance(v, dict) and isinstance(v.get("user_id"), int)
            }
        if kind == "unit_change" and not sub:  # a whole change on one side
            for v in (d.live, d.from_events):
                if isinstance(v, dict):
                    unit_ids |= {u for k in _UNIT_LISTS for u in v.get(k) or []}
                    if isinstance(v.get("created_by_id"), int):
                        user_ids.add(v["created_by_id"])
        if sub in USER_FIELDS:
            user_ids |= {v for v in (d.live, d.from_events) if isinstance(v, int)}
    users = dict(db.execute(select(User.id, User.username).where(User.id.in_(user_ids))).all())
    units = {u.id: u.name for u in db.scalars(select(Unit).where(Unit.id.in_(unit_ids)))}
    years = dict(
        db.execute(
            select(Assessment.id, Assessment.year).where(Assessment.id.in_(assessment_ids))
        ).all()
    )
    return _Names(users, units, departments, years)


def _record_field(field: str) -> tuple[str | None, str, str]:
    """Split a record's field, `user[5].roles`, into its kind, key and field name."""
    base, _, rest = field.partition("[")
    if base not in RECORD_KINDS:
        return None, "", ""
    key, _, sub = rest.partition("].")
    return base, key.rstrip("]"), sub


#: The records named by their kind and number (`单位调整 #3`).
_NUMBERED_RECORDS = {
    "routine": N_("平时考核记录"),
    "unit_change": N_("单位调整"),
    "token": N_("API 令牌"),
    "notice": FIELD_LABELS["notice"],
    "notice_base": FIELD_LABELS["notice_base"],
    "assessment": FIELD_LABELS["assessment"],
}


def _record_name(difference: Difference, names: _Names) -> str:
    """Name the record a difference is about: the account, the routine record, the day."""
    kind, key, _ = _record_field(difference.field)
    if kind == "user":
        return f"{gettext('用户')} {names.users.get(int(key), '#' + key)}"
    if kind == "assessment" and key.isdecimal() and int(key) in names.years:
        return gettext("%(year)s 年度考核（#%(id)s）", year=names.years[int(key)], id=key)
    if kind == "department":
        name = names.departments.get(int(key), f"#{key}") if key.isdecimal() else key
        return f"{gettext('部门')} {name}"
    if kind in _NUMBERED_RECORDS:
        return f"{gettext(_NUMBERED_RECORDS[kind])} #{key}"
    if kind == "calendar_override":
        return f"{gettext('工作日调整')} {key}"
    if kind == "unit":
        name = names.units.get(int(key), f"#{key}") if key.isdecimal() else key
        return f"{gettext('单位')} {name}"
    if kind == "scheme":
        return f"{gettext('考核细则分值')} · {gettext('考核')} #{key}"
    return ""


def _field_label(difference: Difference) -> str:
    """Return the difference's field in the reader's language, with its point or file."""
    kind, key, sub = _record_field(difference.field)
    if kind is not None:
        name, _, code = sub.partition("[")  # scheme[3].point_max_points[1.1]
        label = gettext(RECORD_FIELD_LABELS[name]) if sub else gettext(FIELD_LABELS[kind])
        code = code.removesuffix("]")
        if name == "snapshot":  # notice[7].snapshot[categories/一/…/awarded], in words
            code = snapshot_path_text(code, gettext)
        if code:
            return f"{label} {code}"
        if kind == "stage_deadline":
            stage = gettext(STAGE_LABELS[key]) if key in STAGE_LABELS else key
            return f"{stage} · {label}"
        return label
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


def _record_value(name: str, value: Any, names: _Names) -> str:
    """Show a value of a record's field in words: roles, statuses, units, departments."""
    if name == "roles" and isinstance(value, list):
        return gettext("、").join(
            gettext(ROLE_LABELS[r]) if r in ROLE_LABELS else str(r) for r in value
        )
    if name in RECORD_VALUES and value in RECORD_VALUES[name]:
        return gettext(RECORD_VALUES[name][value])
    if name == "unit_id" and isinstance(value, int):
        return names.units.get(value, f"#{value}")
    if name in USER_FIELDS and isinstance(value, int):
        return names.users.get(value, f"#{value}")
    if name == "department_id" and isinstance(value, int):
        return names.departments.get(value, f"#{value}")
    if name == "expires_at" and isinstance(value, str):  # UTC in the trail: Beijing time
        return trail_time(value)
    if name in PUBLICATION_TIMES:  # UTC in the trail: Beijing time, as the pages show it
        return gettext("已设置") if value == TIME_SET else trail_time(str(value))
    if name == "publication_page" and value in KEYED_VALUES[name]:
        return gettext(KEYED_VALUES[name][str(value)])
    if name in _UNIT_LISTS and isinstance(value, list):
        return gettext("、").join(names.units.get(u, f"#{u}") for u in value) or gettext("（无）")
    if isinstance(value, dict):  # a whole record, on one side only
        return "; ".join(
            f"{gettext(RECORD_FIELD_LABELS[key])}: {_value(key, item, names)}"
            for key, item in value.items()
        )
    return _value("", value)


def _value(field: str, value: Any, names: _Names | None = None) -> str:
    """Show a live or replayed value as a person reads it (never a Python repr)."""
    if value is None:
        return gettext("（无）")
    if isinstance(value, bool):
        return gettext("是") if value else gettext("否")
    kind, _, sub = _record_field(field)
    if names is not None and (kind is not None or field in RECORD_FIELD_LABELS):
        return _record_value(sub or field, value, names)
    if field == "state":
        return state_label(str(value))
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
    dep_ids |= {
        v
        for d in shown
        if d.field == "department_id" or _record_field(d.field)[2] == "department_id"
        for v in (d.live, d.from_events)
        if isinstance(v, int)
    }
    departments = dict(
        db.execute(select(Department.id, Department.name).where(Department.id.in_(dep_ids))).all()
    )
    names = _names(db, shown, departments)
    rows = [
        {
            "item_id": d.item_id,
            "item": items.get(d.item_id, "") if d.item_id is not None else "",
            "record": _record_name(d, names),
            "department": departments.get(d.department_id, "") if d.department_id else "",
            "assessment_id": d.assessment_id,
            "field": _field_label(d),
            "code": d.field,
            "live": _value(d.field, d.live, names),
            "from_events": _value(d.field, d.from_events, names),
        }
        for d in shown
    ]
    return render_template(
        "audit/verify.html", result=check.chain, tables=check.tables, differences=rows
    )


def _chain_rows(db: Session, conditions: list[ColumnElement[bool]]) -> Iterator[AuditEvent]:
    """The filtered events in the chain's order (JSON Lines: each hash follows the one
    before it)."""
    for batch in export_batches(db, conditions, newest_first=False):
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
    """Export the filtered events as Excel, newest first as the page: the CSV's columns in the
    page's language."""
    db = get_db()
    conditions, _ = _filters(db)
    return xlsx_response(audit_xlsx(db, conditions), gettext("审计日志"))


@bp.get("/export.<any(csv, jsonl):fmt>")
@roles_required(*AUDIT_ROLES)
def export(fmt: str) -> ResponseReturnValue:
    """Export the filtered events as CSV (UTF-8 with BOM, for Excel/WPS), newest first as the
    page lists them, or as JSON Lines, in the chain's order (machine records to check)."""
    db = get_db()
    conditions, _ = _filters(db)
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
        for event in _chain_rows(db, conditions):
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
