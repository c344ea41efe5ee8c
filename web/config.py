"""Configuration from environment variables; with none set the app runs embedded."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _secret_key(instance: Path) -> str:
    """Use SECRET_KEY, or a key generated once and kept in instance/ (embedded default)."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app configuration from the environment."""
    env = os.environ if env is None else env
    instance = Path(env.get("INSTANCE_DIR") or ROOT / "instance")
    instance.mkdir(parents=True, exist_ok=True)
    return {
        "INSTANCE_DIR": str(instance),
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'fangguanfu.sqlite3'}",
        # Two PostgreSQL roles (workflow/roles.py): migrations run as the owner of
        # MIGRATION_DATABASE_URL, the app as the login role of DATABASE_URL; `init
        # --create-roles` creates both through the superuser URL DATABASE_ADMIN_URL.
        "MIGRATION_DATABASE_URL": env.get("MIGRATION_DATABASE_URL") or "",
        "DATABASE_ADMIN_URL": env.get("DATABASE_ADMIN_URL") or "",
        "SECRET_KEY": env.get("SECRET_KEY") or _secret_key(instance),
        "STORAGE": {k: v for k, v in env.items() if k.startswith(("STORAGE_", "S3_"))},
        "MAX_UPLOAD_BYTES": int(env.get("MAX_UPLOAD_BYTES") or 200 * 1024 * 1024),
        "CONVERSION_TIMEOUT": float(env.get("CONVERSION_TIMEOUT") or 60),
        "REDIS_URL": env.get("REDIS_URL") or "",
        "SESSION_COOKIE_SECURE": (env.get("SESSION_COOKIE_SECURE") or "").lower() == "true",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "TOKEN_DAYS": int(env.get("TOKEN_DAYS") or 90),
        # The security log (JSON lines); empty: <INSTANCE_DIR>/security.log, "-": stderr.
        "SECURITY_LOG": env.get("SECURITY_LOG") or "",
        # Sign-in (portal and POST /api/v1/tokens, counted together; web/limits.py).
        "LOGIN_LIMIT_PER_USER": env.get("LOGIN_LIMIT_PER_USER") or "5 per minute; 30 per hour",
        "LOGIN_LIMIT_PER_ADDRESS": env.get("LOGIN_LIMIT_PER_ADDRESS") or "30 per minute",
        "LOGIN_DELAY_AFTER": int(env.get("LOGIN_DELAY_AFTER") or 3),
        "LOGIN_DELAY_SECONDS": float(env.get("LOGIN_DELAY_SECONDS") or 2),
        "LOGIN_DELAY_MAX_SECONDS": float(env.get("LOGIN_DELAY_MAX_SECONDS") or 300),
        "ALLOW_PER_PROCESS_LIMITS": (env.get("ALLOW_PER_PROCESS_LIMITS") or "").lower() == "true",
        # A portal session ends after this long without a request, and this long after sign-in.
        "SESSION_IDLE_MINUTES": float(env.get("SESSION_IDLE_MINUTES") or 30),
        "SESSION_LIFETIME_HOURS": float(env.get("SESSION_LIFETIME_HOURS") or 12),
        # Printed under each notice's QR code: where `/verify/<code>` is reachable.
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL") or "",
        "BABEL_DEFAULT_LOCALE": env.get("DEFAULT_LOCALE") or "zh_Hans_CN",
    }
