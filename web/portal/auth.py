"""Sign-in for the portal: Flask-Login sessions that die on logout, disable and password reset.

The session stores ``"<user id>:<session_version>"`` as the Flask-Login id. Logout, disabling
a user and a password reset bump ``users.session_version``, so any copy of an older cookie
loads no user. Logout therefore ends all of that user's browser sessions, not only this one
(no server-side session table is needed for that guarantee).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from web.db import discard_on_error, get_db
from web.limits import sign_in
from web.portal.common import N_
from workflow.audit import record_event
from workflow.errors import DomainError, NotAuthenticated, TooManyAttempts
from workflow.models import User
from workflow.security_log import security_event
from workflow.states import Role
from workflow.users import check_password, set_password

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = N_("请先登录")
login_manager.localize_callback = gettext
login_manager.login_message_category = "info"

F = TypeVar("F", bound=Callable[..., Any])


class SessionUser(UserMixin):
    """The signed-in user as Flask-Login sees it: a wrapper around the `User` row."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        """Return the session id: the user id with the session version it was issued under."""
        return f"{self.user.id}:{self.user.session_version}"

    @property
    def is_active(self) -> bool:
        """Report whether the account is enabled (disabled accounts cannot sign in)."""
        return bool(self.user.is_active)


@login_manager.user_loader
def _load_user(session_id: str) -> SessionUser | None:
    """Load the session's user unless disabled or the session version has moved on."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdecimal() or not version.isdecimal():
        return None
    user = get_db().get(User, int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return SessionUser(user)


def current_account() -> User:
    """Return the signed-in `User` row (call only behind `login_required` / `roles_required`)."""
    return cast(SessionUser, current_user).user


def signed_in_user() -> User | None:
    """Return the signed-in `User`, or None for an anonymous visitor."""
    if current_user.is_authenticated:
        return current_account()
    return None


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Require a signed-in user holding one of `roles` (none given: any signed-in user)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and not current_account().has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def landing_url(user: User) -> str:
    """Return where a user's work is: the department portal, the review queues, the
    assessment overview (admin) or the audit timeline (auditor)."""
    if user.has_role(Role.DEPARTMENT):
        return url_for("portal.index")
    if user.has_role(Role.REVIEWER, Role.VERIFIER, Role.SCORER):
        return url_for("review.queue")
    if user.has_role(Role.ADMIN):
        return url_for("progress.matrix")
    if user.has_role(Role.AUDITOR):
        return url_for("audit.events")
    return url_for("home")


def safe_next(target: str | None) -> str | None:
    """Accept only a local path as the post-login target (no open redirect, no header break).

    A control character (CR/LF would split the Location header) or a space makes it invalid.
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if not target.isprintable() or " " in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the sign-in form; sign in with a username and password."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url or landing_url(current_account()))
        return render_template("auth/login.html", next_url=next_url)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    db = get_db()
    try:
        user = sign_in(db, username, password, channel="portal", name_disabled=True)
    except TooManyAttempts as exc:
        page = render_template("auth/login.html", error=exc.message, username=username)
        return page, 429, {"Retry-After": str(exc.detail)}
    except NotAuthenticated as exc:
        return render_template(
            "auth/login.html", error=exc.message, username=username, next_url=next_url
        )
    session.clear()  # a fresh session at sign-in: nothing from before survives (fixation)
    login_user(SessionUser(user))
    start_session_clock()
    record_event(db, actor=user, action="login", target_type="user", target_id=user.id)
    if user.must_change_password:
        flash(gettext("首次登录或密码已被重置，请先修改密码"), "info")
        return redirect(url_for("auth.change_password"))
    return redirect(next_url or landing_url(user))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the session: bump the session version so copies of this cookie stop working."""
    user = signed_in_user()
    if user is not None:
        security_event("sign_out", user_id=user.id, username=user.username)
        db = get_db()
        user.session_version += 1
        record_event(db, actor=user, action="logout", target_type="user", target_id=user.id)
    logout_user()
    session.clear()
    flash(gettext("您已安全退出"), "info")
    return redirect(url_for("auth.login"))


@bp.post("/session/alive")
@roles_required()
def session_alive() -> ResponseReturnValue:
    """Keep the session of someone at work on a page: js/session.js posts here (with the CSRF
    header) while they type or click, so an appeal or a score sheet written for half an hour
    is not lost to the idle timeout, which counts requests. A session already ended
    answers the login redirect, as any page does."""
    return Response(status=204, headers={"Cache-Control": "no-store"})


@bp.get("/session/token")
@roles_required()
def session_token() -> ResponseReturnValue:
    """The session as it is now, without counting as activity: its CSRF token (a page opened
    before its user signed in again, in another tab after the idle timeout, takes it, so
    that what was typed on it can still be sent) and the seconds left before the idle
    timeout (a page idle while its user works in another tab learns the session lives)."""
    idle = float(current_app.config["SESSION_IDLE_MINUTES"]) * 60
    left = idle - (time.time() - float(session.get(LAST_SEEN_AT, 0)))
    response = jsonify(csrf_token=generate_csrf(), idle_seconds_left=max(0, round(left, 1)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/account/password", methods=["GET", "POST"])
@roles_required()
def change_password() -> ResponseReturnValue:
    """Let the signed-in user change their password (required after a reset)."""
    user = current_account()
    if request.method == "GET":
        return render_template("auth/change_password.html")
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    confirm = request.form.get("confirm_password", "")
    error = None
    if not check_password(user, current):
        error = gettext("当前密码不正确")
    elif new != confirm:
        error = gettext("两次输入的新密码不一致")
    elif new == current:
        error = gettext("新密码不能与当前密码相同")
    if error is None:
        db = get_db()
        try:
            with discard_on_error():
                set_password(db, user, new, actor=user)
        except DomainError as exc:
            error = exc.message
        else:
            started = session.get(SIGNED_IN_AT)
            session.clear()
            login_user(SessionUser(user))  # the version moved: re-issue this session only
            start_session_clock(started)  # a new password does not extend the absolute lifetime
            flash(gettext("密码已修改，其他设备上的登录已失效"), "success")
            return redirect(landing_url(user))
    return render_template("auth/change_password.html", error=error), 422


SIGNED_IN_AT = "signed_in_at"
LAST_SEEN_AT = "last_seen_at"
IDLE_MESSAGE = N_("您已超过 %(minutes)s 分钟未操作，为保护账号安全已自动退出，请重新登录")
LIFETIME_MESSAGE = N_("本次登录已满 %(hours)s 小时，为保护账号安全请重新登录")


def start_session_clock(signed_in_at: float | None = None) -> None:
    """Stamp a new sign-in: the absolute lifetime and the idle timeout count from now."""
    now = time.time()
    session[SIGNED_IN_AT] = now if signed_in_at is None else signed_in_at
    session[LAST_SEEN_AT] = now


def _session_timeouts() -> ResponseReturnValue | None:
    """End a session idle too long or older than its absolute lifetime, saying why.

    The times live in the signed session cookie, so a copied cookie expires as well; a
    cookie without them (issued before this rule) counts as expired.
    """
    if request.path.startswith(("/api/", "/static/")) or "_user_id" not in session:
        return None
    now = time.time()
    idle = float(current_app.config["SESSION_IDLE_MINUTES"]) * 60
    lifetime = float(current_app.config["SESSION_LIFETIME_HOURS"]) * 3600
    signed_in_at = session.get(SIGNED_IN_AT)
    last_seen_at = session.get(LAST_SEEN_AT)
    reason = None
    if not isinstance(signed_in_at, float | int) or now - signed_in_at > lifetime:
        reason = "lifetime"
        message = gettext(
            LIFETIME_MESSAGE, hours=f"{current_app.config['SESSION_LIFETIME_HOURS']:g}"
        )
    elif not isinstance(last_seen_at, float | int) or now - last_seen_at > idle:
        reason = "idle"
        message = gettext(IDLE_MESSAGE, minutes=f"{current_app.config['SESSION_IDLE_MINUTES']:g}")
    if reason is None:
        if request.endpoint != "auth.session_token":  # asking is not working
            session[LAST_SEEN_AT] = now
        return None
    security_event("session_expired", reason=reason)
    logout_user()
    session.clear()
    flash(message, "info")
    if request.method == "GET" and request.endpoint != "auth.login":
        return redirect(url_for("auth.login", next=safe_next(request.full_path.rstrip("?"))))
    return redirect(url_for("auth.login"))


def _force_password_change() -> ResponseReturnValue | None:
    """Send a user who must change their password to that page before anything else."""
    if request.path.startswith(("/api/", "/static/")) or request.endpoint is None:
        return None
    if request.endpoint in ("auth.change_password", "auth.logout", "auth.login", "static"):
        return None
    user = signed_in_user()
    if user is not None and user.must_change_password:
        return redirect(url_for("auth.change_password"))
    return None


def init_auth(app: Flask) -> None:
    """Set up Flask-Login and the sign-in pages on the app."""
    login_manager.init_app(app)
    app.before_request(_session_timeouts)
    app.before_request(_force_password_change)
    app.register_blueprint(bp)
