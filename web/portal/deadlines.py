"""Deadlines where people decide: the stage calendar for templates, and the admin's page for it.

Templates call `deadline_info()` (cached per request): working days left, overdue stages, the
running 公示. The admin edits the calendar at /admin/assessments/<aid>/calendar; every change
goes through `workflow.calendar`, which checks and audits it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from web.clock import request_now
from web.common.ids import MAX_ID
from web.db import discard_on_error, get_db
from web.portal.auth import current_account, roles_required
from web.portal.common import (
    N_,
    asked_assessment_or_404,
    assessment_years,
    latest_assessment,
)
from web.portal.forms import form_seen
from workflow.assessments import assessment_status
from workflow.calendar import (
    PENDING_STATES,
    STAGE_OF_STATE,
    STAGES,
    PlannedDay,
    StageView,
    calendar_overrides,
    deadline_notes,
    enter_arrangement,
    entered_years,
    entries_besides,
    override_seen,
    overrides_seen,
    parse_day,
    parse_working_days,
    plan_fingerprint,
    preview_arrangement,
    remove_calendar_override,
    set_calendar_override,
    set_stage_deadline,
    stage_calendar,
    stage_rows,
    stage_seen,
    today_of,
    work_calendar,
)
from workflow.errors import DomainError, InvalidValue
from workflow.models import Assessment
from workflow.states import Role, State
from workflow.workdays import local_date

bp = Blueprint("calendar_admin", __name__, url_prefix="/admin")

# The stage names as the pages show them (the engine's labels are data; listed for the catalog).
STAGE_TEXT = {
    "submit": N_("自评提交截止"),
    "review": N_("初审截止"),
    "verify": N_("核实截止"),
    "score": N_("评分截止"),
    "publication": N_("公示"),
    "appeal": N_("申诉期"),
}
#: What entering a day of a pasted arrangement does (workflow.calendar PLAN_*).
PLAN_TEXT = {
    "add": N_("将录入"),
    "replace": N_("将替换原有调整"),
    "entered": N_("已录入"),
    "unneeded": N_("无需录入"),
}


@dataclass(frozen=True)
class DeadlineInfo:
    """An assessment's calendar as of today, for the pages."""

    assessment: Assessment
    today: dt.date
    status: str
    stages: dict[str, StageView]

    def for_state(self, state: str) -> StageView | None:
        """Return the stage an item in `state` waits for (None once scored)."""
        try:
            stage = STAGE_OF_STATE.get(State(state))
        except ValueError:
            return None
        return self.stages.get(stage) if stage else None

    def is_overdue_state(self, state: str) -> bool:
        """Tell whether items in `state` are past their stage's deadline."""
        view = self.for_state(state)
        return view is not None and view.overdue

    @property
    def overdue_states(self) -> list[str]:
        """Return the item states whose stage deadline has passed (work still waiting)."""
        return [
            s.value
            for stage, states in PENDING_STATES.items()
            if self.stages[stage].overdue
            for s in states
        ]

    @property
    def publication(self) -> StageView | None:
        """Return the 公示 stage while publication runs, else None."""
        view = self.stages.get("publication")
        return view if view is not None and view.is_running else None


def deadline_info(assessment_id: int | None = None) -> DeadlineInfo | None:
    """Return the calendar of an assessment (the latest by default), once per request.

    None without an assessment or when the database cannot answer (error pages still render).
    """
    cache: dict[int | None, DeadlineInfo | None] = g.setdefault("deadline_info", {})
    if assessment_id in cache:
        return cache[assessment_id]
    info = None
    try:
        db = get_db()
        assessment = (
            db.get(Assessment, assessment_id)
            if assessment_id is not None
            else latest_assessment(db)
        )
        if assessment is not None:
            now = request_now()
            info = DeadlineInfo(
                assessment=assessment,
                today=today_of(assessment, now),
                status=assessment_status(assessment, now),
                stages={v.name: v for v in stage_calendar(db, assessment, now)},
            )
    except SQLAlchemyError:
        info = None
    cache[assessment_id] = info
    return info


@dataclass(frozen=True)
class Publication:
    """The 公示 running now: from which day to which (Asia/Shanghai)."""

    year: int
    starts_on: dt.date
    ends_on: dt.date


