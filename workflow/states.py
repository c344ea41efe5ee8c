"""Item states and roles as enums: the vocabulary of the workflow."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """The states of a department × indicator item."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    REVIEWED = "reviewed"
    VERIFIED = "verified"
    SCORED = "scored"
    RETURNED = "returned"
    APPEALED = "appealed"


class Role(enum.StrEnum):
    """User roles; a user may hold several."""

    DEPARTMENT = "department"
    REVIEWER = "reviewer"
    VERIFIER = "verifier"
    SCORER = "scorer"
    AUDITOR = "auditor"
    ADMIN = "admin"


STAFF_ROLES = frozenset({Role.REVIEWER, Role.VERIFIER, Role.SCORER, Role.ADMIN})

STATE_LABELS = {
    State.DRAFT: "草稿",
    State.SUBMITTED: "待初审",
    State.REVIEWED: "待核实",
    State.VERIFIED: "待评分",
    State.SCORED: "已评分",
    State.RETURNED: "已退回",
    State.APPEALED: "申诉中",
}

ROLE_LABELS = {
    Role.DEPARTMENT: "部门填报员",
    Role.REVIEWER: "初审员",
    Role.VERIFIER: "核实员",
    Role.SCORER: "评分员",
    Role.AUDITOR: "审计员",
    Role.ADMIN: "管理员",
}
