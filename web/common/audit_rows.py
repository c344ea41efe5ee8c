"""The audit log for people, as every download writes it: the portal's CSV and .xlsx, the
API's .xlsx and the 导出审计日志 job's.

One row builder (`audit_row`): names 显示名（用户名）, targets and departments in words, actions
and states labelled (`web.common.event_text`), the payload's fields and values in words
(`PAYLOAD_LABELS`, `describe_payload`) with its times in Beijing time; the .xlsx adds the raw
JSON last. Labels are in the current language: a page's, or Chinese where the caller forces
it (the API and the job).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from scoring.routine import KIND_LABELS, OUTCOME_LABELS
from web.common.catalog import gettext, ngettext, one_catalog
from web.common.event_text import (
    CHECK_ANSWER_LABELS,
    EventNames,
    action_label,
    event_state_label,
    shanghai,
)
from web.common.exports import XLSX_MAX_EVENTS
from web.common.labels import (
    ALIAS_KIND_LABELS,
    N_,
    PURPOSE_LABELS,
    SCHEME_ORIGINS,
    local_time,
)
from workflow.calendar import STAGE_LABELS
from workflow.jobs import EXPORT_LABELS
from workflow.jobs import KINDS as JOB_KINDS
from workflow.models import AuditEvent
from workflow.notify import CHANNEL_LABELS
from workflow.notify import KINDS as NOTIFY_KINDS
from workflow.spreadsheets import xlsx_bytes
from workflow.states import ROLE_LABELS
from workflow.units import KIND_LABELS as UNIT_CHANGE_KINDS
from workflow.units import STATUS_LABELS as UNIT_STATUSES

#: Events read from the database at a time (the session is emptied after each batch).
EXPORT_BATCH = 1000

# Headers for people; the action code column keeps the stable English code for machines.
CSV_HEADERS = (
    N_("序号"), N_("时间（北京时间）"), N_("操作人"), N_("操作"), N_("操作代码"), N_("对象"),
    N_("部门"), N_("原状态"), N_("新状态"), N_("说明"), N_("内容"), N_("前一哈希"), N_("哈希"),
)  # fmt: skip
#: The .xlsx adds the event's content as recorded (JSON) after the CSV's columns.
XLSX_HEADERS = (*CSV_HEADERS, N_("原始内容（JSON）"))
XLSX_WIDTHS = (8, 20, 20, 18, 20, 32, 16, 10, 10, 40, 60, 66, 66, 60)

PAYLOAD_LABELS = {
    "filename": N_("文件"),
    "size": N_("大小（字节）"),
    "sha256": "SHA-256",
    "content_type": N_("类型"),
    "sub_item": N_("评分项"),
    "purpose": N_("用途"),
    "evidence_sha256": N_("材料哈希"),
    "evidence_ids": N_("材料编号"),
    "change_note": N_("修改说明"),
    "checks": N_("核查要点"),
    "code": N_("编号"),
    "text": N_("要点"),
    "method": N_("考核方式"),
    "answer": N_("结果"),
    "not_involved": N_("声明不涉及"),
    "rulings": N_("认定"),
    "scores": N_("得分"),
    "deductions": N_("扣分原因"),
    "total": N_("合计"),
    "version": N_("版本"),
    "round": N_("轮次"),
    "kind": N_("类型"),
    "period": N_("期间"),
    "title": N_("标题"),
    "due_at": N_("截止时间"),
    "is_late": N_("迟报"),
    "outcome": N_("完成情况"),
    "registered_by": N_("登记方"),
    "changes": N_("更正内容"),
    "suggested": N_("建议分"),
    "routine_points": N_("以平时考核记录为佐证的评分项"),
    "days": N_("公示天数"),
    "counted_in_working_days": N_("按工作日计"),
    "reason": N_("理由"),
    "roles": N_("角色"),
    "department": N_("部门"),
    "from": N_("原值"),
    "to": N_("新值"),
    "preliminary": N_("初步结果"),
    "document_no": N_("文号"),
    "note": N_("备注"),
    "notice_id": N_("通知书编号"),
    "assessment_id": N_("考核编号"),
    "base_sha256": N_("底版哈希"),
    "trigger": N_("起因"),
    "verification_code": N_("验证码"),
    "snapshot": N_("内容快照"),
    "year": N_("年度"),
    "origin": N_("来源"),
    "total_points": N_("总分"),
    "previous_id": N_("上一版本编号"),
    "before": N_("修改前"),
    "after": N_("修改后"),
    "opens_at": N_("开始时间"),
    "closes_at": N_("结束时间"),
    "previous_window": N_("原申诉期"),
    "finalised_at": N_("最终确定时间"),
    "reopened_at": N_("重新开启时间"),
    "departments": N_("部门数"),
    "indicators": N_("指标数"),
    "items": N_("事项数"),
    "proposed": N_("按建议的单位"),
    "result_document_no": N_("结果通知文号"),
    "scheme_code": N_("方案编号"),
    "figures": N_("细则分值"),
    "figures_sha256": N_("细则分值指纹（SHA-256）"),
    "units": N_("单位"),
    "units_created": N_("新建单位"),
    "unit_states": N_("新建单位的名称与别名"),
    "department_states": N_("各部门的名称、别名及所属单位"),
    "notice_title": N_("结果通知书标题"),
    "issuer": N_("发文机关"),
    "signed_on": N_("考核细则成文日期"),
    "converted_points": N_("折合分值"),
    "appeal_window_days": N_("申诉期天数"),
    "timezone": N_("时区"),
    "blocks_late_submissions": N_("逾期不得提交自评"),
    "routine_sha256": N_("平时考核规则指纹（SHA-256）"),
    "effective_on": N_("生效日期"),
    "id": N_("编号"),
    "name": N_("名称"),
    "full_name": N_("全称"),
    "status": N_("状态"),
    "aliases": N_("别名"),
    "alias": N_("别名"),
    "unit_id": N_("单位编号"),
    "username": N_("用户名"),
    "evidence_id": N_("材料编号"),
    "stage": N_("阶段"),
    "starts_on": N_("开始日期"),
    "due_on": N_("截止日期"),
    "working_days": N_("工作日数"),
    "resolved_due_on": N_("推算的截止日期"),
    "day": N_("日期"),
    "is_workday": N_("上班"),
    "submit_due_on": N_("提交截止日期"),
    "working_days_late": N_("逾期工作日数"),
    "deduction_reason": N_("扣分原因"),
    "department_id": N_("部门编号"),
    "user_id": N_("用户编号"),
    "token_id": N_("令牌编号"),
    "expires_at": N_("到期时间"),
    "suggested_at": N_("建议分计算时间"),
    "token_sha256": N_("令牌指纹（SHA-256）"),
    "password_sha256": N_("密码指纹（SHA-256）"),
    "job_id": N_("任务编号"),
    "params": N_("参数"),
    "old_title": N_("原标题"),
    "notice_base_id": N_("底版编号"),
    "channels": N_("通知渠道"),
    "digest": N_("每日汇总"),
    "email_set": N_("已填电子邮箱"),
    "webhook_set": N_("已填群机器人地址"),
    "remind_days": N_("提前提醒工作日数"),
    "names": N_("名称"),
    "comment": N_("说明"),
    "state": N_("状态"),
    "operation": N_("操作"),
    "table": N_("表格"),
    "force": N_("内容未变也重新印发"),
    "notice_cc": N_("抄送"),
    "hide_scores_until_published": N_("公示前对部门隐藏得分"),
    "backup_created_at": N_("备份时间"),
    "checkpoint_seq": N_("备份时审计链头序号"),
    "checkpoint_hash": N_("备份时审计链头哈希"),
    "object_count": N_("文件对象数"),
}
#: A payload whose keys are the scheme's scoring point codes (1.1, 10.1): read as code：value.
CODE_KEYED = frozenset({"scores", "deductions", "rulings", "suggested"})
VALUE_LABELS = {
    **KIND_LABELS,
    **OUTCOME_LABELS,
    "office": N_("市职转办"),
    "department": N_("部门"),
    "notice": N_("考核结果通知书"),
    "summary": N_("汇总表"),
    "issue": N_("签发"),
    **SCHEME_ORIGINS,
    **UNIT_CHANGE_KINDS,
    **UNIT_STATUSES,
    **STAGE_LABELS,
    **{kind: spec.label for kind, spec in JOB_KINDS.items()},
}


LABELLED_VALUES = frozenset(
    {"kind", "outcome", "registered_by", "trigger", "origin", "status", "stage"}
)
#: Codes whose words depend on the field: a role "department" is not the registrar 部门.
KEYED_VALUES: dict[str, dict[str, str]] = {
    "roles": {str(role): label for role, label in ROLE_LABELS.items()},
    "table": EXPORT_LABELS,
    "operation": {
        "rename": N_("修改全称"),
        "add_alias": N_("添加别名"),
        "remove_alias": N_("删除别名"),
    },
    "publication_page": {"public": N_("所有人（无需登录）"), "signed_in": N_("仅限已登录用户")},
    "channel": CHANNEL_LABELS,
}
#: Fields that hold the old and new value of their parent's field: read by the parent's key.
WRAPPERS = frozenset({"from", "to", "before", "after"})
#: Actions whose top-level old/new values are codes of one field.
ACTION_FIELDS = {"publication_page_set": "publication_page"}
#: Text people typed: shown as typed, even when it looks like a time.
FREE_TEXT = frozenset(
    {"reason", "note", "comment", "change_note", "title", "old_title", "name", "full_name",
     "alias", "document_no", "text", "filename", "username"}
)  # fmt: skip
#: A time as the chain stores it (UTC, `workflow.audit.format_time`).
UTC_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")


def trail_time(value: str) -> str:
    """A stored UTC time as Beijing wall time to the minute, as the pages show times."""
    try:
        return local_time(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return value


def _aliases(value: list[Any]) -> str:
    """A department's or unit's other names: 交通运输局（别名）、路政大队（挂牌机构）."""
    shown = []
    for entry in value:
        if not isinstance(entry, dict):
            shown.append(_text(entry))
            continue
        kind = str(entry.get("kind", ""))
        label = gettext(ALIAS_KIND_LABELS[kind]) if kind in ALIAS_KIND_LABELS else kind
        alias = str(entry.get("alias", ""))
        shown.append(
            gettext("%(name)s（%(detail)s）", name=alias, detail=label) if label else alias
        )
    return gettext("、").join(shown) or gettext("（无）")


def _figures(value: dict[Any, Any]) -> str:
    """A scheme's figures (`workflow.scheme_figures`): each indicator's maximum, its scoring
    points (code, title, maximum) and its check points' codes."""
    shown = []
    for code, indicator in value.items():
        if not isinstance(indicator, dict):
            shown.append(gettext("%(label)s：%(value)s", label=code, value=_text(indicator)))
            continue
        subs = indicator.get("sub_items")
        points = gettext("、").join(
            f"{point} {sub.get('title', '')} {sub.get('max_points', '')}"
            for point, sub in (subs.items() if isinstance(subs, dict) else [])
            if isinstance(sub, dict)
        )
        shown.append(
            gettext(
                "指标 %(code)s：%(max)s 分（评分项：%(points)s；核查要点：%(checks)s）",
                code=code,
                max=_text(indicator.get("max_points")),
                points=points or gettext("（无）"),
                checks=_text(indicator.get("check_points")) or gettext("（无）"),
            )
        )
    return gettext("；").join(shown) or gettext("（无）")


