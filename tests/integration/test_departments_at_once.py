"""Two admins giving one name to two departments of a year at once: one keeps it, the other
is told it is taken (422 `alias_in_use`), as when they come one after the other.

Deterministic (tests/concurrency.py): the first stops at its commit, the second runs until it
writes or waits on a lock, then the first commits. Both backends; the race was real on
PostgreSQL (SQLite takes its write lock before the check).
"""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.concurrency import one_behind_the_other
from tests.factories import World
from workflow.db import make_sessionmaker
from workflow.departments import add_alias, get_department
from workflow.errors import DomainError
from workflow.models import Department, DepartmentAlias, User


def _add(factory: sessionmaker[Session], admin_id: int, department_id: int) -> str:
    with factory() as s:
        try:
            admin = s.get_one(User, admin_id)
            add_alias(s, get_department(s, department_id), "综合办", actor=admin)
            s.commit()
            return "done"
        except DomainError as exc:
            s.rollback()
            return exc.code


def test_one_alias_given_to_two_departments_at_once_is_kept_by_one(
    engine: Engine, session: Session, world: World
) -> None:
    admin_id, dep_a, dep_b = world.admin.id, world.dep_a.id, world.dep_b.id
    session.commit()
    outcomes = one_behind_the_other(
        engine,
        lambda held: _add(held, admin_id, dep_a),
        lambda: _add(make_sessionmaker(engine), admin_id, dep_b),
    )
    assert outcomes == ("done", "alias_in_use")
    holders = session.scalar(
        select(func.count())
        .select_from(DepartmentAlias)
        .join(Department, Department.id == DepartmentAlias.department_id)
        .where(Department.assessment_id == world.assessment.id, DepartmentAlias.alias == "综合办")
    )
    assert holders == 1
