"""Totals, conversion and ranking: pure functions, edge cases."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from scoring.totals import ItemFigure, convert, rank, results, total_of

D = Decimal


def test_conversion_is_two_places_half_up() -> None:
    assert convert(D("100")) == D("2.00")
    assert convert(D("0")) == D("0.00")
    assert convert(D("87.5")) == D("1.75")
    assert convert(D("87.25")) == D("1.75")  # 1.745 rounds half up
    assert convert(D("87.24")) == D("1.74")  # 1.7448
    assert convert(D("33.33")) == D("0.67")


def test_total_is_exact() -> None:
    assert total_of([D("0.1")] * 3) == D("0.30")
    assert total_of([]) == D("0.00")


def test_ranking_ties_share_and_skip() -> None:
    r = rank({"a": D(90), "b": D(85), "c": D(85), "d": D(80), "e": D(90)})
    assert r == {"a": 1, "e": 1, "b": 3, "c": 3, "d": 5}
    assert rank({"x": D(1), "y": D(2), "z": D(2), "w": D(0)}) == {"y": 1, "z": 1, "x": 3, "w": 4}
    assert rank({}) == {}


@given(st.dictionaries(st.integers(0, 50), st.decimals(0, 100, places=2), max_size=30))
def test_rank_properties(totals: dict[int, Decimal]) -> None:
    r = rank(totals)
    for a in totals:
        higher = sum(1 for b in totals if totals[b] > totals[a])
        assert r[a] == higher + 1


def test_results_completeness_and_order() -> None:
    deps = {1: "甲", 2: "乙", 3: "丙"}
    items = [
        ItemFigure(1, True, D("50")),
        ItemFigure(1, True, D("40")),
        ItemFigure(2, True, D("95")),
        ItemFigure(2, False, None),
        ItemFigure(3, True, D("90")),
        ItemFigure(3, True, D("5")),
    ]
    out = results(deps, items)
    by = {r.department: r for r in out}
    assert by["乙"].total == D("95.00") and by["丙"].total == D("95.00")
    assert by["乙"].rank == by["丙"].rank == 1 and by["甲"].rank == 3
    assert by["甲"].converted == D("1.80")
    assert by["甲"].is_complete and not by["乙"].is_complete
    assert by["乙"].items_scored == 1 and by["乙"].items_total == 2