def running_publications() -> list[Publication]:
    """Return every 公示 running now, the newest year first (one query; none on a DB error).

    Two years may be on public view at once (last year's window still open when this year's
    results are published): the banner names each, so neither year's departments miss theirs.
    """
    if "publications" in g:
        cached: list[Publication] = g.publications
        return cached
    result: list[Publication] = []
    try:
        now = request_now()
        for assessment in get_db().scalars(
            select(Assessment)
            .where(
                Assessment.published_at <= now,
                Assessment.appeal_closes_at > now,
                Assessment.reopened_at.is_(None),
            )
            .order_by(Assessment.year.desc(), Assessment.id.desc())
        ):
            if assessment.appeal_closes_at is None or assessment_status(assessment, now) != (
                "published"
            ):
                continue
            tz = ZoneInfo(assessment.timezone)
            result.append(
                Publication(
                    year=assessment.year,
                    starts_on=local_date(cast(dt.datetime, assessment.published_at), tz),
                    ends_on=local_date(
                        assessment.appeal_closes_at - dt.timedelta(microseconds=1), tz
                    ),
                )
            )
    except SQLAlchemyError:
        result = []
    g.publications = result
    return result


def init_deadlines(app: Flask) -> None:
    """Offer `deadline_info()`, `running_publications()` and the stage names to templates."""
    app.add_template_global(deadline_info, "deadline_info")
    app.add_template_global(running_publications, "running_publications")
    app.jinja_env.globals["stage_text"] = STAGE_TEXT
    app.jinja_env.globals["plan_text"] = PLAN_TEXT


def _assessment_or_404(aid: int) -> Assessment:
    assessment = get_db().get(Assessment, aid) if aid <= MAX_ID else None
    if assessment is None:
        abort(404)
    return assessment


def _render(assessment: Assessment, **context: object) -> str:
    db = get_db()
    now = request_now()
    rows = stage_rows(db, assessment)
    overrides = calendar_overrides(db)
    return render_template(
        "admin/calendar.html",
        assessment=assessment,
        # Every year's calendar is one click away: last year's 公示 and appeals still run
        # on its own calendar once next year's assessment exists.
        years=assessment_years(db),
        today=today_of(assessment, now),
        views=stage_calendar(db, assessment, now),
        editable=[name for name, _label in STAGES],
        rows=rows,
        overrides=overrides,
        # What each form shows now (its hidden `seen`): a save over another admin's is refused.
        stage_seen={name: stage_seen(rows.get(name)) for name, _label in STAGES},
        override_seen={o.id: override_seen(o) for o in overrides},
        overrides_seen=overrides_seen(db),
        entered=entered_years(db),
        notes={n.stage: n for n in deadline_notes(db, assessment)},
        **context,
    )


@bp.get("/calendar")
@roles_required(Role.ADMIN)
def current_calendar() -> ResponseReturnValue:
    """Open the calendar of the year asked for (`?year=`), else of the newest assessment."""
    assessment = asked_assessment_or_404(get_db())
    return redirect(url_for("calendar_admin.calendar_page", aid=assessment.id))


@bp.get("/assessments/<int:aid>/calendar")
@roles_required(Role.ADMIN)
def calendar_page(aid: int) -> ResponseReturnValue:
    """Show the stage calendar and the working-day overrides, with forms to change them."""
    return _render(_assessment_or_404(aid), form={})


@bp.post("/assessments/<int:aid>/calendar/stages/<stage>")
@roles_required(Role.ADMIN)
def stage_set(aid: int, stage: str) -> ResponseReturnValue:
    """Set or clear one stage's deadline: a date, or N working days after the stage before."""
    db = get_db()
    assessment = _assessment_or_404(aid)
    if stage not in dict(STAGES):
        abort(404)
    try:
        with discard_on_error():
            set_stage_deadline(
                db,
                assessment,
                stage,
                starts_on=parse_day(request.form.get("starts_on", ""), gettext("开始日期")),
                due_on=parse_day(request.form.get("due_on", ""), gettext("截止日期")),
                working_days=parse_working_days(request.form.get("working_days", "")),
                actor=current_account(),
                seen=form_seen(request.form),
            )
    except DomainError as exc:
        form = {**request.form, "stage": stage}
        return _render(assessment, error=exc.message, form=form), exc.status
    flash(gettext("已保存%(stage)s", stage=gettext(STAGE_TEXT[stage])), "success")
    for note in deadline_notes(db, assessment):
        if note.stage == stage:  # kept, but said: a deadline on a day off
            flash(note.message, "warning")
    return redirect(url_for("calendar_admin.calendar_page", aid=aid), code=303)


