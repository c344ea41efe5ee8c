"""Audit events in words: Chinese action and state labels, named targets, Shanghai times.

One table for every page and export that shows events to people. A new action recorded by
the engine gets its label here (a test scans the code for `action="…"` and fails otherwise).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.common.catalog import gettext, ngettext
from web.common.labels import EVENT_LABELS, N_, local_time, state_label
from workflow.models import Assessment, AuditEvent, Department, Indicator, Item, User
from workflow.routine import ROUTINE_STATUS_LABELS

OTHER_ACTION_LABELS = {
    "login": N_("登录"),
    "logout": N_("退出登录"),
    "user_created": N_("创建用户"),
    "user_disabled": N_("停用用户"),
    "user_enabled": N_("启用用户"),
    "password_reset": N_("重置密码"),
    "password_changed": N_("修改密码"),
    "sign_in_unlocked": N_("解除登录限制"),
    "roles_changed": N_("变更角色"),
    "token_issued": N_("签发令牌"),
    "token_revoked": N_("吊销令牌"),
    "routine_submitted": N_("报送平时考核记录"),
    "routine_reviewed": N_("审核平时考核记录"),
    "routine_corrected": N_("更正平时考核记录"),
    "routine_withdrawn": N_("撤销平时考核记录"),
    "notice_issued": N_("印发考核结果通知书"),
    "summary_issued": N_("印发考核结果汇总表"),
    "notice_base_uploaded": N_("上传通知书底稿（版头）"),
    "assessment_created": N_("创建考核"),
    "assessment_published": N_("开始公示"),
    "assessment_reopened": N_("重新开放考核"),
    "appeal_window_set": N_("设置申诉期"),
    "department_changed": N_("变更部门信息"),
    "unit_changed": N_("调整被考核单位"),
    "publication_page_set": N_("设置公示页面范围"),
    "assessment_settings_changed": N_("变更考核设置"),
    "stage_deadline_set": N_("设置考核日程"),
    "calendar_override_set": N_("调整工作日"),
    "calendar_override_removed": N_("删除工作日调整"),
    "scheme_created": N_("新建考核方案"),
    "scheme_updated": N_("修改考核方案"),
    "scheme_versioned": N_("考核方案存为新版本"),
    "scheme_frozen": N_("考核方案启用并冻结"),
    "notification_preferences_changed": N_("变更通知设置"),
    "job_requested": N_("发起后台任务"),
    "backup_restored": N_("从备份恢复数据"),
}
SYSTEM_ACTOR = N_("系统")
ACTION_TEXT: dict[str, str] = {**EVENT_LABELS, **OTHER_ACTION_LABELS}

ROUTINE_STATES = ROUTINE_STATUS_LABELS
TARGET_TYPES = {
    "item": N_("考核事项"),
    "evidence": N_("佐证材料"),
    "user": N_("用户"),
    "token": N_("API 令牌"),
    "routine": N_("平时考核记录"),
    "notice": N_("通知书"),
    "assessment": N_("考核"),
    "department": N_("部门"),
    "scheme": N_("考核方案"),
    "unit_change": N_("单位调整"),
    "calendar": N_("工作日历"),
    "job": N_("后台任务"),
    "backup": N_("备份"),
}


def action_label(code: str) -> str:
    """Return an action's Chinese label (the code itself only for an unknown action)."""
    return gettext(ACTION_TEXT[code]) if code in ACTION_TEXT else code


def event_state_label(target_type: str, value: str | None) -> str:
    """Return a from/to state in words: routine statuses and item states have their own."""
    if not value:
        return ""
    if target_type == "routine" and value in ROUTINE_STATES:
        return gettext(ROUTINE_STATES[value])
    return state_label(value)


def person(user: User | None, username: str) -> str:
    """Show a user as 显示名（用户名）, or the user name alone when there is no other name.

    Events without a user (`init`, the system's own) name the actor 系统.
    """
    if user is None and username == "system":
        return gettext(SYSTEM_ACTOR)
    if user is None or not user.display_name or user.display_name == username:
        return username
    # The brackets and the separators below come from the catalog: full-width in Chinese,
    # ASCII with spaces in English.
    return gettext("%(name)s（%(username)s）", name=user.display_name, username=username)


def user_name(user: User | None) -> str:
    """A stored user as the pages name people: 显示名（用户名）."""
    return person(user, user.username) if user is not None else ""