#: Where each field stands when a record is read out: `PAYLOAD_LABELS`' order (编号, 要点,
#: 考核方式, 结果 …; 修改前 before 修改后; 开始时间 before 结束时间), not the chain's sorted keys.
_READING_ORDER = {key: n for n, key in enumerate(PAYLOAD_LABELS)}


def reading_order(value: dict[Any, Any]) -> list[tuple[Any, Any]]:
    """A payload's fields in reading order; fields without a label last, as stored."""
    return sorted(value.items(), key=lambda kv: _READING_ORDER.get(str(kv[0]), len(_READING_ORDER)))


def _text(value: Any, key: str = "") -> str:
    if isinstance(value, dict) and key == "figures":
        return _figures(value)
    if isinstance(value, dict) and key in CODE_KEYED:  # per scoring point: 1.1：4.00
        return gettext("；").join(
            gettext("%(label)s：%(value)s", label=k, value=_text(v, key)) for k, v in value.items()
        ) or gettext("（无）")
    if isinstance(value, dict) and key == "channels":  # notification kind → its channels
        return gettext("；").join(
            gettext(
                "%(label)s：%(value)s",
                label=gettext(NOTIFY_KINDS[k]) if k in NOTIFY_KINDS else k,
                value=_text(v, "channel"),
            )
            for k, v in value.items()
        ) or gettext("（无）")
    if isinstance(value, list) and key == "aliases":
        return _aliases(value)
    if isinstance(value, dict) and not all(str(k) in PAYLOAD_LABELS for k in value):
        # A nested record (a notice's snapshot): the raw JSON beside it shows it in full.
        count = len(value)
        return ngettext(
            "结构化内容，共 %(n)s 项，见原始记录",
            "结构化内容，共 %(n)s 项，见原始记录",
            count,
            n=count,
        )
    if isinstance(value, dict):
        # Each value is read by its own key (a unit's status, a check's answer); an old or
        # new value (from/to) by the key of the field it belongs to.
        return gettext("；").join(
            gettext(
                "%(label)s：%(value)s",
                label=gettext(PAYLOAD_LABELS[str(k)]),
                value=_text(v, key if k in WRAPPERS else str(k)) or gettext("（无）"),
            )
            for k, v in reading_order(value)
        ) or gettext("（无）")
    if isinstance(value, list):
        return gettext("、").join(_text(v, key) for v in value) or gettext("（无）")
    if isinstance(value, bool):
        if key == "rulings":
            return gettext("认定不涉及") if value else gettext("不予认定")
        return gettext("是") if value else gettext("否")
    if isinstance(value, str) and key not in FREE_TEXT and UTC_TIME.fullmatch(value):
        return trail_time(value)
    if isinstance(value, str) and value in KEYED_VALUES.get(key, {}):
        return gettext(KEYED_VALUES[key][value])
    if isinstance(value, str) and value in VALUE_LABELS and key in LABELLED_VALUES:
        return gettext(VALUE_LABELS[value])
    if isinstance(value, str) and key == "answer" and value in CHECK_ANSWER_LABELS:
        return gettext(CHECK_ANSWER_LABELS[value])
    if isinstance(value, str) and key == "purpose" and value in PURPOSE_LABELS:
        return gettext(PURPOSE_LABELS[value])
    return "" if value is None else str(value)


