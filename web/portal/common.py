"""What the portal's pages share: the object store, times, item history, error pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, current_app, request
from flask_babel import gettext
from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session, contains_eager

from scoring.notice import format_max
from storage.base import ObjectStore
from storage.config import store_from_settings
from web.clock import request_now
from web.common.ids import MAX_ID
from web.common.labels import N_
from workflow.errors import BadRequest, NotFound
from workflow.models import Assessment, Department, User
from workflow.permissions import own_department_ids
from workflow.states import ROLE_LABELS, Role, State


def int_arg(name: str) -> int | None:
    """Return a non-negative integer query parameter, None when absent or not a number.

    A number past 32 bits cannot be an id: it becomes 0, which matches nothing, rather than
    an out-of-range query.
    """
    value = request.args.get(name, "")
    if not (value.isascii() and value.isdecimal()):  # "²".isdigit() is True; int() refuses it
        return None
    number = int(value)
    return number if number <= MAX_ID else 0


def keyset_page(db: Session, stmt: Select[Any], size: int) -> tuple[list[Any], bool]:
    """Run an ordered, filtered statement for one page; tell whether another page follows."""
    rows = list(db.execute(stmt.limit(size + 1)).scalars())
    return rows[:size], len(rows) > size


# The engine's labels are data in Chinese; listed here so the catalog carries their English.
ENGINE_LABELS = [
    N_("草稿"),
    N_("待初审"),
    N_("待核实"),
    N_("待评分"),
    N_("已评分"),
    N_("已退回"),
    N_("申诉中"),
    N_("部门填报员"),
    N_("初审员"),
    N_("核实员"),
    N_("评分员"),
    N_("审计员"),
    N_("管理员"),
    N_("提交"),
    N_("初审通过"),
    N_("退回修改"),
    N_("核实通过"),
    N_("评分"),
    N_("申诉"),
    N_("复核改分"),
    N_("驳回申诉"),
    N_("撤回"),
    N_("上传佐证材料"),
    N_("上传申诉材料"),
    N_("删除佐证材料"),
]

# What a department should expect or do next, per state.
NEXT_STEP = {
    State.DRAFT: N_("请上传佐证材料后提交"),
    State.RETURNED: N_("请按退回原因修改材料后重新提交"),
    State.SUBMITTED: N_("等待初审"),
    State.REVIEWED: N_("等待核实"),
    State.VERIFIED: N_("等待评分"),
    State.SCORED: N_("已评分"),
    State.APPEALED: N_("申诉处理中"),
}


def next_step(state: str) -> str:
    """Return what a department should expect or do next for an item in `state`."""
    try:
        return gettext(NEXT_STEP[State(state)])
    except ValueError:
        return ""


def get_store() -> ObjectStore:
    """Return the app's object store, built once from the configuration."""
    store = current_app.extensions.get("store")
    if store is None:
        store = store_from_settings(
            current_app.config["STORAGE"], current_app.config["INSTANCE_DIR"]
        )
        current_app.extensions["store"] = store
    result: ObjectStore = store
    return result


def file_size(size: int | None) -> str:
    """Show a byte count for people."""
    if size is None:
        return ""
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # pragma: no cover


def points_max(value: Any) -> str:
    """A maximum in a sentence, as the notices print it: 100 and 2, not 100.00 and 2.00."""
    if value is None or value == "":
        return ""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return format_max(amount)


def role_labels(roles: Sequence[str]) -> str:
    """Return a user's roles as Chinese labels."""
    labels = []
    for r in roles:
        try:
            labels.append(gettext(ROLE_LABELS[Role(r)]))
        except ValueError:
            labels.append(r)
    return gettext("、").join(labels)


def latest_assessment(db: Session) -> Assessment | None:
    """Return the current assessment: the latest year's."""
    return db.execute(
        select(Assessment).order_by(Assessment.year.desc(), Assessment.id.desc()).limit(1)
    ).scalar_one_or_none()


