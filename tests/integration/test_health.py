"""The installation's checks (workflow/health.py) on both databases and both kinds of store."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.errors import StorageUnavailable
from storage.local import LocalStore
from storage.s3 import S3Store
from tests.factories import World
from tests.peers import free_port
from workflow import health
from workflow.calendar import set_calendar_override
from workflow.db import make_engine, make_sessionmaker
from workflow.jobs import AUDIT_FAILED, AUDIT_VERIFY
from workflow.models import Job, OutboxMessage

NOW = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)


def _beat(at: dt.datetime | None) -> Callable[[], dt.datetime | None]:
    return lambda: at


def _statuses(result: health.Health) -> dict[str, str]:
    return {c.name: c.status for c in result.checks}


def _check(result: health.Health, name: str) -> health.Check:
    return next(c for c in result.checks if c.name == name)


def _audit_job(session: Session, status: str, finished: dt.datetime, code: str | None) -> None:
    session.add(
        Job(kind=AUDIT_VERIFY, status=status, finished_at=finished, error_code=code, params={})
    )
    session.flush()


def _holidays_entered(session: Session, world: World, year: int) -> None:
    set_calendar_override(session, dt.date(year, 1, 1), False, "元旦", actor=world.admin)
    session.flush()


def test_a_running_installation_is_ok(session: Session, world: World, store: ObjectStore) -> None:
    """Database at the head revision, store answering, a worker that beat a minute ago, no
    waiting message, last night's verification passed: ok, and the JSON says only statuses."""
    _audit_job(session, "done", NOW - dt.timedelta(hours=7), None)
    _holidays_entered(session, world, NOW.year + 1)  # December: next year's too
    result = health.check_health(session, store, _beat(NOW - dt.timedelta(minutes=1)), now=NOW)
    assert result.status == health.OK
    assert _statuses(result) == dict.fromkeys(
        ("database", "schema", "storage", "queue", "outbox", "audit", "calendar"), health.OK
    )
    assert _check(result, "schema").params == {"head": health.migrations_head()}
    shown = result.as_dict()
    assert shown["status"] == "ok"
    assert shown["checks"]["queue"] == {"status": "ok", "at": "2026-12-04T07:59:00+00:00"}
    assert "detail" not in str(shown) and "params" not in str(shown)


def test_a_stopped_worker_and_a_stuck_outbox_degrade_but_do_not_take_the_portal_down(
    session: Session, world: World, store: ObjectStore
) -> None:
    """No heartbeat for five minutes, a message waiting 45 minutes: degraded (200 on
    /readyz), each named with its figures; a worker that never ran is named too."""
    for minutes in (45, 2):
        session.add(
            OutboxMessage(
                user_id=world.admin.id, channel="email", target="admin@example.org",
                subject="提醒", body="正文", created_at=NOW - dt.timedelta(minutes=minutes),
            )
        )  # fmt: skip
    session.flush()
    result = health.check_health(session, store, _beat(NOW - dt.timedelta(minutes=5)), now=NOW)
    assert result.status == health.DEGRADED
    queue, outbox = _check(result, "queue"), _check(result, "outbox")
    assert (queue.status, queue.params) == (health.DEGRADED, {"minutes": 5})
    assert (outbox.status, outbox.params) == (health.DEGRADED, {"n": 2, "minutes": 45})
    assert (queue.hint, outbox.hint) == ("flask --app wsgi worker", "SMTP_*")
    never = _check(health.check_health(session, store, _beat(None), now=NOW), "queue")
    assert never.status == health.DEGRADED and never.hint == "flask --app wsgi worker"


def test_a_broker_that_does_not_answer_is_named(
    session: Session, world: World, store: ObjectStore
) -> None:
    """Reading the heartbeat fails (Redis down): the queue check says so; nothing raises."""

    def down() -> dt.datetime | None:
        raise ConnectionError("connection refused")

    queue = _check(health.check_health(session, store, down, now=NOW), "queue")
    assert queue.status == health.DEGRADED and queue.hint == "JOBS_BROKER_URL"


def test_the_nightly_verification_failed_or_not_run(
    session: Session, world: World, store: ObjectStore
) -> None:
    """No verification yet: unknown (not a failure). A failed one, one that found
    differences, and a passed one three days old: degraded, each in its own words."""
    beat = _beat(NOW)
    first = _check(health.check_health(session, store, beat, now=NOW), "audit")
    assert first.status == health.UNKNOWN and first.ok
    _audit_job(session, "done", NOW - dt.timedelta(hours=5), AUDIT_FAILED)
    found = _check(health.check_health(session, store, beat, now=NOW), "audit")
    assert found.status == health.DEGRADED and "未通过" in found.detail
    _audit_job(session, "failed", NOW - dt.timedelta(hours=4), "runner_failed")
    broke = _check(health.check_health(session, store, beat, now=NOW), "audit")
    assert broke.status == health.DEGRADED and "未能完成" in broke.detail
    _audit_job(session, "done", NOW - dt.timedelta(days=3), None)  # older: not the latest
    assert _check(health.check_health(session, store, beat, now=NOW), "audit") == broke
    _audit_job(session, "done", NOW - dt.timedelta(hours=1), None)
    passed = _check(health.check_health(session, store, beat, now=NOW), "audit")
    assert passed.status == health.OK and passed.at == NOW - dt.timedelta(hours=1)
    later = NOW + dt.timedelta(days=3)
    late = _check(health.check_health(session, store, beat, now=later), "audit")
    assert late.status == health.DEGRADED and late.params == {"days": 3}


