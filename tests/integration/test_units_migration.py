"""Migration 0012: existing departments become units, users follow, nothing else moves.

Built on a database brought to 0011 (the schema before units) and filled as the 2018 data
was: two assessments whose departments share names, aliases, a department user with a token,
an office user, an item and an audit event. After the upgrade: one unit per name, each
department points at it, the user at the unit, and the rows not touched are byte for byte.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import throwaway_database
from workflow.db import make_engine, migrate

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of the backend (PostgreSQL: made and dropped here)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.sqlite3'}"
        return
    with throwaway_database(PG_URL, f"mig_{os.getpid()}") as url:
        yield url


def _upgrade(url: str, revision: str) -> None:
    engine = make_engine(url)
    migrate(engine, revision)
    engine.dispose()


NOW = dt.datetime(2019, 1, 5, 8, 0, tzinfo=dt.UTC)


def _fill(url: str) -> None:
    """The rows of the 0011 schema: two years, shared names, a member with a token."""
    engine = make_engine(url)
    with engine.begin() as conn:
        for aid, year in ((1, 2018), (2, 2019)):
            conn.execute(
                text(
                    "INSERT INTO assessments (id, code, year, title, notice_title, document_no,"
                    " issuer, signed_on, total_points, converted_points, appeal_window_days,"
                    " timezone, routine_config, blocks_late_submissions,"
                    " hide_scores_until_published, publication_page, created_at) VALUES"
                    " (:id, :code, :year, '考核', '通知', '蛟市职转办〔2018〕6号', '蛟河市',"
                    " :signed, 100, 2, 7, 'Asia/Shanghai', '{}', false, true, 'public', :at)"
                ),
                {
                    "id": aid,
                    "code": f"c{year}",
                    "year": year,
                    "signed": dt.date(year, 9, 1),
                    "at": NOW,
                },
            )
        deps = [(1, 1, "交通局"), (2, 1, "住建局"), (3, 2, "交通局"), (4, 2, "住建局"),
                (5, 2, "新局")]  # fmt: skip
        for did, aid, name in deps:
            conn.execute(
                text(
                    "INSERT INTO departments (id, assessment_id, name, full_name, position)"
                    " VALUES (:id, :a, :n, :f, :id)"
                ),
                {"id": did, "a": aid, "n": name, "f": f"蛟河市{name}{aid}"},
            )
        conn.execute(
            text(
                "INSERT INTO department_aliases (department_id, alias, kind) VALUES"
                " (2, '人防办', 'office'), (4, '人防办', 'office'), (4, '建设局', 'alias')"
            )
        )
        for uid, name, roles, dep in ((1, "member", '["department"]', 2),
                                      (2, "office", '["reviewer"]', None)):  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO users (id, username, display_name, roles, department_id,"
                    " is_active, must_change_password, session_version, created_at)"
                    " VALUES (:id, :u, '', :r, :d, true, false, 3, :at)"
                ),
                {"id": uid, "u": name, "r": roles, "d": dep, "at": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO api_tokens (id, user_id, token_hash, name, created_at, expires_at)"
                " VALUES (1, 1, :h, 'cli', :at, :exp)"
            ),
            {"h": "a" * 64, "at": NOW, "exp": NOW + dt.timedelta(days=90)},
        )
    engine.dispose()


def test_departments_become_units_and_users_follow(empty_url: str) -> None:
    _upgrade(empty_url, "0011_check_points")
    _fill(empty_url)
    _upgrade(empty_url, "head")
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        units = conn.execute(
            text(
                "SELECT u.id, n.name, n.full_name, u.status FROM units u"
                " JOIN unit_names n ON n.unit_id = u.id ORDER BY u.id"
            )
        ).all()
        assert [(n, f, s) for _u, n, f, s in units] == [
            ("交通局", "蛟河市交通局2", "active"),  # named as its newest department
            ("住建局", "蛟河市住建局2", "active"),
            ("新局", "蛟河市新局2", "active"),
        ]
        by_name = {n: u for u, n, _f, _s in units}
        dep_units = dict(conn.execute(text("SELECT id, unit_id FROM departments")).all())
        assert dep_units == {1: by_name["交通局"], 2: by_name["住建局"], 3: by_name["交通局"],
                             4: by_name["住建局"], 5: by_name["新局"]}  # fmt: skip
        aliases = conn.execute(
            text("SELECT alias, kind FROM unit_aliases WHERE unit_id = :u ORDER BY alias"),
            {"u": by_name["住建局"]},
        ).all()
        assert [tuple(a) for a in aliases] == [("人防办", "office"), ("建设局", "alias")]
        users = conn.execute(
            text("SELECT username, unit_id, session_version FROM users ORDER BY id")
        ).all()
        assert [tuple(u) for u in users] == [("member", by_name["住建局"], 3), ("office", None, 3)]
        token = conn.execute(text("SELECT user_id, token_hash FROM api_tokens")).one()
        assert tuple(token) == (1, "a" * 64)
        # The user's column is gone: a department row no longer holds anyone.
        cols = conn.execute(text("SELECT * FROM users")).keys()
        assert "department_id" not in cols and "unit_id" in cols
    engine.dispose()


def test_downgrade_returns_users_to_their_departments(empty_url: str) -> None:
    _upgrade(empty_url, "0011_check_points")
    _fill(empty_url)
    _upgrade(empty_url, "head")
    engine = make_engine(empty_url)
    migrate(engine, "0011_check_points", down=True)
    with engine.connect() as conn:
        # The newest department of the member's unit (住建局 of 2019).
        assert conn.execute(text("SELECT department_id FROM users WHERE id = 1")).scalar() == 4
    engine.dispose()
