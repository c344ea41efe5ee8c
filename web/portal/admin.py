"""Administration: users (create, roles, password reset, disable) and the assessment's settings."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any, BinaryIO, cast

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload

from storage.errors import StorageError
from web.common.exports import xlsx_response
from web.common.ids import MAX_ID
from web.common.labels import ALIAS_KIND_LABELS, DISPLAY_TZ
from web.db import discard_on_error, get_db
from web.limits import lift_sign_in_hold, sign_in_hold
from web.portal.auth import current_account, roles_required
from web.portal.common import (
    N_,
    asked_assessment,
    asked_assessment_or_404,
    asked_year,
    assessment_years,
    get_store,
    latest_assessment,
)
from web.portal.forms import form_seen
from web.portal.i18n import phrase_text
from workflow import health
from workflow.assessments import (
    MAX_PUBLICATION_DAYS,
    appeal_window_seen,
    assessment_status,
    publication_page_seen,
    publish_assessment,
    reopen_assessment,
    set_appeal_window,
    set_publication_page,
)
from workflow.departments import (
    add_alias,
    full_name_seen,
    get_department,
    remove_alias,
    rename_department,
)
from workflow.errors import Conflict, DomainError, InvalidValue, NotFound
from workflow.exports import users_table
from workflow.messages import Phrase
from workflow.models import Assessment, Department, Notice, Unit, User
from workflow.notices import (
    latest_base,
    notice_base_seen,
    result_settings_seen,
    set_notice_base,
    set_result_settings,
)
from workflow.permissions import department_id_for
from workflow.spreadsheets import xlsx_bytes
from workflow.states import ROLE_LABELS, Role
from workflow.users import (
    create_user,
    generate_password,
    roles_seen,
    set_active,
    set_password,
    set_roles,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _departments(db: Session) -> list[Department]:
    """Return the current assessment's departments (users belong to one of these)."""
    assessment = latest_assessment(db)
    if assessment is None:
        return []
    return list(
        db.execute(
            select(Department)
            .where(Department.assessment_id == assessment.id)
            .order_by(Department.position)
        ).scalars()
    )


def _new_units(db: Session, departments: list[Department]) -> list[Unit]:
    """The units in use that the newest year has no department of (made by a merge, split or
    rename since): their people can be entered before next year's assessment exists."""
    assessed = {d.unit_id for d in departments}
    units = db.scalars(
        select(Unit).where(Unit.status == "active").options(selectinload(Unit.names))
    )
    return sorted((u for u in units if u.id not in assessed), key=lambda u: u.name)


def _department_from_form(db: Session) -> Department | None:
    value = request.form.get("department_id", "")
    if not value.isdecimal():
        return None
    department = db.get(Department, int(value))
    if department is None:
        abort(400)
    return department


def _unit_from_form(db: Session) -> Unit | None:
    """A unit chosen among those the newest year has no department of (`unit-<id>`)."""
    value = request.form.get("department_id", "")
    if not value.startswith("unit-") or not value[5:].isdecimal() or len(value) > 16:
        return None
    unit = db.get(Unit, int(value[5:]))
    if unit is None:
        abort(400)
    return unit


def _user_form(db: Session, user: User) -> dict[str, Any]:
    """The user page's form: the department the user's unit leads to in the newest year, or
    (a unit split or abolished since) the unit itself, kept unless the admin chooses."""
    latest = latest_assessment(db)
    department_id = department_id_for(user, latest.id) if latest is not None else None
    keep_unit = db.get(Unit, user.unit_id) if user.unit_id and department_id is None else None
    return {
        "user": user,
        "user_roles": user.roles,
        "user_department_id": department_id,
        "keep_unit": keep_unit,
        "departments": (departments := _departments(db)),
        "new_units": _new_units(db, departments),
        "roles": list(ROLE_LABELS.items()),
        "seen": roles_seen(user),
        "sign_in_hold": sign_in_hold(user.username),
    }


