"""Units (被考核单位) across years: the list, a unit's names, lineage and results by year,
and the form for a lineage change (admin). Every change goes through `workflow.units`."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy.orm import Session

from web.clock import request_now
from web.common.ids import MAX_ID
from web.db import discard_on_error, get_db
from web.portal.admin import STATUS_LABELS
from web.portal.auth import current_account, roles_required
from web.portal.charts import distribution_svg, history_svg, indicators_svg
from web.portal.common import N_, latest_assessment
from workflow.assessments import assessment_status
from workflow.calendar import STAGES, set_deadlines, stage_rows
from workflow.errors import DomainError, InvalidValue, NotFound
from workflow.models import Unit, UnitChange
from workflow.permissions import READ_ALL_ROLES
from workflow.schemes import get_stored_scheme, list_schemes, load_scheme, use_scheme
from workflow.setup import create_assessment
from workflow.states import Role
from workflow.units import (
    KINDS,
    Lineage,
    UnitYear,
    accounts_left_behind,
    all_changes,
    all_units,
    apply_change,
    get_unit,
    lineages,
    local_day,
    name_on,
    proposed_units,
    unit_history,
    year_distribution,
)

bp = Blueprint("units_admin", __name__, url_prefix="/admin/units")

KIND_TEXT = {
    "create": N_("新设"),
    "rename": N_("更名"),
    "merge": N_("合并"),
    "split": N_("拆分"),
    "dissolve": N_("撤销"),
}
STATUS_TEXT = {
    "active": N_("在用"),
    "merged": N_("已合并"),
    "split": N_("已拆分"),
    "dissolved": N_("已撤销"),
}


def change_rows(db: Session, by_id: dict[int, Unit]) -> list[dict[str, object]]:
    """The lineage changes, newest first, with the names the units bore on each side."""
    rows: list[dict[str, object]] = []
    for c in reversed(all_changes(db)):
        before = c.effective_on - dt.timedelta(days=1)
        rows.append(
            {
                "change": c,
                "from": [name_on(by_id[i], before) for i in c.from_ids],
                "to": [name_on(by_id[i], c.effective_on) for i in c.to_ids],
            }
        )
    return rows


def _render_list(db: Session, **context: object) -> str:
    units = all_units(db)
    by_id = {u.id: u for u in units}
    return render_template(
        "admin/units.html",
        units=units,
        by_id=by_id,
        graph=lineages(db),
        empty=Lineage(),
        changes=change_rows(db, by_id),
        kinds=KINDS,
        kind_text=KIND_TEXT,
        status_text=STATUS_TEXT,
        today=local_day(request_now()),
        **context,
    )


@bp.get("")
@roles_required(Role.ADMIN)
def units() -> ResponseReturnValue:
    """Every unit with its status, names, aliases and lineage, the changes, and the form."""
    return _render_list(get_db(), form={})


@bp.post("/changes")
@roles_required(Role.ADMIN)
def change() -> ResponseReturnValue:
    """Apply a lineage change from the form (audited); a refusal is shown with the form."""
    db = get_db()
    form = request.form
    raw_ids = form.getlist("from")
    targets = [line.strip() for line in form.get("to", "").splitlines() if line.strip()]
    try:
        with discard_on_error():
            ids = [int(v) for v in raw_ids if v.isdecimal() and len(v) < 11]
            apply_change(
                db,
                kind=form.get("kind", ""),
                effective_on=form.get("effective_on", ""),
                document_no=form.get("document_no", ""),
                reason=form.get("reason", ""),
                from_ids=[i for i in ids if i <= MAX_ID],
                to=[{"name": t[:100]} for t in targets][:50],
                actor=current_account(),
                today=local_day(request_now()),
            )
    except DomainError as exc:
        return _render_list(db, form=form, error=exc.message), exc.status
    flash(gettext("已记录单位调整"), "success")
    return redirect(url_for("units_admin.units"), code=303)


def _ids(row: dict[str, object]) -> set[int]:
    change = row["change"]
    assert isinstance(change, UnitChange)
    return {*change.from_ids, *change.to_ids}


def indicator_titles(
    years: list[UnitYear],
) -> tuple[dict[str, str], dict[str, list[tuple[int, str]]]]:
    """Each indicator code's title as the newest year words it (the first year's wording
    labelled a retitled indicator, as if the later years had scored that), and per code the
    earlier years whose wording differs, oldest first."""
    titles: dict[str, str] = {}
    for y in years:
        for i in y.indicators:
            titles[i.code] = i.title
    earlier: dict[str, list[tuple[int, str]]] = {}
    for y in years:
        for i in y.indicators:
            said = earlier.setdefault(i.code, [])
            if i.title != titles[i.code] and (y.year, i.title) not in said:
                said.append((y.year, i.title))
    return titles, {code: said for code, said in earlier.items() if said}


@bp.get(f"/<int(max={MAX_ID}):unit_id>")
@roles_required(*READ_ALL_ROLES)
def unit_page(unit_id: int) -> ResponseReturnValue:
    """A unit: its names over time, its lineage, its results by year (with predecessors')."""
    db = get_db()
    try:
        unit = get_unit(db, unit_id)
    except NotFound:
        abort(404)
    graph = lineages(db)
    lineage = graph.get(unit.id, Lineage())
    years = unit_history(db, unit)
    by_id = {u.id: u for u in all_units(db)}
    titles, earlier = indicator_titles(years)
    rows = [
        (code, [next((i for i in y.indicators if i.code == code), None) for y in years])
        for code in titles
    ]
    return render_template(
        "admin/unit.html",
        rows=rows,
        titles=titles,
        earlier=earlier,
        unit=unit,
        lineage=lineage,
        by_id=by_id,
        changes=[r for r in change_rows(db, by_id) if unit.id in _ids(r)],
        years=years,
        chart=history_svg(years),
        indicator_chart=indicators_svg(years),
        spread=distribution_svg(year_distribution(db)),
        kind_text=KIND_TEXT,
        status_text=STATUS_TEXT,
    )


# -- a new assessment year ---------------------------------------------------------------------
year_bp = Blueprint("new_year", __name__, url_prefix="/admin/new-year")


def _lineage_notes(db: Session) -> dict[int, str]:
    """Why each proposed unit is there: merged from, split from, renamed from."""
    notes: dict[int, str] = {}
    by_id = {u.id: u for u in all_units(db)}
    for c in all_changes(db):
        before = c.effective_on - dt.timedelta(days=1)
        sources = gettext("、").join(name_on(by_id[i], before) for i in c.from_ids)
        for t in c.to_ids:
            if c.kind == "merge":
                notes[t] = gettext("由%(names)s合并", names=sources)
            elif c.kind == "split":
                notes[t] = gettext("由%(names)s拆分", names=sources)
            elif c.kind == "rename":
                notes[t] = gettext("原名%(names)s", names=sources)
    return notes


def _render_new_year(db: Session, **context: object) -> str:
    proposal = proposed_units(db)
    ended = [u for u in all_units(db) if u.status != "active"]
    graph = lineages(db)
    by_id = {u.id: u for u in all_units(db)}
    # The newest year not final yet: its work goes on after the new year is created (each
    # page has a year switch), which the admin is told before creating it.
    latest = latest_assessment(db)
    status = assessment_status(latest, request_now()) if latest is not None else "final"
    return render_template(
        "admin/new_year.html",
        unfinished=latest if status != "final" else None,
        unfinished_status=gettext(STATUS_LABELS[status]) if status != "final" else "",
        schemes=list_schemes(db, limit=200),
        proposal=proposal,
        ended=ended,
        graph=graph,
        empty=Lineage(),
        by_id=by_id,
        notes=_lineage_notes(db),
        left_behind=accounts_left_behind(db),
        status_text=STATUS_TEXT,
        stages=STAGES,
        **context,
    )


@year_bp.get("")
@roles_required(Role.ADMIN)
def new_year() -> ResponseReturnValue:
    """The form for a new year: scheme, year, 发文字号, issuer, and the proposed units."""
    return _render_new_year(get_db(), form={})


@year_bp.post("")
@roles_required(Role.ADMIN)
def create_year() -> ResponseReturnValue:
    """Create the year's assessment for the confirmed units (audited)."""
    db = get_db()
    form = request.form
    raw_scheme = form.get("scheme_id", "")
    raw_year = form.get("year", "")
    try:
        with discard_on_error():
            if not (raw_scheme.isdecimal() and len(raw_scheme) < 10):
                raise InvalidValue("请选择考核方案", code="scheme_required")
            record = get_stored_scheme(db, int(raw_scheme))
            year = int(raw_year) if raw_year.isdecimal() and len(raw_year) < 6 else -1
            ids = [int(v) for v in form.getlist("units") if v.isdecimal() and len(v) < 11]
            assessment = create_assessment(
                db,
                load_scheme(db, record.id),
                year=year,
                result_document_no=form.get("result_document_no", ""),
                issuer=form.get("issuer", ""),
                unit_ids=[i for i in ids if i <= MAX_ID],
                actor=current_account(),
            )
            use_scheme(db, record, assessment, actor=current_account())
            set_deadlines(
                db,
                assessment,
                {stage: form.get(f"due_{stage}", "") for stage, _label in STAGES},
                actor=current_account(),
            )
    except DomainError as exc:
        return _render_new_year(db, form=form, error=exc.message), exc.status
    flash(gettext("已创建%(year)s年度考核", year=assessment.year), "success")
    # The deadlines are the next step: the year's calendar, not the units list, is where the
    # admin goes on (the form's dates are optional; reminders and overdue marks need them).
    unset = sum(1 for stage, _label in STAGES if stage not in stage_rows(db, assessment))
    if unset:
        next_step = ngettext(
            "下一步：请在下表设置各阶段的截止日期（尚有 %(n)s 个阶段未设置）。"
            "未设置截止日期的阶段不发截止提醒，也不标记逾期。",
            "下一步：请在下表设置各阶段的截止日期（尚有 %(n)s 个阶段未设置）。"
            "未设置截止日期的阶段不发截止提醒，也不标记逾期。",
            unset,
            n=unset,
        )
    else:
        next_step = gettext(
            "下一步：请核对下表各阶段的截止日期；截止提醒、待办期限和逾期标记均按这些日期计算。"
        )
    flash(next_step, "info")
    return redirect(url_for("calendar_admin.calendar_page", aid=assessment.id), code=303)