@dataclass
class EventNames:
    """Names for a batch of events: users, departments, items, years (loaded once per page).

    An item's or an assessment's target says its year: every year has a 交通局 / 1. item, and
    an assessment's id says nothing to its reader.
    """

    users_by_name: dict[str, User] = field(default_factory=dict)
    users_by_id: dict[int, User] = field(default_factory=dict)
    departments: dict[int, str] = field(default_factory=dict)
    # id -> (dept id, indicator, year)
    items: dict[int, tuple[int, str, int]] = field(default_factory=dict)
    years: dict[int, int] = field(default_factory=dict)  # assessment id -> year

    @classmethod
    def load(cls, db: Session, events: Iterable[AuditEvent]) -> EventNames:
        """Look up every name the events refer to, in three queries."""
        events = list(events)
        names = {e.actor for e in events}
        user_ids = {int(e.target_id) for e in events if e.target_type == "user" and
                    e.target_id.isdecimal()}  # fmt: skip
        users = list(
            db.execute(
                select(User).where(User.username.in_(names) | User.id.in_(user_ids))
            ).scalars()
        )
        item_ids = {e.item_id for e in events if e.item_id is not None}
        items = {
            item_id: (dep_id, f"{code}. {title}", year)
            for item_id, dep_id, code, title, year in db.execute(
                select(
                    Item.id, Item.department_id, Indicator.code, Indicator.title, Assessment.year
                )
                .join(Indicator, Indicator.id == Item.indicator_id)
                .join(Assessment, Assessment.id == Item.assessment_id)
                .where(Item.id.in_(item_ids))
            ).all()
        }
        assessment_ids = {
            int(e.target_id)
            for e in events
            if e.target_type == "assessment" and e.target_id.isdecimal() and len(e.target_id) < 10
        }
        years: dict[int, int] = {
            aid: year
            for aid, year in db.execute(
                select(Assessment.id, Assessment.year).where(Assessment.id.in_(assessment_ids))
            ).all()
        }
        dep_ids = {e.department_id for e in events if e.department_id is not None}
        dep_ids |= {dep for dep, _, _ in items.values()}
        departments: dict[int, str] = {
            dep_id: name
            for dep_id, name in db.execute(
                select(Department.id, Department.name).where(Department.id.in_(dep_ids))
            ).all()
        }
        return cls(
            users_by_name={u.username: u for u in users},
            users_by_id={u.id: u for u in users},
            departments=departments,
            items=items,
            years=years,
        )

    def actor(self, event: AuditEvent) -> str:
        """The actor as 显示名（用户名）."""
        return person(self.users_by_name.get(event.actor), event.actor)

    def department(self, event: AuditEvent) -> str:
        """The event's department name, or empty."""
        if event.department_id is not None:
            return self.departments.get(event.department_id, "")
        if event.item_id is not None and event.item_id in self.items:
            return self.departments.get(self.items[event.item_id][0], "")
        return ""

    def target(self, event: AuditEvent) -> str:
        """The target in words: 部门 / 指标 · 年度, a user's name, or the kind of object and its
        id (an assessment's with its year)."""
        if event.item_id is not None and event.item_id in self.items:
            dep_id, indicator, year = self.items[event.item_id]
            return f"{self.departments.get(dep_id, '')} / {indicator} · {_year(year)}"
        if event.target_type == "user" and event.target_id.isdecimal():
            user = self.users_by_id.get(int(event.target_id))
            if user is not None:
                return person(user, user.username)
        kind = TARGET_TYPES.get(event.target_type)
        label = gettext(kind) if kind else event.target_type
        department = self.department(event)
        text = f"{label} {event.target_id}"
        if event.target_type == "unit_change" and (change := unit_change_text(event.payload)):
            text = gettext("%(label)s：%(value)s", label=text, value=change)
        if event.target_type == "assessment" and event.target_id.isdecimal():
            of = self.years.get(int(event.target_id)) if len(event.target_id) < 10 else None
            text = f"{text} · {_year(of)}" if of is not None else text
        return f"{department} / {text}" if department else text


def _unit_names(states: Any) -> str:
    """The names of the units a change lists (`workflow.units.unit_state`), joined."""
    if not isinstance(states, list):
        return ""
    names = [str(s["name"]) for s in states if isinstance(s, Mapping) and s.get("name")]
    return gettext("、").join(names)


def _full_name(states: Any) -> str:
    first = states[0] if isinstance(states, list) and states else None
    return str(first.get("full_name") or "") if isinstance(first, Mapping) else ""


def unit_change_text(payload: str) -> str:
    """Say what a lineage change (`unit_changed`) did, from its payload alone (the names as
    they were then): 安监局、煤监局合并为应急管理局（2019-03-01 生效）. Empty when the payload
    cannot be read as one."""
    try:
        data = json.loads(payload or "{}")
    except ValueError:
        return ""
    if not isinstance(data, Mapping):
        return ""
    kind, before, after = data.get("kind"), data.get("from"), data.get("to")
    sources, targets = _unit_names(before), _unit_names(after)
    if kind == "merge" and sources and targets:
        change = gettext("%(units)s合并为%(unit)s", units=sources, unit=targets)
    elif kind == "split" and sources and targets:
        change = gettext("%(unit)s拆分为%(units)s", unit=sources, units=targets)
    elif kind == "dissolve" and sources:
        change = gettext("撤销%(units)s", units=sources)
    elif kind == "create" and targets:
        change = gettext("新设%(units)s", units=targets)
    elif kind == "rename" and sources and targets and sources != targets:
        change = gettext("%(old)s更名为%(new)s", old=sources, new=targets)
    elif kind == "rename" and sources and targets:  # the same short name: a new full name
        change = gettext(
            "%(unit)s的全称由“%(old)s”改为“%(new)s”",
            unit=sources,
            old=_full_name(before),
            new=_full_name(after),
        )
    else:
        return ""
    day = data.get("effective_on")
    return gettext("%(change)s（%(day)s 生效）", change=change, day=day) if day else change


