"""Score notices and the summary table: snapshot the figures, render, store, record, audit.

The rendering itself is pure (`scoring.notice`); this module gathers the figures from the
database, freezes them into a snapshot, and issues versions:
- a department's notice exists only once every item of the department is `scored`
  (Conflict `not_all_scored` otherwise, naming the unscored indicators);
- ranks are the results table's (`workflow.results`): among the departments whose items all
  have their score (scored, or under appeal with the scores appealed against), by their
  current totals; a department still being scored has none, and a partial sum never moves
  another's rank. A ranked notice waits for publication, which waits for every item, so it
  states the final order; its snapshot says so, and re-issuing after changes makes a new
  version;
- issuing again makes version N+1; rows and objects of earlier versions are never changed;
- a preliminary version (初步结果, no rank) only before publication: after it, it would
  replace the ranked one; the ranked summary only once every department is scored, and no
  summary while none is;
- the latest uploaded letterhead (`notice_bases`) is the base document when there is one.
No Flask here: the web views and the CLI call these functions and commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import secrets
import unicodedata
import zipfile
import zoneinfo
from collections.abc import Callable
from decimal import Decimal
from io import BytesIO
from typing import Any, BinaryIO, Final, TypeVar

import docx
from sqlalchemy import func, literal, select
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
from scoring.totals import DepartmentResult, quantize
from storage.base import ObjectStore
from storage.errors import FileTooLarge, IngestRejected
from storage.ingest import extension_of, object_key_for, sanitize_filename
from storage.sniff import sniff_file
from workflow.audit import payload_of, record_event
from workflow.db import lock_row, unit_of_work
from workflow.docnumbers import NumberNote, check_document_no, issue_year_notes
from workflow.errors import BadRequest, Conflict, DomainError, Forbidden, InvalidValue, NotFound
from workflow.fingerprints import check_row_seen, check_seen, fields_of, fingerprint
from workflow.maintenance import hold_object
from workflow.messages import N_, Np_, Phrase, Term
from workflow.models import (
    Assessment,
    AuditEvent,
    Category,
    Department,
    Indicator,
    Item,
    Notice,
    NoticeBase,
    User,
)
from workflow.notice_records import (
    NOTICE_ACTIONS,
    NOTICE_COLUMNS,
    NOTICE_TARGET,
    PAYLOAD_ERRORS,
    differing_fields,
    notice_record,
    notice_record_of_event,
)
from workflow.permissions import can_read_all, can_read_department
from workflow.results import assessment_results
from workflow.security_log import hidden_from, security_event
from workflow.states import STATE_LABELS, Role, State

NOTICE: Final = "notice"
SUMMARY: Final = "summary"
DOCX_CONTENT_TYPE: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_BASE_BYTES: Final = 20 * 1024 * 1024
ISSUER_ROLES: Final = (Role.ADMIN, Role.SCORER)
INCOMPLETE_MARK: Final = "（评分未完成）"
CLI_ACTOR: Final = "cli"
#: What a summary's verification names in place of a unit: the departments it covers.
SUMMARY_SCOPE: Final = "全部被考核部门"


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
    return assessment_results(session, assessment).by_department()


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


def _unscored_params(department: Department, unscored: list[Item]) -> dict[str, object]:
    """The refusal's parameters: the unscored indicators as phrases, so that an English
    reader reads each state in English (it said "1.… （申诉中）" on English pages)."""
    phrases = [
        Phrase(
            N_("%(code)s.%(title)s（%(state)s）"),
            {
                "code": item.indicator.code,
                "title": item.indicator.title,
                "state": Term(STATE_LABELS[State(item.state)]),
            },
        )
        for item in sorted(unscored, key=lambda i: (i.indicator.position, i.indicator.id))
    ]
    listed = phrases[-1]
    for phrase in reversed(phrases[:-1]):  # 1.…（待评分）；2.…（申诉中）
        listed = Phrase(N_("%(first)s；%(rest)s"), {"first": phrase, "rest": listed})
    return {"department": department.name, "n": len(unscored), "items": listed}


def notice_snapshot(
    session: Session,
    assessment: Assessment,
    department: Department,
    *,
    preliminary: bool = False,
) -> NoticeData:
    """Gather one department's figures for its notice (version 1; the issuer sets it).

    A preliminary notice (初步结果) names no rank. Raise Conflict `not_all_scored`, naming
    the unscored indicators, while any item of the department is not in state `scored`.
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
        raise Conflict(
            "%(department)s没有考核事项",
            code="not_all_scored",
            params={"department": department.name},
        )
    unscored = [item for item in items if item.state != State.SCORED.value]
    if unscored:
        detail = [
            {"indicator": i.indicator.code, "state": i.state}
            for i in sorted(unscored, key=lambda i: (i.indicator.position, i.indicator.id))
        ]
        raise Conflict(
            DEPARTMENT_NOT_SCORED,
            code="not_all_scored",
            detail=detail,
            params=_unscored_params(department, unscored),
        )
    scores = {s.scoring_point_id: s for item in items for s in item.scores}
    upheld = {c.scoring_point_id for item in items for c in item.claims if c.is_upheld}
    results = department_results(session, assessment)
    result = results[department.id]
    tied = sum(1 for r in results.values() if r.rank == result.rank) > 1
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
        document_no=result_document_no(assessment),
        issuer=assessment.issuer,
        issued_on=_today(assessment),
        department=department.full_name or department.name,
        total=result.total,
        total_max=assessment.total_points,
        converted=result.converted,
        converted_max=assessment.converted_points,
        rank=None if preliminary else result.rank,
        department_count=len(assessment.departments),
        categories=tuple(categories),
        is_preliminary=preliminary,
        cc=assessment.notice_cc or "",
        tied=tied and not preliminary,
    )


