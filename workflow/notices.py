"""Score notices and the summary table: snapshot the figures, render, store, record, audit.

The rendering itself is pure (`scoring.notice`); this module gathers the figures from the
database, freezes them into a snapshot, and issues versions:
- a department's notice exists only once every item of the department is `scored`
  (Conflict `not_all_scored` otherwise, naming the unscored indicators);
- ranks are among all departments of the assessment by their current totals (an item's
  total counts once it has been scored, also while it is under appeal), so a notice issued
  before the last department is finished states the rank as it stood then — its snapshot
  says so, and re-issuing after changes makes a new version;
- issuing again makes version N+1; rows and objects of earlier versions are never changed;
- the latest uploaded letterhead (`notice_bases`) is the base document when there is one.
No Flask here: the web views and the CLI call these functions and commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from io import BytesIO
from typing import Any, BinaryIO, Final

import docx
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from scoring.notice import (
    NoticeCategory,
    NoticeData,
    NoticeIndicator,
    NoticePoint,
    SummaryData,
    SummaryRow,
    render_notice,
    render_summary,
)
from scoring.totals import DepartmentResult, ItemFigure, quantize, results
from storage.base import ObjectStore
from storage.errors import FileTooLarge, IngestRejected
from storage.ingest import extension_of, object_key_for, sanitize_filename
from storage.sniff import sniff_file
from workflow.audit import record_event
from workflow.errors import Conflict, Forbidden, InvalidValue, NotFound
from workflow.models import (
    Assessment,
    Category,
    Department,
    Indicator,
    Item,
    Notice,
    NoticeBase,
    User,
)
from workflow.permissions import can_read_all, can_read_department
from workflow.states import STATE_LABELS, Role, State

NOTICE: Final = "notice"
SUMMARY: Final = "summary"
DOCX_CONTENT_TYPE: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_BASE_BYTES: Final = 20 * 1024 * 1024
ISSUER_ROLES: Final = (Role.ADMIN, Role.SCORER)
INCOMPLETE_MARK: Final = "（评分未完成）"
CLI_ACTOR: Final = "cli"


class UnsupportedBaseDocument(InvalidValue):
    """The uploaded letterhead is not a .docx python-docx can open."""

    status = 415
    code = "unsupported_file_type"


# -- figures ---------------------------------------------------------------------------------


def _today(assessment: Assessment) -> dt.date:
    """Return today's date where the office is (the date printed on the document)."""
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(assessment.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    return dt.datetime.now(zone).date()


def department_results(session: Session, assessment: Assessment) -> dict[int, DepartmentResult]:
    """Return every department's total, conversion, rank and completeness, by department id."""
    departments = dict(
        session.execute(
            select(Department.id, Department.name)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position, Department.id)
        ).all()
    )
    figures = [
        ItemFigure(department_id=d, is_scored=state == State.SCORED.value, total=total)
        for d, state, total in session.execute(
            select(Item.department_id, Item.state, Item.total).where(
                Item.assessment_id == assessment.id
            )
        )
    ]
    found = results(departments, figures, assessment.total_points, assessment.converted_points)
    return {r.department_id: r for r in found}


def _categories(session: Session, assessment: Assessment) -> list[Category]:
    return list(
        session.execute(
            select(Category)
            .where(Category.assessment_id == assessment.id)
            .order_by(Category.position, Category.id)
            .options(selectinload(Category.indicators).selectinload(Indicator.scoring_points))
        ).scalars()
    )


def chinese_quotes(text: str) -> str:
    """Turn paired ASCII double quotes into Chinese ones: "放管服" → “放管服”."""
    if text.count('"') % 2:
        return text
    parts = text.split('"')
    return "".join(
        part if n == 0 else ("“" if n % 2 else "”") + part for n, part in enumerate(parts)
    )