def describe_payload(payload: str, action: str = "") -> list[tuple[str, str]]:
    """Return an event's payload as labelled lines for people (hashes in full).

    `action` tells what a bare old/new value (`from`, `to`) is a value of.
    """
    try:
        data = json.loads(payload or "{}")
    except ValueError:
        return [(N_("内容"), payload)]
    if not isinstance(data, dict):
        return [(N_("内容"), _text(data))]
    field = ACTION_FIELDS.get(action, "")
    return [
        (
            PAYLOAD_LABELS.get(str(k), str(k)),
            # A file for no scoring point is for the whole item, as the item page says it.
            gettext("整项")
            if v is None and k == "sub_item"
            # A field with no value (a day with no entry before) reads （无）, not blank.
            else gettext("（无）")
            if v is None
            else _text(v, field if field and k in WRAPPERS else str(k)),
        )
        for k, v in reading_order(data)
        if k != "evidence_id"
    ]


def export_batches(
    db: Session, conditions: list[ColumnElement[bool]], *, newest_first: bool = True
) -> Iterator[list[AuditEvent]]:
    """Yield the filtered events a batch at a time: newest first, as the log's page lists
    them (the files people read), or in the chain's order (`newest_first=False`: JSON Lines,
    where each record's `prev_hash` is the hash of the one before it)."""
    last: int | None = None
    while True:
        if newest_first:
            after = [] if last is None else [AuditEvent.seq < last]
            order = AuditEvent.seq.desc()
        else:
            after = [AuditEvent.seq > (last or 0)]
            order = AuditEvent.seq.asc()
        batch = list(
            db.execute(
                select(AuditEvent).where(*conditions, *after).order_by(order).limit(EXPORT_BATCH)
            ).scalars()
        )
        if not batch:
            return
        yield batch
        last = batch[-1].seq
        db.expunge_all()  # keep memory flat on long exports