def summary_snapshot(
    session: Session, assessment: Assessment, *, preliminary: bool = False
) -> SummaryData:
    """Gather the summary table: every department, points per category, total, by rank.

    Departments whose items are not all scored are listed with their current points, the
    mark （评分未完成） after their name and no rank (the others ranked among themselves),
    so the table never passes for final. Before publication (`preliminary`) the ranks are
    headed 暂定名次.
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
        document_no=result_document_no(assessment),
        issuer=assessment.issuer,
        issued_on=_today(assessment),
        category_titles=tuple(c.title for c in categories),
        category_max=tuple(c.max_points for c in categories),
        rows=tuple(summary_rows),
        is_preliminary=preliminary,
        cc=assessment.notice_cc or "",
        converted_max=assessment.converted_points,
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
    if out.get("tied") is False:  # as before ties were named: an unchanged notice stays v1
        del out["tied"]
    if isinstance(data, SummaryData) and data.converted_max == 2:
        # As before the summary named its scale (the 2018 scheme's 2 points, the default): an
        # unchanged summary stays current and keeps its version.
        del out["converted_max"]
    return out


_PER_VERSION_FIELDS: Final = frozenset({"issued_on", "version", "verification_code", "verify_url"})


def _figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The part of a snapshot that decides whether a new version is needed (not date, version)."""
    return {k: v for k, v in snapshot.items() if k not in _PER_VERSION_FIELDS}


# -- issuing ---------------------------------------------------------------------------------

# Crockford's base32 without look-alikes (no I, L, O, U): 16 symbols carry 80 random bits.
CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH: Final = 16


def new_verification_code() -> str:
    """Return a random verification code such as `7QF2-MX9Z-P4TW-8RCK` (80 bits)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[n : n + 4] for n in range(0, CODE_LENGTH, 4))


#: The longest text taken as a typed code: the code with its label, quotes and spaces.
MAX_TYPED_CODE: Final = 64
# A label copied with the code from the document's line 「验证码：XXXX-…」.
_CODE_LABEL: Final = re.compile(r"^(?:验证码|校验码)\s*:?")
# Dashes a Chinese input method or a word processor puts where the document has "-".
_DASH_LIKE: Final = frozenset("−─━ー")


def _strip_ends(text: str) -> str:
    """Drop whitespace, quotes and punctuation around a code (it has letters and digits only)."""
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def normalise_code(text: str) -> str | None:
    """Return a typed or copied code in its printed form, or None when it is not one.

    Forgiven: full-width characters (NFKC), a leading 验证码：/校验码: label, surrounding
    whitespace and quotes, spaces or any dash as separators, case, and O/I/L for 0/1/1.
    """
    if len(text) > MAX_TYPED_CODE:
        return None
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")  # zero-width spaces
    text = _strip_ends(_CODE_LABEL.sub("", _strip_ends(text)))
    cleaned = "".join(
        ch
        for ch in text.upper()
        if not (ch.isspace() or ch in _DASH_LIKE or unicodedata.category(ch) == "Pd")
    )
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    if len(cleaned) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in cleaned):
        return None
    return "-".join(cleaned[n : n + 4] for n in range(0, CODE_LENGTH, 4))


def verify_url(base_url: str, code: str) -> str:
    """Return the public address that checks `code` (`<base>/verify/<code>`), or "" if no base."""
    return f"{base_url.rstrip('/')}/verify/{code}" if base_url else ""


def result_document_no(assessment: Assessment) -> str:
    """Return the results' own 发文字号, or "" when the admin has not set it."""
    return (assessment.result_document_no or "").strip()


def issued_notes(notice: Notice) -> list[NumberNote]:
    """Warn about an issued version whose 发文字号 year is not that of its 成文日期."""
    snapshot = notice.snapshot or {}
    try:
        issued_on = dt.date.fromisoformat(str(snapshot.get("issued_on")))
    except ValueError:
        return []
    return issue_year_notes(snapshot.get("document_no"), issued_on)


def issue_notes(assessment: Assessment) -> list[NumberNote]:
    """Warn, before issuing today, that the results' number names another year."""
    return issue_year_notes(result_document_no(assessment), _today(assessment))


def publication_started(assessment: Assessment) -> bool:
    """Tell whether the results have been published (公示 started; also after it ended)."""
    return assessment.published_at is not None


def scores_visible_to(user: User, assessment: Assessment) -> bool:
    """Tell whether `user` may see scores now: office staff and auditors always; a department
    user once publication started, or at any time when the assessment does not hide them."""
    if can_read_all(user):
        return True
    return publication_started(assessment) or not assessment.hide_scores_until_published


