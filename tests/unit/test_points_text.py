"""Points as typed: plain decimals (full-width digits read as ASCII), nothing a person did not
type (found by a walk: `1e1` was read as 10)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from workflow.errors import InvalidValue
from workflow.payloads import parse_points


@pytest.mark.parametrize(
    ("value", "points"),
    [
        ("8", Decimal("8")),
        (" 7.5 ", Decimal("7.5")),
        (".5", Decimal("0.5")),
        ("5.", Decimal("5")),
        ("２", Decimal("2")),  # a Chinese input method's full-width digits and point
        ("７．５", Decimal("7.5")),
        (8, Decimal("8")),  # JSON numbers
        (7.25, Decimal("7.25")),
    ],
)
def test_plain_decimals_are_points(value: Any, points: Decimal) -> None:
    assert parse_points(value, "1.1") == points


@pytest.mark.parametrize(
    "value",
    ["1e1", "1E1", "1_0", "+5", "８e1", "1,5", "abc", "", "Infinity", "NaN", "0x10", [5], "٣"],
)
def test_anything_else_is_refused(value: Any) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_points(value, "1.1")
    assert refused.value.code == "invalid_score" and "1.1" in refused.value.message


def test_a_minus_sign_is_still_its_own_refusal() -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_points("－3", "1.1")  # full-width minus too
    assert refused.value.code == "score_out_of_range"


@pytest.mark.parametrize("value", ["1,5", "0，5", " 7,50 "])
def test_a_decimal_comma_is_named_in_the_refusal(value: Any) -> None:
    # A scorer who writes 1.5 as "1,5" (or with a Chinese comma) is told to use a point.
    with pytest.raises(InvalidValue) as refused:
        parse_points(value, "1.1")
    assert refused.value.code == "invalid_score"
    assert f"“{value.strip()}”含逗号：小数点请用“.”" in refused.value.message
