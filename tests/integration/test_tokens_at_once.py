"""A user signing in for an API token while an admin disables them: disabling ends every
token at once, so no token of that moment may outlive it (to come back when the account is
enabled again).

Deterministic (tests/concurrency.py): one side stops at its commit, the other runs until it
writes or waits on a lock, then the first commits. Both backends; the race was real on
PostgreSQL (SQLite takes its write lock before the token is made).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tests.concurrency import one_behind_the_other
from tests.factories import World
from workflow.db import make_sessionmaker
from workflow.errors import DomainError
from workflow.models import ApiToken, User
from workflow.users import issue_token, set_active, user_for_token


def _run(factory: sessionmaker[Session], fn: Callable[[Session], Any]) -> Any:
    with factory() as s:
        try:
            result = fn(s)
            s.commit()
            return result
        except DomainError as exc:
            s.rollback()
            return exc.code


@pytest.mark.parametrize("disable_first", [True, False])
def test_a_token_issued_while_its_user_is_disabled_does_not_outlive_the_disabling(
    engine: Engine, session: Session, world: World, disable_first: bool
) -> None:
    """Whichever commits first, the user ends disabled with no live token; enabled again,
    no token issued before the disabling works."""
    user_id, admin_id = world.member_a.id, world.admin.id
    session.commit()

    def disable(s: Session) -> str:
        set_active(s, s.get_one(User, user_id), False, actor=s.get_one(User, admin_id))
        return "disabled"

    def issue(s: Session) -> str:
        token, _row = issue_token(s, s.get_one(User, user_id), name="脚本")
        return token

    factory = make_sessionmaker(engine)
    if disable_first:
        disabled, token = one_behind_the_other(
            engine, lambda held: _run(held, disable), lambda: _run(factory, issue)
        )
    else:
        token, disabled = one_behind_the_other(
            engine, lambda held: _run(held, issue), lambda: _run(factory, disable)
        )
    assert disabled == "disabled"
    session.expire_all()
    live = session.scalars(
        select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()
    assert live == []
    set_active(session, session.get_one(User, user_id), True, actor=world.admin)
    session.commit()
    if token != "user_disabled":  # issued before the disabling: revoked by it
        assert user_for_token(session, token) is None
