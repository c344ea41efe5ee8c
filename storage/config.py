"""Build the configured object store from plain string settings (env vars or app config)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from storage.base import ObjectStore
from storage.local import LocalStore
from storage.s3 import DEFAULT_PART_SIZE, S3Store

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def store_from_settings(settings: Mapping[str, str], instance_dir: str) -> ObjectStore:
    """Return the store named by ``STORAGE_BACKEND`` (``local`` by default, or ``s3``).

    local: ``STORAGE_LOCAL_ROOT`` or ``<instance_dir>/evidence``.
    s3: ``S3_ENDPOINT`` (``host:port``; an ``http://``/``https://`` prefix also sets the
    default of ``S3_SECURE``), ``S3_ACCESS_KEY``, ``S3_SECRET_KEY``, ``S3_BUCKET`` (``evidence``),
    ``S3_REGION`` (``us-east-1``), ``S3_SECURE`` (``true``/``false``, default ``true``), and
    optionally ``S3_PART_SIZE_MB`` and ``S3_PARALLEL_UPLOADS``.
    Raise ``ValueError`` for an unknown backend or a missing or malformed setting, so a bad
    deployment fails at start-up rather than on the first upload.
    """
    backend = _get(settings, "STORAGE_BACKEND", "local").lower()
    if backend == "local":
        root = _get(settings, "STORAGE_LOCAL_ROOT", "") or os.path.join(instance_dir, "evidence")
        return LocalStore(root)
    if backend == "s3":
        return _s3_store(settings)
    raise ValueError(f"STORAGE_BACKEND must be 'local' or 's3', not {backend!r}")


def _s3_store(settings: Mapping[str, str]) -> S3Store:
    endpoint = _require(settings, "S3_ENDPOINT")
    secure_default = True
    for scheme, is_secure in (("https://", True), ("http://", False)):
        if endpoint.lower().startswith(scheme):
            endpoint, secure_default = endpoint[len(scheme) :], is_secure
    endpoint = endpoint.rstrip("/")
    part_size_mb = int(_get(settings, "S3_PART_SIZE_MB", str(DEFAULT_PART_SIZE // 2**20)))
    if part_size_mb < 5:
        raise ValueError("S3_PART_SIZE_MB must be at least 5 (the S3 minimum part size)")
    return S3Store(
        endpoint=endpoint,
        access_key=_require(settings, "S3_ACCESS_KEY"),
        secret_key=_require(settings, "S3_SECRET_KEY"),
        bucket=_get(settings, "S3_BUCKET", "evidence"),
        region=_get(settings, "S3_REGION", "us-east-1"),
        secure=_parse_bool(settings, "S3_SECURE", secure_default),
        part_size=part_size_mb * 2**20,
        parallel_uploads=max(1, int(_get(settings, "S3_PARALLEL_UPLOADS", "1"))),
    )


def _get(settings: Mapping[str, str], name: str, default: str) -> str:
    value = settings.get(name)
    return default if value is None else str(value).strip()


def _require(settings: Mapping[str, str], name: str) -> str:
    value = _get(settings, name, "")
    if not value:
        raise ValueError(f"{name} is required when STORAGE_BACKEND=s3")
    return value


def parse_flag(text: str) -> bool | None:
    """The product's one rule for a boolean setting: true/false, 1/0, yes/no, on/off (any case).

    Return None for anything else. `web/config.py` reads every boolean variable with it.
    """
    text = text.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _parse_bool(settings: Mapping[str, str], name: str, default: bool) -> bool:
    value = settings.get(name)
    if value is None or str(value).strip() == "":
        return default
    if isinstance(value, bool):  # Flask config may hold real booleans despite the annotation
        return value
    parsed = parse_flag(str(value))
    if parsed is None:
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return parsed