def test_a_schema_behind_the_code_is_down(
    session: Session, world: World, store: ObjectStore, engine: Engine
) -> None:
    """A deploy that skipped `init`: the database is at an older revision than the code's
    migrations. Every new column would fail: down, naming both revisions and the command."""
    current = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    session.execute(text("UPDATE alembic_version SET version_num = '0001_initial'"))
    try:
        result = health.check_health(session, store, _beat(NOW), now=NOW)
        schema = _check(result, "schema")
        assert result.status == health.DOWN
        assert schema.params == {"current": "0001_initial", "head": current}
        assert schema.hint == "flask --app wsgi init"
    finally:
        session.rollback()


def test_a_database_that_does_not_answer_is_down(store: ObjectStore) -> None:
    """Nothing listens at the database's address: database down, the rest not asked of it."""
    dead = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
                       connect_args={"connect_timeout": 2})  # fmt: skip
    with make_sessionmaker(dead)() as session:
        result = health.check_health(session, store, _beat(NOW), now=NOW)
    dead.dispose()
    assert result.status == health.DOWN
    assert _statuses(result) == {"database": "down", "schema": "unknown", "storage": "ok",
                                 "queue": "ok"}  # fmt: skip


def test_a_database_without_the_apps_tables_is_named_not_called_unreachable(
    tmp_path: Path, store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A mistyped INSTANCE_DIR (SQLite makes an empty file there) or a forgotten `init`: the
    database answers, but holds none of the app's tables. It was reported as a database that
    cannot be reached, with a traceback; the schema check now says what it is and what to run,
    and nothing else is asked of that database."""
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with caplog.at_level(logging.ERROR), make_sessionmaker(empty)() as session:
        result = health.check_health(session, store, _beat(NOW), now=NOW)
    empty.dispose()
    assert result.status == health.DOWN
    assert _statuses(result) == {"database": "ok", "schema": "down", "storage": "ok",
                                 "queue": "ok"}  # fmt: skip
    schema = _check(result, "schema")
    assert schema.detail == health.NO_TABLES and schema.hint == "flask --app wsgi init"
    assert "Traceback" not in caplog.text


def test_an_unreachable_database_is_logged_in_one_line(
    store: ObjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    """/readyz is polled every few seconds: an outage logs the driver's reason, one line per
    check, not a traceback of sixty lines each time."""
    dead = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x",
                       connect_args={"connect_timeout": 2})  # fmt: skip
    with caplog.at_level(logging.ERROR), make_sessionmaker(dead)() as session:
        health.check_health(session, store, _beat(NOW), now=NOW)
    dead.dispose()
    [record] = [r for r in caplog.records if r.name == health.log.name]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "Connection refused" in record.getMessage() or "connection" in record.getMessage()


def test_stores_that_do_not_answer_are_down(
    tmp_path: Path, make_s3_store: Callable[..., S3Store]
) -> None:
    """A local root that is a file, or is not writable; an S3 endpoint where nothing listens:
    `ping` raises. A root not made yet (the first write makes it) and a bucket not made yet
    answer."""
    LocalStore(tmp_path / "not-yet").ping()
    make_s3_store(bucket="health-not-made-yet").ping()
    (tmp_path / "a-file").write_bytes(b"x")
    for broken in (
        LocalStore(tmp_path / "a-file"),
        make_s3_store(endpoint=f"127.0.0.1:{free_port()}"),
    ):
        try:
            broken.ping()
        except StorageUnavailable:
            continue
        raise AssertionError(f"{broken!r} answered")


def test_a_year_whose_holidays_nobody_entered_is_named_in_time(
    session: Session, world: World, store: ObjectStore
) -> None:
    """From 1 November next year's holidays are asked for (the notice is out by then, the
    package learns them a release later); a year under way that nobody entered stops the
    working-day deadlines and the reminders: both degrade the installation, naming the year."""
    from workflow.workdays import package_years

    last = package_years()[1]
    beat = _beat(None)

    def calendar_at(*day: int) -> health.Check:
        now = dt.datetime(*day, 8, 0, tzinfo=dt.UTC)
        return _check(health.check_health(session, store, beat, now=now), "calendar")

    assert calendar_at(last, 10, 31).status == health.OK
    november = calendar_at(last, 11, 1)
    assert november.status == health.DEGRADED and november.params == {"year": last + 1}
    assert "通知发布后" in november.detail
    under_way = calendar_at(last + 1, 3, 2)
    assert under_way.status == health.DEGRADED and "每日提醒已停止" in under_way.detail
    _holidays_entered(session, world, last + 1)  # as the pasted notice enters it
    assert calendar_at(last, 12, 1).status == calendar_at(last + 1, 3, 2).status == health.OK
