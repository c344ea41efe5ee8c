"""Object store maintenance: orphaned objects (gc) and integrity of referenced ones (verify).

Objects are written before the row that refers to them (DESIGN.md §5), so a crash, a rollback or
a refused request can leave an object no row names. ``find_orphans`` finds those, never one
younger than a grace period (its row may be about to land); ``find_leftovers`` finds what a
write killed half-way left (the local folder's ``.tmp-*`` files), with the same grace period;
``verify_objects`` re-reads every referenced object and compares its SHA-256 and size with
what the database recorded.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Select, null, select
from sqlalchemy.orm import Session

from storage.base import CHUNK_SIZE, ObjectInfo, ObjectStore
from storage.errors import ObjectNotFound
from workflow.db import lock_key, serialise, serialise_shared
from workflow.errors import Conflict
from workflow.models import Base, Evidence, utcnow

log = logging.getLogger(__name__)

#: Content-addressed objects live under this prefix (``sha256/ab/cd/<hex>``).
OBJECT_PREFIX = "sha256/"
#: Background jobs' result files (workflow/jobs.py): kept while a job row names them.
JOB_PREFIX = "jobs/"
#: The prefixes `storage gc` collects orphans under.
GC_PREFIXES = (OBJECT_PREFIX, JOB_PREFIX)

#: An upload in flight stores its object first and commits its row afterwards; 24 h is far
#: longer than any request, so an object this young is never treated as an orphan.
DEFAULT_GRACE = timedelta(hours=24)

#: Every column of this name, in any table, holds an object key that keeps its object alive.
KEY_COLUMN = "storage_key"

_CONTENT_KEY = re.compile(r"sha256/[0-9a-f]{2}/[0-9a-f]{2}/([0-9a-f]{64})")


def key_columns() -> list[Column[str]]:
    """Return every mapped column that stores object keys (evidence, notices, …), by table."""
    return [
        table.c[KEY_COLUMN]
        for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name)
        if KEY_COLUMN in table.c
    ]


def key_rows(column: Column[str], *names: str) -> Select[Any]:
    """Select the rows of `column`'s table that refer to an object: the key, then the named
    columns (NULL where the table has no such column)."""
    table = column.table
    others = [table.c[name] if name in table.c else null() for name in names]
    return select(column, *others).where(column.is_not(None))


def referenced_keys(session: Session) -> set[str]:
    """Return every object key any row refers to (removed evidence included: it is kept)."""
    keys: set[str] = set()
    for column in key_columns():
        keys.update(k for k in session.execute(select(column).distinct()).scalars() if k)
    return keys


def find_orphans(
    session: Session,
    store: ObjectStore,
    grace: timedelta = DEFAULT_GRACE,
    *,
    now: datetime | None = None,
) -> list[ObjectInfo]:
    """Return the objects under ``sha256/`` and ``jobs/`` that no row refers to and that are
    older than *grace* (a job's file is referenced by its row's `storage_key`).

    The references are read before the listing, so an object whose row is committed meanwhile
    is young and protected by the grace period. Storage failures raise ``StorageUnavailable``.
    """
    if grace < timedelta(0):
        raise ValueError("grace period must not be negative")
    cutoff = (now or utcnow()) - grace
    keys = referenced_keys(session)
    return [
        info
        for prefix in GC_PREFIXES
        for info in store.list(prefix)
        if info.key not in keys and info.modified_at <= cutoff
    ]


def object_lock(key: str) -> int:
    """The advisory lock of one stored object: a row about to name it shares it
    (`keep_objects`); `delete_orphans` holds it alone while it checks and deletes."""
    return lock_key("object", key)


def _referenced(session: Session, key: str) -> bool:
    """Tell whether any row names the object `key` (one query a key column)."""
    return any(
        session.execute(select(column).where(column == key).limit(1)).first() is not None
        for column in key_columns()
    )


def hold_object(session: Session, key: str) -> None:
    """Keep `storage gc` off the object `key` until this transaction ends (taken before
    looking whether it is stored: a gc that deleted it came first, and it is written again)."""
    serialise_shared(session, object_lock(key))


def keep_objects(session: Session, store: ObjectStore, keys: Iterable[str]) -> None:
    """Before rows naming these objects, stored already before this request, are written:
    keep `storage gc` off them until this transaction ends, and make sure they are still
    there (a gc may have deleted one as an orphan since the upload found it): otherwise a
    409 `upload_lost`, nothing recorded, the file is to be uploaded again."""
    for key in sorted(set(keys)):
        hold_object(session, key)
        if not store.exists(key):
            raise Conflict(
                "上传的文件在保存前已被存储清理删除，未保存，请重新上传", code="upload_lost"
            )


def delete_orphans(
    session: Session,
    store: ObjectStore,
    grace: timedelta = DEFAULT_GRACE,
    *,
    now: datetime | None = None,
) -> list[ObjectInfo]:
    """Delete the orphans :func:`find_orphans` reports and return them.

    Meant for a session of its own holding no changes: its read transaction is ended and the
    references are read again just before deleting, so a row committed during the listing
    still saves its object.
    """
    orphans = find_orphans(session, store, grace, now=now)
    if not orphans:
        return []
    session.rollback()  # a new snapshot: SQLite would otherwise show the old one again
    keys = referenced_keys(session)
    deleted: list[ObjectInfo] = []
    for info in orphans:
        if info.key in keys:
            continue
        # Alone on the object: an upload recording a row that names it (it found the object
        # stored, so its age did not change) commits first and is seen, or waits and then
        # finds it gone (`keep_objects`).
        session.rollback()
        serialise(session, object_lock(info.key))
        if not _referenced(session, info.key):
            store.delete(info.key)
            log.info("deleted orphaned object %s (%d bytes)", info.key, info.size)
            deleted.append(info)
    session.rollback()
    return deleted


def find_leftovers(
    store: ObjectStore, grace: timedelta = DEFAULT_GRACE, *, now: datetime | None = None
) -> list[ObjectInfo]:
    """Return the leftovers of interrupted writes older than *grace* (a live write is younger)."""
    if grace < timedelta(0):
        raise ValueError("grace period must not be negative")
    cutoff = (now or utcnow()) - grace
    return [info for info in store.list_leftovers() if info.modified_at <= cutoff]


def delete_leftovers(
    store: ObjectStore, grace: timedelta = DEFAULT_GRACE, *, now: datetime | None = None
) -> list[ObjectInfo]:
    """Delete the leftovers :func:`find_leftovers` reports and return them."""
    leftovers = find_leftovers(store, grace, now=now)
    for info in leftovers:
        store.delete_leftover(info.key)
        log.info("deleted leftover of an interrupted write %s (%d bytes)", info.key, info.size)
    return leftovers


@dataclass(frozen=True)
class ObjectProblem:
    """A referenced object that is missing or whose content differs from the record."""

    key: str
    evidence_ids: tuple[int, ...]  # evidence rows that refer to it
    other_refs: tuple[str, ...]  # rows of other tables, as "notices#3"
    problem: str  # "missing" or "altered"
    detail: str  # for people: what differs


@dataclass
class VerifyReport:
    """What ``verify_objects`` found."""

    checked: int = 0
    bytes_read: int = 0
    missing: list[ObjectProblem] = field(default_factory=list)
    altered: list[ObjectProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether every referenced object is present and intact."""
        return not self.missing and not self.altered

    @property
    def problems(self) -> list[ObjectProblem]:
        """Return missing and altered objects, in key order."""
        return sorted(self.missing + self.altered, key=lambda p: p.key)