@bp.post("/assessments/<int:aid>/calendar/arrangement")
@roles_required(Role.ADMIN)
def arrangement_act(aid: int) -> ResponseReturnValue:
    """Preview a pasted 节假日安排 notice day by day, or enter what the preview showed."""
    db = get_db()
    assessment = _assessment_or_404(aid)
    text = request.form.get("text", "")
    try:
        if request.form.get("action") != "enter":
            arrangement, plan = preview_arrangement(db, text, actor=current_account())
            return _render(
                assessment,
                form={},
                arrangement=arrangement,
                plan=plan,
                plan_counts=_plan_counts(plan),
                besides=entries_besides(db, arrangement),
                seen=plan_fingerprint(plan),
                arrangement_text=text,
            )
        with discard_on_error():
            arrangement, plan = enter_arrangement(
                db, text, actor=current_account(), seen=request.form.get("seen") or ""
            )
    except DomainError as exc:
        return _render(
            assessment, form={}, arrangement_error=exc.message, arrangement_text=text
        ), exc.status
    entered = sum(1 for p in plan if p.changes)
    if entered:
        message = ngettext(
            "已按通知录入 %(year)s 年节假日安排：%(n)s 天",
            "已按通知录入 %(year)s 年节假日安排：%(n)s 天",
            entered,
            year=arrangement.year,
            n=entered,
        )
    else:
        message = gettext("%(year)s 年的安排日历中已有，无需录入", year=arrangement.year)
    flash(message, "success")
    return redirect(url_for("calendar_admin.calendar_page", aid=aid) + "#overrides", code=303)


def _plan_counts(plan: list[PlannedDay]) -> dict[str, int]:
    counts = dict.fromkeys(PLAN_TEXT, 0)
    for p in plan:
        counts[p.action] += 1
    return counts


@bp.post("/assessments/<int:aid>/calendar/overrides")
@roles_required(Role.ADMIN)
def override_act(aid: int) -> ResponseReturnValue:
    """Add (or replace) a working-day override, or remove one; audited."""
    db = get_db()
    assessment = _assessment_or_404(aid)
    actor = current_account()
    try:
        with discard_on_error():
            if request.form.get("action") == "remove":
                raw = request.form.get("override_id", "")
                is_id = raw.isascii() and raw.isdecimal() and len(raw) < 11
                override_id = int(raw) if is_id and int(raw) <= MAX_ID else 0
                remove_calendar_override(db, override_id, actor=actor, seen=form_seen(request.form))
                message = gettext("已删除工作日调整")
            else:
                day = parse_day(request.form.get("day", ""), gettext("日期"))
                if day is None:
                    raise InvalidValue("请填写日期", code="date_required")
                kind = request.form.get("kind", "")
                if kind not in ("holiday", "workday"):
                    raise InvalidValue("请选择放假或上班", code="bad_kind")
                set_calendar_override(
                    db,
                    day,
                    kind == "workday",
                    request.form.get("reason", ""),
                    actor=actor,
                    seen=form_seen(request.form),
                )
                message = gettext("已保存工作日调整")
                if day.year in work_calendar(db).entered_years():
                    flash(
                        gettext(
                            "系统未收录 %(year)s 年的法定节假日安排：该年按周一至周五上班、"
                            "周末休息，只认您录入的日期。请录入该年全部放假和调休上班的日期。",
                            year=day.year,
                        ),
                        "warning",
                    )
    except DomainError as exc:
        return _render(assessment, error=exc.message, form=dict(request.form)), exc.status
    flash(message, "success")
    return redirect(url_for("calendar_admin.calendar_page", aid=aid) + "#overrides", code=303)
