"""Backup, verification and restore through the commands, on both databases and both stores.

A world with items, evidence, scores and events is backed up from the test database, the
backup verified, and restored into a fresh database (SQLite file, or a PostgreSQL database
beside the test one) and an empty store, as an operator would: `flask backup create`,
`verify`, `restore`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from storage import LocalStore, ObjectStore, S3Store
from tests.concurrency import HANG, PausingStore, Worker
from tests.conftest import PG_URL, XDIST_WORKER, throwaway_database
from tests.factories import World, add_evidence, submit_items
from tests.integration.test_maintenance import settings_for
from web.app import create_app
from web.common.audit_rows import describe_payload
from web.common.event_text import action_label
from workflow import actions
from workflow.audit import verify_chain
from workflow.backup import MANIFEST, RestoreReport, create_backup, restore_backup
from workflow.db import alembic_config, make_sessionmaker, migrate
from workflow.evidence import remove_evidence
from workflow.maintenance import verify_objects
from workflow.models import AuditEvent, Evidence, Item, Score

pytestmark = pytest.mark.every_store
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_app(url: str, instance: Path, store: ObjectStore) -> Iterator[Flask]:
    """An app on this database and store; its connections closed afterwards."""
    flask_app = create_app(
        {"DATABASE_URL": url, "INSTANCE_DIR": str(instance), "STORAGE": settings_for(store)}
    )
    yield flask_app
    flask_app.extensions["engine"].dispose()


@pytest.fixture
def app(db_url: str, tmp_path: Path, store: ObjectStore) -> Iterator[Flask]:
    with running_app(db_url, tmp_path / "source", store) as flask_app:
        yield flask_app


@pytest.fixture
def target_url(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """A database that has never been used: a new SQLite file, or a new PostgreSQL database."""
    if engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'restored.sqlite3'}"
        return
    with throwaway_database(PG_URL, f"restore{XDIST_WORKER}") as url:  # one per worker
        yield url


@pytest.fixture
def target_store(store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest) -> ObjectStore:
    """An empty store of the same kind as the source's (S3: a new bucket)."""
    if isinstance(store, LocalStore):
        return LocalStore(tmp_path / "restored-evidence")
    make: Callable[[], S3Store] = request.getfixturevalue("make_s3_store")
    return make()


@pytest.fixture
def target_app(target_url: str, tmp_path: Path, target_store: ObjectStore) -> Iterator[Flask]:
    """The app of the system restored into: a new database and an empty store."""
    with running_app(target_url, tmp_path / "restored", target_store) as flask_app:
        yield flask_app


@pytest.fixture
def ids(session: Session, store: ObjectStore, world: World) -> dict[str, int]:
    """The world built (committed), and the ids of its items and evidence."""
    built = build_world(session, store, world)
    session.rollback()
    return built


def take_backup(app: Flask, out: Path) -> dict[str, Any]:
    """Run `backup create` and return the manifest it wrote."""
    created = app.test_cli_runner().invoke(args=["backup", "create", str(out)])
    assert created.exit_code == 0, created.output
    manifest: dict[str, Any] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    return manifest


def build_world(session: Session, store: ObjectStore, world: World) -> dict[str, int]:
    """Two submitted items, one of them reviewed, verified and scored; a draft with evidence."""
    scored, submitted = world.item(session, world.dep_a, "1"), world.item(session, world.dep_b, "3")
    submit_items(session, store, world, [scored, submitted])
    actions.review_item(session, scored.id, world.reviewer, scored.version)
    actions.verify_item(session, scored.id, world.verifier, scored.version)
    actions.score_item(
        session, scored.id, world.scorer, scored.version,
        scores={"1.1": Decimal("5"), "1.2": Decimal("3.5")}, deductions={"1.2": "未发文"},
    )  # fmt: skip
    draft = world.item(session, world.dep_a, "4")
    extra = add_evidence(session, store, draft, world.member_a, name="草稿材料.pdf")
    session.commit()
    return {"scored_id": scored.id, "submitted_id": submitted.id, "extra_id": extra.id}


