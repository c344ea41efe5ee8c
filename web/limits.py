"""The one rate limiter of the app, and the sign-in guard the portal and the API share.

The storage is Redis when ``REDIS_URL`` is set (several gunicorn workers share the counts),
else process memory, which a server with several workers refuses (``ALLOW_PER_PROCESS_LIMITS``
overrides, with an error in the log at every start).

Sign-in attempts are counted before the password is looked at: an atomic increment (Redis
INCRBY in a script, a lock in memory) that reports the new count, compared afterwards with the
limit. Parallel guesses therefore cannot all pass a check before any of them counts; at most
the limit is evaluated. A successful sign-in gives its count back. After a few failures an
account also waits a delay that doubles with each further failure, up to a cap; nothing locks
an account for good, so an attacker cannot shut a real user out for longer than the cap.

An admin can lift an account's hold at once (`lift_sign_in_hold`: the portal's user page,
`users unlock`, and every password reset), audited as `sign_in_unlocked`.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy.orm import Session

from workflow.errors import NotAuthenticated, TooManyAttempts
from workflow.models import User
from workflow.users import record_sign_in_unlocked

# No storage_uri here: it comes from the app's config in init_limiter (known only then).
limiter = Limiter(key_func=get_remote_address)
log = logging.getLogger(__name__)

#: Defaults; deployments (environment) and tests (app.config) override them.
LOGIN_LIMIT_PER_USER = "5 per minute; 30 per hour"
LOGIN_LIMIT_PER_ADDRESS = "30 per minute"
LOGIN_DELAY_AFTER = 3  # failures of an account before the delay starts
LOGIN_DELAY_SECONDS = 2.0  # the first delay; it doubles with each further failure
LOGIN_DELAY_MAX_SECONDS = 300.0
FAILURE_MEMORY_SECONDS = 3600  # failures older than this no longer lengthen the delay


class PerProcessLimitsRefused(RuntimeError):
    """A multi-worker server without a shared store would multiply every limit."""


def server_workers() -> int:
    """Return how many worker processes the gunicorn serving us runs (1 outside gunicorn)."""
    if "gunicorn" not in Path(sys.argv[0]).name:
        return 1
    from gunicorn.app.wsgiapp import WSGIApplication

    try:  # the same command line, GUNICORN_CMD_ARGS, WEB_CONCURRENCY and config file
        return int(WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").cfg.workers)
    except (Exception, SystemExit):  # pragma: no cover - unreadable: assume the worst
        return 2


def init_limiter(app: Flask) -> None:
    """Bind the limiter to the app, storing counts in Redis when configured, else in memory."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    # The limiter is shared by every app of the process: do not inherit another app's switch.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter.init_app(app)
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        workers = server_workers()
        if workers > 1:
            message = (
                f"{workers} workers without REDIS_URL: every sign-in limit would count per "
                f"process, {workers} times the configured limit"
            )
            if not app.config.get("ALLOW_PER_PROCESS_LIMITS"):
                raise PerProcessLimitsRefused(
                    message + ". Set REDIS_URL (or ALLOW_PER_PROCESS_LIMITS=true to accept it)."
                )
            log.error("%s (ALLOW_PER_PROCESS_LIMITS is set)", message)


def _strategy() -> FixedWindowRateLimiter:
    """The fixed-window strategy: its hit() is one atomic increment, then the comparison."""
    return FixedWindowRateLimiter(limiter.limiter.storage)


def _user_limits(username: str) -> list[tuple[RateLimitItem, str, str]]:
    user_key = username.strip().lower()[:64]
    per_user = str(current_app.config.get("LOGIN_LIMIT_PER_USER") or LOGIN_LIMIT_PER_USER)
    return [(item, "login-user", user_key) for item in parse_many(per_user)]


def _limits(username: str, address: str) -> list[tuple[RateLimitItem, str, str]]:
    per_address = str(current_app.config.get("LOGIN_LIMIT_PER_ADDRESS") or LOGIN_LIMIT_PER_ADDRESS)
    return _user_limits(username) + [
        (item, "login-address", address) for item in parse_many(per_address)
    ]


def _delay_key(username: str) -> str:
    return "signin-delay/" + username.strip().lower()[:64]


def _failures_key(username: str) -> str:
    return "signin-failures/" + username.strip().lower()[:64]


def admit_sign_in(username: str) -> tuple[int, str] | None:
    """Count one sign-in attempt; return (seconds to wait, why) when it may not be evaluated.

    Why is ``delay`` (the account's growing delay after failures) or ``limit`` (too many
    attempts for the account or the address in a window). An attempt refused for the delay
    is not counted; any other attempt is, before its password is looked at.
    """
    storage = limiter.limiter.storage
    if storage.get(_delay_key(username)) > 0:
        wait = storage.get_expiry(_delay_key(username)) - time.time()
        return max(1, math.ceil(wait)), "delay"
    strategy = _strategy()
    counted = []
    for item, scope, key in _limits(username, get_remote_address()):
        allowed = strategy.hit(item, scope, key)
        counted.append((item, scope, key))
        if not allowed:
            reset = max(strategy.get_window_stats(i, s, k).reset_time for i, s, k in counted)
            return max(1, math.ceil(reset - time.time())), "limit"
    return None


