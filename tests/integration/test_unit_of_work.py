"""The commands' unit of work (workflow/db.py): one commit at the end, a rollback on error."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tests.factories import World
from workflow.db import make_sessionmaker, unit_of_work
from workflow.errors import Conflict
from workflow.models import User


def _name(engine: Engine, user_id: int) -> str | None:
    with make_sessionmaker(engine)() as fresh:
        return fresh.get_one(User, user_id).display_name


def test_commits_once_at_the_end(engine: Engine, session: Session, world: World) -> None:
    user_id = world.member_a.id
    session.close()
    with unit_of_work(make_sessionmaker(engine)) as s:
        s.get_one(User, user_id).display_name = "王芳"
        s.flush()
        assert _name(engine, user_id) != "王芳"  # not before the unit ends
    assert _name(engine, user_id) == "王芳"


def test_an_error_rolls_everything_back(engine: Engine, session: Session, world: World) -> None:
    user_id, before = world.member_a.id, world.member_a.display_name
    session.close()
    with pytest.raises(RuntimeError), unit_of_work(make_sessionmaker(engine)) as s:
        s.get_one(User, user_id).display_name = "王芳"
        s.flush()
        raise RuntimeError("the command failed")
    assert _name(engine, user_id) == before


def test_a_commit_that_loses_a_race_is_a_conflict(
    engine: Engine, session: Session, world: World
) -> None:
    user_id, before = world.member_a.id, world.member_a.display_name
    session.close()
    factory = make_sessionmaker(engine)

    @event.listens_for(factory, "before_commit")
    def _lose(_session: Session) -> None:
        raise StaleDataError("UPDATE users matched 0 rows")

    with pytest.raises(Conflict) as raised, unit_of_work(factory) as s:
        s.get_one(User, user_id).display_name = "王芳"
    assert raised.value.code == "stale_version" and raised.value.status == 409
    assert _name(engine, user_id) == before