SCORE_PAYLOAD_KEYS: Final = frozenset({"scores", "deductions", "total", "suggested"})


def without_scores(payload: dict[str, Any]) -> dict[str, Any]:
    """Return an audit payload without the scores, for a reader who may not see them yet."""
    return {k: v for k, v in payload.items() if k not in SCORE_PAYLOAD_KEYS}


def _require_issuer(actor: User | None) -> None:
    """Issuing needs an office role that decides scores (admin or scorer); None is the CLI."""
    if actor is not None and not (actor.is_active and actor.has_role(*ISSUER_ROLES)):
        raise Forbidden("只有管理员或评分员可以印发考核结果通知书", code="role_required")


def require_issuable(assessment: Assessment, *, preliminary: bool) -> None:
    """Refuse without the results' own number, a ranked document before publication and a
    preliminary one (初步结果) once publication started: it would supersede the ranked one."""
    if not result_document_no(assessment):
        raise Conflict(
            "尚未设置考核结果通知书的发文字号，请管理员在“考核设置”中填写后再印发"
            "（不能沿用考核细则的文号）",
            code="document_no_required",
        )
    if not preliminary and not publication_started(assessment):
        raise Conflict(
            "考核结果尚未公示，不能印发载明排名的通知书；公示前只能印发不含排名的初步结果",
            code="not_published",
        )
    if preliminary and publication_started(assessment):
        raise Conflict(
            "考核结果已公示，不再印发初步结果（不含排名），以免替代已载明排名的通知书；"
            "请印发正式的考核结果通知书",
            code="preliminary_after_publication",
        )


#: What a 抄送 entry may not be made of alone.
CC_PUNCTUATION: Final = "。.．·-—_、，,；;：:！!？?（）()“”\"'"


#: The fields of the results notice's settings form (`result_settings_seen`).
RESULT_SETTINGS_FIELDS = ("result_document_no", "notice_cc", "hide_scores_until_published")
#: Counted refusals (`Np_`: 1 indicator, 3 indicators in English).
DEPARTMENT_NOT_SCORED = Np_(
    "%(department)s尚有 %(n)s 个考核指标未完成评分，暂不能出具考核结果通知书：%(items)s"
)
DEPARTMENTS_NOT_SCORED = Np_(
    "尚有 %(n)s 个部门未完成评分，暂不能印发载明排名的汇总表：%(departments)s"
)


def result_settings_seen(assessment: Assessment) -> str:
    """The fingerprint of the results notice's settings as they are now (the form's `seen`)."""
    return fingerprint(fields_of(assessment, RESULT_SETTINGS_FIELDS))


def set_result_settings(
    session: Session,
    assessment: Assessment,
    *,
    actor: User | None,
    document_no: Any = None,
    cc: Any = None,
    hide_scores: Any = None,
    seen: str | None = None,
) -> Assessment:
    """Set the results notice's 发文字号, its 抄送 and the score-hiding switch (admin, audited).

    Arguments left None are unchanged. The number must not be the rules' own number, and a
    new one must have the form of a 发文字号 that no other document holds
    (`workflow.docnumbers.check_document_no`). `seen` (the form's `result_settings_seen`):
    when the settings changed since, 409 `changed_since_opened`, nothing changed.
    """
    if actor is not None and not (actor.is_active and actor.has_role(Role.ADMIN)):
        raise Forbidden("只有管理员可以修改考核设置", code="role_required")
    check_row_seen(session, assessment, RESULT_SETTINGS_FIELDS, seen)
    changes: dict[str, Any] = {}
    if document_no is not None:
        if not isinstance(document_no, str):
            raise BadRequest("result_document_no 须为文本", code="invalid_type")
        number = "".join(document_no.split())  # a number holds no space
        if not number or len(number) > 100 or not number.isprintable():
            raise InvalidValue("发文字号须为 1 到 100 个字符", code="bad_document_no")
        if number != assessment.result_document_no:
            changes["result_document_no"] = check_document_no(
                session, number, year=assessment.year, rules_no=assessment.document_no,
                assessment_id=assessment.id,
            )  # fmt: skip
    if cc is not None:
        if not isinstance(cc, str):
            raise BadRequest("notice_cc 须为文本", code="invalid_type")
        text = " ".join(cc.split())
        if len(text) > 500 or not text.isprintable():
            raise InvalidValue("抄送单位不能超过 500 个字符", code="bad_cc")
        # 抄送机关之间用逗号隔开 (GB/T 9704): the entries, each a name, joined by "，".
        names = [n for n in re.split(r"[，,；;\s]+", text) if n.strip(CC_PUNCTUATION)]
        if text and not names:
            raise InvalidValue("抄送须为单位名称，多个单位之间用逗号分隔", code="bad_cc")
        names = [n.strip("。") for n in names]
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:  # the 版记 would name one office twice
            raise InvalidValue(
                "抄送单位“%(name)s”写了两次，请只写一次", code="bad_cc", params={"name": twice}
            )
        text = "，".join(names)
        if text != (assessment.notice_cc or ""):
            changes["notice_cc"] = text or None
    if hide_scores is not None:
        if not isinstance(hide_scores, bool):
            raise BadRequest("hide_scores_until_published 须为 true 或 false", code="invalid_type")
        if hide_scores != assessment.hide_scores_until_published:
            changes["hide_scores_until_published"] = hide_scores
    if not changes:
        return assessment
    before = {k: getattr(assessment, k) for k in changes}
    for key, value in changes.items():
        setattr(assessment, key, value)
    session.flush()
    record_event(
        session,
        actor=actor,
        actor_name=CLI_ACTOR,
        action="assessment_settings_changed",
        target_type="assessment",
        target_id=assessment.id,
        payload={"before": before, "after": changes},
    )
    return assessment


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


