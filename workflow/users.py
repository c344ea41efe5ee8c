"""Users, passwords (Argon2id) and API tokens (stored as SHA-256), all changes audited."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from collections.abc import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from workflow.audit import record_event
from workflow.db import lock_key, lock_row, serialise
from workflow.errors import Conflict, Forbidden, InvalidValue, NotAuthenticated, NotFound
from workflow.fingerprints import check_row_seen, fields_of, fingerprint
from workflow.models import ApiToken, Department, Unit, User, utcnow
from workflow.passwords import check_new_password
from workflow.permissions import department_id_for
from workflow.security_log import security_event
from workflow.states import Role
from workflow.units import UNIT_NAMES_LOCK

HASHER = PasswordHasher()  # Argon2id with the library's current recommended parameters
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
#: The lock user creations queue behind before they look whether a name is taken.
USERNAMES_LOCK = lock_key("usernames")
TOKEN_DAYS = 90


#: The decoy below, made once with argon2-cffi's default parameters (those of `HASHER`).
_DECOY = (
    "$argon2id$v=19$m=65536,t=3,p=4$SsPVDTUWbO51oVB9GcSCTg$"
    "sG8hE247Gc6gh2vMZtRUrgm2JUhMLdc9GM9v7fkC7p0"
)


@functools.cache
def decoy_hash() -> str:
    """A hash to verify against when the user is unknown, so timing does not reveal who
    exists: it has `HASHER`'s parameters. The stored one serves while they match; otherwise
    (a library release with new defaults, the tests' light hasher) one is made on first use.
    Made at import, it cost every command and worker a second of Argon2, sign-in or not; made
    on first use only, the first unknown name took twice a wrong password's time."""
    if not HASHER.check_needs_rehash(_DECOY):
        return _DECOY
    return HASHER.hash("dummy-password-for-timing")


def hash_password(password: str) -> str:
    """Hash a password with Argon2id."""
    return HASHER.hash(password)


def check_password(user: User | None, password: str) -> bool:
    """Verify a password in constant-ish time whether or not the user exists."""
    stored = user.password_hash if user is not None and user.password_hash else decoy_hash()
    try:
        HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None and user.password_hash is not None


def generate_password() -> str:
    """Return a random one-time password people can type."""
    return secrets.token_urlsafe(12)


def validate_roles(roles: Iterable[str]) -> list[str]:
    """Return the roles as sorted values or raise InvalidValue naming an unknown one."""
    result = set()
    for r in roles:
        try:
            result.add(Role(r).value)
        except ValueError as exc:
            raise InvalidValue(
                "未知的角色：%(role)s", code="unknown_role", params={"role": r}
            ) from exc
    if not result:
        raise InvalidValue("至少需要一个角色", code="role_required")
    return sorted(result)


def get_user(session: Session, username: str) -> User | None:
    """Find a user by name."""
    return session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def create_user(
    session: Session,
    username: str,
    roles: Iterable[str],
    *,
    department: Department | None = None,
    unit: Unit | None = None,
    password: str | None = None,
    display_name: str = "",
    actor: User | None = None,
    must_change_password: bool = False,
) -> User:
    """Create a user; a department user needs a unit (given, or the unit of `department`).

    The user belongs to the unit, not to one year's department row: their department in
    each assessment is the unit's appearance there (`workflow.permissions.department_for`).
    """
    unit_id = _unit_id(unit, department)
    if not USERNAME_RE.match(username):
        raise InvalidValue(
            "用户名只能包含字母、数字、点、下划线和连字符（2–64 位）", code="bad_username"
        )
    role_values = validate_roles(roles)
    if Role.DEPARTMENT.value in role_values and unit_id is None:
        raise InvalidValue("部门填报员必须指定所属部门", code="department_required")
    if password is not None:
        check_new_password(password, [username, display_name])
    # Names that differ only in case are one name to a person (and sign-in is exact). The
    # unique index knows only the exact name: two admins creating "wang" and "Wang" at once
    # (or "wang" twice: a unique violation, a 500) queue here, and the second sees the first.
    serialise(session, USERNAMES_LOCK)
    taken = session.scalar(
        select(User.username).where(func.lower(User.username) == username.lower())
    )
    if taken is not None:
        raise Conflict(
            "用户名已存在：%(username)s", code="username_taken", params={"username": taken}
        )
    user = User(
        username=username,
        display_name=display_name,
        roles=role_values,
        unit_id=unit_id,
        password_hash=hash_password(password) if password else None,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        actor=actor,
        action="user_created",
        target_type="user",
        target_id=user.id,
        department_id=department.id if department is not None else None,
        payload={
            "username": username,
            "roles": role_values,
            "unit_id": unit_id,
            "password_sha256": verifier_fingerprint(user.password_hash),
        },
    )
    security_event("account_created", user_id=user.id, username=username, roles=role_values,
                   unit_id=unit_id, by=_actor_id(actor))  # fmt: skip
    return user


def _unit_id(unit: Unit | None, department: Department | None) -> int | None:
    if unit is not None:
        return unit.id
    if department is not None:
        return department.unit_id
    return None


def _ensure_unit_in_use(session: Session, unit_id: int) -> None:
    """Refuse (422 `unit_ended`) to put a user into a unit merged, split or dissolved: they
    would belong to no department of any year to come."""
    # The lock every unit change takes: a merge, split or dissolution in flight commits first.
    serialise(session, UNIT_NAMES_LOCK)
    status = session.scalar(select(Unit.status).where(Unit.id == unit_id))
    if status is not None and status != "active":
        raise InvalidValue("该单位已合并、拆分或撤销，请改选现单位", code="unit_ended")


def set_password(
    session: Session, user: User, password: str, *, actor: User | None, must_change: bool = False
) -> None:
    """Set a new password; all sessions of the user end."""
    check_new_password(password, [user.username, user.display_name])
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.session_version += 1
    session.flush()
    action = "password_reset" if actor is None or actor.id != user.id else "password_changed"
    record_event(
        session,
        actor=actor,
        action=action,
        target_type="user",
        target_id=user.id,
        payload={
            "username": user.username,
            "password_sha256": verifier_fingerprint(user.password_hash),
        },
    )
    security_event(action, user_id=user.id, username=user.username, by=_actor_id(actor),
                   must_change=must_change)  # fmt: skip


def record_sign_in_unlocked(
    session: Session, user: User, *, actor: User | None, actor_name: str | None = None,
    failures: int, wait_seconds: int, password_reset: bool = False,
) -> None:  # fmt: skip
    """Record that an admin (or the command line) lifted the sign-in limits held against the
    user: the failures counted and the seconds still to wait. The counts themselves live in
    the limiter's store, not the database: the caller clears them (`web.limits`)."""
    record_event(
        session,
        actor=actor,
        actor_name=actor_name,
        action="sign_in_unlocked",
        target_type="user",
        target_id=user.id,
        payload={
            "username": user.username,
            "failures": failures,
            "retry_after": wait_seconds,
            "password_reset": password_reset,
        },
    )
    security_event("sign_in_unlocked", user_id=user.id, username=user.username,
                   by=_actor_id(actor) or actor_name, failures=failures,
                   retry_after=wait_seconds)  # fmt: skip


def _keep_an_admin(session: Session, leaving: User) -> None:
    """Refuse to take away the last active admin (only the server's command line could make
    another). The active users are locked, so two admins demoting each other queue here."""
    # SQLite has no row locks: its write lock, taken before the read, queues the second admin.
    serialise(session, lock_key("admins"))
    others = session.scalars(
        select(User).where(User.is_active.is_(True), User.id != leaving.id).with_for_update()
    ).all()
    if not any(Role.ADMIN.value in u.roles for u in others):
        raise Conflict(
            "%(name)s是唯一在用的管理员，不能取消其管理员角色或停用；请先为另一位用户授予管理员角色",
            code="last_admin",
            params={"name": leaving.display_name or leaving.username},
        )


#: The fields of a user's roles form (`roles_seen`): the roles and the unit (department).
ROLES_FIELDS = ("roles", "unit_id")


def roles_seen(user: User) -> str:
    """The fingerprint of a user's roles and unit as they are now (the roles form's `seen`)."""
    return fingerprint(fields_of(user, ROLES_FIELDS))


def set_roles(
    session: Session,
    user: User,
    roles: Iterable[str],
    *,
    department: Department | None = None,
    unit: Unit | None = None,
    actor: User | None,
    seen: str | None = None,
) -> None:
    """Change a user's roles and unit (given, or the unit of `department`), audited.

    A `department` the user's unit already leads to (through a merge) keeps their unit.
    `seen` (`roles_seen` when the form was opened): roles or unit another admin changed since
    are a 409 `changed_since_opened`, nothing changed.
    """
    check_row_seen(session, user, ROLES_FIELDS, seen)
    role_values = validate_roles(roles)
    unit_id = _unit_id(unit, department)
    if (
        unit is None
        and department is not None
        and user.unit_id is not None
        and department_id_for(user, department.assessment_id) == department.id
    ):
        # The department the user's unit already leads to (the unit merged into it): moving
        # them onto its unit would cut them off from their earlier years.
        unit_id = user.unit_id
    if Role.DEPARTMENT.value in role_values and unit_id is None:
        raise InvalidValue("部门填报员必须指定所属部门", code="department_required")
    if unit_id is not None and unit_id != user.unit_id:
        _ensure_unit_in_use(session, unit_id)
    if Role.ADMIN.value in user.roles and Role.ADMIN.value not in role_values:
        _keep_an_admin(session, user)
    before = {"roles": list(user.roles), "unit_id": user.unit_id}
    user.roles = role_values
    user.unit_id = unit_id
    user.session_version += 1
    session.flush()
    record_event(
        session,
        actor=actor,
        action="roles_changed",
        target_type="user",
        target_id=user.id,
        payload={
            "before": before,
            "after": {"roles": role_values, "unit_id": user.unit_id},
        },
    )
    security_event("account_roles_changed", user_id=user.id, username=user.username,
                   before=before, roles=role_values, unit_id=user.unit_id,
                   by=_actor_id(actor))  # fmt: skip


def set_active(session: Session, user: User, active: bool, *, actor: User | None) -> None:
    """Disable (ending sessions and tokens at once) or re-enable a user."""
    if user.is_active == active:
        return
    if not active and Role.ADMIN.value in user.roles:
        _keep_an_admin(session, user)
    user.is_active = active
    user.disabled_at = None if active else utcnow()
    user.session_version += 1
    if not active:
        session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    session.flush()
    record_event(
        session,
        actor=actor,
        action="user_enabled" if active else "user_disabled",
        target_type="user",
        target_id=user.id,
        payload={"username": user.username},
    )
    security_event("account_enabled" if active else "account_disabled", user_id=user.id,
                   username=user.username, by=_actor_id(actor))  # fmt: skip


def _actor_id(actor: User | None) -> int | None:
    return actor.id if actor is not None else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verifier_fingerprint(stored: str | None) -> str | None:
    """The SHA-256 of a stored password hash or token hash, as the audit trail records it.

    The trail can then tell a verifier swapped in the table (a known password's hash put on
    the admin's row, a token's row given to another user) from one the engine wrote
    (`workflow.reconcile`). It reveals nothing to crack: the Argon2 string it digests holds
    its own random salt, and a token's hash is of 256 random bits.
    """
    return None if stored is None else hashlib.sha256(stored.encode("utf-8")).hexdigest()


def issue_token(
    session: Session, user: User, *, name: str = "", days: int = TOKEN_DAYS
) -> tuple[str, ApiToken]:
    """Create a bearer token; return the plain token (shown once) and its row.

    The user's row is locked and read again first: a disabling in flight (which revokes every
    token of the user) commits before, and this is refused; one that comes later waits, and
    then revokes this token too. No token made at that moment outlives the disabling.
    """
    lock_row(session, User, user.id)
    session.refresh(user, attribute_names=("is_active", "must_change_password"))
    if not user.is_active:
        raise NotAuthenticated("用户已停用", code="user_disabled")
    if user.must_change_password:
        raise Forbidden(
            "请先在门户修改初始密码或被重置的密码，再申请 API 令牌", code="password_change_required"
        )
    token = "fgf_" + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id,
        token_hash=_token_hash(token),
        name=name[:100],
        expires_at=utcnow() + dt.timedelta(days=days),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor=user,
        action="token_issued",
        target_type="token",
        target_id=row.id,
        payload={
            "token_id": row.id,
            "expires_at": row.expires_at,
            "token_sha256": verifier_fingerprint(row.token_hash),
        },
    )
    security_event("token_created", user_id=user.id, username=user.username, token_id=row.id,
                   name=row.name, expires_at=row.expires_at.isoformat())  # fmt: skip
    return token, row


