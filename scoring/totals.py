"""Totals, conversion to the 2-point scale, ranking and completeness: pure functions.

A department is ranked once every item of it has its score (scored, or under appeal with the
scores appealed against); ranks are among those departments only, so a partial sum neither
gets a rank nor pushes a finished department down. A department still being scored has no
rank (`rank` None): every face (pages, exports, API, notices) says 评分未完成 instead.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

TWO_PLACES = Decimal("0.01")
K = TypeVar("K", bound=Hashable)


def quantize(value: Decimal) -> Decimal:
    """Round to two places, half up (the way an office rounds by hand)."""
    return value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def total_of(points: Iterable[Decimal]) -> Decimal:
    """Sum points exactly and return them with two places."""
    return quantize(sum(points, Decimal(0)))


def convert(
    total: Decimal, total_max: Decimal = Decimal(100), converted_max: Decimal = Decimal(2)
) -> Decimal:
    """Convert a total on the scheme's scale (100) to the converted scale (2), two places."""
    if total_max <= 0:
        raise ValueError("total_max must be positive")
    return quantize(total * converted_max / total_max)


def rank(totals: Mapping[K, Decimal]) -> dict[K, int]:
    """Rank by total descending; ties share a rank and the next rank skips (1, 2, 2, 4)."""
    ordered = sorted(totals.values(), reverse=True)
    first_position: dict[Decimal, int] = {}
    for position, value in enumerate(ordered, start=1):
        first_position.setdefault(value, position)
    return {key: first_position[value] for key, value in totals.items()}


@dataclass(frozen=True)
class DepartmentResult:
    """One department's line of the results table."""

    department_id: int
    department: str
    #: While the department is unranked, the sum of the items scored so far: not its result.
    total: Decimal
    converted: Decimal
    #: Among the ranked departments; None until every item of the department has its score.
    rank: int | None
    items_scored: int
    items_total: int

    @property
    def is_complete(self) -> bool:
        """Tell whether every item of the department is scored."""
        return self.items_total > 0 and self.items_scored == self.items_total

    @property
    def is_ranked(self) -> bool:
        """Tell whether the department has a rank: every item of it has its score (scored,
        or under appeal with the scores appealed against)."""
        return self.rank is not None


@dataclass(frozen=True)
class ItemFigure:
    """What results need of one item: its department, whether scored, its total."""

    department_id: int
    is_scored: bool
    total: Decimal | None


def results(
    departments: Mapping[int, str],
    items: Iterable[ItemFigure],
    total_max: Decimal = Decimal(100),
    converted_max: Decimal = Decimal(2),
) -> list[DepartmentResult]:
    """Compute totals, conversions and ranks of every department: the ranked best first (ties
    by id), then the departments still being scored, unranked, in the order given.

    A department is ranked once it has items and each has its total (scored, or appealed:
    an appealed item keeps its scores until decided); ranks are among the ranked only.
    """
    totals: dict[int, Decimal] = {d: Decimal(0) for d in departments}
    scored: dict[int, int] = dict.fromkeys(departments, 0)
    counted: dict[int, int] = dict.fromkeys(departments, 0)
    unfinished: set[int] = set()
    for it in items:
        if it.department_id not in departments:
            continue
        counted[it.department_id] += 1
        if it.is_scored:
            scored[it.department_id] += 1
        if it.total is not None:  # an appealed item keeps its scores until decided
            totals[it.department_id] += it.total
        else:
            unfinished.add(it.department_id)
    totals = {d: quantize(t) for d, t in totals.items()}
    ranks = rank({d: t for d, t in totals.items() if counted[d] and d not in unfinished})
    out = [
        DepartmentResult(
            department_id=d,
            department=name,
            total=totals[d],
            converted=convert(totals[d], total_max, converted_max),
            rank=ranks.get(d),
            items_scored=scored[d],
            items_total=counted[d],
        )
        for d, name in departments.items()
    ]
    ranked = sorted(
        (r for r in out if r.rank is not None), key=lambda r: (r.rank or 0, r.department_id)
    )
    return ranked + [r for r in out if r.rank is None]