def counts(session: Session) -> dict[str, int]:
    return {
        model.__tablename__: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for model in (Item, Evidence, Score, AuditEvent)
    }


def review_after_backup(session: Session, world: World, item_id: int) -> None:
    """A change made after the backup was taken (committed)."""
    actions.review_item(session, item_id, world.reviewer, session.get_one(Item, item_id).version)
    session.commit()


def test_backup_verify_and_restore_into_an_empty_system(
    app: Flask,
    session: Session,
    world: World,
    ids: dict[str, int],
    tmp_path: Path,
    target_app: Flask,
    target_store: ObjectStore,
) -> None:
    remove_evidence(session, ids["extra_id"], world.member_a)  # row and object are kept
    session.commit()
    before = counts(session)
    head = verify_chain(session)
    keys = set(session.scalars(select(Evidence.storage_key)))
    session.rollback()

    out = tmp_path / "backup-1"
    manifest = take_backup(app, out)
    assert manifest["checkpoint"]["seq"] == head.head_seq
    assert manifest["checkpoint"]["hash"] == head.head_hash
    assert manifest["database"]["kind"] == app.extensions["engine"].dialect.name
    assert (
        manifest["schema_revision"]
        == ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    )
    assert set(manifest["objects"]["files"]) == keys and manifest["objects"]["count"] == len(keys)
    assert all((out / "objects" / k).is_file() for k in keys)
    verified = app.test_cli_runner().invoke(args=["backup", "verify", str(out)])
    assert verified.exit_code == 0, verified.output
    assert "备份校验通过" in verified.output
    review_after_backup(session, world, ids["submitted_id"])  # not in the backup

    result = target_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    assert result.exit_code == 0, result.output
    assert "恢复已记入审计日志" in result.output
    with make_sessionmaker(target_app.extensions["engine"])() as restored:
        assert counts(restored) == {**before, "audit_events": before["audit_events"] + 1}
        item = restored.get_one(Item, ids["scored_id"])
        assert (item.state, item.total, item.version) == ("scored", Decimal("8.50"), 5)
        assert {s.scoring_point.code: s.points for s in item.scores} == {
            "1.1": Decimal("5.00"), "1.2": Decimal("3.50")
        }  # fmt: skip
        assert restored.get_one(Item, ids["submitted_id"]).state == "submitted"
        assert restored.get_one(Evidence, ids["extra_id"]).removed_at is not None
        last = restored.execute(
            select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)
        ).scalar_one()
        assert last.action == "backup_restored" and last.seq == head.head_seq + 1
        assert last.prev_hash == head.head_hash
        assert json.loads(last.payload) == {
            "backup_created_at": manifest["created_at"],
            "checkpoint_seq": head.head_seq,
            "checkpoint_hash": head.head_hash,
            "object_count": len(keys),
        }
        with target_app.test_request_context():  # what an auditor reads on the pages
            assert action_label(last.action) == "从备份恢复数据"
            lines = dict(describe_payload(last.payload, last.action))
        assert lines["备份时间"] and lines["备份时审计链头序号"] == str(head.head_seq)
        assert lines["备份时审计链头哈希"] == head.head_hash and len(lines) == 4
        chain = verify_chain(restored, manifest["checkpoint"])
        assert chain.ok and chain.head_seq == head.head_seq + 1
        objects = verify_objects(restored, target_store)
        assert objects.ok and objects.checked == len(keys)
    audit = target_app.test_cli_runner().invoke(
        args=["audit", "verify", "--checkpoint", str(out / MANIFEST)]
    )
    assert audit.exit_code == 0, audit.output  # the restore event replays too
    assert "数据核对一致" in audit.output
    again = target_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    assert again.exit_code != 0 and "目标数据库不是空的" in again.output