def assessment_of_year(db: Session, year: int | None) -> Assessment | None:
    """The assessment of `year` (None: the latest), or None when there is none."""
    if year is None:
        return latest_assessment(db)
    return db.execute(
        select(Assessment).where(Assessment.year == year).order_by(Assessment.id.desc()).limit(1)
    ).scalar_one_or_none()


def asked_year() -> int | None:
    """The year a page or form names (`year`, in the query or the form), None: the newest.

    Another year than the newest: last year's 公示, appeals, settings and notices once next
    year's assessment exists. A year that is not a number is a 400.
    """
    value = request.values.get("year", "")
    if not value:
        return None
    if not (value.isascii() and value.isdecimal() and len(value) <= 4):
        raise BadRequest(
            "考核年度“%(value)s”无效，请在“考核年度”中选择",
            code="bad_year",
            params={"value": value[:12]},
        )
    return int(value)


def asked_assessment(db: Session) -> Assessment | None:
    """The assessment of the asked year, else the newest (None: none at all); a year that has
    no assessment is a 404."""
    year = asked_year()
    assessment = assessment_of_year(db, year)
    if year is not None and assessment is None:
        raise NotFound(
            "没有 %(year)s 年度的考核，请在“考核年度”中选择其他年度",
            code="assessment_not_found",
            params={"year": year},
        )
    return assessment


def asked_assessment_or_404(db: Session) -> Assessment:
    """`asked_assessment` for an action on it: no assessment at all is a 404 as well."""
    assessment = asked_assessment(db)
    if assessment is None:
        abort(404)
    return assessment


def assessment_years(db: Session) -> list[int]:
    """The years that have an assessment, the newest first (for a page's year switch)."""
    return list(
        db.execute(select(Assessment.year).distinct().order_by(Assessment.year.desc())).scalars()
    )


def publication_assessment(db: Session, now: dt.datetime) -> Assessment | None:
    """The assessment the 公示 is about: the newest whose publication runs at `now`, else the
    latest. The office may start next year's assessment while this year's results are still
    on public view; the 公示 must stay up for its whole period all the same.

    One query (the banner asks on every page): running publications sort first.
    """
    running = and_(
        Assessment.published_at <= now,
        Assessment.appeal_closes_at > now,
        Assessment.reopened_at.is_(None),
    )
    return db.execute(
        select(Assessment)
        .order_by(case((running, 0), else_=1), Assessment.year.desc(), Assessment.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def own_departments(db: Session, user: User) -> list[Department]:
    """The user's own department in every assessment that has one, the newest year first."""
    ids = own_department_ids(user)
    if not ids:
        return []
    return list(
        db.execute(
            select(Department)
            .join(Department.assessment)
            .where(Department.id.in_(ids))
            .options(contains_eager(Department.assessment))
            .order_by(Assessment.year.desc(), Assessment.id.desc())
        ).scalars()
    )


def chosen_department(db: Session, departments: list[Department]) -> Department | None:
    """Of a member's `own_departments`: the year asked for (`year`; one they have no
    department in is a 404), else the year whose 公示 runs now (its appeals cannot wait, even
    when next year's assessment has started), else the newest."""
    year = asked_year()
    if year is not None:
        for department in departments:
            if department.assessment.year == year:
                return department
        # A unit merged, split or renamed in between is another department that year.
        raise NotFound(
            "您的单位没有 %(year)s 年度的考核事项（单位可能已合并、拆分或更名），"
            "请在“考核年度”中选择其他年度",
            code="department_not_found",
            params={"year": year},
        )
    running = publication_assessment(db, request_now())
    for department in departments:
        if running is not None and department.assessment_id == running.id:
            return department
    return departments[0] if departments else None


def live_evidence_counts(db: Session, item_ids: Sequence[int]) -> dict[int, int]:
    """Return the number of live evidence files per item."""
    from workflow.models import Evidence

    if not item_ids:
        return {}
    rows = db.execute(
        select(Evidence.item_id, func.count())
        .where(Evidence.item_id.in_(item_ids), Evidence.removed_at.is_(None))
        .group_by(Evidence.item_id)
    ).all()
    return {item_id: count for item_id, count in rows}
