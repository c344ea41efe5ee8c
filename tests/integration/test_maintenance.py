"""Maintenance on both object stores and both databases: gc, verify, department archives.

The functions in ``workflow.maintenance`` / ``workflow.archive`` are tested directly, and the
commands (``storage gc``, ``storage verify``, ``archive``) through Flask's CLI runner against
an app configured for the same store, exactly as an operator would run them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage import InvalidKey, LocalStore, ObjectStore, S3Store, object_key_for
from tests.factories import World, add_evidence
from tests.storage import samples
from tests.storage.fixtures import ACCESS_KEY, SECRET_KEY
from web.app import create_app
from workflow.archive import ArchiveIntegrityError, folder_name, write_department_archive
from workflow.audit import canonical_json, hash_body
from workflow.evidence import attach_evidence, remove_evidence
from workflow.maintenance import (
    DEFAULT_GRACE,
    delete_leftovers,
    delete_orphans,
    find_leftovers,
    find_orphans,
    key_columns,
    verify_objects,
)
from workflow.models import AuditEvent, Base, Department, Evidence, Item, User
from workflow.setup import find_department
from workflow.users import create_user

pytestmark = pytest.mark.every_store

MIB = 1024 * 1024


def settings_for(store: ObjectStore) -> dict[str, str]:
    """The app settings (env var names of storage/config.py) that select this very store."""
    if isinstance(store, LocalStore):
        return {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(store.root)}
    assert isinstance(store, S3Store)
    return {
        "STORAGE_BACKEND": "s3",
        "S3_ENDPOINT": f"http://{store.endpoint}",
        "S3_ACCESS_KEY": ACCESS_KEY,
        "S3_SECRET_KEY": SECRET_KEY,
        "S3_BUCKET": store.bucket,
        "S3_REGION": store.region,
    }


@pytest.fixture
def app(db_url: str, tmp_path: Path, store: ObjectStore) -> Iterator[Flask]:
    flask_app = create_app(
        {"DATABASE_URL": db_url, "INSTANCE_DIR": str(tmp_path), "STORAGE": settings_for(store)}
    )
    yield flask_app
    flask_app.extensions["engine"].dispose()


def put_orphan(store: ObjectStore, data: bytes) -> str:
    """Store bytes content-addressed without any row, as a request that died after the put."""
    key = object_key_for(hashlib.sha256(data).hexdigest())
    store.put(key, io.BytesIO(data), len(data), "application/pdf")
    return key


def keys(store: ObjectStore) -> set[str]:
    return {info.key for info in store.list()}


def pdf(label: str) -> bytes:
    return samples.PDF.replace(b"%%EOF", f"% {label}\n%%EOF".encode())


def attach(
    session: Session,
    store: ObjectStore,
    item: Item,
    user: User,
    data: bytes,
    name: str,
    max_size: int = 8 * MIB,
    **options: str,
) -> Evidence:
    return attach_evidence(
        session,
        store,
        item.id,
        user,
        io.BytesIO(data),
        name,
        max_size=max_size,
        **options,  # type: ignore[arg-type]
    )


def tamper(store: ObjectStore, key: str, data: bytes) -> None:
    """Change an object's bytes behind the application's back."""
    if isinstance(store, LocalStore):
        (store.root / key).write_bytes(data)  # as a disk error or a person with shell access
    else:
        store.put(key, io.BytesIO(data), len(data), "application/pdf")


# ------------------------------------------------------------------ gc


def test_key_columns_cover_every_table_that_stores_keys() -> None:
    names = {f"{column.table.name}.{column.name}" for column in key_columns()}
    expected = {
        f"{table}.storage_key"
        for table in ("evidence", "notices", "notice_bases", "routine_files")
        if table in Base.metadata.tables
    }
    assert "evidence.storage_key" in names and expected <= names


def test_objects_of_other_tables_are_kept_and_verified(
    session: Session, store: ObjectStore, world: World
) -> None:
    """A key in any table with a storage_key column (here a notice's letterhead) counts."""
    table = Base.metadata.tables.get("notice_bases")
    if table is None:
        pytest.skip("no notice_bases table in this tree")
    data = samples.docx_bytes("信笺")
    key = put_orphan(store, data)
    digest = hashlib.sha256(data).hexdigest()
    session.execute(
        table.insert().values(
            assessment_id=world.assessment.id,
            filename="信笺.docx",
            sha256=digest,
            size=len(data),
            storage_key=key,
        )
    )
    session.commit()
    assert find_orphans(session, store, timedelta(0)) == []
    assert verify_objects(session, store).checked == 1

    tamper(store, key, data[:-1])
    problem = verify_objects(session, store).altered[0]
    assert problem.key == key and problem.evidence_ids == ()
    assert problem.other_refs[0].startswith("notice_bases#")


def test_orphans_older_than_grace_are_found_and_deleted(
    session: Session, store: ObjectStore, world: World
) -> None:
    item = world.item(session, world.dep_a, "1")
    live = add_evidence(session, store, item, world.member_a, name="现行.pdf")
    removed = add_evidence(session, store, item, world.member_a, name="已删除.pdf")
    remove_evidence(session, removed.id, world.member_a)
    session.commit()
    old = put_orphan(store, pdf("old orphan"))
    if isinstance(store, LocalStore):
        an_hour_ago = time.time() - 3600
        os.utime(store.root / old, (an_hour_ago, an_hour_ago))
    else:
        time.sleep(1.05)  # S3 cannot backdate; HEAD's Last-Modified has whole seconds only
    fresh = put_orphan(store, pdf("fresh orphan"))
    store.put("elsewhere/not-ours", io.BytesIO(b"x"), 1, "text/plain")
    # The listing's times, which find_orphans compares: a real S3 server (radosgw, MinIO) lists
    # milliseconds while stat's HEAD rounds down to the second, so a cutoff computed from stat
    # could fall before the old object's listed time (moto rounds both and hid it).
    listed = {info.key: info.modified_at for info in store.list()}
    old_at, fresh_at = listed[old], listed[fresh]
    assert old_at < fresh_at
    # "Now" is just under a grace period after the fresh upload, the old one is past it.
    now = fresh_at + DEFAULT_GRACE - (fresh_at - old_at) / 2

    assert find_orphans(session, store) == []  # with the real clock everything is young
    assert [info.key for info in find_orphans(session, store, now=now)] == [old]
    deleted = delete_orphans(session, store, now=now)
    assert [info.key for info in deleted] == [old]
    assert keys(store) == {live.storage_key, removed.storage_key, fresh, "elsewhere/not-ours"}

    # Much later everything unreferenced goes, and referenced objects (removed rows too) stay.
    later = now + timedelta(days=30)
    assert [info.key for info in delete_orphans(session, store, now=later)] == [fresh]
    assert keys(store) == {live.storage_key, removed.storage_key, "elsewhere/not-ours"}
    with pytest.raises(ValueError):
        find_orphans(session, store, timedelta(hours=-1))


def test_gc_command_lists_then_deletes(
    app: Flask, session: Session, store: ObjectStore, world: World
) -> None:
    item = world.item(session, world.dep_a, "1")
    live = add_evidence(session, store, item, world.member_a)
    session.commit()
    orphan = put_orphan(store, pdf("cli orphan"))
    runner = app.test_cli_runner()

    young = runner.invoke(args=["storage", "gc"])  # default grace: 24 h
    assert young.exit_code == 0, young.output
    assert orphan not in young.output and "发现 0 个" in young.output

    listed = runner.invoke(args=["storage", "gc", "--grace-hours", "0"])
    assert listed.exit_code == 0, listed.output
    assert orphan in listed.output and live.storage_key not in listed.output
    assert "--delete" in listed.output
    assert orphan in keys(store)  # listing alone deletes nothing

    gone = runner.invoke(args=["storage", "gc", "--grace-hours", "0", "--delete"])
    assert gone.exit_code == 0, gone.output
    assert "已删除 1 个" in gone.output
    assert keys(store) == {live.storage_key}

    bad = runner.invoke(args=["storage", "gc", "--grace-hours", "-1"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("store", ["local"], indirect=True)  # S3 cannot backdate an object
def test_gc_command_default_grace_spares_fresh_objects(
    app: Flask, session: Session, store: ObjectStore, local_store: LocalStore, world: World
) -> None:
    """With the real clock: a day-old orphan goes, a fresh one and referenced ones stay."""
    assert store is local_store
    item = world.item(session, world.dep_a, "1")
    live = add_evidence(session, local_store, item, world.member_a)
    session.commit()
    old = put_orphan(local_store, pdf("day old"))
    fresh = put_orphan(local_store, pdf("just uploaded"))
    day_ago = time.time() - DEFAULT_GRACE.total_seconds() - 60
    for key in (old, live.storage_key):
        os.utime(local_store.root / key, (day_ago, day_ago))

    result = app.test_cli_runner().invoke(args=["storage", "gc", "--delete"])
    assert result.exit_code == 0, result.output
    assert old in result.output and fresh not in result.output
    assert keys(local_store) == {live.storage_key, fresh}


KILLED_WRITER = """
import sys, time
from storage import LocalStore

class Endless:  # a client that keeps sending: the write is in progress when the kill lands
    def read(self, size=-1):
        time.sleep(0.01)
        return b"%PDF-1.7 " + b"x" * 4096

LocalStore(sys.argv[1]).put(sys.argv[2], Endless(), None, "application/pdf")
"""


def kill_during_write(store: LocalStore, key: str) -> Path:
    """Start a store write in another process, SIGKILL it mid-write; return its temp file."""
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(store.root), key])
    folder = store.root.joinpath(*key.split("/")[:-1])
    deadline = time.monotonic() + 60
    try:
        while not [p for p in folder.glob(".tmp-*") if p.stat().st_size > 0]:
            assert writer.poll() is None and time.monotonic() < deadline, "the write never began"
            time.sleep(0.02)
    finally:
        writer.kill()  # SIGKILL: no `finally`, no cleanup in the writer
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    (temp,) = folder.glob(".tmp-*")
    return temp


@pytest.mark.parametrize("store", ["local"], indirect=True)  # S3 writes leave no temp file
def test_crash_leftovers_are_listed_and_removed_by_gc(
    app: Flask, session: Session, store: ObjectStore, local_store: LocalStore, world: World
) -> None:
    """Issue 11, finding 16: the .tmp-* file of a write killed by SIGKILL is found by `storage
    gc`, and removed with --delete once older than the grace period; a younger one (it may be
    a write in progress) is left alone, and so are objects."""
    item = world.item(session, world.dep_a, "1")
    live = add_evidence(session, local_store, item, world.member_a)
    session.commit()
    old = kill_during_write(local_store, object_key_for("a" * 64))
    young = kill_during_write(local_store, object_key_for("b" * 64))
    day_ago = time.time() - DEFAULT_GRACE.total_seconds() - 60
    os.utime(old, (day_ago, day_ago))
    old_key = old.relative_to(local_store.root).as_posix()
    young_key = young.relative_to(local_store.root).as_posix()
    assert keys(local_store) == {live.storage_key}  # never listed as objects
    assert {i.key for i in local_store.list_leftovers()} == {old_key, young_key}
    runner = app.test_cli_runner()

    listed = runner.invoke(args=["storage", "gc"])
    assert listed.exit_code == 0, listed.output
    assert old_key in listed.output and young_key not in listed.output
    assert f"发现 1 个中断写入留下的临时文件（共 {old.stat().st_size} 字节" in listed.output
    assert "--delete" in listed.output and old.exists()  # listing alone deletes nothing

    gone = runner.invoke(args=["storage", "gc", "--delete"])
    assert gone.exit_code == 0, gone.output
    assert "已删除 1 个中断写入留下的临时文件" in gone.output
    assert not old.exists() and young.exists()
    assert keys(local_store) == {live.storage_key}

    assert [i.key for i in find_leftovers(local_store, timedelta(0))] == [young_key]
    assert [i.key for i in delete_leftovers(local_store, timedelta(0))] == [young_key]
    assert list(local_store.list_leftovers()) == [] and keys(local_store) == {live.storage_key}
    with pytest.raises(InvalidKey):  # only temporary files, never an object
        local_store.delete_leftover(live.storage_key)
    assert keys(local_store) == {live.storage_key}


# ------------------------------------------------------------------ verify


def test_verify_detects_altered_and_missing(
    app: Flask, session: Session, store: ObjectStore, world: World
) -> None:
    item = world.item(session, world.dep_a, "1")
    intact = attach(session, store, item, world.member_a, pdf("intact"), "完好.pdf")
    altered = attach(session, store, item, world.member_a, pdf("altered"), "被改.pdf")
    # The same file for another scoring point (the same point would be a refused duplicate).
    twin = attach(
        session, store, item, world.member_a, pdf("altered"), "被改副本.pdf", sub_item="1.2"
    )
    truncated = attach(session, store, item, world.member_a, pdf("short"), "截断.pdf")
    missing = attach(session, store, item, world.member_a, pdf("missing"), "丢失.pdf")
    removed = attach(session, store, item, world.member_a, pdf("removed"), "已删.pdf")
    remove_evidence(session, removed.id, world.member_a)
    session.commit()
    runner = app.test_cli_runner()

    clean = verify_objects(session, store)
    assert clean.ok and clean.checked == 5  # twin shares its object
    ok = runner.invoke(args=["storage", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "缺失 0，改动 0" in ok.output

    original = pdf("altered")
    tamper(store, altered.storage_key, original.replace(b"altered", b"ALTERED"))  # same size
    tamper(store, truncated.storage_key, pdf("short")[:-10])
    tamper(store, removed.storage_key, b"%PDF-1.4 rewritten")  # removed rows' objects count too
    store.delete(missing.storage_key)

    report = verify_objects(session, store)
    assert not report.ok and report.checked == 4
    assert [(p.key, p.evidence_ids) for p in report.missing] == [
        (missing.storage_key, (missing.id,))
    ]
    assert {p.key: p.evidence_ids for p in report.altered} == {
        altered.storage_key: (altered.id, twin.id),
        truncated.storage_key: (truncated.id,),
        removed.storage_key: (removed.id,),
    }
    assert intact.storage_key not in {p.key for p in report.problems}
    short = next(p for p in report.altered if p.key == truncated.storage_key)
    assert "大小" in short.detail

    bad = runner.invoke(args=["storage", "verify"])
    assert bad.exit_code == 1
    assert f"材料 {altered.id},{twin.id}" in bad.output and altered.storage_key in bad.output
    assert f"材料 {missing.id}" in bad.output and "缺失 1，改动 3" in bad.output


def test_commands_report_an_unreachable_store(
    db_url: str, session: Session, world: World, tmp_path: Path
) -> None:
    item = world.item(session, world.dep_a, "1")
    add_evidence(session, LocalStore(tmp_path / "elsewhere"), item, world.member_a)
    session.commit()  # verify has an object to read, and cannot
    broken = create_app(
        {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path),
            "STORAGE": {
                "STORAGE_BACKEND": "s3",
                "S3_ENDPOINT": "http://127.0.0.1:9",  # discard port: nothing listens
                "S3_ACCESS_KEY": "x",
                "S3_SECRET_KEY": "y",
            },
        }
    )
    runner = broken.test_cli_runner()
    commands = (
        ["storage", "gc"],
        ["storage", "verify"],
        ["archive", "2018", "交通局", "--out", str(tmp_path / "x.zip")],
    )
    for command in commands:
        out = runner.invoke(args=command)
        assert out.exit_code == 1 and "文件存储服务暂时不可用" in out.output, command
    broken.extensions["engine"].dispose()


# ------------------------------------------------------------------ archive


@pytest.fixture
def city(session: Session, world: World) -> tuple[Department, User]:
    """城管执法大队 (alias 城管局) and one of its users."""
    dep = find_department(session, world.assessment.id, "城管执法大队")
    assert dep is not None
    user = create_user(session, "member_c", ["department"], department=dep)
    session.commit()
    return dep, user


def test_archive_command(
    app: Flask,
    session: Session,
    store: ObjectStore,
    world: World,
    city: tuple[Department, User],
    tmp_path: Path,
) -> None:
    dep, user = city
    item1 = world.item(session, dep, "1")
    item4 = world.item(session, dep, "4")
    first = attach(session, store, item1, user, pdf("a"), "材料.pdf", sub_item="1.1")
    clash = attach(session, store, item1, user, pdf("b"), "材料.pdf")
    upper = attach(session, store, item1, user, pdf("c"), "材料.PDF")
    gone = attach(session, store, item1, user, pdf("d"), "旧版.pdf")
    remove_evidence(session, gone.id, user)
    proof = attach(
        session, store, item4, user, samples.CSV_GB18030, "不涉及说明.csv",
        sub_item="4.2", purpose="not_involved_proof",
    )  # fmt: skip
    add_evidence(session, store, world.item(session, world.dep_a, "1"), world.member_a)
    session.commit()
    out = tmp_path / "城管.zip"

    result = app.test_cli_runner().invoke(args=["archive", "2018", "城管局", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "4 个文件" in result.output and "1 个已删除" in result.output
    assert list(tmp_path.glob(".*.part")) == []

    folder1, folder4 = folder_name(item1.indicator), folder_name(item4.indicator)
    assert folder1 == "1-成立“放管服”工作领导小组；指定专人负责"
    expected_paths = {
        first.id: f"{folder1}/材料.pdf",
        clash.id: f"{folder1}/材料 (2).pdf",
        upper.id: f"{folder1}/材料 (3).PDF",
        proof.id: f"{folder4}/不涉及说明.csv",
    }
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert set(archive.namelist()) == {
            *expected_paths.values(),
            "manifest.csv",
            "audit_events.jsonl",
        }
        raw_manifest = archive.read("manifest.csv")
        contents = {name: archive.read(name) for name in expected_paths.values()}
        events = [json.loads(line) for line in archive.read("audit_events.jsonl").splitlines()]
        assert archive.getinfo(f"{folder4}/不涉及说明.csv").compress_type == zipfile.ZIP_DEFLATED

    assert raw_manifest.startswith(b"\xef\xbb\xbf")
    manifest = list(csv.DictReader(io.StringIO(raw_manifest.decode("utf-8-sig"))))
    by_id = {int(row["材料编号"]): row for row in manifest}
    assert set(by_id) == {first.id, clash.id, upper.id, gone.id, proof.id}
    for evidence_id, path in expected_paths.items():
        row = by_id[evidence_id]
        assert row["归档路径"] == path and row["删除时间"] == ""
        assert hashlib.sha256(contents[path]).hexdigest() == row["SHA-256"]
        assert int(row["大小（字节）"]) == len(contents[path])
        assert row["上传人"].endswith("（member_c）") and row["上传时间"].endswith("+08:00")
    assert by_id[first.id]["评分项"] == "1.1" and by_id[first.id]["用途代码"] == "evidence"
    assert by_id[first.id]["用途"] == "佐证材料"
    assert by_id[proof.id]["用途代码"] == "not_involved_proof"
    assert by_id[proof.id]["原文件名"] == "不涉及说明.csv"
    assert by_id[gone.id]["归档路径"] == "" and by_id[gone.id]["删除时间"].endswith("+08:00")
    assert by_id[gone.id]["SHA-256"] == gone.sha256

    own_items = set(session.scalars(select(Item.id).where(Item.department_id == dep.id)))
    assert events and {e["item_id"] for e in events} <= own_items
    assert [e["action"] for e in events].count("evidence_uploaded") == 5
    assert [e["action"] for e in events].count("evidence_removed") == 1
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    stored = {e.seq: e.hash for e in session.scalars(select(AuditEvent))}
    for event in events:  # each line can be checked against the chain on its own
        body = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
        body["payload"] = canonical_json(event["payload"])
        assert hash_body(event["prev_hash"], body) == event["hash"] == stored[event["seq"]]


def test_archive_refuses_altered_or_missing_objects(
    app: Flask,
    session: Session,
    store: ObjectStore,
    world: World,
    city: tuple[Department, User],
    tmp_path: Path,
) -> None:
    dep, user = city
    item = world.item(session, dep, "1")
    row = attach(session, store, item, user, pdf("original"), "原件.pdf")
    session.commit()
    runner = app.test_cli_runner()
    out = tmp_path / "out.zip"

    tamper(store, row.storage_key, pdf("original").replace(b"original", b"ORIGINAL"))
    failed = runner.invoke(args=["archive", "2018", "城管执法大队", "--out", str(out)])
    assert failed.exit_code == 1
    assert "已被改动" in failed.output and f"#{row.id}" in failed.output
    assert not out.exists() and list(tmp_path.glob(".*.part")) == []

    store.delete(row.storage_key)
    missing = runner.invoke(args=["archive", "2018", "城管执法大队", "--out", str(out)])
    assert missing.exit_code == 1 and "不存在" in missing.output and not out.exists()

    nowhere = runner.invoke(args=["archive", "2018", "城管局", "--out", str(tmp_path / "no/a.zip")])
    assert nowhere.exit_code == 1 and "无法写入" in nowhere.output

    unknown = runner.invoke(args=["archive", "2018", "不存在的局", "--out", str(out)])
    assert unknown.exit_code == 1 and "找不到部门" in unknown.output
    no_year = runner.invoke(args=["archive", "1999", "城管局", "--out", str(out)])
    assert no_year.exit_code == 1 and not out.exists()


def test_archive_streams_in_bounded_memory(
    session: Session, local_store: LocalStore, world: World, tmp_path: Path
) -> None:
    item = world.item(session, world.dep_a, "2")
    data = pdf("big") + os.urandom(24 * MIB)
    attach(session, local_store, item, world.member_a, data, "扫描件.pdf", max_size=32 * MIB)
    session.commit()
    with open(tmp_path / "a.zip", "wb") as out:
        tracemalloc.start()
        try:
            summary = write_department_archive(session, local_store, world.dep_a, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert summary.files == 1 and summary.bytes == len(data)
    assert peak < 2 * MIB, f"peak {peak / MIB:.1f} MiB for a {len(data) / MIB:.0f} MiB file"


def test_archive_integrity_error_is_a_domain_error(
    session: Session, local_store: LocalStore, world: World
) -> None:
    item = world.item(session, world.dep_a, "1")
    row = add_evidence(session, local_store, item, world.member_a)
    session.commit()
    local_store.delete(row.storage_key)
    with pytest.raises(ArchiveIntegrityError) as caught:
        write_department_archive(session, local_store, world.dep_a, io.BytesIO())
    assert caught.value.detail == {"evidence_id": row.id, "key": row.storage_key}