def latest_versions(session: Session, assessment_id: int) -> dict[tuple[str, int | None], Notice]:
    """The newest issued version of each document of the assessment: every department's
    notice and the summary, keyed by (kind, department id; None for the summary)."""
    newest = (
        select(
            Notice.kind,
            Notice.department_id,
            func.max(Notice.version).label("version"),
        )
        .where(Notice.assessment_id == assessment_id)
        .group_by(Notice.kind, Notice.department_id)
        .subquery()
    )
    rows = session.scalars(
        select(Notice)
        .join(
            newest,
            (Notice.kind == newest.c.kind)
            & (Notice.department_id.is_not_distinct_from(newest.c.department_id))
            & (Notice.version == newest.c.version),
        )
        .where(Notice.assessment_id == assessment_id)
    )
    return {(n.kind, n.department_id): n for n in rows}


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


def _base_values(base: NoticeBase | None) -> dict[str, Any]:
    return {"sha256": base.sha256 if base is not None else None}


def notice_base_seen(session: Session, assessment: Assessment) -> str:
    """The fingerprint of the letterhead in force (the upload form's `seen`)."""
    return fingerprint(_base_values(latest_base(session, assessment)))


def read_object(store: ObjectStore, key: str) -> bytes:
    """Return a stored object's bytes (notices and letterheads are small)."""
    with store.open(key) as reader:
        return reader.read()


def _lock_assessment(session: Session, assessment: Assessment) -> None:
    """Serialise issuing per assessment, so two requests never take the same version; then
    read the assessment again: what a request loaded before it queued (its publication, its
    number) may have changed while it waited (a preliminary notice must see a publication
    that committed meanwhile)."""
    lock_row(session, Assessment, assessment.id)
    session.refresh(assessment)


def notice_filename(rank: int | None, department: str, version: int) -> str:
    """Return `<rank>-<department>-考核结果通知书-v<N>.docx` (rank two digits, so names sort).

    A preliminary notice has no rank: `<department>-考核结果通知书（初步）-v<N>.docx`.
    """
    if rank is None:
        return sanitize_filename(f"{department}-考核结果通知书（初步）-v{version}.docx")
    return sanitize_filename(f"{rank:02d}-{department}-考核结果通知书-v{version}.docx")


def summary_filename(version: int, *, preliminary: bool = False) -> str:
    """Return `汇总表-v<N>.docx` (`汇总表（初步）-v<N>.docx` before publication)."""
    return f"汇总表（初步）-v{version}.docx" if preliminary else f"汇总表-v{version}.docx"


_Document = TypeVar("_Document", NoticeData, SummaryData)


@dataclasses.dataclass(frozen=True, slots=True)
class Issued:
    """The outcome of an issue request: the version in force and whether it is new."""

    notice: Notice
    is_new: bool


def _issue(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    department: Department | None,
    *,
    kind: str,
    data: _Document,
    render: Callable[[_Document, bytes | None], bytes],
    filename: Callable[[int], str],
    actor: User | None,
    only_if_changed: bool,
    trigger: str,
    verify_base_url: str,
) -> Issued:
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
        return Issued(previous, is_new=False)
    version = previous.version + 1 if previous is not None else 1
    code = new_verification_code()
    data = dataclasses.replace(
        data, version=version, verification_code=code, verify_url=verify_url(verify_base_url, code)
    )
    snapshot = snapshot_json(data)
    base_bytes = read_object(store, base.storage_key) if base is not None else None
    content = render(data, base_bytes)
    sha256 = hashlib.sha256(content).hexdigest()
    key = object_key_for(sha256)
    hold_object(session, key)  # an old orphan of the same bytes is not deleted under the row
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
        verification_code=code,
        is_preliminary=data.is_preliminary,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor=actor,
        actor_name=CLI_ACTOR,
        action="notice_issued" if kind == NOTICE else "summary_issued",
        target_type=NOTICE_TARGET,
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
            "preliminary": data.is_preliminary,
            "verification_code": code,
            "snapshot": snapshot,
        },
    )
    return Issued(row, is_new=True)


