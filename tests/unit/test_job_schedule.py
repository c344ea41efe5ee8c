"""The daily tasks' times: Huey's crontab knows no zone, `at_local_time` converts to Shanghai."""

from __future__ import annotations

import datetime as dt

import pytest

from web.config import ConfigError, Settings
from web.tasks import at_local_time


def test_nine_in_shanghai_is_one_in_utc() -> None:
    nine = at_local_time("09:00")
    # Huey hands the scheduler's minute over as a naive UTC datetime.
    assert nine(dt.datetime(2018, 9, 29, 1, 0, 30))
    assert not nine(dt.datetime(2018, 9, 29, 9, 0))  # 09:00 UTC is 17:00 in Shanghai
    assert not nine(dt.datetime(2018, 9, 29, 1, 1))
    two = at_local_time("02:00")
    assert two(dt.datetime(2018, 9, 28, 18, 0))  # the day before in UTC


def test_times_and_broker_are_checked() -> None:
    s = Settings.read({"REMINDERS_AT": "9:05", "JOBS_BROKER_URL": "redis://h:6379/1"})
    assert s.REMINDERS_AT == "09:05" and s.JOBS_BROKER_URL == "redis://h:6379/1"
    for bad in ({"REMINDERS_AT": "25:00"}, {"AUDIT_VERIFY_AT": "noon"},
                {"JOBS_BROKER_URL": "amqp://h"}, {"JOBS_LEASE_SECONDS": "1"}):  # fmt: skip
        with pytest.raises(ConfigError) as err:
            Settings.read(bad)
        assert next(iter(bad)) in str(err.value)