def test_a_backup_is_readable_by_its_owner_only(
    app: Flask, ids: dict[str, int], tmp_path: Path
) -> None:
    """It holds the whole database (password hashes too) and the evidence: under the usual
    umask 022 its files were 0644 and its folders 0755, for every local user to read."""
    given = tmp_path / "given"  # an empty folder the operator made
    given.mkdir(mode=0o755)
    old_umask = os.umask(0o022)
    try:
        manifest = take_backup(app, given)
        made = tmp_path / "made" / "fgf-1"
        take_backup(app, made)
    finally:
        os.umask(old_umask)
    assert manifest["objects"]["count"] >= 3
    for top in (given, made):
        folders = [top, *(p for p in top.rglob("*") if p.is_dir())]
        files = [p for p in top.rglob("*") if p.is_file()]
        assert len(folders) > 3 and len(files) == manifest["objects"]["count"] + 2
        assert {oct(p.stat().st_mode & 0o777) for p in folders} == {"0o700"}, top
        assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}, top


def test_a_tampered_object_fails_verify_and_restore(
    app: Flask, ids: dict[str, int], tmp_path: Path, target_app: Flask, target_store: ObjectStore
) -> None:
    out = tmp_path / "backup-2"
    manifest = take_backup(app, out)
    key = sorted(manifest["objects"]["files"])[0]
    path = out / "objects" / key
    path.write_bytes(path.read_bytes().replace(b"%PDF", b"%PDX", 1))

    result = app.test_cli_runner().invoke(args=["backup", "verify", str(out)])
    assert result.exit_code == 1, result.output
    assert f"文件已改动：objects/{key}" in result.output
    assert "1 处不符" in result.output

    refused = target_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    assert refused.exit_code != 0 and f"objects/{key}" in refused.output
    assert "未恢复" in refused.output
    assert "items" not in inspect(target_app.extensions["engine"]).get_table_names()
    assert list(target_store.list()) == []  # nothing written


def test_restore_into_a_database_with_rows_is_refused_and_changes_nothing(
    app: Flask, session: Session, world: World, ids: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "backup-3"
    take_backup(app, out)
    review_after_backup(session, world, ids["submitted_id"])
    before, head = counts(session), verify_chain(session)
    session.rollback()

    refused = app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    assert refused.exit_code != 0
    assert "目标数据库不是空的" in refused.output and "什么也没有改动" in refused.output
    assert f"items（260 行）、evidence（3 行）、audit_events（{before['audit_events']} 行）" in (
        refused.output
    )
    assert counts(session) == before
    assert verify_chain(session).head_hash == head.head_hash
    assert session.get_one(Item, ids["submitted_id"]).state == "reviewed"  # not rolled back


def test_a_missing_or_altered_object_stops_the_backup(
    app: Flask, session: Session, store: ObjectStore, ids: dict[str, int], tmp_path: Path
) -> None:
    gone_id, gone_key = session.execute(
        select(Evidence.id, Evidence.storage_key).order_by(Evidence.id).limit(1)
    ).one()
    session.rollback()
    with store.open(gone_key) as reader:
        content = reader.read()
    store.delete(gone_key)

    out = tmp_path / "backup-4"
    result = app.test_cli_runner().invoke(args=["backup", "create", str(out)])
    assert result.exit_code != 0
    assert f"对象缺失：{gone_key}（材料 {gone_id}）" in result.output
    assert not out.exists()  # nothing that could pass for a backup

    empty = tmp_path / "empty-dir"
    empty.mkdir()
    store.put(gone_key, io.BytesIO(content[:-1] + b"!"), len(content), "application/pdf")
    altered = app.test_cli_runner().invoke(args=["backup", "create", str(empty)])
    assert altered.exit_code != 0
    assert f"对象与记录不符：{gone_key}（材料 {gone_id}）：SHA-256 为" in altered.output
    assert empty.is_dir() and list(empty.iterdir()) == []  # the operator's folder, emptied

    (empty / "old.txt").write_text("x")
    taken = app.test_cli_runner().invoke(args=["backup", "create", str(empty)])
    assert taken.exit_code != 0 and "不是空目录" in taken.output
    assert [p.name for p in empty.iterdir()] == ["old.txt"]
    incomplete = app.test_cli_runner().invoke(args=["backup", "verify", str(empty)])
    assert incomplete.exit_code != 0 and "不是完整的备份" in incomplete.output


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_restore_into_a_migrated_empty_database(
    app: Flask, session: Session, ids: dict[str, int], tmp_path: Path, target_app: Flask
) -> None:
    """A database that has the schema and no rows counts as empty (the chain at genesis)."""
    before = counts(session)
    session.rollback()
    out = tmp_path / "backup-5"
    take_backup(app, out)
    migrate(target_app.extensions["engine"])
    result = target_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    assert result.exit_code == 0, result.output
    with make_sessionmaker(target_app.extensions["engine"])() as restored:
        assert counts(restored) == {**before, "audit_events": before["audit_events"] + 1}


@pytest.mark.backend("sqlite")
@pytest.mark.parametrize("store", ["local"], indirect=True)
@pytest.mark.parametrize("migrated", [False, True], ids=["new-file", "migrated-file"])
def test_a_restored_sqlite_database_is_readable_by_its_owner_only(
    app: Flask, ids: dict[str, int], tmp_path: Path, target_app: Flask, target_url: str,
    migrated: bool,
) -> None:  # fmt: skip
    """The backup's copy is 0600, but the file it was restored into had the umask's mode
    (0644 under 022): every local user could read the password hashes and the scores."""
    out = tmp_path / "backup-owner"
    take_backup(app, out)
    old_umask = os.umask(0o022)
    try:
        if migrated:  # the schema made before the restore, its file 0644
            migrate(target_app.extensions["engine"])
        result = target_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
        assert result.exit_code == 0, result.output
        with target_app.extensions["engine"].begin() as conn:  # writes after the restore
            conn.exec_driver_sql("PRAGMA user_version = 1")
    finally:
        os.umask(old_umask)
    database = Path(target_url.removeprefix("sqlite:///"))
    files = [p for p in database.parent.iterdir() if p.name.startswith(database.name + "-")]
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in [database, *files]}
    assert modes[database.name] == "0o600" and set(modes.values()) == {"0o600"}, modes