def _unscored_message(department: Department, unscored: list[Item]) -> str:
    listed = "；".join(
        f"{item.indicator.code}.{item.indicator.title}（{STATE_LABELS[State(item.state)]}）"
        for item in sorted(unscored, key=lambda i: (i.indicator.position, i.indicator.id))
    )
    return (
        f"{department.name}尚有 {len(unscored)} 个考核指标未完成评分，"
        f"暂不能出具考核结果通知书：{listed}"
    )


def notice_snapshot(session: Session, assessment: Assessment, department: Department) -> NoticeData:
    """Gather one department's figures for its notice (version 1; the issuer sets it).

    Raise Conflict `not_all_scored`, naming the unscored indicators, while any item of the
    department is not in state `scored`.
    """
    items = list(
        session.execute(
            select(Item)
            .where(Item.department_id == department.id)
            .options(
                selectinload(Item.scores),
                selectinload(Item.claims),
                selectinload(Item.indicator),
            )
        ).scalars()
    )
    if not items:
        raise Conflict(f"{department.name}没有考核事项", code="not_all_scored")
    unscored = [item for item in items if item.state != State.SCORED.value]
    if unscored:
        detail = [
            {"indicator": i.indicator.code, "state": i.state}
            for i in sorted(unscored, key=lambda i: (i.indicator.position, i.indicator.id))
        ]
        raise Conflict(
            _unscored_message(department, unscored), code="not_all_scored", detail=detail
        )
    scores = {s.scoring_point_id: s for item in items for s in item.scores}
    upheld = {c.scoring_point_id for item in items for c in item.claims if c.is_upheld}
    result = department_results(session, assessment)[department.id]
    categories = []
    for category in _categories(session, assessment):
        indicators = []
        for indicator in category.indicators:
            points = []
            for point in indicator.scoring_points:
                score = scores.get(point.id)
                is_upheld = point.id in upheld
                points.append(
                    NoticePoint(
                        code=point.code,
                        title=point.title,
                        max_points=point.max_points,
                        awarded=score.points if score is not None else None,
                        # The renderer prints 不涉及（已核实） itself for upheld claims.
                        deduction_reason=None
                        if is_upheld or score is None
                        else score.deduction_reason,
                        not_involved_upheld=is_upheld,
                    )
                )
            indicators.append(
                NoticeIndicator(
                    code=indicator.code,
                    title=indicator.title,
                    max_points=indicator.max_points,
                    points=tuple(points),
                )
            )
        categories.append(
            NoticeCategory(
                code=category.code,
                title=category.title,
                max_points=category.max_points,
                indicators=tuple(indicators),
            )
        )
    return NoticeData(
        year=assessment.year,
        title=chinese_quotes(assessment.notice_title),
        document_no=assessment.document_no,
        issuer=assessment.issuer,
        issued_on=_today(assessment),
        department=department.full_name or department.name,
        total=result.total,
        total_max=assessment.total_points,
        converted=result.converted,
        converted_max=assessment.converted_points,
        rank=result.rank,
        department_count=len(assessment.departments),
        categories=tuple(categories),
    )


def summary_snapshot(session: Session, assessment: Assessment) -> SummaryData:
    """Gather the summary table: every department, points per category, total, by rank.

    Departments whose items are not all scored are listed with their current points and
    the mark （评分未完成） after their name, so the table never passes for final.
    """
    categories = _categories(session, assessment)
    column = {c.id: n for n, c in enumerate(categories)}
    by_department: dict[int, list[Decimal]] = {
        d.id: [Decimal(0)] * len(categories) for d in assessment.departments
    }
    rows = session.execute(
        select(Item.department_id, Indicator.category_id, Item.total)
        .join(Indicator, Indicator.id == Item.indicator_id)
        .where(Item.assessment_id == assessment.id, Item.total.is_not(None))
    )
    for department_id, category_id, total in rows:
        if department_id in by_department and total is not None:
            by_department[department_id][column[category_id]] += total
    names = {d.id: d.full_name or d.name for d in assessment.departments}
    summary_rows = []
    for result in department_results(session, assessment).values():
        label = names[result.department_id]
        if not result.is_complete:
            label += INCOMPLETE_MARK
        summary_rows.append(
            SummaryRow(
                rank=result.rank,
                department=label,
                category_points=tuple(quantize(p) for p in by_department[result.department_id]),
                total=result.total,
                converted=result.converted,
            )
        )
    return SummaryData(
        year=assessment.year,
        title=f"{assessment.year}年度“放管服”工作考核结果汇总表",
        document_no=assessment.document_no,
        issuer=assessment.issuer,
        issued_on=_today(assessment),
        category_titles=tuple(c.title for c in categories),
        category_max=tuple(c.max_points for c in categories),
        rows=tuple(summary_rows),
    )


