"""The benchmarks still run against today's schema: each builds its world (in SQL, beside the
engine) and takes one small measurement, on a PostgreSQL database of its own.

`make bench` is not part of the suite, so a migration that changed a table the benchmarks fill
by hand (departments became appearances of units, users point at their unit) broke four of
them unnoticed. Here each runs at a size of seconds, not minutes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench import bench_audit, bench_bulk, bench_notify, bench_queue, bench_transitions, harness
from storage.local import LocalStore
from tests.conftest import PG_URL, XDIST_WORKER, throwaway_database
from workflow.audit import verify_chain
from workflow.db import make_engine, make_sessionmaker
from workflow.models import Department, Item, Notification, User

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PG_URL, reason="needs TEST_DATABASE_URL (PostgreSQL); CI sets it"),
]


@pytest.fixture
def url() -> Iterator[str]:
    with throwaway_database(PG_URL, f"bench{XDIST_WORKER}") as own:
        yield own


def _counts(url: str) -> tuple[int, int, int]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        departments = s.scalar(select(func.count()).select_from(Department)) or 0
        units = s.scalar(select(func.count(func.distinct(Department.unit_id)))) or 0
        items = s.scalar(select(func.count()).select_from(Item)) or 0
    engine.dispose()
    return departments, units, items


def test_transitions_engine_bare_and_floor(url: str, tmp_path: Path) -> None:
    bench_transitions.ensure_database(url)
    count, seconds = bench_transitions.run_engine(url, LocalStore(tmp_path))
    assert count == 26 * 10 * 4 and seconds > 0
    assert bench_transitions.run_bare(url, 20) > 0
    assert bench_transitions.run_session_floor(url, 20) > 0
    assert bench_transitions.run_same_rows(url, 20) > 0
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE items SET state = 'submitted'"))
    engine.dispose()
    assert bench_transitions.run_chained_floor(url, 30) > 0  # verifies the chain it extends
    assert bench_transitions.run_chained_floor(url, 30, driver=True) > 0


def test_bulk_world_and_both_paths(url: str) -> None:
    reviewer_id, items = bench_bulk.build(url, 10)
    assert len(items) == 20
    departments, units, _items = _counts(url)
    assert units == departments  # every synthetic department is a unit's appearance
    assert bench_bulk.run_single(url, reviewer_id, items[:10]) > 0
    bulk_seconds, _dry = bench_bulk.run_bulk(url, reviewer_id, items[10:])
    assert bulk_seconds > 0
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        assert verify_chain(s).ok
        reviewed = s.scalar(select(func.count()).where(Item.state == "reviewed"))
    engine.dispose()
    assert reviewed == 20


def test_queue_world_and_pages(url: str) -> None:
    result = bench_queue.measure(url, 600, 1, None)
    assert result.items == 600 and result.first_ms > 0
    departments, units, items = _counts(url)
    assert items == 600 and units == departments


def test_reminder_world_and_its_members(url: str) -> None:
    bench_notify.build_reminder_world(url, departments=30)
    seconds, written = bench_notify.measure_reminders(url, departments=30)
    assert seconds > 0 and written >= 30
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        members = s.scalar(select(func.count()).where(User.username.like("bench_member%")))
        reminder = s.scalars(
            select(Notification).where(Notification.kind == "deadline_near").limit(1)
        ).one()
    engine.dispose()
    assert members == 30  # one per synthetic department, each pointing at its unit
    # The delivery benchmark's sample e-mail is a reminder as written today (it said 「个考核
    # 事项」 and 「剩余 2 个工作日」, wording the reminders dropped).
    count = re.search(r"(\d+) 项", reminder.body)
    assert count is not None
    assert reminder.body == bench_notify.SAMPLE_BODY.replace("7 项", f"{count.group(1)} 项")
    assert f"【截止提醒】{reminder.title}" == bench_notify.SAMPLE_SUBJECT.format(count.group(1))


def test_audit_world_verifies_and_reconciles(url: str) -> None:
    bench_audit.build_world(url, 2_000)
    figures = bench_audit.measure(url, 1, 2_000)
    assert figures and all(v > 0 for v in figures.values())


def test_load_world(url: str) -> None:
    """The load and fault runs' world (bench/harness.py), in a database named as they do."""
    name = f"{make_url(url).database}_load"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        world = harness.setup_world(name, departments=30, staff=1)
        assert len(world.reviewers) == 1
        departments, units, items = _counts(harness.PG_BASE + name)
        assert departments == 30 and units == 30 and items == 300
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
