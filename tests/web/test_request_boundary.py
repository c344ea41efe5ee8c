"""The request boundary (web/db.py): one unit of work per request, the same 409 on every face.

A view never commits or rolls back; the boundary commits once after a successful view and
rolls back on any error. A commit that loses a race (stale version, unique violation,
serialization failure, deadlock) is a `Conflict`: 409 `stale_version` as JSON in the API and
a Chinese 409 page in the portal, never a 500.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from storage.local import LocalStore
from tests.factories import World, add_evidence
from tests.web.conftest import form_version, text
from workflow.actions import submit_item
from workflow.messages import MESSAGES
from workflow.models import AuditEvent, Item
from workflow.users import issue_token

CONFLICT_MESSAGE = MESSAGES["stale_version"]

ROOT = Path(__file__).resolve().parents[2]
Login = Callable[[str], FlaskClient]


class _SerializationFailure(Exception):
    """Stands for psycopg's SerializationFailure (SQLSTATE 40001)."""

    sqlstate = "40001"


class _Deadlock(Exception):
    """Stands for psycopg's DeadlockDetected (SQLSTATE 40P01)."""

    sqlstate = "40P01"


LOST_RACES: dict[str, Callable[[], Exception]] = {
    "stale_row": lambda: StaleDataError("UPDATE items matched 0 rows"),
    "unique_violation": lambda: IntegrityError("INSERT", {}, Exception("duplicate key")),
    "serialization_failure": lambda: OperationalError("COMMIT", {}, _SerializationFailure()),
    "deadlock": lambda: OperationalError("COMMIT", {}, _Deadlock()),
}


@pytest.fixture
def submitted(session: Session, world: World, store: LocalStore) -> Item:
    """Item 1 of department A, submitted and waiting for review."""
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, store, item, world.member_a)
    submit_item(session, item.id, world.member_a, item.version)
    session.commit()
    return item


@pytest.fixture
def reviewer_token(session: Session, world: World) -> str:
    """An API token of the reviewer."""
    token = issue_token(session, world.reviewer)[0]
    session.commit()
    return token


@pytest.fixture
def lose_next_commit(app: Flask) -> Iterator[Callable[[Exception], None]]:
    """Arm a failure of the next commit of a request's session, as a lost race would give."""
    armed: list[Exception] = []

    def before_commit(_session: Session) -> None:
        if armed:
            raise armed.pop()

    factory = app.extensions["sessionmaker"]
    event.listen(factory, "before_commit", before_commit)
    yield armed.append
    event.remove(factory, "before_commit", before_commit)


def _events(session: Session, item: Item) -> int:
    session.expire_all()
    return (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.item_id == item.id)
        )
        or 0
    )


def test_a_stale_version_is_the_same_409_in_the_api_and_the_portal(
    app: Flask, session: Session, submitted: Item, reviewer_token: str, login: Login
) -> None:
    reviewer = login("reviewer")
    version = form_version(text(reviewer.get(f"/review/items/{submitted.id}")))
    # Both faces were shown version `version`; the department moves the item meanwhile.
    returned = reviewer.post(
        f"/review/items/{submitted.id}/action",
        data={"action": "return", "version": str(version), "comment": "请补充材料"},
    )
    assert returned.status_code == 303
    before = _events(session, submitted)

    api = app.test_client().post(
        f"/api/v1/items/{submitted.id}/transitions",
        json={"action": "review", "version": version},
        headers={"Authorization": f"Bearer {reviewer_token}"},
    )
    page = reviewer.post(
        f"/review/items/{submitted.id}/action", data={"action": "review", "version": str(version)}
    )
    assert api.status_code == page.status_code == 409
    error = api.get_json()["error"]
    assert error["code"] == "stale_version"
    assert error["message"] in text(page) and "请刷新后重试" in text(page)
    assert _events(session, submitted) == before


@pytest.mark.parametrize("race", sorted(LOST_RACES))
def test_a_commit_that_loses_a_race_is_the_same_409_in_the_api_and_the_portal(
    app: Flask,
    session: Session,
    submitted: Item,
    reviewer_token: str,
    login: Login,
    lose_next_commit: Callable[[Exception], None],
    race: str,
) -> None:
    reviewer = login("reviewer")
    version = form_version(text(reviewer.get(f"/review/items/{submitted.id}")))
    before = _events(session, submitted)

    lose_next_commit(LOST_RACES[race]())
    api = app.test_client().post(
        f"/api/v1/items/{submitted.id}/transitions",
        json={"action": "review", "version": version},
        headers={"Authorization": f"Bearer {reviewer_token}"},
    )
    assert api.status_code == 409, api.get_data(as_text=True)
    assert api.get_json()["error"] == {"code": "stale_version", "message": CONFLICT_MESSAGE}

    lose_next_commit(LOST_RACES[race]())
    page = reviewer.post(
        f"/review/items/{submitted.id}/action", data={"action": "review", "version": str(version)}
    )
    assert page.status_code == 409
    assert '<html lang="zh-CN">' in text(page) and CONFLICT_MESSAGE in text(page)

    # Neither answer left anything behind: the item is still waiting, no event was written.
    assert _events(session, submitted) == before
    session.refresh(submitted)
    assert submitted.state == "submitted" and submitted.version == version
    # And the next attempt, without a race, goes through.
    assert (
        reviewer.post(
            f"/review/items/{submitted.id}/action",
            data={"action": "review", "version": str(version)},
        ).status_code
        == 303
    )


def test_a_refused_page_action_commits_nothing(
    app: Flask, session: Session, submitted: Item, login: Login
) -> None:
    reviewer = login("reviewer")
    version = form_version(text(reviewer.get(f"/review/items/{submitted.id}")))
    before = _events(session, submitted)
    refused = reviewer.post(
        f"/review/items/{submitted.id}/action",
        data={"action": "return", "version": str(version), "comment": ""},  # reason required
    )
    assert refused.status_code == 422
    assert _events(session, submitted) == before


def _transaction_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("commit", "rollback")
    ]


def test_no_view_commits_or_rolls_back() -> None:
    """Only the boundary (web/db.py) ends a transaction; views and commands never do."""
    found = [
        call
        for path in sorted((ROOT / "web").rglob("*.py"))
        if path != ROOT / "web" / "db.py"
        for call in _transaction_calls(path)
    ]
    assert not found, f"transactions end only in web/db.py: {found}"
