"""Two admins taking each other's admin role away at once keep one admin; two admins creating
the same year at once make one assessment; two creating one username at once make one user
(the locks behind `last_admin`, `assessment_exists` and `username_taken`, on both backends)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.concurrency import one_behind_the_other
from tests.factories import World, at_once, rules_2019
from workflow.db import make_sessionmaker, unit_of_work
from workflow.errors import DomainError
from workflow.models import Assessment, User
from workflow.scheme import Scheme
from workflow.setup import create_assessment
from workflow.users import create_user, set_active


def test_two_admins_disabling_each_other_at_once_leave_one(
    engine: Engine, session: Session, world: World
) -> None:
    second = create_user(session, "admin2", ["admin"], actor=world.admin)
    session.commit()
    pairs = [(world.admin.id, second.id), (second.id, world.admin.id)]
    factory = make_sessionmaker(engine)
    outcomes: list[str] = []

    def disable(actor_id: int, target_id: int) -> None:
        with factory() as s:
            actor, target = s.get_one(User, actor_id), s.get_one(User, target_id)
            try:
                set_active(s, target, False, actor=actor)
                s.commit()
                outcomes.append("disabled")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(*(lambda a=a, t=t: disable(a, t) for a, t in pairs))
    assert sorted(outcomes) == ["disabled", "last_admin"]
    session.expire_all()
    active = session.scalars(select(User).where(User.is_active.is_(True))).all()
    assert [u.username for u in active if "admin" in u.roles] in (["admin"], ["admin2"])


def test_two_admins_creating_one_year_at_once_make_one(
    engine: Engine, session: Session, world: World, scheme_2018: Scheme
) -> None:
    scheme_2019 = rules_2019(scheme_2018)
    admin_id, factory = world.admin.id, make_sessionmaker(engine)
    session.commit()
    outcomes: list[str] = []

    def create(number: str) -> None:
        with factory() as s:
            admin = s.get_one(User, admin_id)
            try:
                create_assessment(s, scheme_2019, year=2019, result_document_no=number, actor=admin)
                s.commit()
                outcomes.append("created")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(lambda: create("蛟市职转办〔2020〕1号"), lambda: create("蛟市职转办〔2020〕2号"))
    assert sorted(outcomes) == ["assessment_exists", "created"]
    session.expire_all()
    assert session.scalar(select(func.count()).where(Assessment.year == 2019)) == 1


@pytest.mark.parametrize("second_name", ["wang.li", "Wang.Li"])
def test_two_admins_creating_one_username_at_once_make_one_user(
    engine: Engine, session: Session, world: World, second_name: str
) -> None:
    """The second admin is told the name is taken (409 `username_taken`), not a unique
    violation (a 500), and a name differing only in case is one name here too."""
    admin_id = world.admin.id
    session.commit()

    def create(factory: Callable[[], Session], username: str) -> str:
        with unit_of_work(factory) as s:
            try:
                create_user(s, username, ["reviewer"], actor=s.get_one(User, admin_id))
            except DomainError as exc:
                return exc.code
        return "created"

    outcomes = one_behind_the_other(
        engine,
        lambda factory: create(factory, "wang.li"),
        lambda: create(make_sessionmaker(engine), second_name),
    )
    assert outcomes == ("created", "username_taken")
    session.expire_all()
    names = session.scalars(select(User.username).where(User.username.ilike("wang.li"))).all()
    assert names == ["wang.li"]
