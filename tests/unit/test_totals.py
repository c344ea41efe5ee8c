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
    assert by["丙"].rank == 1 and by["甲"].rank == 2 and by["乙"].rank is None
    assert by["甲"].converted == D("1.80")
    assert by["甲"].is_complete and not by["乙"].is_complete
    assert by["甲"].is_ranked and not by["乙"].is_ranked
    assert by["乙"].items_scored == 1 and by["乙"].items_total == 2
    assert [r.department for r in out] == ["丙", "甲", "乙"]


def test_a_department_still_being_scored_has_no_rank_and_moves_none() -> None:
    """Walk: a department 3 of 10 items in stood 3rd on 30 points (its partial sum ranked
    among finished ones), and one with 9 of 10 scored at 95 pushed a finished 90 to 2nd.
    Ranks are among the departments whose items all have their score; the others have none
    and come after the ranked, in the order given (not by their partial sums)."""
    deps = {1: "甲", 2: "乙", 3: "丙", 4: "丁", 5: "戊", 6: "己"}
    items = [
        *[ItemFigure(1, True, D("9")) for _ in range(10)],  # 90, finished
        *[ItemFigure(2, True, D("10")) for _ in range(3)],  # 30 so far: 3 of 10
        *[ItemFigure(2, False, None) for _ in range(7)],
        *[ItemFigure(3, True, D("8")) for _ in range(10)],  # 80, finished
        *[ItemFigure(4, True, D("10.5")) for _ in range(9)],  # 94.5 so far: 9 of 10
        ItemFigure(4, False, None),
        *[ItemFigure(5, True, D("8")) for _ in range(10)],  # 80, finished: tied with 丙
        # 己 has no items: nothing to rank it by.
    ]
    out = results(deps, items)
    by = {r.department: r for r in out}
    assert [(r.department, r.rank) for r in out] == [
        ("甲", 1),
        ("丙", 2),
        ("戊", 2),
        ("乙", None),
        ("丁", None),
        ("己", None),
    ]
    assert by["乙"].total == D("30.00") and by["乙"].converted == D("0.60")
    assert by["丁"].total == D("94.50") and not by["丁"].is_ranked
    assert not by["己"].is_ranked and by["己"].items_total == 0


def test_an_appealed_item_keeps_its_department_ranked() -> None:
    """An item under appeal keeps the scores appealed against: its department stays ranked
    (as the progress page showed), though not complete until the appeal is decided."""
    deps = {1: "甲", 2: "乙"}
    items = [ItemFigure(1, True, D("50")), ItemFigure(1, False, D("45")),
             ItemFigure(2, True, D("90")), ItemFigure(2, True, D("1"))]  # fmt: skip
    by = {r.department: r for r in results(deps, items)}
    assert by["甲"].rank == 1 and by["甲"].is_ranked and not by["甲"].is_complete
    assert by["乙"].rank == 2


@given(
    st.dictionaries(
        st.integers(0, 30),
        st.tuples(st.decimals(0, 100, places=2), st.booleans()),
        max_size=20,
    )
)
def test_ranks_are_among_the_finished_only(figures: dict[int, tuple[Decimal, bool]]) -> None:
    """Whatever the partial sums, a finished department's rank counts only the finished
    departments above it, and an unfinished one has none."""
    deps = {d: str(d) for d in figures}
    items = [ItemFigure(d, True, total) for d, (total, _) in figures.items()]
    items += [ItemFigure(d, False, None) for d, (_, done) in figures.items() if not done]
    out = results(deps, items)
    finished = {d: t for d, (t, done) in figures.items() if done}
    for r in out:
        if r.department_id not in finished:
            assert r.rank is None
            continue
        higher = sum(1 for t in finished.values() if t > finished[r.department_id])
        assert r.rank == higher + 1
    ranks = [r.rank for r in out]
    assert ranks[: len(finished)] == sorted(r for r in ranks if r is not None)
    assert all(r is None for r in ranks[len(finished) :])
