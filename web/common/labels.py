"""Words and times for people, shared by the pages and the exports of both faces: audit
actions, item states, evidence purposes, Beijing times."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from web.common.catalog import gettext
from workflow.machine import ACTION_LABELS
from workflow.states import STATE_LABELS, State

DISPLAY_TZ = ZoneInfo("Asia/Shanghai")


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


EVENT_LABELS: dict[str, str] = {
    **ACTION_LABELS,
    "evidence_uploaded": N_("上传材料"),
    "evidence_removed": N_("删除材料"),
}

#: The kinds of a department's other names (the admin page, the audit log).
ALIAS_KIND_LABELS = {"alias": N_("别名"), "office": N_("挂牌机构")}
#: Where a scheme's text came from (the schemes pages, the audit log).
SCHEME_ORIGINS = {
    "api": N_("接口上传"),
    "portal": N_("网页上传"),
    "form": N_("表单编辑"),
    "docx": N_("Word 导入"),
    "shipped": N_("随系统提供"),
    "cli": N_("命令行导入"),
}
PURPOSE_LABELS = {
    "evidence": N_("佐证材料"),
    "not_involved_proof": N_("不涉及证明"),
    "appeal": N_("申诉材料"),
}


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a UTC time in Asia/Shanghai."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(DISPLAY_TZ).strftime(fmt)


def state_label(state: str | None) -> str:
    """Return a state's Chinese label."""
    if not state:
        return ""
    try:
        return gettext(STATE_LABELS[State(state)])
    except ValueError:
        return state
