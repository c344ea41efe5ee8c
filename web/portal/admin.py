"""Administration: users (create, roles and department, password reset, disable)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from web.app import get_db
from web.portal.auth import current_account, roles_required
from web.portal.common import add_error_pages, latest_assessment
from workflow.errors import DomainError
from workflow.models import Department, User
from workflow.states import ROLE_LABELS, Role
from workflow.users import create_user, generate_password, set_active, set_password, set_roles

bp = Blueprint("admin", __name__, url_prefix="/admin")
add_error_pages(bp)


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


def _department_from_form(db: Session) -> Department | None:
    value = request.form.get("department_id", "")
    if not value.isdigit():
        return None
    department = db.get(Department, int(value))
    if department is None:
        abort(400)
    return department


def _user_or_404(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _render_users(db: Session, **context: object) -> str:
    users = db.execute(
        select(User).options(joinedload(User.department)).order_by(User.username)
    ).scalars()
    return render_template(
        "admin/users.html",
        users=list(users),
        departments=_departments(db),
        roles=list(ROLE_LABELS.items()),
        **context,
    )


@bp.get("/users")
@roles_required(Role.ADMIN)
def users() -> ResponseReturnValue:
    """List users with a form to create one."""
    return _render_users(get_db(), form={})


@bp.post("/users")
@roles_required(Role.ADMIN)
def create() -> ResponseReturnValue:
    """Create a user with a one-time password shown once on this page."""
    db = get_db()
    password = generate_password()
    try:
        user = create_user(
            db,
            request.form.get("username", "").strip(),
            request.form.getlist("roles"),
            department=_department_from_form(db),
            password=password,
            display_name=request.form.get("display_name", "").strip()[:100],
            actor=current_account(),
            must_change_password=True,
        )
    except DomainError as exc:
        db.rollback()
        return _render_users(db, form=request.form, error=exc.message), exc.status
    db.commit()
    # Shown in the page, never flashed: the session cookie is signed, not encrypted.
    return _render_users(db, form={}, created=user, one_time_password=password), 201


@bp.get("/users/<int:user_id>")
@roles_required(Role.ADMIN)
def user_page(user_id: int) -> ResponseReturnValue:
    """Show a user with forms for roles, password reset and disabling."""
    db = get_db()
    user = _user_or_404(db, user_id)
    return render_template(
        "admin/user.html",
        user=user,
        departments=_departments(db),
        roles=list(ROLE_LABELS.items()),
    )


@bp.post("/users/<int:user_id>/roles")
@roles_required(Role.ADMIN)
def change_roles(user_id: int) -> ResponseReturnValue:
    """Change a user's roles and department (their sessions end)."""
    db = get_db()
    user = _user_or_404(db, user_id)
    try:
        set_roles(
            db,
            user,
            request.form.getlist("roles"),
            department=_department_from_form(db),
            actor=current_account(),
        )
    except DomainError as exc:
        db.rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.user_page", user_id=user_id), code=303)
    db.commit()
    flash("角色已更新，该用户需重新登录", "success")
    return redirect(url_for("admin.user_page", user_id=user_id), code=303)


@bp.post("/users/<int:user_id>/password")
@roles_required(Role.ADMIN)
def reset_password(user_id: int) -> ResponseReturnValue:
    """Reset a user's password to a one-time one, shown once; their sessions end."""
    db = get_db()
    user = _user_or_404(db, user_id)
    password = generate_password()
    set_password(db, user, password, actor=current_account(), must_change=True)
    db.commit()
    return render_template(
        "admin/user.html",
        user=user,
        departments=_departments(db),
        roles=list(ROLE_LABELS.items()),
        one_time_password=password,
    )


@bp.post("/users/<int:user_id>/active")
@roles_required(Role.ADMIN)
def change_active(user_id: int) -> ResponseReturnValue:
    """Disable (ending sessions and tokens) or re-enable a user."""
    db = get_db()
    user = _user_or_404(db, user_id)
    actor = current_account()
    active = request.form.get("active") == "1"
    if user.id == actor.id and not active:
        flash("不能停用自己的账号", "error")
        return redirect(url_for("admin.user_page", user_id=user_id), code=303)
    set_active(db, user, active, actor=actor)
    db.commit()
    flash("已启用该用户" if active else "已停用该用户，其登录和令牌已失效", "success")
    return redirect(url_for("admin.user_page", user_id=user_id), code=303)
