"""A field of another action is refused, not dropped with a 200 (found by an API walk: a score
sent with submit was silently ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from workflow.errors import InvalidValue
from workflow.table import ROW_OF


@pytest.mark.parametrize(
    ("action", "body", "code"),
    [
        ("submit", {"scores": {"1.1": 5}}, "scores_on_score_only"),
        ("review", {"deductions": {"1.1": "x"}}, "scores_on_score_only"),
        ("verify", {"scores": {"1.1": 5}}, "scores_on_score_only"),
        ("appeal", {"scores": {"1.1": 5}, "comment": "理由"}, "scores_on_score_only"),
        ("submit", {"rulings": {"1.1": True}}, "rulings_on_verify_only"),
        ("score", {"rulings": {"1.1": True}}, "rulings_on_verify_only"),
        ("return", {"rulings": {"1.1": False}, "comment": "原因"}, "rulings_on_verify_only"),
    ],
)
def test_a_field_of_another_action_is_refused(action: str, body: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        ROW_OF[action].payload.parse(body)
    assert refused.value.code == code


def test_each_action_keeps_its_own_fields() -> None:
    assert ROW_OF["score"].payload.parse({"scores": {"1.1": "5"}}).scores  # type: ignore[attr-defined]
    assert ROW_OF["verify"].payload.parse({"rulings": {"1.1": True}}).rulings  # type: ignore[attr-defined]
    assert ROW_OF["review"].payload.parse({"scores": {}}).comment is None  # empty is no field