def issue_notice(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    department: Department,
    actor: User | None,
    *,
    preliminary: bool = False,
    only_if_changed: bool = False,
    verify_base_url: str = "",
) -> Issued:
    """Issue a department's notice as a new version, stored and audited (`notice_issued`).

    `actor` None means the command line; otherwise admin or scorer (Forbidden for others).
    Refused with Conflict: `document_no_required` until the results' own number is set,
    `not_published` for a ranked notice before publication (a `preliminary` one names no
    rank and may go out before), `not_all_scored` while any item is not scored. With
    `only_if_changed` the latest version stands when its figures and base are current.
    """
    _require_issuer(actor)
    if department.assessment_id != assessment.id:
        raise NotFound("部门不存在", code="department_not_found")
    _lock_assessment(session, assessment)
    require_issuable(assessment, preliminary=preliminary)
    data = notice_snapshot(session, assessment, department, preliminary=preliminary)
    return _issue(
        session,
        store,
        assessment,
        department,
        kind=NOTICE,
        data=data,
        render=render_notice,
        filename=lambda v: notice_filename(data.rank, department.name, v),
        actor=actor,
        only_if_changed=only_if_changed,
        trigger="issue",
        verify_base_url=verify_base_url,
    )


def issue_summary(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    actor: User | None,
    *,
    preliminary: bool | None = None,
    only_if_changed: bool = False,
    verify_base_url: str = "",
) -> Issued:
    """Issue the summary table as a new version, stored and audited (`summary_issued`).

    Before publication its ranks are provisional (暂定名次) and it is marked 初步结果;
    `preliminary` None takes the kind the publication calls for, True or False asks for one
    (refused as for a notice: `not_published`, `preliminary_after_publication`). Refused with
    Conflict `nothing_scored` while no department is fully scored, and for the ranked table
    `departments_not_scored` while any department is not (an appeal, a reopened item).
    """
    _require_issuer(actor)
    _lock_assessment(session, assessment)
    if preliminary is None:
        preliminary = not publication_started(assessment)
    require_issuable(assessment, preliminary=preliminary)
    _require_summarisable(session, assessment, preliminary=preliminary)
    data = summary_snapshot(session, assessment, preliminary=preliminary)
    return _issue(
        session,
        store,
        assessment,
        None,
        kind=SUMMARY,
        data=data,
        render=render_summary,
        filename=lambda v: summary_filename(v, preliminary=preliminary),
        actor=actor,
        only_if_changed=only_if_changed,
        trigger="issue",
        verify_base_url=verify_base_url,
    )


def _require_summarisable(session: Session, assessment: Assessment, *, preliminary: bool) -> None:
    """Refuse a summary with no department finished (every row 0.00 and first), and a ranked
    one while any department is not fully scored: its own notice is refused then too."""
    results = department_results(session, assessment)
    unfinished = [
        d for d in assessment.departments if d.id in results and not results[d.id].is_complete
    ]
    if len(unfinished) == len(results):
        raise Conflict(
            "尚无评分全部完成的部门，暂不能印发汇总表",
            code="nothing_scored",
        )
    if not preliminary and unfinished:
        raise Conflict(
            DEPARTMENTS_NOT_SCORED,
            code="departments_not_scored",
            detail=[{"department_id": d.id, "department": d.name} for d in unfinished],
            params={"n": len(unfinished), "departments": "、".join(d.name for d in unfinished)},
        )


def current_notice(
    session: Session, assessment: Assessment, department: Department, reader: User
) -> Notice:
    """Return the latest issued version of a department's notice; never issue one.

    Staff and auditors read every department's; a department user only their own (another
    department's is a 404), and only once scores are visible to them (publication started,
    or the assessment does not hide scores). Raise NotFound `notice_not_issued` when none.
    """
    if department.assessment_id != assessment.id or not can_read_department(reader, department.id):
        raise NotFound("部门不存在", code="department_not_found")
    if not scores_visible_to(reader, assessment):
        raise NotFound("考核结果公示后才能查看考核结果通知书", code="notice_not_issued")
    row = latest_notice(session, assessment, NOTICE, department)
    if row is None:
        raise NotFound("考核结果通知书尚未印发", code="notice_not_issued")
    return row


def current_summary(session: Session, assessment: Assessment, reader: User) -> Notice:
    """Return the latest issued summary (staff, auditors); never issue one."""
    if not can_read_all(reader):
        raise Forbidden("只有考核办工作人员和审计员可以查看汇总表", code="forbidden")
    row = latest_notice(session, assessment, SUMMARY, None)
    if row is None:
        raise NotFound("汇总表尚未印发", code="notice_not_issued")
    return row


def get_readable_notice(session: Session, notice_id: int, user: User) -> Notice:
    """Load an issued version the user may read; anything else is a 404."""
    row = session.get(Notice, notice_id)
    if row is None or not user.is_active:
        raise NotFound("通知书不存在", code="notice_not_found")
    allowed = (
        can_read_all(user)
        if row.department_id is None
        else can_read_department(user, row.department_id)
        and scores_visible_to(user, row.assessment)
    )
    if not allowed:
        if row.department_id is not None and not can_read_department(user, row.department_id):
            hidden_from(user, "notice", row.id, department_id=row.department_id)
        raise NotFound("通知书不存在", code="notice_not_found")
    return row


#: How an issued version stands against the results now.
SAME: Final = "same"  # its figures are the current ones
CHANGED: Final = "changed"  # a score or a rank changed since: it is to be issued again
UNSETTLED: Final = "unsettled"  # an item is back under review (an appeal): figures may change


