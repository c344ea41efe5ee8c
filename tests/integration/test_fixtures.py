"""The shared fixtures themselves: statement counting and the per-test databases."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from tests.conftest import Statements
from tests.factories import World
from workflow.audit import record_event, verify_chain
from workflow.db import make_engine
from workflow.models import Assessment, AuditEvent, ChainHead, User
from workflow.permissions import department_for
from workflow.users import create_user

Count = Callable[..., AbstractContextManager[Statements]]


def test_count_statements_counts_what_the_block_sends(
    session: Session, world: World, count_statements: Count
) -> None:
    session.execute(select(1)).all()  # before the block: not counted
    with count_statements() as sent:
        session.execute(select(User.id).where(User.username == "admin")).all()
        session.execute(text("SELECT 2")).all()
    assert sent.count == 2, sent
    assert "FROM users" in sent.sql[0]
    session.execute(select(1)).all()  # after the block: the listener is gone
    assert sent.count == 2
    assert str(sent).startswith("2 statements:")


def test_count_statements_of_one_engine_or_of_every_engine(
    engine: Engine, session: Session, count_statements: Count
) -> None:
    other = make_engine("sqlite://")
    try:
        with count_statements(engine) as mine, count_statements() as every:
            session.execute(select(1)).all()
            with other.connect() as conn:
                conn.execute(text("SELECT 1")).all()
        assert (mine.count, every.count) == (1, 2)
        session.rollback()
        with count_statements() as flush:  # a write: the INSERT, then the commit (no statement)
            create_user(session, "counted", ["auditor"])
            session.commit()
        assert flush.count >= 2, flush  # the username check and the INSERT at least
        assert any(s.startswith("INSERT INTO users") for s in flush.sql), flush
    finally:
        other.dispose()


def test_a_database_without_the_world_is_empty(session: Session) -> None:
    assert session.scalar(select(func.count()).select_from(Assessment)) == 0
    assert session.scalar(select(func.count()).select_from(User)) == 0
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    head = session.get(ChainHead, 1)
    assert head is not None and (head.seq, head.hash) == (0, "0" * 64)


def test_the_world_comes_from_the_template(session: Session, world_template: bool) -> None:
    """A test asking for the world gets a database that has it before `world` runs."""
    assert session.scalar(select(func.count()).select_from(Assessment)) == 1
    assert session.scalar(select(func.count()).select_from(User)) == 10


def test_the_world_starts_installed_and_goes_on_from_its_ids(
    session: Session, world: World
) -> None:
    """The template's world is whole, and new rows get new ids (the sequences follow it)."""
    assert [d.position for d in world.assessment.departments][:2] == [0, 1]
    assert world.dep_a.unit_id == world.member_a.unit_id
    assert department_for(world.member_a, world.assessment.id) == world.dep_a
    assert "reviewer" in world.reviewer.roles
    top = session.scalar(select(func.max(User.id)))
    user = create_user(session, "newcomer", ["auditor"])
    session.flush()
    assert user.id > top
    events = session.scalar(select(func.count()).select_from(AuditEvent))
    assert events, "installing the world is audited"
    record_event(session, actor=world.admin, action="test", target_type="user", target_id=user.id)
    session.commit()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events + 1
    assert verify_chain(session).ok  # the chain head came along with the rows


def test_a_snapshot_puts_the_committed_rows_back_and_ids_go_on_from_it(
    session: Session, world: World, snapshot: Callable[[], Callable[[], None]]
) -> None:
    """After `restore()` the rows are those kept (added ones gone, changed ones as they were),
    the chain verifies, and a new row takes the id after the kept ones, every time."""
    kept_users = session.scalar(select(func.count()).select_from(User))
    kept_events = session.scalar(select(func.count()).select_from(AuditEvent))
    top = session.scalar(select(func.max(User.id)))
    name = world.admin.display_name
    restore = snapshot()
    for _ in range(2):
        user = create_user(session, "passing", ["auditor"])
        session.get_one(User, world.admin.id).display_name = "改过的名字"
        record_event(session, actor=None, action="test", target_type="user", target_id=user.id)
        session.commit()
        assert user.id == top + 1
        session.close()
        restore()
        assert session.scalar(select(func.count()).select_from(User)) == kept_users
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == kept_events
        assert session.get_one(User, world.admin.id).display_name == name
        assert verify_chain(session).ok
        session.close()
