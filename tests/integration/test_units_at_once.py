"""Unit changes at once: one name, one unit (the `UNIT_NAMES_LOCK` behind `unit_name_in_use`,
on both backends)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.factories import World, at_once
from workflow.db import make_sessionmaker
from workflow.errors import DomainError
from workflow.models import User
from workflow.units import all_units, apply_change, find_unit, name_key


def _as_admin(engine: Engine, world: World) -> tuple[Callable[..., None], list[str]]:
    admin_id, factory = world.admin.id, make_sessionmaker(engine)
    outcomes: list[str] = []

    def change(kind: str, from_names: list[str], to: list[dict[str, str]]) -> None:
        with factory() as s:
            try:
                ids = [unit.id for n in from_names if (unit := find_unit(s, n)) is not None]
                apply_change(
                    s, kind=kind, effective_on=dt.date(2019, 3, 1),
                    document_no="蛟市机编〔2019〕9号", reason="机构改革", from_ids=ids, to=to,
                    actor=s.get_one(User, admin_id),
                )  # fmt: skip
                s.commit()
                outcomes.append("done")
            except DomainError as exc:
                s.rollback()
                outcomes.append(exc.code)

    return change, outcomes


def _active_named(session: Session, name: str) -> int:
    session.expire_all()
    return sum(
        1 for u in all_units(session) if u.status == "active" and name_key(u.name) == name_key(name)
    )


def test_six_creates_of_one_name_at_once_make_one_unit(
    engine: Engine, session: Session, world: World
) -> None:
    change, outcomes = _as_admin(engine, world)
    session.commit()
    at_once(*(lambda: change("create", [], [{"name": "并发局"}]) for _ in range(6)))
    assert sorted(outcomes) == ["done"] + ["unit_name_in_use"] * 5
    assert _active_named(session, "并发局") == 1


def test_two_units_renamed_to_one_name_at_once_leave_one_with_it(
    engine: Engine, session: Session, world: World
) -> None:
    change, outcomes = _as_admin(engine, world)
    session.commit()
    at_once(
        lambda: change("rename", ["交通局"], [{"name": "综合局"}]),
        lambda: change("rename", ["教育局"], [{"name": "综合局"}]),
    )
    assert sorted(outcomes) == ["done", "unit_name_in_use"]
    assert _active_named(session, "综合局") == 1