def standing(session: Session, notice: Notice) -> str:
    """Compare an issued version with what it would say if issued now (nothing is written).

    A rescore after an appeal moves a department's total and others' ranks: the document
    already handed out no longer matches the results, though it is the newest version.
    """
    assessment = session.get_one(Assessment, notice.assessment_id)
    try:
        if notice.kind == NOTICE:
            department = session.get_one(Department, notice.department_id)
            data: NoticeData | SummaryData = notice_snapshot(
                session, assessment, department, preliminary=notice.is_preliminary
            )
        else:
            data = summary_snapshot(session, assessment, preliminary=notice.is_preliminary)
            if any(row.department.endswith(INCOMPLETE_MARK) for row in data.rows):
                return UNSETTLED
    except Conflict:  # an item is not scored now (appealed, reopened)
        return UNSETTLED
    now, then = _results(snapshot_json(data)), _results(notice.snapshot or {})
    return SAME if now == then else CHANGED


#: What a notice says that is not a result: a new 发文字号 or 抄送 leaves its results standing
#: (the notices page marks an old number apart).
_SETTING_FIELDS: Final = frozenset({"title", "document_no", "issuer", "cc"})


def _results(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _figures(snapshot).items() if k not in _SETTING_FIELDS}


@dataclasses.dataclass(frozen=True, slots=True)
class Verification:
    """What `/verify/<code>` shows: only what the printed document itself says, plus status."""

    document_no: str
    kind: str
    #: The department of a notice; for a summary (`kind` summary) its scope, 全部被考核部门.
    unit: str
    total: str | None
    converted: str | None
    is_preliminary: bool
    version: int
    issued_at: dt.datetime
    sha256: str
    is_current: bool
    #: For the current version: `standing` (same, changed, unsettled); None when replaced.
    standing: str | None = None
    #: The assessment's year, as the document's title says it (关于2018年度…的通知): its
    #: 发文字号 is usually of the next year, and the unit's name is that year's.
    year: int = 0
    #: A notice's rank as printed (在26个被考核部门中排名并列第2位), so that a rank changed on
    #: paper shows; None for a preliminary notice (it names none) and for the summary.
    rank: int | None = None
    tied: bool = False
    department_count: int | None = None


class NoticeRecordAltered(Conflict):
    """The notice's row no longer matches the event that issued it: nothing of it is shown."""

    code = "notice_record_altered"


def issuing_event(session: Session, notice: Notice) -> AuditEvent:
    """Return the event that issued `notice`, once its row matches it field by field.

    One lookup by the partial index `ix_audit_notice_target` (its condition written inline,
    so every plan can use it). A row no event issued, an id issued twice, or any field, the
    storage key or a figure of the snapshot that differs from the event
    (`workflow.notice_records`) is logged (`notice_record_altered`) and refused with 409
    `notice_record_altered`: the public page must not confirm figures the trail does not.
    """
    events = list(
        session.execute(
            select(AuditEvent)
            .where(
                AuditEvent.target_type == literal(NOTICE_TARGET, literal_execute=True),
                AuditEvent.target_id == str(notice.id),
                AuditEvent.action.in_(NOTICE_ACTIONS),
            )
            .order_by(AuditEvent.seq)
            .limit(2)
        ).scalars()
    )
    live = notice_record([getattr(notice, name) for name in NOTICE_COLUMNS])[1]
    altered = ["trail"]
    if len(events) == 1:
        try:
            nid, trail = notice_record_of_event(
                events[0].actor_id, events[0].department_id, payload_of(events[0])
            )
            altered = differing_fields(live, trail) if nid == notice.id else ["trail"]
        except PAYLOAD_ERRORS:
            pass
    if altered:
        security_event(
            "notice_record_altered",
            notice_id=notice.id,
            kind=notice.kind,
            assessment_id=notice.assessment_id,
            department_id=notice.department_id,
            seq=[e.seq for e in events],
            fields=sorted({name.partition("[")[0] for name in altered}),
        )
        raise NoticeRecordAltered()
    return events[0]


def _replaced_in_trail(session: Session, event: AuditEvent, row: Notice) -> bool:
    """Tell whether the chain holds a later issuing of the same year, kind and unit as `row`
    (the index on action and sequence: only the issuing events after this one are read)."""
    later = session.execute(
        select(AuditEvent.payload)
        .where(
            AuditEvent.action.in_(NOTICE_ACTIONS),
            AuditEvent.seq > event.seq,
            AuditEvent.department_id.is_(None)
            if row.department_id is None
            else AuditEvent.department_id == row.department_id,
        )
        .order_by(AuditEvent.seq)
    ).scalars()
    for stored in later:
        payload = json.loads(stored)
        if not isinstance(payload, dict):
            continue
        if payload.get("assessment_id") == row.assessment_id and payload.get("kind") == row.kind:
            return True
    return False