@pytest.mark.backend("postgresql")
@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_pg_dump_missing_or_older_than_the_server_is_refused(
    app: Flask, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", str(tools))
    missing = app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "b1")])
    assert missing.exit_code != 0 and "找不到 pg_dump" in missing.output
    assert not (tmp_path / "b1").exists()
    old = tools / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    refused = app.test_cli_runner().invoke(args=["backup", "create", str(tmp_path / "b2")])
    assert refused.exit_code != 0
    assert "pg_dump 的主版本 9 低于数据库服务器的" in refused.output
    assert not (tmp_path / "b2").exists()
    assert os.environ["PATH"] == str(tools)


@pytest.mark.parametrize("store", ["local"], indirect=True)
@pytest.mark.parametrize("migrated", [False, True], ids=["new", "migrated"])
def test_two_restores_at_once_restore_once(
    app: Flask,
    session: Session,
    ids: dict[str, int],
    tmp_path: Path,
    target_url: str,
    target_app: Flask,
    target_store: ObjectStore,
    migrated: bool,
) -> None:
    """Two operators (or a script run twice) restore into the same empty database at once:
    one restores, the other is refused at once with nothing written, and the database ends as
    after one restore. Deterministic: the first stops at its first object, past the check that
    the database is empty; the second runs whole meanwhile, as its own app (another process)."""
    before = counts(session)
    session.rollback()
    out = tmp_path / "backup-6"
    take_backup(app, out)
    engine = target_app.extensions["engine"]
    if migrated:  # the schema and no rows: restored with --clean
        migrate(engine)
    paused = PausingStore(target_store)
    first = Worker(
        engine,
        lambda: restore_backup(out, engine, target_app.extensions["sessionmaker"], paused),
    )
    first.start()
    paused.wait_paused()
    with running_app(target_url, tmp_path / "second", target_store) as second_app:
        refused = second_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    paused.resume.set()
    report: RestoreReport = first.wait_done()

    assert refused.exit_code == 1, refused.output
    assert "另一个恢复正在进行" in refused.output and "什么也没有改动" in refused.output
    with make_sessionmaker(engine)() as restored:
        assert counts(restored) == {**before, "audit_events": before["audit_events"] + 1}
        seqs = restored.scalars(
            select(AuditEvent.seq).where(AuditEvent.action == "backup_restored")
        ).all()
        assert seqs == [report.restored_seq]
    audit = target_app.test_cli_runner().invoke(
        args=["audit", "verify", "--checkpoint", str(out / MANIFEST)]
    )
    assert audit.exit_code == 0, audit.output
    assert "数据核对一致" in audit.output
    again = target_app.test_cli_runner().invoke(args=["backup", "restore", str(out)])
    assert again.exit_code != 0 and "目标数据库不是空的" in again.output


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_two_restore_commands_started_together_restore_once(
    app: Flask,
    ids: dict[str, int],
    tmp_path: Path,
    target_url: str,
    target_app: Flask,
    target_store: LocalStore,
) -> None:
    """`flask backup restore` started twice at once, as two processes: one exits 0, the other
    exits 1 saying why (another restore runs, or, if it came late, the database is no longer
    empty), and one `backup_restored` is on the record."""
    out = tmp_path / "backup-7"
    take_backup(app, out)
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": target_url,
        "INSTANCE_DIR": str(tmp_path / "restored"), **settings_for(target_store),
    }  # fmt: skip
    argv = [sys.executable, "-m", "flask", "--app", "wsgi", "backup", "restore", str(out)]
    runs = [
        subprocess.Popen(argv, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE, text=True)
        for _ in range(2)
    ]
    outcomes = sorted((run.wait(120), run.communicate()[1]) for run in runs)
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    assert "另一个恢复正在进行" in outcomes[1][1] or "目标数据库不是空的" in outcomes[1][1]
    assert "Traceback" not in outcomes[1][1]
    with make_sessionmaker(target_app.extensions["engine"])() as restored:
        restores = restored.scalar(
            select(func.count()).where(AuditEvent.action == "backup_restored")
        )
        assert restores == 1
        assert verify_chain(restored).ok


