"""One department's evidence as a ZIP archive, written as a stream.

Layout: ``<indicator code>-<indicator title>/<original name>`` for every live evidence file, a
``manifest.csv`` (UTF-8 with BOM, so Excel shows the Chinese) listing live and removed files,
and ``audit_events.jsonl`` with the audit events of the department's items. Objects are copied
chunk by chunk and hashed on the way: an object whose SHA-256 or size differs from its row
stops the archive with :class:`ArchiveIntegrityError` — an archive is evidence, it must not
silently carry altered files. Lives in ``workflow/`` because it reads our models.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import IO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from storage.base import CHUNK_SIZE, ObjectStore
from storage.errors import ObjectNotFound
from storage.ingest import sanitize_filename
from workflow.audit import event_body, json_line
from workflow.errors import DomainError
from workflow.models import AuditEvent, ChainHead, Department, Evidence, Indicator, Item
from workflow.spreadsheets import safe_csv_writer

MANIFEST_NAME = "manifest.csv"
EVENTS_NAME = "audit_events.jsonl"
# Chinese headers for the people who open it in Excel; the last column keeps the stable
# English code of the file's purpose for machines. Times are the assessment's wall clock
# (Asia/Shanghai) with their offset, so they read right and still parse as ISO 8601.
MANIFEST_COLUMNS = (
    "材料编号",
    "归档路径",
    "原文件名",
    "大小（字节）",
    "SHA-256",
    "上传时间",
    "上传人",
    "评分项",
    "用途",
    "删除时间",
    "用途代码",
)
PURPOSE_TEXT = {"evidence": "佐证材料", "not_involved_proof": "不涉及证明", "appeal": "申诉材料"}

# Formats that are already compressed gain nothing from deflate; text and CSV do.
_DEFLATED_TYPES = ("text/",)

_MAX_NAME_BYTES = 255


class ArchiveIntegrityError(DomainError):
    """A stored object is missing or differs from its evidence row; no archive is produced."""

    status = 500
    code = "archive_integrity"


@dataclass(frozen=True)
class ArchiveSummary:
    """What went into an archive."""

    files: int  # live evidence files written
    removed: int  # removed evidence listed in the manifest only
    events: int  # audit events written
    bytes: int  # evidence bytes copied (uncompressed)


def write_department_archive(
    session: Session, store: ObjectStore, department: Department, out: IO[bytes]
) -> ArchiveSummary:
    """Write the department's evidence, manifest and audit events as a ZIP to *out*.

    *out* may be any writable binary file; nothing is held in memory beyond one chunk. Raise
    :class:`ArchiveIntegrityError` when an object is missing or altered, and let
    ``StorageUnavailable`` through; the caller discards the partial output.
    """
    zone = _zone(department.assessment.timezone)
    rows, head = _evidence_of(session, department)
    paths = _assign_paths(rows)
    copied = files = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for row in rows:
            path = paths.get(row.id)
            if path is None:
                continue
            copied += _copy_object(archive, store, row, path, zone)
            files += 1
        _write_manifest(archive, rows, paths, zone)
        events = _write_events(archive, session, department, head)
    return ArchiveSummary(files=files, removed=len(rows) - files, events=events, bytes=copied)


def folder_name(indicator: Indicator) -> str:
    """Return the archive folder of an indicator: ``<code>-<title>``, safe on every system."""
    raw = f"{indicator.code}-{indicator.title}".replace("/", "_").replace("\\", "_")
    return sanitize_filename(raw)


def _head(session: Session) -> int:
    return session.scalar(select(ChainHead.seq).where(ChainHead.id == 1)) or 0


def _evidence_of(session: Session, department: Department) -> tuple[list[Evidence], int]:
    """The department's evidence rows and the audit chain's head as the same statement saw
    them. Events are appended in the order their transactions commit (each holds the head
    until it commits), so the events up to that head are exactly those of the rows read: an
    upload or removal committed while the files are copied is in neither."""
    before = _head(session)  # without rows the statement yields no head: this one is older
    stmt = (
        select(Evidence, select(ChainHead.seq).where(ChainHead.id == 1).scalar_subquery())
        .join(Item, Item.id == Evidence.item_id)
        .join(Indicator, Indicator.id == Item.indicator_id)
        .where(Item.department_id == department.id)
        .options(
            joinedload(Evidence.item).joinedload(Item.indicator),
            joinedload(Evidence.scoring_point),
            joinedload(Evidence.uploaded_by),
        )
        .order_by(Indicator.position, Evidence.id)
    )
    found = session.execute(stmt).all()
    return [row for row, _ in found], (found[0][1] if found else before)


def _assign_paths(rows: list[Evidence]) -> dict[int, str]:
    """Give every live row a unique path; clashing names become ``name (2).pdf`` and so on."""
    taken: set[str] = set()
    paths: dict[int, str] = {}
    for row in rows:
        if row.removed_at is not None:
            continue
        folder = folder_name(row.item.indicator)
        name = row.filename
        number = 1
        # Case-insensitive: Windows and macOS unpack "A.pdf" and "a.pdf" onto one file.
        while f"{folder}/{name}".casefold() in taken:
            number += 1
            name = _numbered(row.filename, number)
        taken.add(f"{folder}/{name}".casefold())
        paths[row.id] = f"{folder}/{name}"
    return paths


def _numbered(filename: str, number: int) -> str:
    stem, extension = os.path.splitext(filename)
    suffix = f" ({number}){extension}"
    budget = _MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
    return stem + suffix


def _copy_object(
    archive: zipfile.ZipFile, store: ObjectStore, row: Evidence, path: str, zone: tzinfo
) -> int:
    """Stream one object into the archive, hashing it; raise on a missing or altered object."""
    info = zipfile.ZipInfo(path, date_time=_zip_time(row.uploaded_at, zone))
    info.compress_type = (
        zipfile.ZIP_DEFLATED if row.content_type.startswith(_DEFLATED_TYPES) else zipfile.ZIP_STORED
    )
    info.external_attr = 0o644 << 16
    info.file_size = row.size  # lets zipfile choose ZIP64 headers for objects over 2 GiB
    digest = hashlib.sha256()
    size = 0
    try:
        reader = store.open(row.storage_key)
    except ObjectNotFound as exc:
        raise ArchiveIntegrityError(
            "材料 #%(id)s（%(filename)s）的文件不存在：%(key)s",
            detail={"evidence_id": row.id, "key": row.storage_key},
            params={"id": row.id, "filename": row.filename, "key": row.storage_key},
        ) from exc
    with reader, archive.open(info, "w") as member:
        for chunk in reader.iter_chunks(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
            member.write(chunk)
    actual = digest.hexdigest()
    if actual != row.sha256 or size != row.size:
        raise ArchiveIntegrityError(
            "材料 #%(id)s（%(filename)s）的文件已被改动：SHA-256 %(actual)s，"
            "应为 %(sha256)s；大小 %(size)s，应为 %(expected_size)s",
            detail={"evidence_id": row.id, "key": row.storage_key, "sha256": actual},
            params={
                "id": row.id,
                "filename": row.filename,
                "actual": actual,
                "sha256": row.sha256,
                "size": size,
                "expected_size": row.size,
            },
        )
    return size


def _write_manifest(
    archive: zipfile.ZipFile, rows: list[Evidence], paths: dict[int, str], zone: tzinfo
) -> None:
    info = _member_info(MANIFEST_NAME, zone)
    with archive.open(info, "w") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        writer = safe_csv_writer(text)
        writer.writerow(MANIFEST_COLUMNS)
        for row in rows:
            writer.writerow(
                (
                    row.id,
                    paths.get(row.id, ""),
                    row.filename,
                    row.size,
                    row.sha256,
                    _local(row.uploaded_at, zone),
                    f"{row.uploaded_by.label}（{row.uploaded_by.username}）",
                    row.scoring_point.code if row.scoring_point else "",
                    PURPOSE_TEXT.get(row.purpose, row.purpose),
                    _local(row.removed_at, zone) if row.removed_at else "",
                    row.purpose,
                )
            )
        text.flush()
        text.detach()  # the member is closed by the with-block, not by the wrapper


def _write_events(
    archive: zipfile.ZipFile, session: Session, department: Department, head: int
) -> int:
    """Write the audit events of the department's items up to `head`, oldest first, one JSON
    per line."""
    item_ids = select(Item.id).where(Item.department_id == department.id)
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.item_id.in_(item_ids), AuditEvent.seq <= head)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=1000)
    )
    count = 0
    with archive.open(_member_info(EVENTS_NAME, _zone(department.assessment.timezone)), "w") as out:
        for event in session.execute(stmt).scalars():
            record = {
                **event_body(event),
                "payload": json.loads(event.payload),
                "prev_hash": event.prev_hash,
                "hash": event.hash,
            }
            out.write(json_line(record).encode("utf-8"))
            count += 1
    return count


def _member_info(name: str, zone: tzinfo) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(datetime.now(UTC), zone))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _zone(name: str) -> tzinfo:
    """ZIP times are local wall-clock times: use the assessment's zone when it is installed."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _zip_time(value: datetime, zone: tzinfo) -> tuple[int, int, int, int, int, int]:
    local = value.astimezone(zone)
    return (max(local.year, 1980), local.month, local.day, local.hour, local.minute, local.second)


def _local(value: datetime, zone: tzinfo) -> str:
    """Format a time as ISO 8601 in `zone`, with its offset (``2018-09-01T10:30:00+08:00``)."""
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).isoformat(timespec="seconds")
