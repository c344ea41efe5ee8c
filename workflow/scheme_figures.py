"""The figures of an installed scheme, as `assessment_created` records them.

Each indicator's maximum, its scoring points (maximum and title) and its check points'
codes: what a direct edit of `indicators` or `scoring_points` would change behind the
engine's back. `install_scheme` and `create_assessment` record the figures and their
SHA-256 (`fingerprint`); reconciliation rebuilds both from the live tables.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from workflow.audit import canonical_json

CENTS = Decimal("0.01")


def figure(value: Any) -> str:
    """Points as two-place text (SQLite hands back floats): 5 → "5.00"."""
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    return format(value.quantize(CENTS) + 0, "f")  # + 0 turns -0.00 into 0.00


def indicator_figures(
    max_points: Any, check_points: Iterable[str], points: Iterable[tuple[str, Any, str]]
) -> dict[str, Any]:
    """One indicator's figures: its maximum, its check points' codes (in order, joined as
    the page shows them) and its scoring points by code, `(code, max_points, title)`."""
    return {
        "max_points": figure(max_points),
        "check_points": "、".join(check_points),
        "sub_items": {
            code: {"max_points": figure(most), "title": title} for code, most, title in points
        },
    }


def fingerprint(figures: dict[str, Any]) -> str:
    """The SHA-256 of the figures' canonical JSON."""
    return hashlib.sha256(canonical_json(figures).encode("utf-8")).hexdigest()