@pytest.mark.parametrize("store", ["local"], indirect=True)
def test_two_backups_into_one_folder_at_once_write_one(
    app: Flask, engine: Engine, store: ObjectStore, ids: dict[str, int], tmp_path: Path
) -> None:
    """A timer and an operator start `backup create` into the same new folder: the first
    stops as it takes its first database connection, the folder made and still empty; the
    second is refused with nothing written or removed, and the first one's backup verifies."""
    out = tmp_path / "backup-8"
    held, go = threading.Event(), threading.Event()
    first_thread: list[int] = []

    def hold(*_args: Any) -> None:
        if first_thread == [threading.get_ident()] and not held.is_set():
            held.set()
            assert go.wait(HANG), "the test never let the first backup go on"

    def first_backup() -> dict[str, Any]:
        first_thread.append(threading.get_ident())
        return create_backup(engine, store, out)

    event.listen(Pool, "checkout", hold)
    try:
        first = Worker(engine, first_backup)
        first.start()
        assert held.wait(HANG), "the first backup never connected to the database"
        refused = app.test_cli_runner().invoke(args=["backup", "create", str(out)])
        go.set()
        manifest = first.wait_done()
    finally:
        event.remove(Pool, "checkout", hold)
    assert refused.exit_code == 1, refused.output
    assert "另一个备份正在写入此目录" in refused.output
    assert json.loads((out / MANIFEST).read_text(encoding="utf-8")) == manifest
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MANIFEST, manifest["database"]["file"], "objects"]
    )  # the claim is gone with the backup complete
    verified = app.test_cli_runner().invoke(args=["backup", "verify", str(out)])
    assert verified.exit_code == 0, verified.output
    again = app.test_cli_runner().invoke(args=["backup", "create", str(out)])
    assert again.exit_code == 1 and "不是空目录" in again.output
