"""The request's clock: the real time, or a fixed one that tests set (`CLOCK` in the config)."""

from __future__ import annotations

import datetime as dt

from flask import current_app

from workflow.models import utcnow


def request_now() -> dt.datetime:
    """Return the current time in UTC, or the app's `CLOCK()` when a test fixed it."""
    clock = current_app.config.get("CLOCK")
    if clock is None:
        return utcnow()
    now: dt.datetime = clock()
    return now
