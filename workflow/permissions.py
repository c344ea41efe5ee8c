"""Who may read what. Write permissions live in the machine's guards."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, event, select, text
from sqlalchemy.orm import Session, object_session

from workflow.models import Assessment, Department, Item, Unit, UnitChange, UnitChangeLink, User
from workflow.states import Role

READ_ALL_ROLES = (Role.REVIEWER, Role.VERIFIER, Role.SCORER, Role.AUDITOR, Role.ADMIN)
OFFICE_ROLES = (Role.REVIEWER, Role.VERIFIER, Role.SCORER, Role.ADMIN)


def can_read_all(user: User) -> bool:
    """Office staff, auditors and admins read every department's items."""
    return user.is_active and user.has_role(*READ_ALL_ROLES)


def is_office_staff(user: User) -> bool:
    """Reviewers, verifiers, scorers and admins: the office's working roles."""
    return user.is_active and user.has_role(*OFFICE_ROLES)


# -- the user's department in an assessment ---------------------------------------------------
# A user belongs to a unit; each assessment's department row is one year's appearance of a
# unit. The user's department in assessment X is the appearance there of their unit or, when
# their unit was merged into another (or into a chain of merges), of the unit it became.
# A split unit has no single successor: its users are re-pointed by an admin.
#
# The answer is one query per session and user, kept in `session.info` until the next commit,
# rollback, or flush that touches units, departments, lineage or users.

_CACHE = "own_departments"
#: For a user that was never stored (pure unit tests): {assessment_id: department_id}.
DETACHED = "_own_departments"
_TOUCHING = (Department, Unit, UnitChange, UnitChangeLink, User)


#: The user's unit and the units it was merged into (one statement), and their departments.
_OWN_SQL = text(
    "WITH RECURSIVE chain(unit_id, depth) AS ("
    " SELECT CAST(:unit AS INTEGER), CAST(0 AS INTEGER)"
    " UNION"
    " SELECT t.unit_id, chain.depth + 1 FROM chain"
    " JOIN unit_change_units f ON f.unit_id = chain.unit_id AND f.role = 'from'"
    " JOIN unit_changes c ON c.id = f.change_id AND c.kind = 'merge'"
    " JOIN unit_change_units t ON t.change_id = c.id AND t.role = 'to'"
    " WHERE chain.depth < 50)"
    " SELECT d.assessment_id, d.id, chain.depth FROM chain"
    " JOIN departments d ON d.unit_id = chain.unit_id"
)


#: Back from departments: their units and every unit merged into them (one statement).
_MEMBERS_SQL = text(
    "WITH RECURSIVE back(unit_id, dep_id, depth) AS ("
    " SELECT d.unit_id, d.id, CAST(0 AS INTEGER) FROM departments d WHERE d.id IN :ids"
    " UNION"
    " SELECT f.unit_id, back.dep_id, back.depth + 1 FROM back"
    " JOIN unit_change_units t ON t.unit_id = back.unit_id AND t.role = 'to'"
    " JOIN unit_changes c ON c.id = t.change_id AND c.kind = 'merge'"
    " JOIN unit_change_units f ON f.change_id = c.id AND f.role = 'from'"
    " WHERE back.depth < 50)"
    " SELECT unit_id, dep_id, depth FROM back"
).bindparams(bindparam("ids", expanding=True))


def member_units(session: Session, department_ids: Iterable[int]) -> dict[int, int]:
    """{unit_id: department_id}: the units whose users have one of the departments as their
    own (the department's unit, and the units merged into it); the inverse of
    `department_for`, for finding a department's people (notifications)."""
    ids = sorted(set(department_ids))
    if not ids:
        return {}
    out: dict[int, int] = {}
    rows = session.execute(_MEMBERS_SQL, {"ids": ids}).all()
    for unit_id, dep_id, _depth in sorted(rows, key=lambda r: r[2], reverse=True):
        out[unit_id] = dep_id  # the nearest (own unit first) wins
    return out