def user_for_token(session: Session, token: str) -> User | None:
    """Return the active user of a valid, unexpired, unrevoked token, else None."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return user


def token_refusal(session: Session, token: str) -> str | None:
    """Say why a token `user_for_token` refused is no longer valid: "expired" or "revoked"
    (a disabled user's tokens are revoked with them); None for one that never was ours.

    Only whoever holds the token's secret learns this, so a script can tell "ask for a new
    token" from "the token is wrong" without anything leaking to a guesser."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken).where(ApiToken.token_hash == _token_hash(token))
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at <= utcnow():
        return "expired"
    return None


def revoke_token(
    session: Session, token_id: int, *, actor: User | None, actor_name: str | None = None
) -> ApiToken:
    """Revoke a token: its owner or an admin may, or the server's command line (`actor` None,
    recorded as `actor_name`). Return its row; one revoked before stays as it was."""
    row = session.get(ApiToken, token_id)
    if row is None or (
        actor is not None and row.user_id != actor.id and not actor.has_role(Role.ADMIN)
    ):
        if row is not None and actor is not None:
            security_event("foreign_resource_hidden", resource="token", id=token_id,
                           user_id=actor.id)  # fmt: skip
        raise NotFound("令牌不存在", code="token_not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
        record_event(
            session,
            actor=actor,
            actor_name=actor_name,
            action="token_revoked",
            target_type="token",
            target_id=row.id,
            payload={"token_id": row.id, "user_id": row.user_id},
        )
        security_event("token_revoked", token_id=row.id, user_id=row.user_id,
                       by=_actor_id(actor) or actor_name)  # fmt: skip
    return row


def revoke_user_tokens(
    session: Session, user: User, *, actor: User | None, actor_name: str | None = None
) -> list[ApiToken]:
    """Revoke every token of `user` not revoked yet, each as `revoke_token` revokes one (the
    same check, a `token_revoked` event a token); return those revoked now, oldest first.
    Tokens revoked before stay as they were; none left to revoke changes nothing."""
    live = session.scalars(
        select(ApiToken.id)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.id)
    ).all()
    return [
        revoke_token(session, token_id, actor=actor, actor_name=actor_name) for token_id in live
    ]
