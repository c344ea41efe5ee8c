"""Labels of audit events for people, shared by the pages and the exports of both faces."""

from __future__ import annotations

from workflow.machine import ACTION_LABELS


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


EVENT_LABELS: dict[str, str] = {
    **ACTION_LABELS,
    "evidence_uploaded": N_("上传材料"),
    "evidence_removed": N_("删除材料"),
}