def verify_notice(session: Session, code: str) -> Verification:
    """Look up an issued notice by its verification code, as typed or copied.

    BadRequest `verification_code_malformed` for text that is no code even when forgiven
    (`normalise_code`); NotFound, the same for every one, for a code no version carries;
    Conflict `notice_record_altered` for a row that does not match its issuing event
    (`issuing_event`). The time shown is the event's, which the chain holds.
    """
    normalised = normalise_code(code)
    if normalised is None:
        raise BadRequest(
            "验证码格式不正确：验证码为 16 位字母和数字，如 7QF2-MX9Z-P4TW-8RCK",
            code="verification_code_malformed",
        )
    row = session.execute(
        select(Notice).where(Notice.verification_code == normalised)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("未找到该验证码对应的文件", code="verification_not_found")
    event = issuing_event(session, row)
    newer = session.execute(
        select(Notice.id)
        .where(
            Notice.assessment_id == row.assessment_id,
            Notice.kind == row.kind,
            Notice.department_id.is_(None)
            if row.department_id is None
            else Notice.department_id == row.department_id,
            Notice.version > row.version,
        )
        .limit(1)
    ).first()
    # The trail says it too: a later version issued for the same year, kind and unit, even
    # if its row is gone (a row deleted behind the engine's back cannot make this one current).
    replaced = newer is not None or _replaced_in_trail(session, event, row)
    snapshot = row.snapshot or {}
    # A summary is no unit's document: it covers every assessed department (`kind` says so).
    unit = str(snapshot.get("department") or "") if row.kind == NOTICE else SUMMARY_SCOPE
    return Verification(
        document_no=str(snapshot.get("document_no") or ""),
        kind=row.kind,
        unit=unit,
        total=snapshot.get("total") if row.kind == NOTICE else None,
        converted=snapshot.get("converted") if row.kind == NOTICE else None,
        is_preliminary=row.is_preliminary,
        version=row.version,
        issued_at=event.at,
        sha256=row.sha256,
        is_current=not replaced,
        standing=None if replaced else standing(session, row),
        year=session.get_one(Assessment, row.assessment_id).year,
        **_printed_rank(row),
    )


def _printed_rank(row: Notice) -> dict[str, Any]:
    """The rank a notice prints (none for a preliminary one or the summary), from its snapshot."""
    snapshot = row.snapshot or {}
    if row.kind != NOTICE or snapshot.get("rank") is None:
        return {}
    return {
        "rank": int(snapshot["rank"]),
        "tied": bool(snapshot.get("tied")),
        "department_count": int(snapshot["department_count"]),
    }


# -- the letterhead --------------------------------------------------------------------------


# An XML declaration Word never writes: a DOCTYPE (with or without entities) in any part of the
# package. lxml keeps it through python-docx, and Word then refuses every notice rendered on it.
_DECLARATIONS = tuple(
    marker.encode(encoding)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be")
)

# One notice with every kind of row, rendered on a new letterhead before it is accepted.
_TRIAL_POINT = NoticePoint("1.1", "试排评分项", Decimal(2), Decimal(1), "试排扣分原因", False)
_TRIAL_NOTICE = NoticeData(
    year=2000,
    title="试排通知",
    document_no="试排〔2000〕1号",
    issuer="试排",
    issued_on=dt.date(2000, 1, 1),
    department="试排部门",
    total=Decimal(1),
    total_max=Decimal(2),
    converted=Decimal("0.02"),
    converted_max=Decimal(2),
    rank=1,
    department_count=1,
    categories=(
        NoticeCategory(
            "一",
            "试排类别",
            Decimal(2),
            (NoticeIndicator("1", "试排指标", Decimal(2), (_TRIAL_POINT,)),),
        ),
    ),
)
_TRIAL_SUMMARY = SummaryData(
    2000, "试排", "", "试排", dt.date(2000, 1, 1), ("一",), (Decimal(1),), ()
)


def _declared_part(content: bytes) -> str | None:
    """Return the first part of the package holding a DOCTYPE or ENTITY declaration."""
    with zipfile.ZipFile(BytesIO(content)) as package:
        for info in package.infolist():
            data = package.read(info)  # bounded: the sniffer refused ZIP bombs
            if any(marker in data for marker in _DECLARATIONS):
                return info.filename
    return None


def _check_base(content: bytes) -> None:
    """Refuse anything but a safe .docx that python-docx opens, renders onto and reopens.

    A DOCTYPE or ENTITY declaration in any part is refused; then one notice and one summary
    table are rendered on the new base, and each must open again.
    """
    try:
        sniff_file(BytesIO(content), len(content), ".docx")
    except IngestRejected as exc:
        raise UnsupportedBaseDocument(
            "信头文件不是有效的 Word 文档（.docx）：%(reason)s",
            params={"reason": Phrase(exc.template, exc.params)},
        ) from exc
    try:
        part = _declared_part(content)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsupportedBaseDocument("信头文件无法以 Word 文档（.docx）打开") from exc
    if part is not None:
        raise UnsupportedBaseDocument(
            "信头文件的 %(part)s 含有 DOCTYPE 或实体（ENTITY）声明，Word 文档不应包含，已拒绝",
            code="docx_declaration",
            params={"part": part},
        )
    try:
        docx.Document(BytesIO(content))
        notice = render_notice(_TRIAL_NOTICE, content)
        summary = render_summary(_TRIAL_SUMMARY, content)
    except Exception as exc:  # zipfile, lxml and python-docx each raise their own errors
        raise UnsupportedBaseDocument("信头文件无法以 Word 文档（.docx）打开") from exc
    for rendered in (notice, summary):
        try:
            docx.Document(BytesIO(rendered))
        except Exception as exc:  # the same: whatever fails, the result does not open
            raise UnsupportedBaseDocument(
                "在此信头上生成的通知书无法重新打开，请换用其他信头文件", code="docx_render_failed"
            ) from exc
        if _declared_part(rendered) is not None:
            raise UnsupportedBaseDocument(
                "在此信头上生成的通知书含有 DOCTYPE 声明，请换用其他信头文件",
                code="docx_render_failed",
            )


def set_notice_base(
    session: Session,
    store: ObjectStore,
    assessment: Assessment,
    stream: BinaryIO,
    filename: str,
    actor: User | None,
    *,
    max_size: int = MAX_BASE_BYTES,
    seen: str | None = None,
) -> NoticeBase:
    """Store an uploaded letterhead .docx as the base of every later notice (latest wins).

    Only admins (or the command line, `actor` None) may. Refuse with 415 anything that is
    not a .docx python-docx can open, 413 above `max_size`; audited as `notice_base_uploaded`.
    `seen` (the page's `notice_base_seen`): when another letterhead was put in force since,
    409 `changed_since_opened`, nothing stored.
    """
    if actor is not None and not (actor.is_active and actor.has_role(Role.ADMIN)):
        raise Forbidden("只有管理员可以更换通知书信头", code="role_required")
    if seen is not None:  # another admin's upload since the page was opened: refused
        _lock_assessment(session, assessment)
        check_seen(seen, _base_values(latest_base(session, assessment)))
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
    hold_object(session, key)  # an old orphan of the same bytes is not deleted under the row
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


# -- every department at once (the CLI's `notices issue`, the notices job) ------------------


@dataclasses.dataclass
class IssueRun:
    """What issuing for every department did: the notices (new or current), the skipped
    departments with the reason, and the summary table (or why it was not issued)."""

    notices: list[Notice] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)  # "部门：原因"
    summary: Notice | None = None
    #: Why no summary, when `summary` is None (a `Phrase` or `Term`: a job shows it in the
    #: language of whoever reads it).
    summary_skipped: str | None = None

    @property
    def issued_nothing(self) -> bool:
        """Tell whether no document at all is in force from this run."""
        return not self.notices and self.summary is None


