"""The security log: one JSON object a line on the logger ``fangguanfu.security``.

What a security officer searches when something looks wrong: sign-ins (failed and successful),
rate-limit refusals, refused access (403, and the 404s that hide another department's
resources), token creation and revocation, password and account changes, expired sessions,
and records found altered behind the engine (a stored file that no longer hashes to its row,
a notice whose row no longer matches the event that issued it, refused at `/verify`).
The engine and the web layer call `security_event`; the web layer adds who asked, from where
and for what (web/security_log.py). Account changes are audit events as well; failed
sign-ins and refusals are not (they are not changes, and anyone could fill the trail with them).

Never logged: passwords, tokens, session cookies.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from typing import Any

LOGGER_NAME = "fangguanfu.security"
logger = logging.getLogger(LOGGER_NAME)


def security_event(event: str, **fields: Any) -> None:
    """Write one security event with its fields (plain JSON values; others become text)."""
    logger.info(event, extra={"security_fields": fields})


def hidden_from(user: Any, resource: str, resource_id: int, **fields: Any) -> None:
    """Log a request for another department's resource, answered as if it did not exist."""
    security_event(
        "foreign_resource_hidden",
        resource=resource,
        id=resource_id,
        user_id=getattr(user, "id", None),
        user_unit_id=getattr(user, "unit_id", None),
        **fields,
    )


class JsonLineFormatter(logging.Formatter):
    """Format a record as one JSON object: time (UTC), event, level, pid, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a single line of JSON (newlines in values are escaped)."""
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "pid": os.getpid(),
        }
        fields = getattr(record, "security_fields", None) or {}
        context = getattr(record, "request_fields", None) or {}
        body.update({k: v for k, v in context.items() if k not in body})
        body.update({k: v for k, v in fields.items() if k not in ("time", "event", "level")})
        return json.dumps(body, ensure_ascii=False, default=str, separators=(",", ":"))
