"""Backup, verification and restore of the whole system: database snapshot plus its objects.

A backup is a folder: the database (`database.sqlite3`, or `database.dump` from
`pg_dump --format=custom`), `objects/<key>` for every object a row of that snapshot refers to
(`maintenance.expected_objects`: evidence, routine files, notices, letterheads, job results)
and `manifest.json`, written last, with the SHA-256 of every file, the schema revision and the
audit chain head of the snapshot as a checkpoint.

Why objects read after the snapshot are the snapshot's: every key is written once with the
content it names (`sha256/…/<hex>`, or `jobs/<id>/<attempt>-<hex>`), the object is stored
before the row that refers to it is committed (DESIGN.md §5), rows that refer to objects are
never deleted (removed evidence keeps its row and object), and `storage gc` deletes only
objects no row refers to. So every row in the snapshot finds its object, unchanged, however
long after the snapshot it is read; objects written later are simply not copied.

A restore writes only into an empty database, one restore at a time (`_sole_restore`), checks
the restored chain against the manifest's checkpoint, re-reads every object, and appends
`backup_restored` to the audit trail, so that the restore, and the history it may have rolled
back, is on the record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mimetypes
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Engine, create_engine, func, inspect, make_url, select, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from storage.base import CHUNK_SIZE, ObjectStore, Readable
from storage.errors import InvalidKey, ObjectNotFound
from storage.local import LocalStore, fsync_directory, os_reason
from workflow import audit, maintenance, reconcile, roles
from workflow.db import alembic_config, lock_key, migrate, unit_of_work
from workflow.models import Base, ChainHead, utcnow

FORMAT = "fangguanfu-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
OBJECTS = "objects"
DATABASE_FILES = {"sqlite": "database.sqlite3", "postgresql": "database.dump"}
#: A backup holds the whole database (password hashes included) and every piece of evidence:
#: its folders and files are the owner's alone, whatever the umask (`_owner_only`).
OWNER_ONLY_DIR = 0o700
OWNER_ONLY_FILE = 0o600
#: The file that claims a folder for one `backup create` while it writes (`_claim`).
IN_PROGRESS = ".backup-in-progress"
RESTORED_ACTION = "backup_restored"
#: Who a restore is recorded as (the command line, like the notices' CLI runs).
CLI_ACTOR = "cli"
#: Tables listed by name when a restore is refused (the rest counted), these first.
SHOWN_TABLES = 5
MAIN_TABLES = ("items", "evidence", "audit_events", "users", "assessments")
#: The advisory lock a restore holds on its PostgreSQL database (`_sole_restore`).
RESTORE_LOCK = lock_key("backup_restore")
ANOTHER_RESTORE = (
    "另一个恢复正在进行（同一数据库）：本次未恢复，什么也没有改动。"
    "请等它结束并查看其结果；它失败了再重新恢复"
)


class BackupError(Exception):
    """A backup, verification or restore that cannot go on; the message is for the operator."""


# -- create -------------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    """What the database snapshot says: its revision, chain head and objects."""

    revision: str
    checkpoint: dict[str, Any]
    expected: dict[str, maintenance.Expected]
    content_types: dict[str, str]
    server_version: str | None = None


def create_backup(
    engine: Engine, store: ObjectStore, out_dir: Path, *, dump_url: str | None = None
) -> dict[str, Any]:
    """Write a backup of the database behind `engine` and of its objects into `out_dir`.

    `out_dir` must not exist or be empty. PostgreSQL is dumped through `dump_url` (the owner's
    URL when one is configured; `engine`'s otherwise). A missing or altered object stops the
    backup, and whatever it wrote is removed: a folder with a manifest is a complete backup.
    Two backups into one folder at once: one writes it, the other is refused (`_claim`).
    Return the manifest.
    """
    out_dir = Path(out_dir)
    created = _claim(out_dir)
    try:
        manifest = _write_backup(engine, store, out_dir, dump_url)
        (out_dir / IN_PROGRESS).unlink()
    except BaseException:
        _remove_partial(out_dir, created)
        raise
    return manifest


def _claim(out_dir: Path) -> bool:
    """Make the folder, or take the empty one given, for this backup alone: return whether it
    was made here (a failed backup removes it, else only what it wrote into it).

    The claim is a file made with O_EXCL (`IN_PROGRESS`, removed once the manifest is in
    place): of two backups started together into one folder (a timer and an operator in the
    same minute) exactly one makes it. Checking emptiness alone let both go on, write the
    same dump and temporary manifest, and a failing one remove the other's complete backup.
    """
    if out_dir.exists() and (not out_dir.is_dir() or _holds_files(out_dir)):
        raise _not_empty(out_dir)
    try:
        out_dir.mkdir(parents=True, mode=OWNER_ONLY_DIR)
        created = True
    except FileExistsError:
        created = False
    except OSError as exc:
        raise BackupError(f"无法创建目标目录 {out_dir}：{os_reason(exc)}") from exc
    try:  # the empty folder given: closed to others before anything is written into it
        out_dir.chmod(OWNER_ONLY_DIR)
    except OSError as exc:
        raise BackupError(f"无法设置目标目录的权限 {out_dir}：{os_reason(exc)}") from exc
    try:
        os.close(os.open(out_dir / IN_PROGRESS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise BackupError(
            f"另一个备份正在写入此目录：{out_dir}（本次未写入任何文件）；若没有备份在运行，"
            f"此目录是中断的备份留下的，请删除后重试"
        ) from None
    except OSError as exc:
        raise BackupError(f"无法写入目标目录 {out_dir}：{os_reason(exc)}") from exc
    if _holds_files(out_dir):  # a backup started before this one has finished meanwhile
        (out_dir / IN_PROGRESS).unlink()
        raise _not_empty(out_dir)
    return created


def _holds_files(out_dir: Path) -> bool:
    """Whether the folder holds anything but a backup's claim."""
    return any(child.name != IN_PROGRESS for child in out_dir.iterdir())


def _not_empty(out_dir: Path) -> BackupError:
    return BackupError(f"目标目录已存在且不是空目录：{out_dir}（备份只写入新的或空的目录）")


def _write_backup(
    engine: Engine, store: ObjectStore, out_dir: Path, dump_url: str | None
) -> dict[str, Any]:
    kind = engine.dialect.name
    if kind not in DATABASE_FILES:
        raise BackupError(f"不支持备份此类数据库：{kind}")
    db_file = out_dir / DATABASE_FILES[kind]
    created_at = audit.format_time(utcnow())
    if kind == "sqlite":
        snap = _sqlite_snapshot(engine, db_file)
        server = None
    else:
        snap = _postgresql_snapshot(make_url(dump_url) if dump_url else engine.url, db_file)
        server = snap.server_version
    files = _copy_objects(store, snap, LocalStore(out_dir / OBJECTS))
    _owner_only(out_dir)
    db_sha, db_size = _hash_file(db_file)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": created_at,
        "schema_revision": snap.revision,
        "database": {
            "kind": kind,
            "file": db_file.name,
            "sha256": db_sha,
            "size": db_size,
            **({"server_version": server} if server else {}),
        },
        "checkpoint": snap.checkpoint,
        "objects": {
            "count": len(files),
            "bytes": sum(f["size"] for f in files.values()),
            "files": files,
        },
    }
    _write_atomically(out_dir / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
    fsync_directory(out_dir)
    return manifest


def _new_private_file(path: Path) -> None:
    """Create an empty file only the owner can read, for a tool to write into."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY_FILE))
    path.chmod(OWNER_ONLY_FILE)  # an existing file keeps its mode through O_CREAT


def _owner_only(out_dir: Path) -> None:
    """Make every folder of the backup 0700 and every file 0600 (the object store's folders
    are made with the umask's mode, and a copy with `cp -a` or rsync keeps what it finds)."""
    for folder, dirs, names in os.walk(out_dir):
        for name in dirs:
            (Path(folder) / name).chmod(OWNER_ONLY_DIR)
        for name in names:
            (Path(folder) / name).chmod(OWNER_ONLY_FILE)


def _remove_partial(out_dir: Path, created: bool) -> None:
    """Remove what a failed backup wrote: the folder it made, or the empty one's contents."""
    if created:
        shutil.rmtree(out_dir, ignore_errors=True)
        return
    for child in out_dir.iterdir() if out_dir.is_dir() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _read_snapshot(session: Session) -> _Snapshot:
    """Read revision, chain head and the referenced objects inside the snapshot's session."""
    revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    return _Snapshot(
        revision=str(revision),
        checkpoint=audit.checkpoint(session),
        expected=maintenance.expected_objects(session),
        content_types=_content_types(session),
    )


def _content_types(session: Session) -> dict[str, str]:
    """The type each object was stored with: its row's content type, or its file name's."""
    types: dict[str, str] = {}
    for column in maintenance.key_columns():
        stmt = maintenance.key_rows(column, "content_type", "filename")
        for key, content_type, filename in session.execute(stmt):
            guessed = mimetypes.guess_type(filename)[0] if filename else None
            types.setdefault(key, content_type or guessed or "application/octet-stream")
    return types


def _sqlite_snapshot(engine: Engine, target: Path) -> _Snapshot:
    """Copy the live SQLite file with the online backup API, then read the copy."""
    raw = engine.raw_connection()
    try:
        _new_private_file(target)
        destination = sqlite3.connect(target)
        try:
            # One step (pages=-1): a consistent copy, even while the server writes.
            raw.driver_connection.backup(destination)  # type: ignore[union-attr]
            destination.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            destination.close()
    finally:
        raw.close()
    reader = _read_only_sqlite(target)
    try:
        with Session(reader) as session:
            return _read_snapshot(session)
    finally:
        reader.dispose()


def _read_only_sqlite(path: Path) -> Engine:
    uri = path.resolve().as_uri() + "?mode=ro"
    return create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool
    )


def _postgresql_snapshot(url: URL, target: Path) -> _Snapshot:
    """Export a snapshot, read it, and let pg_dump dump exactly that snapshot."""
    pg_dump = _client_tool("pg_dump")
    engine = create_engine(url, poolclass=NullPool, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            snapshot_id = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            server_num = int(conn.execute(text("SHOW server_version_num")).scalar_one())
            server = str(conn.execute(text("SHOW server_version")).scalar_one()).split()[0]
            _check_tool_version(pg_dump, server_num, server)
            with Session(bind=conn) as session:
                snap = _read_snapshot(session)
            snap.server_version = server
            _new_private_file(target)  # pg_dump writes into it, keeping its mode
            _run_tool(
                [pg_dump, "--format=custom", "--no-password", f"--snapshot={snapshot_id}",
                 f"--file={target}", f"--dbname={_conninfo(url)}"],
                url,
            )  # fmt: skip
            conn.rollback()
    finally:
        engine.dispose()
    return snap


def _copy_objects(
    store: ObjectStore, snap: _Snapshot, folder: LocalStore
) -> dict[str, dict[str, Any]]:
    """Stream every referenced object into the backup, hashed on the way; stop at a bad one."""
    files: dict[str, dict[str, Any]] = {}
    for key, expected in sorted(snap.expected.items()):
        refs = _refs(expected)
        try:
            reader = store.open(key)
        except ObjectNotFound:
            raise BackupError(
                f"对象缺失：{key}（{refs}）；备份已中止，请先查明原因（storage verify）"
            ) from None
        hashing = _Hashing(reader)
        with reader:
            try:
                folder.put(key, hashing, None, "application/octet-stream")
            except InvalidKey as exc:
                raise BackupError(f"对象键无效：{key}（{refs}）：{exc}") from exc
        differences = _differences(hashing, expected.sha256, expected.size)
        if differences:
            raise BackupError(
                f"对象与记录不符：{key}（{refs}）：{differences}；备份已中止，"
                "请先查明原因（storage verify）"
            )
        files[key] = {
            "sha256": hashing.sha256,
            "size": hashing.size,
            "content_type": snap.content_types.get(key, "application/octet-stream"),
        }
    return files


def _refs(expected: maintenance.Expected) -> str:
    parts = []
    if expected.evidence_ids:
        parts.append("材料 " + ",".join(str(i) for i in expected.evidence_ids))
    parts.extend(expected.other_refs)
    return "、".join(parts) or "无引用"


def _differences(hashing: _Hashing, sha256: str | None, size: int | None) -> str:
    found = []
    if sha256 is not None and hashing.sha256 != sha256:
        found.append(f"SHA-256 为 {hashing.sha256}，应为 {sha256}")
    if size is not None and hashing.size != size:
        found.append(f"大小为 {hashing.size} 字节，应为 {size}")
    return "；".join(found)


class _Hashing:
    """A stream that hashes and counts what is read through it."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        """Read from the source, hashing the bytes."""
        chunk = self._source.read(size)
        self._digest.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def sha256(self) -> str:
        """The hex digest of what was read so far."""
        return self._digest.hexdigest()


# -- PostgreSQL client tools ----------------------------------------------------------------------


def _client_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"找不到 {name}：请安装与数据库服务器同一主版本（或更新）的 PostgreSQL 客户端工具，"
            "并放到 PATH 中"
        )
    return path


def _check_tool_version(tool: str, server_num: int, server: str) -> None:
    """Refuse a client tool older than the server (its dump would be incomplete or fail)."""
    result = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"\)\s*(\d+)", result.stdout)
    if result.returncode != 0 or match is None:
        raise BackupError(f"无法读取 {tool} 的版本：{result.stdout or result.stderr}".strip())
    tool_major, server_major = int(match.group(1)), server_num // 10000
    if tool_major < server_major:
        raise BackupError(
            f"{Path(tool).name} 的主版本 {tool_major} 低于数据库服务器的 {server_major}"
            f"（{server}）：请安装 PostgreSQL {server_major} 或更新的客户端工具"
        )


def _conninfo(url: URL) -> str:
    """A libpq connection string of `url` without its password (that goes by PGPASSWORD)."""
    from psycopg.conninfo import make_conninfo

    params: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "dbname": url.database,
    }
    for name, value in url.query.items():
        params[name] = value if isinstance(value, str) else value[-1]
    return make_conninfo(**{k: str(v) for k, v in params.items() if v not in (None, "")})


def _run_tool(argv: list[str], url: URL) -> None:
    """Run pg_dump or pg_restore (no shell), the password in the environment only."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-10:])
        raise BackupError(f"{Path(argv[0]).name} 失败（退出码 {result.returncode}）：{tail}")


# -- verify -------------------------------------------------------------------------------------


def read_manifest(directory: Path) -> dict[str, Any]:
    """Return a backup's manifest; refuse a folder without a readable one, naming in words
    what is wrong with it (never the parser's English or a Python error)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{directory} 中没有 {MANIFEST}：不是完整的备份（备份中断时不写清单）")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BackupError(f"无法读取 {path}：{os_reason(exc)}") from exc
    except UnicodeDecodeError as exc:
        raise BackupError(f"{MANIFEST} 无效：不是 UTF-8 文本") from exc
    except json.JSONDecodeError as exc:
        raise BackupError(
            f"{MANIFEST} 无效：不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列）"
        ) from exc
    if not isinstance(manifest, dict):
        raise BackupError(f"{MANIFEST} 无效：内容应为 JSON 对象")
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{MANIFEST} 无效：format 应为 {FORMAT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{MANIFEST} 无效：不支持的 format_version {manifest.get('format_version')}"
        )
    for name, kind in _MANIFEST_FIELDS:
        _manifest_field(manifest, name, kind)
    files = _manifest_field(manifest, "objects.files", dict)
    for key in files:
        _manifest_field(manifest, ("objects", "files", key, "sha256"), str)
        _manifest_field(manifest, ("objects", "files", key, "size"), int)
    database = manifest["database"]
    if (
        database["kind"] not in DATABASE_FILES
        or database["file"] != DATABASE_FILES[database["kind"]]
    ):
        raise BackupError(f"{MANIFEST} 无效：数据库 {database['kind']} / {database['file']}")
    return manifest


#: The manifest's fields every backup has, and their types.
_MANIFEST_FIELDS: tuple[tuple[str, type], ...] = (
    ("created_at", str),
    ("schema_revision", str),
    ("database.kind", str),
    ("database.file", str),
    ("database.sha256", str),
    ("database.size", int),
    ("checkpoint.seq", int),
    ("checkpoint.hash", str),
    ("objects.count", int),
    ("objects.bytes", int),
)


def _manifest_field(manifest: dict[str, Any], name: str | tuple[str, ...], kind: type) -> Any:
    """The manifest's field at a dotted path (or the path's parts), refused in words when it
    is missing or not of its type (a count as a number, not a text)."""
    parts = tuple(name.split(".")) if isinstance(name, str) else name
    shown = ".".join(parts)
    value: Any = manifest
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            raise BackupError(f"{MANIFEST} 无效：缺少 {shown}")
        value = value[part]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BackupError(f"{MANIFEST} 无效：{shown} 的值类型不对")
    return value


def verify_backup(directory: Path) -> tuple[dict[str, Any], list[str]]:
    """Re-hash every file of a backup against its manifest; return the manifest and problems.

    A problem names the file: the database file or `objects/<key>`, missing, altered (hash,
    size) or not in the manifest; and totals that do not add up.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    problems: list[str] = []
    database = manifest["database"]
    db_path = directory / database["file"]
    if not db_path.is_file():
        problems.append(f"数据库文件缺失：{database['file']}")
    else:
        sha, size = _hash_file(db_path)
        problems.extend(_file_problem(database["file"], sha, size, database))
    objects = manifest["objects"]
    files: dict[str, dict[str, Any]] = objects["files"]
    folder = LocalStore(directory / OBJECTS)
    for key, entry in sorted(files.items()):
        name = f"{OBJECTS}/{key}"
        try:
            reader = folder.open(key)
        except (ObjectNotFound, InvalidKey):
            problems.append(f"对象缺失：{name}")
            continue
        hashing = _Hashing(reader)
        with reader:
            while hashing.read(CHUNK_SIZE):
                pass
        problems.extend(_file_problem(name, hashing.sha256, hashing.size, entry))
    problems.extend(
        f"清单中没有的文件：{OBJECTS}/{info.key}" for info in folder.list() if info.key not in files
    )
    if objects["count"] != len(files):
        problems.append(f"清单的对象数 {objects['count']} 与所列对象 {len(files)} 个不符")
    listed = sum(int(e["size"]) for e in files.values())
    if objects["bytes"] != listed:
        problems.append(f"清单的对象字节数 {objects['bytes']} 与所列对象的 {listed} 不符")
    return manifest, problems


def _file_problem(name: str, sha256: str, size: int, entry: dict[str, Any]) -> list[str]:
    found = []
    if sha256 != entry["sha256"]:
        found.append(f"SHA-256 为 {sha256}，清单记为 {entry['sha256']}")
    if size != int(entry["size"]):
        found.append(f"大小为 {size} 字节，清单记为 {entry['size']}")
    return [f"文件已改动：{name}：{'；'.join(found)}"] if found else []


# -- restore ------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    """What a restore restored and verified."""

    manifest: dict[str, Any]
    events: int = 0
    items: int = 0
    objects: int = 0
    object_bytes: int = 0
    restored_seq: int = 0
    notes: list[str] = field(default_factory=list)


def restore_backup(
    directory: Path,
    engine: Engine,
    factory: sessionmaker[Session],
    store: ObjectStore,
    *,
    owner_url: str | None = None,
) -> RestoreReport:
    """Restore a verified backup into an empty database and the store, verify, record it.

    `engine` is the configured database and `factory` the app's sessions on it; on
    PostgreSQL, `owner_url` (the migration role's URL, when one is configured) restores the
    schema and the app role is granted its rights again. Refused, with nothing written, when
    the backup does not verify, was taken of another kind of database or of a schema this
    program does not know, when the database is not empty, or while another restore into it
    runs (`_sole_restore`: two restores at once restore once). After the restore the chain must
    end exactly at the manifest's checkpoint, the tables must replay from it and every object
    must be intact; then `backup_restored` is appended to the trail. A SQLite file restored
    into is made owner-only (0600), as the backup's copy is.
    """
    directory = Path(directory)
    manifest, problems = verify_backup(directory)
    if problems:
        raise BackupError("备份校验失败，未恢复：\n" + "\n".join(f"  {p}" for p in problems))
    kind = manifest["database"]["kind"]
    if kind != engine.dialect.name:
        raise BackupError(f"备份的是 {kind} 数据库，当前配置的是 {engine.dialect.name}：无法恢复")
    revision = manifest["schema_revision"]
    script = ScriptDirectory.from_config(alembic_config(str(engine.url)))
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise BackupError(
            f"备份的数据库结构版本 {revision} 不是本程序已知的版本：请用不早于备份时的程序版本恢复"
        )
    with _sole_restore(engine):
        has_tables = _ensure_empty(engine)
        report = RestoreReport(manifest=manifest)
        _restore_objects(directory, manifest, store, report)
        db_file = directory / manifest["database"]["file"]
        owner = make_url(owner_url) if owner_url else engine.url
        if kind == "sqlite":
            _owner_only_database(engine)
            _restore_sqlite(db_file, engine)
        else:
            _restore_postgresql(db_file, owner, clean=has_tables)
        engine.dispose()
        if revision != script.get_current_head():
            report.notes.append(
                f"数据库结构已从备份时的 {revision} 升级到 {script.get_current_head()}"
            )
        _migrate(engine, owner)
        _verify_restored(factory, store, manifest, report)
        with unit_of_work(factory) as session:
            event = record_restore(session, manifest)
            report.restored_seq = event.seq
    return report


@contextlib.contextmanager
def _sole_restore(engine: Engine) -> Iterator[None]:
    """Hold the database's restore lock from the check that it is empty until the restore is
    recorded; refuse at once, with nothing written, when another restore holds it.

    Without it, two restores started together both find the database empty: on PostgreSQL
    the later `pg_restore` fails on the tables the first one made (a database that had the
    schema is replaced by the later one's `--clean`), on SQLite the later copy overwrites the
    first; either way both can succeed and record two `backup_restored`. PostgreSQL: a
    session-level advisory lock, on a connection of its own that holds nothing else (the
    restore runs in `pg_restore`'s connection; `--clean` must be able to drop every table).
    SQLite: an exclusive `flock` of a file beside the database (`<file>.restore-lock`, kept),
    not of the database file: closing another descriptor of it would drop SQLite's own locks.
    Either is released when the process ends, however it ends.
    """
    if engine.dialect.name == "postgresql":
        locker = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with locker.connect() as conn:
                taken = conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": RESTORE_LOCK}
                ).scalar_one()
                if not taken:
                    raise BackupError(ANOTHER_RESTORE)
                yield  # closing the connection releases the lock
        finally:
            locker.dispose()
        return
    database = engine.url.database
    if not database or database == ":memory:":  # no other process can reach it
        yield
        return
    path = f"{database}.restore-lock"
    try:
        lock_file = open(path, "a+b")  # noqa: SIM115 - closed below, after the restore
    except OSError as exc:
        raise BackupError(f"无法创建恢复锁文件 {path}：{os_reason(exc)}；什么也没有改动") from exc
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(ANOTHER_RESTORE) from None
        yield  # closing the file releases the lock