def _own_map(user: User) -> dict[int, int]:
    """{assessment_id: department_id} of the user's own departments (see above)."""
    session = object_session(user)
    if session is None:
        return dict(user.__dict__.get(DETACHED, {}))
    if user.unit_id is None:
        return {}
    cache: dict[tuple[int, int], dict[int, int]] = session.info.setdefault(_CACHE, {})
    key = (user.id, user.unit_id)
    found = cache.get(key)
    if found is None:
        found = {}
        rows = session.execute(_OWN_SQL, {"unit": user.unit_id}).all()
        # The unit's own appearance first, then the nearest successor's.
        for aid, did, _depth in sorted(rows, key=lambda r: r[2], reverse=True):
            found[aid] = did
        cache[key] = found
    return found


def own_department_ids(user: User) -> frozenset[int]:
    """The department rows (one per assessment at most) that are the user's own."""
    return frozenset(_own_map(user).values())


def department_id_for(user: User, assessment_id: int) -> int | None:
    """The id of the user's department in the assessment, or None."""
    return _own_map(user).get(assessment_id)


def department_for(user: User, assessment_id: int) -> Department | None:
    """The user's department in the assessment (their unit's appearance there), or None."""
    did = department_id_for(user, assessment_id)
    session = object_session(user)
    if did is None or session is None:
        return None
    return session.get(Department, did)


def current_department(user: User) -> Department | None:
    """The user's department in the newest assessment (by year) that has one for them."""
    own = _own_map(user)
    session = object_session(user)
    if not own or session is None:
        return None
    newest = session.execute(
        select(Assessment.id)
        .where(Assessment.id.in_(own))
        .order_by(Assessment.year.desc(), Assessment.id.desc())
        .limit(1)
    ).scalar_one()
    return session.get(Department, own[newest])


def unit_names(user: User) -> tuple[str, str | None]:
    """The user's unit as the office knows it now, and the account's own unit when that bore
    another name: (the newest year's department of the unit, or the unit's name; the unit's
    name or None), e.g. ("农业农村局", "畜牧局") for an account of a unit merged into it;
    ("", None) for a user without a unit.

    The users list and page say both, as the header says the first: the unit's own name alone
    reads as if an admin's move of the user onto the merged unit had not been saved (the
    account keeps its unit, which leads to the merged one, `set_roles`).
    """
    unit = user.unit
    if unit is None:
        return "", None
    department = current_department(user)
    # The unit's own department bears the name it had that year: a rename since is the unit's
    # name now, not a former one (交通运输局 read as 交通局（原交通运输局）).
    if department is None or department.name == unit.name or department.unit_id == unit.id:
        return str(unit.name), None
    return str(department.name), str(unit.name)


def forget_own_departments(session: Session) -> None:
    """Drop what the session knows of users' departments (after a change of the lineage)."""
    session.info.pop(_CACHE, None)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _ctx: Any) -> None:
    if _CACHE in session.info and any(
        isinstance(o, _TOUCHING) for o in (*session.new, *session.dirty, *session.deleted)
    ):
        forget_own_departments(session)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _after_end(session: Session, *_args: Any) -> None:
    forget_own_departments(session)


def is_own_department(user: User, department_id: int) -> bool:
    """Tell whether the department is the user's own (office staff may not act on it)."""
    return department_id in own_department_ids(user)


def is_department_member_of(user: User, department_id: int) -> bool:
    """A department user (填报人员) of that department."""
    return (
        user.is_active and user.has_role(Role.DEPARTMENT) and is_own_department(user, department_id)
    )


def can_read_department(user: User, department_id: int) -> bool:
    """Staff read any department; a department user reads their own."""
    if can_read_all(user):
        return True
    return is_department_member_of(user, department_id)


def can_read_item(user: User, item: Item) -> bool:
    """Tell whether the user may see this item (otherwise it is a 404 to them)."""
    return can_read_department(user, item.department_id)