def skip_reason(exc: DomainError) -> str:
    """Why a department's notice was not issued, in one Chinese line."""
    if exc.code == "not_all_scored" and isinstance(exc.detail, list):
        codes = "、".join(str(d["indicator"]) for d in exc.detail)
        return f"{len(exc.detail)} 个考核指标未完成评分（指标 {codes}）"
    return exc.message


def issue_for_all_departments(
    factory: Callable[[], Session],
    store: ObjectStore,
    assessment_id: int,
    actor_id: int | None,
    *,
    preliminary: bool = False,
    only_if_changed: bool = True,
    verify_base_url: str = "",
    progress: Callable[[int, int, str], None] | None = None,
) -> IssueRun:
    """Issue every department's notice, then the summary; one unit of work per department.

    A department that cannot have its notice (not all scored) is skipped with its reason and
    leaves no trace; the others are issued. The summary follows only when some department's
    notice is in force, and is itself skipped with its reason when refused (a ranked table
    while a department is not fully scored): `summary_skipped`. `progress(done, total,
    department)` is called after each department and after the summary (total = departments
    + 1). A refusal that concerns the whole assessment (no result document number, a ranked
    notice before publication or a preliminary one after it, a user who may not issue) raises
    from the first unit, before anything is issued.
    """
    run = IssueRun()
    with unit_of_work(factory) as session:
        assessment = session.get_one(Assessment, assessment_id)
        actor = session.get(User, actor_id) if actor_id is not None else None
        _require_issuer(actor)
        require_issuable(assessment, preliminary=preliminary)
        departments = [(d.id, d.name) for d in assessment.departments]
    total = len(departments) + 1
    for done, (dep_id, dep_name) in enumerate(departments, start=1):
        try:
            with unit_of_work(factory) as session:
                run.notices.append(
                    issue_notice(
                        session,
                        store,
                        session.get_one(Assessment, assessment_id),
                        session.get_one(Department, dep_id),
                        session.get(User, actor_id) if actor_id is not None else None,
                        preliminary=preliminary,
                        only_if_changed=only_if_changed,
                        verify_base_url=verify_base_url,
                    ).notice
                )
        except DomainError as exc:
            run.skipped.append(f"{dep_name}：{skip_reason(exc)}")
        if progress is not None:
            progress(done, total, dep_name)
    if not run.notices:
        run.summary_skipped = Term(N_("没有部门的考核结果通知书可以印发，汇总表也不印发"))
    else:
        try:
            with unit_of_work(factory) as session:
                run.summary = issue_summary(
                    session,
                    store,
                    session.get_one(Assessment, assessment_id),
                    session.get(User, actor_id) if actor_id is not None else None,
                    preliminary=preliminary,
                    only_if_changed=only_if_changed,
                    verify_base_url=verify_base_url,
                ).notice
        except DomainError as exc:
            run.summary_skipped = Phrase(exc.template, exc.params)
    if progress is not None:
        progress(total, total, Term(N_("汇总表")))
    return run