def _user_or_404(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _render_users(db: Session, **context: object) -> str:
    users = db.execute(
        select(User).options(joinedload(User.unit).selectinload(Unit.names)).order_by(User.username)
    ).scalars()
    departments = _departments(db)
    return render_template(
        "admin/users.html",
        users=list(users),
        departments=departments,
        new_units=_new_units(db, departments),
        roles=list(ROLE_LABELS.items()),
        **context,
    )


@bp.get("/users")
@roles_required(Role.ADMIN)
def users() -> ResponseReturnValue:
    """List users with a form to create one."""
    return _render_users(get_db(), form={})


@bp.get("/users.xlsx")
@roles_required(Role.ADMIN)
def users_xlsx() -> ResponseReturnValue:
    """Every user as Excel: roles in Chinese, department, status, times in Asia/Shanghai."""
    headers, rows = users_table(get_db())
    return xlsx_response(xlsx_bytes("用户", headers, rows), "用户")


@bp.post("/users")
@roles_required(Role.ADMIN)
def create() -> ResponseReturnValue:
    """Create a user with a one-time password shown once on this page."""
    db = get_db()
    password = generate_password()
    try:
        with discard_on_error():
            user = create_user(
                db,
                request.form.get("username", "").strip(),
                request.form.getlist("roles"),
                department=_department_from_form(db),
                unit=_unit_from_form(db),
                password=password,
                display_name=request.form.get("display_name", "").strip()[:100],
                actor=current_account(),
                must_change_password=True,
            )
    except DomainError as exc:
        return _render_users(db, form=request.form, error=exc.message), exc.status
    # Shown in the page, never flashed: the session cookie is signed, not encrypted.
    return _render_users(db, form={}, created=user, one_time_password=password), 201


@bp.get("/users/<int:user_id>")
@roles_required(Role.ADMIN)
def user_page(user_id: int) -> ResponseReturnValue:
    """Show a user with forms for roles, password reset and disabling."""
    db = get_db()
    user = _user_or_404(db, user_id)
    return render_template("admin/user.html", **_user_form(db, user))


@bp.post("/users/<int:user_id>/roles")
@roles_required(Role.ADMIN)
def change_roles(user_id: int) -> ResponseReturnValue:
    """Change a user's roles and department (their sessions end)."""
    db = get_db()
    user = _user_or_404(db, user_id)
    try:
        with discard_on_error():
            # "keep": the user's unit has no department in the newest year (split, abolished):
            # the roles change, the unit stays until the admin chooses a department.
            keep = request.form.get("department_id") == "keep" and user.unit_id is not None
            set_roles(
                db,
                user,
                request.form.getlist("roles"),
                department=None if keep else _department_from_form(db),
                unit=db.get(Unit, user.unit_id) if keep else _unit_from_form(db),
                actor=current_account(),
                seen=form_seen(request.form),
            )
    except Conflict as exc:
        if exc.code != "changed_since_opened":
            flash(exc.message, "error")
            return redirect(url_for("admin.user_page", user_id=user_id), code=303)
        # Another admin saved first: their roles above, these in the form, the form on them.
        context = _user_form(db, user)
        chosen = request.form.get("department_id", "")
        context["user_roles"] = request.form.getlist("roles")
        if chosen.isascii() and chosen.isdecimal() and len(chosen) < 11:
            context["user_department_id"] = int(chosen)
        return render_template("admin/user.html", **context, error=exc.message), exc.status
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("admin.user_page", user_id=user_id), code=303)
    flash(gettext("角色已更新，该用户需重新登录"), "success")
    return redirect(url_for("admin.user_page", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/password")
@roles_required(Role.ADMIN)
def reset_password(user_id: int) -> ResponseReturnValue:
    """Reset a user's password to a one-time one, shown once; their sessions end."""
    db = get_db()
    user = _user_or_404(db, user_id)
    password = generate_password()
    actor = current_account()
    set_password(db, user, password, actor=actor, must_change=True)
    lifted = lift_sign_in_hold(db, user, actor=actor, password_reset=True)
    return render_template(
        "admin/user.html", **_user_form(db, user), one_time_password=password, lifted=lifted
    )


@bp.post("/users/<int:user_id>/unlock")
@roles_required(Role.ADMIN)
def unlock(user_id: int) -> ResponseReturnValue:
    """Lift the sign-in limits held against a user (recent failures, delay), audited."""
    db = get_db()
    user = _user_or_404(db, user_id)
    if lift_sign_in_hold(db, user, actor=current_account()) is None:
        flash(gettext("该用户当前没有登录限制"), "info")
    else:
        flash(gettext("已解除该用户的登录限制，可以立即再登录"), "success")
    return redirect(url_for("admin.user_page", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/active")
@roles_required(Role.ADMIN)
def change_active(user_id: int) -> ResponseReturnValue:
    """Disable (ending sessions and tokens) or re-enable a user."""
    db = get_db()
    user = _user_or_404(db, user_id)
    actor = current_account()
    active = request.form.get("active") == "1"
    if user.id == actor.id and not active:
        flash(gettext("不能停用自己的账号"), "error")
        return redirect(url_for("admin.user_page", user_id=user_id), code=303)
    set_active(db, user, active, actor=actor)
    flash(
        gettext("已启用该用户") if active else gettext("已停用该用户，其登录和令牌已失效"),
        "success",
    )
    return redirect(url_for("admin.user_page", user_id=user_id), code=303)


STATUS_LABELS = {
    "open": N_("评审进行中"),
    "published": N_("结果公示中（申诉期）"),
    "appeals_pending": N_("申诉期已结束，尚有申诉待决定（全部决定后结果最终确定）"),
    "final": N_("结果已最终确定"),
    "reopened": N_("已重新开启（更正中）"),
}


def _back_to_assessment() -> str:
    """The settings page of the year just acted on."""
    year = asked_year()
    if year is None:
        return url_for("admin.assessment_page")
    return url_for("admin.assessment_page", year=year)


def _render_assessment(db: Session, **context: object) -> str:
    year = asked_year()
    assessment = asked_assessment(db)
    status = assessment_status(assessment) if assessment is not None else None
    # What each form shows now (its hidden `seen`): a save over another admin's is refused.
    seen = (
        {
            "results": result_settings_seen(assessment),
            "window": appeal_window_seen(assessment),
            "publication_page": publication_page_seen(assessment),
            "letterhead": notice_base_seen(db, assessment),
        }
        if assessment is not None
        else {}
    )
    return render_template(
        "admin/assessment.html",
        year=year,
        years=assessment_years(db),
        assessment=assessment,
        status_label=STATUS_LABELS.get(status or "", ""),
        status=status,
        base=latest_base(db, assessment) if assessment is not None else None,
        seen=seen,
        **context,
    )


def _local_datetime(name: str) -> dt.datetime | None:
    """Read a `datetime-local` field as a time in Asia/Shanghai."""
    try:
        value = dt.datetime.fromisoformat(request.form.get(name, ""))
    except ValueError:
        return None
    return value.replace(tzinfo=DISPLAY_TZ)


@bp.get("/assessment")
@roles_required(Role.ADMIN)
def assessment_page() -> ResponseReturnValue:
    """Show the current assessment's status with publication and appeal window settings."""
    return _render_assessment(get_db())


@bp.post("/assessment")
@roles_required(Role.ADMIN)
def assessment_act() -> ResponseReturnValue:
    """Publish the results, set the appeal window (before publication), or reopen."""
    db = get_db()
    assessment = asked_assessment_or_404(db)
    actor = current_account()
    action = request.form.get("action", "")
    try:
        with discard_on_error():
            if action == "publish":
                # ５ typed with a Chinese input method is 5.
                days = unicodedata.normalize("NFKC", request.form.get("days", "")).strip()
                if not (days.isascii() and days.isdecimal() and len(days) <= 4):
                    raise InvalidValue(
                        "公示天数须为 1 到 %(max)s 之间的整数",
                        code="bad_days",
                        params={"max": MAX_PUBLICATION_DAYS},
                    )
                counted = request.form.get("counted", "calendar")
                if counted not in ("calendar", "working"):
                    raise InvalidValue("请选择按自然日或按工作日计算公示期", code="bad_days")
                publish_assessment(
                    db, assessment, int(days), actor=actor, working_days=counted == "working"
                )
                message = gettext("已公示考核结果，申诉期开始")
            elif action == "window":
                opens, closes = _local_datetime("opens_at"), _local_datetime("closes_at")
                if opens is None or closes is None:
                    raise InvalidValue("请填写申诉开始和截止时间", code="bad_window")
                set_appeal_window(
                    db, assessment, opens, closes, actor=actor, seen=form_seen(request.form)
                )
                message = gettext("已更新申诉期")
            elif action == "publication_page":
                set_publication_page(
                    db,
                    assessment,
                    request.form.get("audience", ""),
                    actor=actor,
                    seen=form_seen(request.form),
                )
                message = gettext("已更新公示页面的查看范围")
            elif action == "reopen":
                reopen_assessment(db, assessment, request.form.get("reason", ""), actor=actor)
                message = gettext("已重新开启考核")
            elif action == "results":
                old_number = assessment.result_document_no
                set_result_settings(
                    db,
                    assessment,
                    actor=actor,
                    document_no=request.form.get("result_document_no", ""),
                    cc=request.form.get("notice_cc", ""),
                    hide_scores=request.form.get("hide_scores") == "1",
                    seen=form_seen(request.form),
                )
                message = gettext("已保存考核结果通知书设置")
                if old_number and assessment.result_document_no != old_number:
                    issued = _issued_documents(db, assessment)
                    if issued:
                        notice = ngettext(
                            "已印发的 %(n)s 份文件仍为原文号 %(old)s；此后印发的文件使用新文号，"
                            "如需更正已印发的文件，请重新印发",
                            "已印发的 %(n)s 份文件仍为原文号 %(old)s；此后印发的文件使用新文号，"
                            "如需更正已印发的文件，请重新印发",
                            issued,
                            n=issued,
                            old=old_number,
                        )
                        flash(notice, "info")
            else:
                abort(400)
    except DomainError as exc:
        return _render_assessment(db, error=exc.message, form=request.form), exc.status
    flash(message, "success")
    return redirect(_back_to_assessment(), code=303)


def _issued_documents(db: Session, assessment: Assessment) -> int:
    """How many notice and summary versions of the assessment were issued (under its number)."""
    return (
        db.scalar(
            select(func.count()).select_from(Notice).where(Notice.assessment_id == assessment.id)
        )
        or 0
    )


@bp.post("/assessment/letterhead")
@roles_required(Role.ADMIN)
def upload_letterhead() -> ResponseReturnValue:
    """Store an uploaded .docx letterhead as the base of every later notice."""
    db = get_db()
    assessment = asked_assessment_or_404(db)
    upload = request.files.get("file")
    try:
        with discard_on_error():
            if upload is None or not upload.filename:
                raise InvalidValue("请选择信头文件（.docx）", code="file_required")
            set_notice_base(
                db,
                get_store(),
                assessment,
                cast(BinaryIO, upload.stream),
                upload.filename,
                current_account(),
                seen=form_seen(request.form),
            )
    except (DomainError, StorageError) as exc:
        return _render_assessment(db, error=exc.message, form={}), exc.status
    flash(gettext("已更换通知书信头"), "success")
    return redirect(_back_to_assessment(), code=303)


# -- departments and aliases -----------------------------------------------------------------


def _render_departments(db: Session, **context: object) -> str:
    departments = _departments(db)
    return render_template(
        "admin/departments.html",
        # The newest year's departments: the heading names it (last year's are not these).
        assessment=latest_assessment(db),
        departments=departments,
        alias_kinds=ALIAS_KIND_LABELS,
        seen={d.id: full_name_seen(d) for d in departments},
        **context,
    )


@bp.get("/departments")
@roles_required(Role.ADMIN)
def departments() -> ResponseReturnValue:
    """List the current assessment's departments with full name, aliases and offices."""
    return _render_departments(get_db(), form={})


@bp.post(f"/departments/<int(max={MAX_ID}):department_id>")
@roles_required(Role.ADMIN)
def department_act(department_id: int) -> ResponseReturnValue:
    """Edit a department's full name, add or remove an alias (audited)."""
    db = get_db()
    actor = current_account()
    action = request.form.get("action", "")
    try:
        with discard_on_error():
            department = get_department(db, department_id)
            if action == "rename":
                rename_department(
                    db,
                    department,
                    request.form.get("full_name", ""),
                    actor=actor,
                    seen=form_seen(request.form),
                )
                message = gettext("已修改部门全称")
            elif action == "add_alias":
                add_alias(
                    db,
                    department,
                    request.form.get("alias", ""),
                    request.form.get("kind", "alias"),
                    actor=actor,
                )
                message = gettext("已添加别名")
            elif action == "remove_alias":
                raw = request.form.get("alias_id", "")
                alias_id = int(raw) if raw.isdecimal() and len(raw) < 11 else 0
                remove_alias(db, department, alias_id if alias_id <= MAX_ID else 0, actor=actor)
                message = gettext("已删除别名")
            else:
                abort(400)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            abort(404)
        form = {**request.form, "department_id": str(department_id)}
        return _render_departments(db, error=exc.message, form=form), exc.status
    flash(message, "success")
    return redirect(url_for("admin.departments") + f"#dep-{department_id}", code=303)


#: The badge colour of each status of the checks (workflow.health).
HEALTH_BADGES = {
    health.OK: "state-scored",
    health.DEGRADED: "state-verified",
    health.DOWN: "state-returned",
    health.UNKNOWN: "state-draft",
}


@bp.get("/status")
@roles_required(Role.ADMIN)
def status() -> ResponseReturnValue:
    """系统状态: the installation's checks in words, with what to do (monitors use /readyz)."""
    from web.tasks import last_beat

    result = health.check_health(get_db(), get_store(), last_beat)
    rows = [
        {
            "label": gettext(health.LABELS[c.name]),
            "status": gettext(health.STATUS_LABELS[c.status]),
            "badge": HEALTH_BADGES[c.status],
            "detail": phrase_text(Phrase(c.detail, c.params)),  # counted by `n` (Np_)
            "at": c.at,
            "hint": c.hint if not c.ok else None,
        }
        for c in result.checks
    ]
    return render_template(
        "admin/status.html",
        rows=rows,
        overall=gettext(health.STATUS_LABELS[result.status]),
        badge=HEALTH_BADGES[result.status],
    )