def _ensure_empty(engine: Engine) -> bool:
    """Refuse a database that holds any row; return whether it has the app's tables."""
    existing = set(inspect(engine).get_table_names())
    tables = [t for t in Base.metadata.sorted_tables if t.name in existing]
    filled: list[tuple[str, int]] = []
    with engine.connect() as conn:
        for table in tables:
            stmt = select(func.count()).select_from(table)
            if table.name == ChainHead.__tablename__:
                stmt = stmt.where(table.c.seq > 0)  # the genesis head of a migrated database
            count = int(conn.execute(stmt).scalar_one())
            if count:
                filled.append((table.name, count))
    if filled:
        filled.sort(
            key=lambda f: MAIN_TABLES.index(f[0]) if f[0] in MAIN_TABLES else len(MAIN_TABLES)
        )
        shown = "、".join(f"{name}（{count} 行）" for name, count in filled[:SHOWN_TABLES])
        more = f" 等 {len(filled)} 个表" if len(filled) > SHOWN_TABLES else ""
        raise BackupError(
            f"目标数据库不是空的：{shown}{more}。恢复只写入空数据库，什么也没有改动；"
            "请新建一个空数据库（或新的 instance 目录）再恢复"
        )
    return bool(tables)


def _restore_objects(
    directory: Path, manifest: dict[str, Any], store: ObjectStore, report: RestoreReport
) -> None:
    """Put every object of the backup into the store (objects first, then the rows)."""
    folder = LocalStore(directory / OBJECTS)
    for key, entry in sorted(manifest["objects"]["files"].items()):
        with folder.open(key) as reader:
            hashing = _Hashing(reader)
            content_type = str(entry.get("content_type") or "application/octet-stream")
            store.put(key, hashing, int(entry["size"]), content_type)
        differences = _differences(hashing, entry["sha256"], int(entry["size"]))
        if differences:  # changed since it was verified a moment ago
            raise BackupError(f"备份中的对象在恢复时改变：{OBJECTS}/{key}：{differences}")
        report.objects += 1
        report.object_bytes += hashing.size