def _json_safe(value: Any) -> Any:
    """Turn snapshot values into JSON: decimals as two-place strings, dates as ISO text."""
    if isinstance(value, Decimal):
        return format(quantize(value), "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def snapshot_json(data: NoticeData | SummaryData) -> dict[str, Any]:
    """Return the snapshot as stored and audited: every figure the document shows."""
    out: dict[str, Any] = _json_safe(dataclasses.asdict(data))
    return out


def _figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The part of a snapshot that decides whether a new version is needed (not date, version)."""
    return {k: v for k, v in snapshot.items() if k not in ("issued_on", "version")}


# -- issuing ---------------------------------------------------------------------------------


def _require_issuer(actor: User | None) -> None:
    """Issuing needs an office role that decides scores (admin or scorer); None is the CLI."""
    if actor is not None and not (actor.is_active and actor.has_role(*ISSUER_ROLES)):
        raise Forbidden("只有管理员或评分员可以印发考核结果通知书", code="role_required")


def latest_notice(
    session: Session, assessment: Assessment, kind: str, department: Department | None
) -> Notice | None:
    """Return the newest issued version of a department's notice or of the summary."""
    stmt = select(Notice).where(Notice.assessment_id == assessment.id, Notice.kind == kind)
    if department is None:
        stmt = stmt.where(Notice.department_id.is_(None))
    else:
        stmt = stmt.where(Notice.department_id == department.id)
    return session.execute(stmt.order_by(Notice.version.desc()).limit(1)).scalar_one_or_none()


def list_notices(
    session: Session,
    assessment: Assessment,
    kind: str,
    department: Department | None,
    *,
    after_version: int = 0,
    limit: int = 50,
) -> list[Notice]:
    """Return issued versions, oldest first, after a version (keyset pagination)."""
    stmt = select(Notice).where(
        Notice.assessment_id == assessment.id,
        Notice.kind == kind,
        Notice.version > after_version,
    )
    if department is None:
        stmt = stmt.where(Notice.department_id.is_(None))
    else:
        stmt = stmt.where(Notice.department_id == department.id)
    return list(session.execute(stmt.order_by(Notice.version).limit(limit)).scalars())


def latest_base(session: Session, assessment: Assessment) -> NoticeBase | None:
    """Return the letterhead in force (the latest upload), or None for the shipped base."""
    return session.execute(
        select(NoticeBase)
        .where(NoticeBase.assessment_id == assessment.id)
        .order_by(NoticeBase.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def read_object(store: ObjectStore, key: str) -> bytes:
    """Return a stored object's bytes (notices and letterheads are small)."""
    with store.open(key) as reader:
        return reader.read()


def _lock_assessment(session: Session, assessment: Assessment) -> None:
    """Serialise issuing per assessment, so two requests never take the same version."""
    session.execute(select(Assessment.id).where(Assessment.id == assessment.id).with_for_update())


def notice_filename(rank: int, department: str, version: int) -> str:
    """Return `<rank>-<department>-考核结果通知书-v<N>.docx` (rank two digits, so names sort)."""
    return sanitize_filename(f"{rank:02d}-{department}-考核结果通知书-v{version}.docx")


def summary_filename(version: int) -> str:
    """Return `汇总表-v<N>.docx`."""
    return f"汇总表-v{version}.docx"


def _issue(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    department: Department | None,
    *,
    kind: str,
    data: NoticeData | SummaryData,
    render: Callable[[int, bytes | None], bytes],
    filename: Callable[[int], str],
    actor: User | None,
    only_if_changed: bool,
    trigger: str,
) -> Notice:
    """Store a new version unless `only_if_changed` and the figures and base are unchanged."""
    base = latest_base(session, assessment)
    base_sha256 = base.sha256 if base is not None else None
    snapshot = snapshot_json(data)
    previous = latest_notice(session, assessment, kind, department)
    if (
        only_if_changed
        and previous is not None
        and previous.base_sha256 == base_sha256
        and _figures(previous.snapshot) == _figures(snapshot)
    ):
        return previous
    version = previous.version + 1 if previous is not None else 1
    snapshot["version"] = version
    base_bytes = read_object(store, base.storage_key) if base is not None else None
    content = render(version, base_bytes)
    sha256 = hashlib.sha256(content).hexdigest()
    key = object_key_for(sha256)
    if not store.exists(key):
        store.put(key, BytesIO(content), len(content), DOCX_CONTENT_TYPE)
    row = Notice(
        assessment_id=assessment.id,
        department_id=department.id if department is not None else None,
        kind=kind,
        version=version,
        snapshot=snapshot,
        base_sha256=base_sha256,
        filename=filename(version),
        sha256=sha256,
        size=len(content),
        storage_key=key,
        issued_by_id=actor.id if actor is not None else None,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor=actor,
        actor_name=CLI_ACTOR,
        action="notice_issued" if kind == NOTICE else "summary_issued",
        target_type="notice",
        target_id=row.id,
        department_id=row.department_id,
        payload={
            "notice_id": row.id,
            "assessment_id": assessment.id,
            "kind": kind,
            "version": version,
            "filename": row.filename,
            "sha256": sha256,
            "size": row.size,
            "base_sha256": base_sha256,
            "trigger": trigger,
            "snapshot": snapshot,
        },
    )
    return row


def _issue_notice(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    department: Department,
    actor: User | None,
    *,
    only_if_changed: bool,
    trigger: str,
) -> Notice:
    if department.assessment_id != assessment.id:
        raise NotFound("部门不存在", code="department_not_found")
    _lock_assessment(session, assessment)
    data = notice_snapshot(session, assessment, department)
    return _issue(
        session,
        store,
        assessment,
        department,
        kind=NOTICE,
        data=data,
        render=lambda v, base: render_notice(dataclasses.replace(data, version=v), base),
        filename=lambda v: notice_filename(data.rank, department.name, v),
        actor=actor,
        only_if_changed=only_if_changed,
        trigger=trigger,
    )


def issue_notice(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    department: Department,
    actor: User | None,
    *,
    only_if_changed: bool = False,
) -> Notice:
    """Issue a department's notice as a new version, stored and audited (`notice_issued`).

    `actor` None means the command line. With `only_if_changed` the latest version is
    returned as it is when its figures and base document match the current ones.
    Raise Forbidden for users who are not admin or scorer, Conflict `not_all_scored`
    while any item of the department is not scored.
    """
    _require_issuer(actor)
    return _issue_notice(
        session, store, assessment, department, actor, only_if_changed=only_if_changed,
        trigger="issue",
    )  # fmt: skip


def current_notice(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    department: Department,
    reader: User,
) -> Notice:
    """Return the notice a reader downloads: the latest version, or a new one if stale.

    Staff and auditors read every department's notice, a department user only their own
    (another department's is a 404). When the figures or the letterhead changed since the
    latest version (or none was issued), a new version is issued and audited with the
    reader as actor and `trigger: download`: the document always matches the scores.
    """
    if not can_read_department(reader, department.id):
        raise NotFound("部门不存在", code="department_not_found")
    return _issue_notice(
        session, store, assessment, department, reader, only_if_changed=True, trigger="download"
    )


def _issue_summary(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    actor: User | None,
    *,
    only_if_changed: bool,
    trigger: str,
) -> Notice:
    _lock_assessment(session, assessment)
    data = summary_snapshot(session, assessment)
    return _issue(
        session,
        store,
        assessment,
        None,
        kind=SUMMARY,
        data=data,
        render=lambda _v, base: render_summary(data, base),
        filename=summary_filename,
        actor=actor,
        only_if_changed=only_if_changed,
        trigger=trigger,
    )


def issue_summary(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    actor: User | None,
    *,
    only_if_changed: bool = False,
) -> Notice:
    """Issue the summary table as a new version, stored and audited (`summary_issued`)."""
    _require_issuer(actor)
    return _issue_summary(
        session, store, assessment, actor, only_if_changed=only_if_changed, trigger="issue"
    )


def current_summary(
    session: Session, store: ObjectStore, assessment: Assessment, reader: User
) -> Notice:
    """Return the summary a reader downloads (staff and auditors), issuing it when stale."""
    if not can_read_all(reader):
        raise Forbidden("只有考核办工作人员和审计员可以查看汇总表", code="forbidden")
    return _issue_summary(
        session, store, assessment, reader, only_if_changed=True, trigger="download"
    )


def get_readable_notice(session: Session, notice_id: int, user: User) -> Notice:
    """Load an issued version the user may read; anything else is a 404."""
    row = session.get(Notice, notice_id)
    if row is None or not user.is_active:
        raise NotFound("通知书不存在", code="notice_not_found")
    allowed = (
        can_read_all(user)
        if row.department_id is None
        else can_read_department(user, row.department_id)
    )
    if not allowed:
        raise NotFound("通知书不存在", code="notice_not_found")
    return row


# -- the letterhead --------------------------------------------------------------------------


def _check_base(content: bytes) -> None:
    """Refuse anything but a safe .docx that python-docx opens and we can render onto."""
    try:
        sniff_file(BytesIO(content), len(content), ".docx")
    except IngestRejected as exc:
        raise UnsupportedBaseDocument(
            f"信头文件不是有效的 Word 文档（.docx）：{exc.message}"
        ) from exc
    try:
        docx.Document(BytesIO(content))
        render_summary(
            SummaryData(2000, "试排", "", "试排", dt.date(2000, 1, 1), ("一",), (Decimal(1),), ()),
            content,
        )
    except Exception as exc:  # zipfile, lxml and python-docx each raise their own errors
        raise UnsupportedBaseDocument("信头文件无法以 Word 文档（.docx）打开") from exc


def set_notice_base(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    stream: BinaryIO,
    filename: str,
    actor: User | None,
    *,
    max_size: int = MAX_BASE_BYTES,
) -> NoticeBase:
    """Store an uploaded letterhead .docx as the base of every later notice (latest wins).

    Only admins (or the command line, `actor` None) may. Refuse with 415 anything that is
    not a .docx python-docx can open, 413 above `max_size`; audited as `notice_base_uploaded`.
    """
    if actor is not None and not (actor.is_active and actor.has_role(Role.ADMIN)):
        raise Forbidden("只有管理员可以更换通知书信头", code="role_required")
    name = sanitize_filename(filename)
    if extension_of(name) != ".docx":
        raise UnsupportedBaseDocument("信头文件须为 Word 文档（.docx）")
    content = stream.read(max_size + 1)
    if len(content) > max_size:
        raise FileTooLarge(max_size)
    if not content:
        raise UnsupportedBaseDocument("信头文件为空")
    _check_base(content)
    sha256 = hashlib.sha256(content).hexdigest()
    key = object_key_for(sha256)
    if not store.exists(key):
        store.put(key, BytesIO(content), len(content), DOCX_CONTENT_TYPE)
    row = NoticeBase(
        assessment_id=assessment.id,
        filename=name,
        sha256=sha256,
        size=len(content),
        storage_key=key,
        uploaded_by_id=actor.id if actor is not None else None,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor=actor,
        actor_name=CLI_ACTOR,
        action="notice_base_uploaded",
        target_type="assessment",
        target_id=assessment.id,
        payload={
            "notice_base_id": row.id,
            "assessment_id": assessment.id,
            "filename": name,
            "sha256": sha256,
            "size": row.size,
        },
    )
    return row
