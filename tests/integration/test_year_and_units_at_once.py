"""A new year created, or people imported, while an admin reorganises the units they name:
they see the units as the reorganisation left them (the `UNIT_NAMES_LOCK` behind
`unit_not_active` and the import's 已撤销或合并 row error), never a unit dissolved meanwhile.

Deterministic (tests/concurrency.py): the unit change stops at its commit, the creation runs
until it waits on a lock or is done, then the change commits. Both backends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.concurrency import one_behind_the_other
from tests.factories import World, rules_2019
from workflow.db import make_sessionmaker
from workflow.errors import DomainError
from workflow.models import Assessment, Department, Unit, User
from workflow.people_import import Row, import_people
from workflow.scheme import Scheme
from workflow.setup import create_assessment
from workflow.units import apply_change
from workflow.users import generate_password


def _dissolving(admin_id: int, unit_id: int) -> Callable[[sessionmaker[Session]], str]:
    """An admin's dissolution of the unit, in a session of the given (held) factory."""

    def dissolve(held: sessionmaker[Session]) -> str:
        with held() as s:
            apply_change(
                s, kind="dissolve", effective_on=dt.date(2019, 3, 1),
                document_no="蛟市机编〔2019〕9号", reason="机构改革", from_ids=[unit_id],
                actor=s.get_one(User, admin_id),
            )  # fmt: skip
            s.commit()
            return "done"

    return dissolve


def _attempt(engine: Engine, done: str, act: Callable[[Session], object]) -> str:
    """Run `act` in a session of its own and commit: `done`, or the refusal's code."""
    with make_sessionmaker(engine)() as s:
        try:
            act(s)
            s.commit()
            return done
        except DomainError as exc:
            s.rollback()
            return exc.code


def test_a_year_created_while_one_of_its_units_is_dissolved_does_not_assess_it(
    engine: Engine, session: Session, world: World, scheme_2018: Scheme
) -> None:
    admin_id = world.admin.id
    unit_ids = [d.unit_id for d in world.assessment.departments]
    gone = world.dep_b.unit_id
    session.commit()

    def create() -> str:
        return _attempt(engine, "created", lambda s: create_assessment(
            s, rules_2019(scheme_2018), year=2019, result_document_no="蛟市职转办〔2020〕1号",
            unit_ids=unit_ids, actor=s.get_one(User, admin_id),
        ))  # fmt: skip

    outcomes = one_behind_the_other(engine, _dissolving(admin_id, gone), create)
    assert outcomes == ("done", "unit_not_active")
    session.expire_all()
    assert session.get_one(Unit, gone).status == "dissolved"
    assessed = session.scalars(
        select(Department.unit_id)
        .join(Assessment, Assessment.id == Department.assessment_id)
        .where(Assessment.year == 2019)
    ).all()
    assert gone not in assessed


def test_people_imported_while_their_unit_is_dissolved_are_not_put_in_it(
    engine: Engine, session: Session, world: World
) -> None:
    admin_id, gone = world.admin.id, world.dep_b.unit_id
    unit_name = session.get_one(Unit, gone).name
    session.commit()

    def import_() -> str:
        rows = [Row(2, "zhang.wei", "张伟", ["department"], unit_name)]
        return _attempt(engine, "imported", lambda s: import_people(
            s, rows, actor=s.get_one(User, admin_id), password=generate_password
        ))  # fmt: skip

    outcomes = one_behind_the_other(engine, _dissolving(admin_id, gone), import_)
    assert outcomes == ("done", "import_has_errors")
    session.expire_all()
    assert session.scalar(select(User).where(User.username == "zhang.wei")) is None