def _owner_only_database(engine: Engine) -> None:
    """Make the SQLite file restored into (and its WAL files) 0600 before the backup's rows go
    in: the backup's copy is the owner's alone, and the file the first connection made has
    the umask's mode (0644), for every local user to read the password hashes. SQLite gives
    a WAL file made later the database file's mode."""
    database = engine.url.database
    if not database or database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        path = Path(database + suffix)
        if path.exists():
            path.chmod(OWNER_ONLY_FILE)


def _restore_sqlite(db_file: Path, engine: Engine) -> None:
    source = sqlite3.connect(db_file.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        raw = engine.raw_connection()
        try:
            source.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()
    finally:
        source.close()


def _restore_postgresql(db_file: Path, owner: URL, *, clean: bool) -> None:
    pg_restore = _client_tool("pg_restore")
    argv = [pg_restore, "--no-password", "--no-owner", "--no-acl", "--single-transaction",
            "--exit-on-error", f"--dbname={_conninfo(owner)}"]  # fmt: skip
    if clean:  # the schema of an empty migrated database is replaced by the backup's
        argv += ["--clean", "--if-exists"]
    _run_tool([*argv, str(db_file)], owner)


def _migrate(engine: Engine, owner: URL) -> None:
    """Bring an older backup's schema to this program's; give the app role its rights again."""
    if engine.dialect.name != "postgresql" or owner.username == engine.url.username:
        migrate(engine)
        return
    owner_engine = create_engine(owner, poolclass=NullPool)
    try:
        migrate(owner_engine)
        roles.grant_app_privileges(owner_engine, str(engine.url.username))
    finally:
        owner_engine.dispose()


def _verify_restored(
    factory: sessionmaker[Session],
    store: ObjectStore,
    manifest: dict[str, Any],
    report: RestoreReport,
) -> None:
    """The restored chain ends at the checkpoint, the tables replay, every object is intact."""
    cp = manifest["checkpoint"]
    with factory() as session:
        check = reconcile.check_audit(session, cp)
        objects = maintenance.verify_objects(session, store)
        session.rollback()
    chain = check.chain
    problems: list[str] = []
    if not chain.ok:
        problems.append(f"审计链校验失败：第 {chain.first_bad_seq} 号事件（{chain.problem}）")
    elif (chain.head_seq, chain.head_hash) != (int(cp["seq"]), str(cp["hash"])):
        problems.append(
            f"审计链头 #{chain.head_seq} {chain.head_hash} 与备份的检查点"
            f" #{cp['seq']} {cp['hash']} 不符"
        )
    if not check.tables.ok:
        problems.extend(reconcile.iter_descriptions(check.tables))
    for problem in objects.problems:
        problems.append(
            f"对象{'缺失' if problem.problem == 'missing' else '已改动'}：{problem.key}"
        )
    if problems:
        raise BackupError(
            "恢复后的校验失败，未记录恢复事件；请删除此数据库后重新恢复：\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    report.events = chain.events
    report.items = check.tables.items


def record_restore(session: Session, manifest: dict[str, Any]) -> audit.AuditEvent:
    """Append `backup_restored` after the restored head: when the backup was taken, and its
    checkpoint, so that everything after it is seen to be gone."""
    cp = manifest["checkpoint"]
    return audit.record_event(
        session,
        actor=None,
        actor_name=CLI_ACTOR,
        action="backup_restored",
        target_type="backup",
        target_id=manifest["created_at"],
        payload={
            "backup_created_at": manifest["created_at"],
            "checkpoint_seq": int(cp["seq"]),
            "checkpoint_hash": str(cp["hash"]),
            "object_count": int(manifest["objects"]["count"]),
        },
    )


# -- files --------------------------------------------------------------------------------------


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_atomically(path: Path, content: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    _new_private_file(temp)
    with open(temp, "w", encoding="utf-8") as file:
        file.write(content)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)


def iter_summary(manifest: dict[str, Any]) -> Iterator[str]:
    """Describe a manifest in lines for people."""
    database, cp, objects = manifest["database"], manifest["checkpoint"], manifest["objects"]
    yield f"备份时间：{manifest['created_at']}（UTC）"
    yield f"数据库：{database['kind']}，结构版本 {manifest['schema_revision']}"
    yield f"审计链检查点：#{cp['seq']} {cp['hash']}"
    yield f"对象：{objects['count']} 个，共 {objects['bytes']} 字节"