def audit_row(event: AuditEvent, names: EventNames) -> list[Any]:
    """One event for people, as every export shows it: labels and names in the current language.

    The one row builder of the CSV and every .xlsx (`CSV_HEADERS`); the time stays a datetime.
    """
    lines = describe_payload(event.payload, event.action)
    return [
        event.seq,
        event.at,
        names.actor(event),
        action_label(event.action),
        event.action,
        names.target(event),
        names.department(event),
        event_state_label(event.target_type, event.from_state),
        event_state_label(event.target_type, event.to_state),
        event.comment or "",
        gettext("；").join(
            gettext("%(label)s：%(value)s", label=gettext(label), value=value)
            for label, value in lines
        ),
        event.prev_hash,
        event.hash,
    ]


def csv_row(event: AuditEvent, names: EventNames) -> list[str]:
    """One event as a CSV row for people: Chinese labels, names, Shanghai time."""
    row = audit_row(event, names)
    row[0], row[1] = str(event.seq), shanghai(event.at)
    return row


def audit_xlsx(
    db: Session, conditions: list[ColumnElement[bool]], limit: int = XLSX_MAX_EVENTS
) -> bytes:
    """The filtered events as .xlsx, newest first as the log's page: the CSV's columns, then
    the raw JSON content (capped at `limit` rows: the newest).

    Headers and labels in the current language: the portal's page's; the API and the worker's
    job run it under Chinese.
    """

    def rows() -> Iterator[list[Any]]:
        left = limit
        for batch in export_batches(db, conditions):
            names = EventNames.load(db, batch)
            for event in batch[:left]:
                yield [*audit_row(event, names), event.payload or ""]
            left -= len(batch)
            if left <= 0:
                return

    with one_catalog():  # some twenty texts a row: the catalog is looked up once
        headers = [gettext(h) for h in XLSX_HEADERS]
        return xlsx_bytes(gettext("审计日志"), headers, rows(), widths=XLSX_WIDTHS)
