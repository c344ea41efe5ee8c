"""Two admins saving the same thing at once, where no row exists yet to lock: one day of the
calendar (both saved, one row: the later replaces the earlier) and one new scheme code (one
stored, the other a 409 naming it). FOR UPDATE locks nothing for a missing row, on either
backend: the second insert failed on the unique index (found by reading)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.factories import World, at_once
from workflow.calendar import set_calendar_override
from workflow.db import make_sessionmaker
from workflow.errors import DomainError
from workflow.models import CalendarOverride, StoredScheme, User
from workflow.scheme import SCHEMES_DIR
from workflow.schemes import read_yaml, save_scheme

TEXT_2018 = (SCHEMES_DIR / "jiaohe-2018.yaml").read_text("utf-8")

Work = Callable[[Session, User], object]


def _as_admins_at_once(engine: Engine, session: Session, world: World, *works: Work) -> list[str]:
    """Run each work in its own transaction as the admin, all released together."""
    admin_id = world.admin.id
    session.commit()
    outcomes: list[str] = []

    def run(work: Work) -> None:
        with make_sessionmaker(engine)() as s:
            try:
                work(s, s.get_one(User, admin_id))
                s.commit()
                outcomes.append("saved")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    at_once(*(lambda w=w: run(w) for w in works))
    return outcomes


def test_one_day_entered_by_two_admins_at_once_is_one_row(
    engine: Engine, session: Session, world: World
) -> None:
    day = dt.date(2018, 10, 8)
    outcomes = _as_admins_at_once(
        engine, session, world,
        lambda s, admin: set_calendar_override(s, day, False, "本地放假", actor=admin),
        lambda s, admin: set_calendar_override(s, day, False, "市政府通知放假", actor=admin),
    )  # fmt: skip
    assert outcomes == ["saved", "saved"]
    rows = session.scalars(select(CalendarOverride).where(CalendarOverride.day == day)).all()
    assert len(rows) == 1


def test_one_new_scheme_saved_by_two_admins_at_once_is_stored_once(
    engine: Engine, session: Session, world: World
) -> None:
    copied = {**read_yaml(TEXT_2018), "code": "jiaohe-2018-copy"}  # a code nobody has yet

    def save(s: Session, admin: User) -> object:
        return save_scheme(s, copied, actor=admin, replaces=None)

    outcomes = _as_admins_at_once(engine, session, world, save, save)
    assert sorted(outcomes) == ["saved", "scheme_exists"]
    stored = select(func.count()).where(StoredScheme.code == "jiaohe-2018-copy")
    assert session.scalar(stored) == 1
