"""The server-rendered portal: sign-in, the department portal and the review queues."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app
from flask_babel import gettext

from storage.convert import CONVERTIBLE_TYPES
from storage.errors import human_size
from storage.ingest import ACCEPTED_EXTENSIONS_TEXT
from web.common.labels import PURPOSE_LABELS, local_time, state_label
from web.common.routine_tables import cell_status
from web.portal.common import file_size, next_step, points_max, role_labels


def register_portal(app: Flask) -> None:
    """Register sign-in, the portal pages and their template helpers on the app."""
    from web.common.event_text import user_name
    from web.portal import (
        admin,
        audit,
        bulk,
        department,
        inbox,
        jobs,
        notices,
        people,
        progress,
        publication,
        review,
        routine,
        schemes,
        units,
    )
    from web.portal.auth import init_auth, signed_in_user
    from web.portal.deadlines import bp as calendar_admin_bp
    from web.portal.deadlines import init_deadlines
    from web.portal.i18n import LANGUAGES, current_language, init_i18n

    init_auth(app)
    init_i18n(app)
    app.register_blueprint(department.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(bulk.bp)
    app.register_blueprint(progress.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(units.bp)
    app.register_blueprint(units.year_bp)
    app.register_blueprint(routine.bp)
    app.register_blueprint(notices.bp)
    app.register_blueprint(calendar_admin_bp)
    init_deadlines(app)
    app.register_blueprint(publication.bp)
    app.register_blueprint(inbox.bp)
    app.register_blueprint(people.bp)
    app.register_blueprint(jobs.bp)
    app.add_template_global(inbox.unread_messages, "unread_messages")
    app.add_template_global(_account_unit_name, "account_unit_name")
    app.add_template_global(_unit_label, "unit_label")
    app.register_blueprint(schemes.bp)
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(file_size, "file_size")
    app.add_template_filter(points_max, "points_max")
    app.add_template_filter(state_label, "state_label")
    app.add_template_filter(role_labels, "role_labels")
    app.add_template_filter(next_step, "next_step")
    app.add_template_filter(routine.kind_label, "kind_label")
    app.add_template_filter(routine.status_label, "routine_status")
    app.add_template_filter(routine.outcome_label, "routine_outcome")
    app.add_template_filter(cell_status, "cell_status")
    app.add_template_filter(user_name, "user_name")

    @app.context_processor
    def _portal_context() -> dict[str, Any]:
        from web.common.event_text import CHECK_ANSWER_LABELS
        from workflow.machine import ACTION_LABELS
        from workflow.models import RoutineRecord
        from workflow.permissions import READ_ALL_ROLES, is_own_department
        from workflow.routine import own_report
        from workflow.states import Role

        user = signed_in_user()

        def own_department(department_id: int) -> bool:
            """Whether the department is the signed-in user's own (their unit's)."""
            return user is not None and is_own_department(user, department_id)

        def own_routine_report(record: RoutineRecord) -> bool:
            """Whether a routine record is the signed-in user's own department report."""
            return user is not None and own_report(user, record)

        return {
            "account": user,
            "own_department": own_department,
            "own_routine_report": own_routine_report,
            "nav_department": user is not None and user.has_role(Role.DEPARTMENT),
            "nav_review": user is not None and user.has_role(*READ_ALL_ROLES),
            "nav_audit": user is not None and user.has_role(Role.AUDITOR, Role.ADMIN),
            "nav_admin": user is not None and user.has_role(Role.ADMIN),
            "languages": LANGUAGES,
            "language": current_language(),
            "action_labels": ACTION_LABELS,
            "purpose_labels": PURPOSE_LABELS,
            "check_answer_labels": CHECK_ANSWER_LABELS,
            "convertible_types": CONVERTIBLE_TYPES,
            # The extensions ingest accepts, for the upload form's help text.
            "accepted_file_types": ACCEPTED_EXTENSIONS_TEXT,
            # The size limit in the words of its refusal (FileTooLarge).
            "upload_limit": human_size(int(current_app.config["MAX_UPLOAD_BYTES"])),
        }


def _account_unit_name(user: Any) -> str | None:
    """The name the header shows for the user's unit: this year's department when the unit was
    merged or renamed (the account outlives the reorganisation), else the unit's own name."""
    from sqlalchemy.exc import SQLAlchemyError

    from workflow.permissions import current_department

    try:
        department = current_department(user)
    except SQLAlchemyError:
        department = None
    if department is not None:
        return str(department.name)
    unit = getattr(user, "unit", None)
    return str(unit.name) if unit is not None else None


def _unit_label(user: Any) -> str:
    """A user's unit on the users pages: its name now, and the account's own unit when that
    bore another name (a unit merged into this one), as `workflow.permissions.unit_names`;
    a unit split or dissolved says so (its users have no department in a later year until an
    admin re-points them: a split 住建局's account looked like the new 住建局's), as does one
    merged since the newest year (no year of the merged unit yet)."""
    from web.portal.units import STATUS_TEXT
    from workflow.permissions import unit_names

    now, own = unit_names(user)
    if own:
        return gettext("%(unit)s（原%(former)s）", unit=now, former=own)
    status = getattr(user.unit, "status", "active")
    if status in ("merged", "split", "dissolved"):  # merged: no later year to lead to yet
        return gettext("%(unit)s（%(status)s）", unit=now, status=gettext(STATUS_TEXT[status]))
    return now