def _year(year: int) -> str:
    return gettext("%(year)s年度", year=year)


def shanghai(value: dt.datetime) -> str:
    """A UTC time as Asia/Shanghai wall time, to the second."""
    return local_time(value, "%Y-%m-%d %H:%M:%S")


@dataclass
class HistoryEntry:
    """One line of an item's history as the page shows it."""

    at: dt.datetime
    actor: str
    action: str
    from_state: str
    to_state: str
    comment: str | None
    detail: str


def _detail(event: AuditEvent, *, hide_scores: bool = False) -> str:
    payload = _payload(event)
    if event.action in ("evidence_uploaded", "evidence_removed"):
        return str(payload.get("filename", ""))
    if event.action in ("score", "rescore") and "total" in payload and not hide_scores:
        return gettext("合计 %(total)s 分", total=payload["total"])
    if event.action == "verify" and isinstance(payload.get("checks"), list):
        return gettext("核查要点：") + gettext("；").join(_check_line(c) for c in payload["checks"])
    if event.action == "submit" and payload.get("evidence_sha256") is not None:
        count = len(payload["evidence_sha256"])
        files = ngettext("材料 %(n)s 份", "材料 %(n)s 份", count, n=count)
        if payload.get("change_note"):
            return (
                files + gettext("；") + gettext("修改说明：%(note)s", note=payload["change_note"])
            )
        return files
    return ""


#: The verifier's answers to a check point, in words.
CHECK_ANSWER_LABELS = {"yes": N_("是"), "no": N_("否"), "na": N_("不适用")}


def _check_line(check: Any) -> str:
    """One answered check point: `1-1 是否成立工作领导小组：是（note）`."""
    if not isinstance(check, dict):
        return ""
    answer = CHECK_ANSWER_LABELS.get(str(check.get("answer")))
    line = gettext(
        "%(label)s：%(value)s",
        label=f"{check.get('code', '')} {check.get('text', '')}",
        value=gettext(answer) if answer else str(check.get("answer", "")),
    )
    return line + (gettext("（%(text)s）", text=check["note"]) if check.get("note") else "")


def appeal_outcome(
    rows: Sequence[tuple[AuditEvent, User | None]], *, hide_scores: bool = False
) -> HistoryEntry | None:
    """The latest appeal's decision as the item page states it beside the appeal's reason.

    A rescore names what it changed against the scores appealed against (`6.1：9.00 → 10.00；
    合计 9.00 → 10.00 分`); one that changed no point's score says so (复核后得分未变) rather
    than "复核改分", as the department's inbox message does. None before a decision."""
    decided = [(e, u) for e, u in rows if e.from_state == "appealed"]
    if not decided:
        return None
    event = decided[-1][0]
    entry = history_entries(decided[-1:], hide_scores=hide_scores)[0]
    before = [e for e, _ in rows if e.action in ("score", "rescore") and e.seq < event.seq]
    if event.action != "rescore" or hide_scores or not before:
        return entry
    old, new = _scores_of(before[-1]), _scores_of(event)
    moved = [
        gettext("%(label)s：%(value)s", label=code, value=f"{old[code]} → {points}")
        for code, points in new.items()
        if code in old and Decimal(old[code]) != Decimal(points)
    ]
    if not moved:
        entry.action = gettext("复核后得分未变")
        return entry
    totals = (_payload(before[-1]).get("total"), _payload(event).get("total"))
    if None not in totals:
        moved.append(gettext("合计 %(before)s → %(after)s 分", before=totals[0], after=totals[1]))
    entry.detail = gettext("；").join(moved)
    return entry


def _payload(event: AuditEvent) -> dict[str, Any]:
    import json

    try:
        payload = json.loads(event.payload or "{}")
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _scores_of(event: AuditEvent) -> dict[str, str]:
    """A score event's points by scoring point, as recorded ("9.00"); unreadable ones left out."""
    scores = _payload(event).get("scores")
    if not isinstance(scores, dict):
        return {}
    readable: dict[str, str] = {}
    for code, points in scores.items():
        try:
            Decimal(str(points))
        except ArithmeticError:
            continue
        readable[str(code)] = str(points)
    return readable


def history_entries(
    rows: Sequence[tuple[AuditEvent, User | None]], *, hide_scores: bool = False
) -> list[HistoryEntry]:
    """Label audit events (with their actors' accounts, when still there) for people."""
    return [
        HistoryEntry(
            at=e.at,
            actor=person(u, e.actor),
            action=action_label(e.action),
            from_state=event_state_label(e.target_type, e.from_state),
            to_state=event_state_label(e.target_type, e.to_state),
            comment=e.comment,
            detail=_detail(e, hide_scores=hide_scores),
        )
        for e, u in rows
    ]
