"""The office's progress overview: departments × indicators by state, totals, ranks, charts."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy import select

from scoring.pdf import office_binary
from scoring.totals import ItemFigure, quantize, results
from web.common.exports import xlsx_response
from web.db import get_db
from web.portal.auth import current_account, roles_required
from web.portal.common import N_, asked_assessment, asked_year, assessment_years
from web.portal.jobs import job_starters
from workflow.exports import matrix_table, results_xlsx
from workflow.models import Category, Department, Indicator, Item, utcnow
from workflow.notices import (
    CHANGED,
    NOTICE,
    SUMMARY,
    issue_notes,
    latest_versions,
    publication_started,
    standing,
)
from workflow.permissions import READ_ALL_ROLES
from workflow.routine import drifted_items
from workflow.spreadsheets import xlsx_bytes
from workflow.states import STATE_LABELS, Role, State

bp = Blueprint("progress", __name__, url_prefix="/progress")

CHART_WIDTH = 560
CHART_HEIGHT = 180
HISTOGRAM_BINS = (
    (N_("60 分以下"), Decimal(0), Decimal(60)),
    ("60–69", Decimal(60), Decimal(70)),
    ("70–79", Decimal(70), Decimal(80)),
    ("80–89", Decimal(80), Decimal(90)),
    (N_("90 分以上"), Decimal(90), Decimal(1000)),
)


@dataclass(frozen=True)
class Bar:
    """One bar of a server-drawn SVG chart (coordinates in the chart's own units)."""

    label: str
    value: str
    x: float
    y: float
    width: float
    height: float


def bars(values: list[tuple[str, Decimal, str]], top: Decimal) -> list[Bar]:
    """Lay out vertical bars for (label, value, shown value) pairs on a 0..top scale."""
    if not values:
        return []
    slot = CHART_WIDTH / len(values)
    width = slot * 0.6
    out = []
    for n, (label, value, shown) in enumerate(values):
        height = float(value / top) * CHART_HEIGHT if top > 0 else 0.0
        out.append(
            Bar(
                label=label,
                value=shown,
                x=n * slot + (slot - width) / 2,
                y=CHART_HEIGHT - height,
                width=width,
                height=height,
            )
        )
    return out


@bp.get("/")
@roles_required(*READ_ALL_ROLES)
def matrix() -> ResponseReturnValue:
    """Show every department × indicator coloured by state, with totals, ranks and charts; the
    newest year's, or another's (`?year=`)."""
    db = get_db()
    assessment = asked_assessment(db)
    if assessment is None:
        return render_template("progress/matrix.html", assessment=None)
    departments = list(
        db.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position, Department.id)
        ).scalars()
    )
    indicators = list(
        db.execute(
            select(Indicator)
            .join(Category, Category.id == Indicator.category_id)
            .where(Indicator.assessment_id == assessment.id)
            .order_by(Category.position, Indicator.position, Indicator.id)
        ).scalars()
    )
    items = db.execute(
        select(
            Item.id,
            Item.department_id,
            Item.indicator_id,
            Item.state,
            Item.total,
            Item.is_submitted_late,
        ).where(Item.assessment_id == assessment.id)
    ).all()
    cells = {(row.department_id, row.indicator_id): row for row in items}
    table = results(
        {d.id: d.name for d in departments},
        [
            ItemFigure(row.department_id, row.state == State.SCORED.value, row.total)
            for row in items
        ],
        assessment.total_points,
        assessment.converted_points,
    )
    by_department = {r.department_id: r for r in table}
    state_counts = Counter(row.state for row in items)

    scored_totals = [r.total for r in table if r.items_scored > 0]
    counts = [sum(1 for t in scored_totals if low <= t < high) for _, low, high in HISTOGRAM_BINS]
    histogram = bars(
        [
            (gettext(label), Decimal(c), str(c))
            for (label, _, _), c in zip(HISTOGRAM_BINS, counts, strict=True)
        ],
        Decimal(max(counts, default=0) or 1),
    )

    category_of = {i.id: i.category for i in indicators}
    sums: dict[int, Decimal] = defaultdict(Decimal)
    seen: dict[int, set[int]] = defaultdict(set)
    for row in items:
        if row.total is not None and row.indicator_id in category_of:
            category = category_of[row.indicator_id]
            sums[category.id] += row.total
            seen[category.id].add(row.department_id)
    categories = sorted({c.id: c for c in category_of.values()}.values(), key=lambda c: c.position)
    averages = [
        (c, quantize(sums[c.id] / len(seen[c.id])) if seen[c.id] else None) for c in categories
    ]
    rate_bars = bars(
        [
            (c.title, (avg / c.max_points * 100) if avg is not None else Decimal(0),
             f"{avg}/{c.max_points}" if avg is not None else "—")
            for c, avg in averages
        ],
        Decimal(100),
    )  # fmt: skip
    # The newest issued version of each department's notice, and whether it still stands
    # (a rescore after an appeal moves totals and ranks: those notices are to be re-issued).
    latest = latest_versions(db, assessment.id)
    newest = {cast(int, d): n for (kind, d), n in latest.items() if kind == NOTICE}
    standings = {department_id: standing(db, n) for department_id, n in newest.items()}
    summary_row = latest.get((SUMMARY, None))
    return render_template(
        "progress/matrix.html",
        assessment=assessment,
        published=publication_started(assessment),
        issued=set(newest),
        standings=standings,
        to_reissue=sum(1 for v in standings.values() if v == CHANGED),
        summary_row=summary_row,
        number_notes=issue_notes(assessment)
        if current_account().has_role(Role.ADMIN, Role.SCORER)
        else [],
        summary_standing=standing(db, summary_row) if summary_row is not None else None,
        can_issue=current_account().has_role(Role.ADMIN, Role.SCORER),
        office_missing=office_binary() is None,
        departments=departments,
        indicators=indicators,
        cells=cells,
        drifted=drifted_items(db, assessment, utcnow()),
        by_department=by_department,
        state_counts=state_counts,
        states=[(s.value, STATE_LABELS[s]) for s in State],
        histogram=histogram,
        rate_bars=rate_bars,
        chart_width=CHART_WIDTH,
        chart_height=CHART_HEIGHT,
        job_starters=[j for j in job_starters(assessment) if j[1] != "audit_verify"],
        year=asked_year(),
        years=assessment_years(db),
    )


XLSX_TITLES = {"results": N_("考核结果"), "matrix": N_("进度总览")}


@bp.get("/<any(results, matrix):table>.xlsx")
@roles_required(*READ_ALL_ROLES)
def table_xlsx(table: str) -> ResponseReturnValue:
    """The results table or the progress matrix as Excel (Chinese headers)."""
    db = get_db()
    assessment = asked_assessment(db)
    if assessment is None:
        abort(404)
    title = XLSX_TITLES[table]
    if table == "results":  # as the API's and the export job's: published or not, unranked
        content = results_xlsx(db, assessment)
    else:
        headers, rows = matrix_table(db, assessment)
        content = xlsx_bytes(title, headers, rows, caption=f"{assessment.title} {title}")
    return xlsx_response(content, f"{assessment.year}年度{title}")
