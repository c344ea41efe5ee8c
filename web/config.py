"""Configuration from environment variables; with none set the app runs embedded.

`Settings` (pydantic-settings) declares every variable the product reads, the evidence
store's `STORAGE_*`/`S3_*` included, with its type, bounds and default. It is the one parser:
booleans follow one rule (`storage.config.parse_flag`: true/false, 1/0, yes/no, on/off, any
case; empty = the default), an empty variable means its default, and any invalid value stops
the start-up with `ConfigError`, one line per variable naming it. `load_config` turns the
settings into the Flask configuration. (`SSL_CERT_FILE`, the OpenSSL convention, is read by the
S3 client itself.)
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from babel import Locale, UnknownLocaleError
from limits import parse_many
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.config import parse_flag

ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """Settings that cannot be used; the message names every variable at fault."""


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    parsed = parse_flag(str(value))
    if parsed is None:
        raise ValueError(f"must be true or false (also 1/0, yes/no, on/off), not {value!r}")
    return parsed


def _rate_limits(value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise ValueError(
            f"must be rate limits such as '5 per minute; 30 per hour', not {value!r}"
        ) from None
    return value


def _locale(value: str) -> str:
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"must be a locale such as zh_Hans_CN or en, not {value!r}") from None
    return value


def _base_url(value: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, not {value!r}")
    return value


def _broker_url(value: str) -> str:
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"must be empty (SQLite in INSTANCE_DIR) or a redis:// URL, not {value!r}")
    return value


def _clock_time(value: str) -> str:
    hour, sep, minute = value.partition(":")
    if not (sep and hour.isdigit() and minute.isdigit() and len(minute) == 2):
        raise ValueError(f"must be a time HH:MM such as 09:00, not {value!r}")
    if not (0 <= int(hour) < 24 and 0 <= int(minute) < 60):
        raise ValueError(f"must be a time HH:MM such as 09:00, not {value!r}")
    return f"{int(hour):02d}:{minute}"


Flag = Annotated[bool, BeforeValidator(_flag)]
RateLimits = Annotated[str, AfterValidator(_rate_limits)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Settings(BaseSettings):
    """Every environment variable of the product, by its name (README, .env.example)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True
    )

    INSTANCE_DIR: Path = ROOT / "instance"
    DATABASE_URL: str | None = None  # default: SQLite in INSTANCE_DIR
    # Two PostgreSQL roles (workflow/roles.py): migrations run as the owner of
    # MIGRATION_DATABASE_URL, the app as the login role of DATABASE_URL; `init
    # --create-roles` creates both through the superuser URL DATABASE_ADMIN_URL.
    MIGRATION_DATABASE_URL: str = ""
    DATABASE_ADMIN_URL: str = ""
    SECRET_KEY: str | None = None  # default: generated once into INSTANCE_DIR/secret_key
    MAX_UPLOAD_BYTES: Annotated[int, Field(gt=0)] = 200 * 1024 * 1024
    CONVERSION_TIMEOUT: Positive = 60.0
    REDIS_URL: str = ""
    SESSION_COOKIE_SECURE: Flag = False
    TOKEN_DAYS: Annotated[int, Field(ge=1)] = 90
    # The security log (JSON lines); empty: <INSTANCE_DIR>/security.log, "-": stderr.
    SECURITY_LOG: str = ""
    # Sign-in (portal and POST /api/v1/tokens, counted together; web/limits.py).
    LOGIN_LIMIT_PER_USER: RateLimits = "5 per minute; 30 per hour"
    LOGIN_LIMIT_PER_ADDRESS: RateLimits = "30 per minute"
    LOGIN_DELAY_AFTER: Annotated[int, Field(ge=0)] = 3
    LOGIN_DELAY_SECONDS: NonNegative = 2.0
    LOGIN_DELAY_MAX_SECONDS: NonNegative = 300.0
    ALLOW_PER_PROCESS_LIMITS: Flag = False
    # A portal session ends after this long without a request, and this long after sign-in.
    SESSION_IDLE_MINUTES: Positive = 30.0
    SESSION_LIFETIME_HOURS: Positive = 12.0
    # Printed under each notice's QR code: where `/verify/<code>` is reachable.
    PUBLIC_BASE_URL: Annotated[str, AfterValidator(_base_url)] = ""
    # Look-ups of /verify/<code> per client address (web/common/notice_files.py).
    VERIFY_LIMIT: RateLimits = "30 per minute"
    DEFAULT_LOCALE: Annotated[str, AfterValidator(_locale)] = "zh_Hans_CN"
    # The job queue (web/tasks.py): empty = Huey on SQLite in INSTANCE_DIR (embedded), or a
    # redis:// URL. Consumer threads, the lease of a running job, the daily times (Shanghai).
    JOBS_BROKER_URL: Annotated[str, AfterValidator(_broker_url)] = ""
    JOBS_WORKERS: Annotated[int, Field(ge=1, le=32)] = 2
    JOBS_LEASE_SECONDS: Annotated[float, Field(ge=10, allow_inf_nan=False)] = 300.0
    REMINDERS_AT: Annotated[str, AfterValidator(_clock_time)] = "09:00"
    AUDIT_VERIFY_AT: Annotated[str, AfterValidator(_clock_time)] = "02:00"
    # The evidence store (storage/config.py builds it from these).
    STORAGE_BACKEND: Literal["local", "s3"] = "local"
    STORAGE_LOCAL_ROOT: str = ""
    S3_ENDPOINT: str = ""
    S3_ACCESS_KEY: str = ""
    S3_SECRET_KEY: str = ""
    S3_BUCKET: str = "evidence"
    S3_REGION: str = "us-east-1"
    S3_SECURE: Flag | None = None  # default: true, or as the endpoint's scheme says
    S3_PART_SIZE_MB: Annotated[int, Field(ge=5)] = 8
    S3_PARALLEL_UPLOADS: Annotated[int, Field(ge=1)] = 1
    # Notifications (workflow/notify.py, workflow/delivery.py). No SMTP_HOST: e-mails wait.
    SMTP_HOST: str = ""
    SMTP_PORT: Annotated[int, Field(ge=1, le=65535)] = 25
    SMTP_USERNAME: str = ""
    SMTP_PASSWORD: str = ""
    SMTP_SECURITY: Literal["none", "starttls", "ssl"] = "none"
    MAIL_FROM: str = "noreply@localhost"
    SMTP_TIMEOUT: Positive = 10.0
    WEBHOOK_TIMEOUT: Positive = 10.0
    # Comma-separated hosts a webhook may point at (e.g. qyapi.weixin.qq.com,oapi.dingtalk.com);
    # empty: any http(s) host.
    WEBHOOK_ALLOWED_HOSTS: str = ""
    OUTBOX_MAX_ATTEMPTS: Annotated[int, Field(ge=1, le=100)] = 12
    OUTBOX_LEASE_SECONDS: Annotated[int, Field(ge=10)] = 300

    @classmethod
    def read(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the process environment, or the given mapping; raise ConfigError when invalid."""
        try:
            if env is None:
                return cls()
            given = {k: v for k, v in env.items() if k in cls.model_fields and v != ""}
            return cls.model_validate(given)
        except ValidationError as exc:
            lines = [
                f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            ]
            raise ConfigError("invalid settings:\n" + "\n".join(lines)) from None

    def storage(self) -> dict[str, str]:
        """The evidence store's settings, as `storage.config.store_from_settings` takes them."""
        names = [name for name in type(self).model_fields if name.startswith(("STORAGE_", "S3_"))]
        out = {}
        for name in names:
            value = getattr(self, name)
            if value is None or value == "":
                continue
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


def _secret_key(instance: Path) -> str:
    """Use SECRET_KEY, or the key kept in instance/secret_key: made when missing or empty.

    An emptied file (an operator signing everyone out) gets a new key: read as the key, the
    empty string made every page a 500. The file is made readable by its owner only from the
    start, and written under an exclusive lock, so processes starting together (gunicorn's
    workers on a first start) all use the one key the first of them wrote.
    """
    path = instance / "secret_key"
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = ""
    if key:
        return key
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # released when the file closes
        key = file.read().strip()
        if not key:
            key = secrets.token_hex(32)
            file.seek(0)
            file.truncate()
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
    return key


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app configuration from the environment (or a mapping, in tests)."""
    s = Settings.read(env)
    instance = s.INSTANCE_DIR
    # The instance folder holds the embedded database (every user's password hash), the
    # evidence files and the secret key: made owner-only when it is made here. A folder the
    # operator made keeps the mode they gave it.
    instance.mkdir(parents=True, exist_ok=True, mode=0o700)
    return {
        "INSTANCE_DIR": str(instance),
        "DATABASE_URL": s.DATABASE_URL or f"sqlite:///{instance / 'fangguanfu.sqlite3'}",
        "MIGRATION_DATABASE_URL": s.MIGRATION_DATABASE_URL,
        "DATABASE_ADMIN_URL": s.DATABASE_ADMIN_URL,
        "SECRET_KEY": s.SECRET_KEY or _secret_key(instance),
        "STORAGE": s.storage(),
        "MAX_UPLOAD_BYTES": s.MAX_UPLOAD_BYTES,
        "CONVERSION_TIMEOUT": s.CONVERSION_TIMEOUT,
        "REDIS_URL": s.REDIS_URL,
        "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "TOKEN_DAYS": s.TOKEN_DAYS,
        "SECURITY_LOG": s.SECURITY_LOG,
        "LOGIN_LIMIT_PER_USER": s.LOGIN_LIMIT_PER_USER,
        "LOGIN_LIMIT_PER_ADDRESS": s.LOGIN_LIMIT_PER_ADDRESS,
        "LOGIN_DELAY_AFTER": s.LOGIN_DELAY_AFTER,
        "LOGIN_DELAY_SECONDS": s.LOGIN_DELAY_SECONDS,
        "LOGIN_DELAY_MAX_SECONDS": s.LOGIN_DELAY_MAX_SECONDS,
        "ALLOW_PER_PROCESS_LIMITS": s.ALLOW_PER_PROCESS_LIMITS,
        "SESSION_IDLE_MINUTES": s.SESSION_IDLE_MINUTES,
        "SESSION_LIFETIME_HOURS": s.SESSION_LIFETIME_HOURS,
        "PUBLIC_BASE_URL": s.PUBLIC_BASE_URL,
        "VERIFY_LIMIT": s.VERIFY_LIMIT,
        "BABEL_DEFAULT_LOCALE": s.DEFAULT_LOCALE,
        "MAIL": {
            "host": s.SMTP_HOST,
            "port": s.SMTP_PORT,
            "username": s.SMTP_USERNAME,
            "password": s.SMTP_PASSWORD,
            "security": s.SMTP_SECURITY,
            "sender": s.MAIL_FROM,
            "timeout": s.SMTP_TIMEOUT,
        },
        "OUTBOX": {
            "webhook_timeout": s.WEBHOOK_TIMEOUT,
            "max_attempts": s.OUTBOX_MAX_ATTEMPTS,
            "lease_seconds": s.OUTBOX_LEASE_SECONDS,
        },
        "WEBHOOK_ALLOWED_HOSTS": tuple(
            h.strip().lower() for h in s.WEBHOOK_ALLOWED_HOSTS.split(",") if h.strip()
        ),
        "JOBS_BROKER_URL": s.JOBS_BROKER_URL,
        "JOBS_WORKERS": s.JOBS_WORKERS,
        "JOBS_LEASE_SECONDS": s.JOBS_LEASE_SECONDS,
        "REMINDERS_AT": s.REMINDERS_AT,
        "AUDIT_VERIFY_AT": s.AUDIT_VERIFY_AT,
    }
