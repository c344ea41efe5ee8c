"""Events appended at once, each the first write of its transaction, chain one after the
other on both backends (SQLite has no row lock on the chain head: found by reading, with the
threaded server of the embedded default in mind)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.factories import World, at_once
from workflow.audit import record_event, verify_chain
from workflow.db import make_sessionmaker


def test_events_appended_at_once_each_take_their_place(
    engine: Engine, session: Session, world: World
) -> None:
    session.commit()
    factory = make_sessionmaker(engine)
    errors: list[BaseException] = []

    def append(n: int) -> None:
        try:
            with factory() as s:
                record_event(
                    s, actor=None, actor_name="test", action="settings_changed",
                    target_type="test", target_id=n, payload={"n": n},
                )  # fmt: skip
                s.commit()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    at_once(*(lambda n=n: append(n) for n in range(6)))
    assert errors == []
    assert verify_chain(session).ok
