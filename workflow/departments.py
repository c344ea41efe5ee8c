"""Departments and their aliases: rename, add or remove an alias (admins only, audited).

No Flask here. Each operation checks the actor, changes the rows, flushes and appends a
`department_changed` audit event (payload `before` / `after`) in the caller's transaction;
the caller commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.audit import record_event
from workflow.db import lock_key, serialise
from workflow.errors import Forbidden, InvalidValue, NotFound
from workflow.fingerprints import check_row_seen, fields_of, fingerprint
from workflow.models import Department, DepartmentAlias, User
from workflow.states import Role

ALIAS_KINDS = ("alias", "office")
MAX_NAME = 100
MAX_FULL_NAME = 200


def _require_admin(actor: User) -> None:
    if not (actor.is_active and actor.has_role(Role.ADMIN)):
        raise Forbidden("只有管理员可以修改部门信息", code="role_required")


def _state(department: Department) -> dict[str, Any]:
    return {
        "name": department.name,
        "full_name": department.full_name,
        "aliases": [{"alias": a.alias, "kind": a.kind} for a in department.aliases],
    }


def department_state(department: Department) -> dict[str, Any]:
    """A department as `assessment_created` records it (`department_states`): its id, its
    unit, names and aliases; `department_changed` records the names and aliases after."""
    return {"id": department.id, "unit_id": department.unit_id, **_state(department)}


def _audit(session: Session, actor: User, department: Department, op: str, before: Any) -> None:
    session.flush()
    session.refresh(department, ["aliases"])
    record_event(
        session,
        actor=actor,
        action="department_changed",
        target_type="department",
        target_id=department.id,
        department_id=department.id,
        payload={"operation": op, "before": before, "after": _state(department)},
    )


def get_department(session: Session, department_id: int) -> Department:
    """Load a department, else NotFound."""
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound("部门不存在", code="department_not_found")
    return department


def _name_in_use(session: Session, department: Department, name: str) -> Department | None:
    """Return the department of the assessment already known by `name`, if any."""
    by_name = session.execute(
        select(Department).where(
            Department.assessment_id == department.assessment_id,
            (Department.name == name) | (Department.full_name == name),
        )
    ).scalar()
    if by_name is not None:
        return by_name
    return session.execute(
        select(Department)
        .join(DepartmentAlias, DepartmentAlias.department_id == Department.id)
        .where(Department.assessment_id == department.assessment_id, DepartmentAlias.alias == name)
    ).scalar()


#: The field of a department's rename form (`full_name_seen`).
FULL_NAME_FIELDS = ("full_name",)


def full_name_seen(department: Department) -> str:
    """The fingerprint of a department's full name as it is now (the rename form's `seen`)."""
    return fingerprint(fields_of(department, FULL_NAME_FIELDS))


def rename_department(
    session: Session,
    department: Department,
    full_name: str,
    *,
    actor: User,
    seen: str | None = None,
) -> Department:
    """Change a department's full name (the addressee of its notice). `seen` (`full_name_seen`
    when the form was opened): a name changed since is a 409 `changed_since_opened`."""
    _require_admin(actor)
    check_row_seen(session, department, FULL_NAME_FIELDS, seen)
    full_name = (full_name or "").strip()
    if not full_name or len(full_name) > MAX_FULL_NAME:
        raise InvalidValue(
            "部门全称不能为空，且不超过 %(max)s 字", code="bad_name", params={"max": MAX_FULL_NAME}
        )
    before = _state(department)
    if full_name == department.full_name:
        return department
    department.full_name = full_name
    _audit(session, actor, department, "rename", before)
    return department


def add_alias(
    session: Session, department: Department, alias: str, kind: str = "alias", *, actor: User
) -> DepartmentAlias:
    """Add another name (`alias`) or a parenthesised office (`office`) to a department."""
    _require_admin(actor)
    alias = (alias or "").strip()
    if not alias or len(alias) > MAX_NAME:
        raise InvalidValue(
            "别名不能为空，且不超过 %(max)s 字", code="bad_alias", params={"max": MAX_NAME}
        )
    if kind not in ALIAS_KINDS:
        raise InvalidValue("别名类型须为 alias 或 office", code="bad_alias_kind")
    # Two admins giving one name to two departments of the year at once queue here: the
    # second sees the first's alias (nothing in the table forbids it across departments).
    serialise(session, lock_key("department-names", department.assessment_id))
    holder = _name_in_use(session, department, alias)
    if holder is not None:
        raise InvalidValue(
            "名称“%(alias)s”已被部门“%(holder)s”使用",
            code="alias_in_use",
            params={"alias": alias, "holder": holder.name},
        )
    before = _state(department)
    row = DepartmentAlias(department_id=department.id, alias=alias, kind=kind)
    session.add(row)
    _audit(session, actor, department, "add_alias", before)
    return row


def remove_alias(session: Session, department: Department, alias_id: int, *, actor: User) -> None:
    """Remove one of a department's aliases."""
    _require_admin(actor)
    row = session.get(DepartmentAlias, alias_id)
    if row is None or row.department_id != department.id:
        raise NotFound("别名不存在", code="alias_not_found")
    before = _state(department)
    session.delete(row)
    _audit(session, actor, department, "remove_alias", before)
