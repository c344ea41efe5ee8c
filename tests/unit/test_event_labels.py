"""Every action the code records has a Chinese label for the audit pages and exports."""

from __future__ import annotations

import re
from pathlib import Path

from web.common.event_text import ACTION_TEXT, ROUTINE_STATES
from workflow.machine import TRANSITIONS

ROOT = Path(__file__).resolve().parents[2]
ACTION_LINE = re.compile(r"\baction=([^,)\n]+(?:\sif\s[^,\n]+)?)")
CODE = re.compile(r'"([a-z][a-z_]+)"')


def _recorded_actions() -> set[str]:
    found: set[str] = set()
    for folder in ("workflow", "web"):
        for path in (ROOT / folder).rglob("*.py"):
            for line in ACTION_LINE.findall(path.read_text(encoding="utf-8")):
                found.update(CODE.findall(line.split("#")[0]))
    return found


def test_every_recorded_action_has_a_chinese_label() -> None:
    recorded = _recorded_actions()
    assert {"notice_issued", "routine_withdrawn", "login"} <= recorded  # the scan works
    missing = sorted(recorded - set(ACTION_TEXT))
    assert missing == [], f"add labels to web/common/event_text.py: {missing}"
    assert {t.trigger for t in TRANSITIONS} <= set(ACTION_TEXT)
    for label in ACTION_TEXT.values():
        assert re.search(r"[\u4e00-\u9fff]", label), label


def test_routine_states_are_chinese() -> None:
    assert set(ROUTINE_STATES) == {"submitted", "accepted", "rejected", "withdrawn"}


def test_people_are_named_as_the_pages_name_them() -> None:
    from web.common.event_text import user_name
    from workflow.models import User

    assert user_name(User(username="scorer1", display_name="评分员甲")) == "评分员甲（scorer1）"
    assert user_name(User(username="scorer1", display_name=None)) == "scorer1"
    assert user_name(None) == ""
