"""Who may read what. Write permissions live in the machine's guards."""

from __future__ import annotations

from workflow.models import Item, User
from workflow.states import Role

READ_ALL_ROLES = (Role.REVIEWER, Role.VERIFIER, Role.SCORER, Role.AUDITOR, Role.ADMIN)
OFFICE_ROLES = (Role.REVIEWER, Role.VERIFIER, Role.SCORER, Role.ADMIN)


def can_read_all(user: User) -> bool:
    """Office staff, auditors and admins read every department's items."""
    return user.is_active and user.has_role(*READ_ALL_ROLES)


def is_office_staff(user: User) -> bool:
    """Reviewers, verifiers, scorers and admins: the office's working roles."""
    return user.is_active and user.has_role(*OFFICE_ROLES)


def can_read_department(user: User, department_id: int) -> bool:
    """Staff read any department; a department user reads their own."""
    if can_read_all(user):
        return True
    return user.is_active and user.has_role(Role.DEPARTMENT) and user.department_id == department_id


def is_own_department(user: User, department_id: int) -> bool:
    """Tell whether the department is the user's own (office staff may not act on it)."""
    return user.department_id is not None and user.department_id == department_id


def can_read_item(user: User, item: Item) -> bool:
    """Tell whether the user may see this item (otherwise it is a 404 to them)."""
    return can_read_department(user, item.department_id)
