"""The fingerprint of what a form showed: stable for the same values, different for others."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from workflow.errors import Conflict
from workflow.fingerprints import check_seen, fields_of, fingerprint

NUMBER = {"result_document_no": "蛟市职转办〔2019〕1号", "notice_cc": None, "hide": True}


def test_the_same_values_give_the_same_fingerprint_in_any_order() -> None:
    again = dict(reversed(list(NUMBER.items())))
    assert fingerprint(NUMBER) == fingerprint(again)
    assert len(fingerprint(NUMBER)) == 64 and int(fingerprint(NUMBER), 16) >= 0


def test_a_changed_value_or_field_changes_the_fingerprint() -> None:
    seen = fingerprint(NUMBER)
    assert fingerprint({**NUMBER, "result_document_no": "蛟市职转办〔2019〕2号"}) != seen
    assert fingerprint({**NUMBER, "notice_cc": ""}) != seen  # empty is not none
    assert fingerprint({**NUMBER, "hide": False}) != seen
    assert fingerprint({**NUMBER, "other": None}) != seen


def test_one_moment_in_two_time_zones_is_one_value() -> None:
    utc = dt.datetime(2018, 12, 28, 1, 30, tzinfo=dt.UTC)
    beijing = utc.astimezone(ZoneInfo("Asia/Shanghai"))
    assert fingerprint({"closes_at": utc}) == fingerprint({"closes_at": beijing})
    assert fingerprint({"closes_at": utc}) != fingerprint({"closes_at": utc + dt.timedelta(1)})


def test_check_seen_passes_the_current_and_no_fingerprint_and_refuses_any_other() -> None:
    check_seen(fingerprint(NUMBER), NUMBER)
    check_seen(None, NUMBER)  # the API and the command line send none
    for stale in (fingerprint({**NUMBER, "hide": False}), "", "x" * 64, 12):
        with pytest.raises(Conflict) as err:
            check_seen(stale, NUMBER)
        assert err.value.code == "changed_since_opened" and err.value.status == 409
        assert "在您打开页面之后" in str(err.value)


def test_fields_of_reads_only_the_named_fields() -> None:
    class Row:
        def __init__(self) -> None:
            self.roles, self.unit_id, self.session_version = ["reviewer"], 3, 9

    assert fields_of(Row(), ("roles", "unit_id")) == {"roles": ["reviewer"], "unit_id": 3}