def sign_in_failed(username: str) -> float:
    """Remember a failure of the account and start its delay; return the delay in seconds."""
    config = current_app.config
    storage = limiter.limiter.storage
    failures = storage.incr(_failures_key(username), FAILURE_MEMORY_SECONDS)
    after = int(config.get("LOGIN_DELAY_AFTER", LOGIN_DELAY_AFTER))
    first = float(config.get("LOGIN_DELAY_SECONDS", LOGIN_DELAY_SECONDS))
    cap = float(config.get("LOGIN_DELAY_MAX_SECONDS", LOGIN_DELAY_MAX_SECONDS))
    if failures < after or first <= 0:
        return 0.0
    delay = min(first * 2 ** (failures - after), cap)
    storage.clear(_delay_key(username))
    storage.incr(_delay_key(username), max(1, math.ceil(delay)))
    return delay


def sign_in_succeeded(username: str) -> None:
    """Give back this attempt's counts and forget the account's failures and delay."""
    storage = limiter.limiter.storage
    for item, scope, key in _limits(username, get_remote_address()):
        storage.incr(item.key_for(scope, key), item.get_expiry(), amount=-1)
    storage.clear(_failures_key(username))
    storage.clear(_delay_key(username))


@dataclass(frozen=True)
class SignInHold:
    """What the limits hold against an account: its recent failures, the seconds it must still
    wait (its delay, or a full per-account window), its attempts counted in a window."""

    failures: int
    wait_seconds: int
    attempts: int


def limits_shared() -> bool:
    """Whether the counts are in a store other processes see (Redis), not this one's memory.

    Without it a command line process sees counts of its own, never the server's."""
    return not str(current_app.config["RATELIMIT_STORAGE_URI"]).startswith("memory://")


def sign_in_hold(username: str) -> SignInHold | None:
    """Return what the limits count against the account, or None when nothing."""
    storage = limiter.limiter.storage
    now = time.time()
    failures = int(storage.get(_failures_key(username)))
    wait = 0.0
    if storage.get(_delay_key(username)) > 0:
        wait = storage.get_expiry(_delay_key(username)) - now
    strategy, attempts = _strategy(), 0
    for item, scope, key in _user_limits(username):
        counted = int(storage.get(item.key_for(scope, key)))
        attempts = max(attempts, counted)
        if counted >= item.amount:
            wait = max(wait, strategy.get_window_stats(item, scope, key).reset_time - now)
    if not (failures or attempts or wait > 0):
        return None
    return SignInHold(failures, max(0, math.ceil(wait)), attempts)


def lift_sign_in_hold(
    session: Session, user: User, *, actor: User | None, actor_name: str | None = None,
    password_reset: bool = False,
) -> SignInHold | None:  # fmt: skip
    """Forget the account's failures, delay and per-account windows, audited; return what was
    lifted, or None (nothing recorded) when nothing held it.

    The event is written first and the counts cleared inside the same unit of work: a store
    that cannot be reached rolls the event back with the rest."""
    hold = sign_in_hold(user.username)
    if hold is None:
        return None
    record_sign_in_unlocked(
        session, user, actor=actor, actor_name=actor_name, failures=hold.failures,
        wait_seconds=hold.wait_seconds, password_reset=password_reset,
    )  # fmt: skip
    storage = limiter.limiter.storage
    for item, scope, key in _user_limits(user.username):
        storage.clear(item.key_for(scope, key))
    storage.clear(_failures_key(user.username))
    storage.clear(_delay_key(user.username))
    return hold


def sign_in(
    session: Session, username: str, password: str, *, channel: str, name_disabled: bool
) -> User:
    """The one sign-in: rate limit, password, account state, security log; the user or a refusal.

    The attempt is counted before the password is looked at (`admit_sign_in`), so parallel
    guesses cannot outrun the limit. Refusals: `too_many_attempts` (429, `detail` = seconds to
    wait), `invalid_credentials` (401), and `account_disabled` (401) for a disabled account
    whose password was right, only where the channel names it (`name_disabled`: the portal);
    elsewhere a disabled account reads as bad credentials.
    """
    from web.security_log import security_event
    from workflow.users import check_password, get_user

    refused = admit_sign_in(username)
    if refused is not None:
        wait, why = refused
        security_event("sign_in_rate_limited", channel=channel, username=username[:64],
                       reason=why, retry_after=wait)  # fmt: skip
        raise TooManyAttempts(
            "登录失败次数过多，请 %(seconds)s 秒后再试",
            code="too_many_attempts",
            params={"seconds": wait},
            detail=wait,
        )
    user = get_user(session, username) if 0 < len(username) <= 64 else None
    valid = check_password(user, password)
    if not valid or user is None or not user.is_active:
        delay = sign_in_failed(username)
        disabled = valid and user is not None
        security_event("sign_in_failed", channel=channel, username=username[:64],
                       reason="account_disabled" if disabled else "bad_credentials",
                       known_user=user is not None, delay=delay)  # fmt: skip
        if disabled and name_disabled:
            raise NotAuthenticated("该账号已停用，请联系管理员", code="account_disabled")
        raise NotAuthenticated("用户名或密码错误", code="invalid_credentials")
    sign_in_succeeded(username)
    security_event("sign_in_succeeded", channel=channel, username=user.username, user_id=user.id)
    return user