@dataclass
class Expected:
    """The hash and size the rows referring to one object expect of it, and those rows."""

    sha256: str | None
    size: int | None
    evidence_ids: list[int] = field(default_factory=list)
    other_refs: list[str] = field(default_factory=list)


def verify_objects(session: Session, store: ObjectStore) -> VerifyReport:
    """Re-read every referenced object (streaming) and report missing and altered ones.

    An object is altered when its SHA-256 or size differs from what its rows recorded (tables
    without those columns are checked against the hash their content-addressed key names).
    Removed evidence counts: its object is kept for the record. Storage outages raise
    ``StorageUnavailable``: a verification that could not read is not a verdict.
    """
    report = VerifyReport()
    for key, expected in sorted(expected_objects(session).items()):
        refs = (tuple(expected.evidence_ids), tuple(expected.other_refs))
        try:
            reader = store.open(key)
        except ObjectNotFound:
            report.missing.append(ObjectProblem(key, *refs, "missing", "对象不存在"))
            continue
        digest = hashlib.sha256()
        size = 0
        with reader:
            for chunk in reader.iter_chunks(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
        report.checked += 1
        report.bytes_read += size
        actual = digest.hexdigest()
        differences = []
        if expected.sha256 is not None and actual != expected.sha256:
            differences.append(f"SHA-256 {actual}，应为 {expected.sha256}")
        if expected.size is not None and size != expected.size:
            differences.append(f"大小 {size}，应为 {expected.size}")
        if differences:
            report.altered.append(ObjectProblem(key, *refs, "altered", "；".join(differences)))
    return report


def expected_objects(session: Session) -> dict[str, Expected]:
    """Map every referenced key to the hash and size its rows expect of it (`storage verify`,
    `backup create`)."""
    expected: dict[str, Expected] = {}
    for column in key_columns():
        table = column.table
        stmt = key_rows(column, "sha256", "size", "id")
        if "id" in table.c:
            stmt = stmt.order_by(table.c.id)
        for key, sha256, size, row_id in session.execute(stmt):
            if sha256 is None:
                sha256 = _hash_in_key(key)
            entry = expected.setdefault(key, Expected(sha256=sha256, size=size))
            if (entry.sha256, entry.size) != (sha256, size):
                # Rows disagree about one content-addressed key: trust the key's own hash.
                entry.sha256, entry.size = _hash_in_key(key), None
            if table.name == Evidence.__tablename__:
                entry.evidence_ids.append(row_id)
            else:
                entry.other_refs.append(f"{table.name}#{row_id}")
    return expected


def _hash_in_key(key: str) -> str | None:
    match = _CONTENT_KEY.fullmatch(key)
    return match.group(1) if match else None
