"""A bulk review of 500 items against 500 single review transitions, back to back, same run.

Runs on PostgreSQL (BENCH_DATABASE_URL, default a `fgf_bench` database on 127.0.0.1, created
when missing and wiped). Each repeat builds a fresh world: the 2018 scheme plus synthetic
departments (INSERT … SELECT, as bench/harness.py does) whose 1,000 items are put in
`submitted` with one UPDATE (review reads no evidence). Then 500 of them are reviewed one by
one — per item a session, `transition_item`, a commit, as a client's single request would —
and the other 500 by one `apply_bulk` (a session, transaction and audit event per item). The
order of the two alternates between repeats. The ratio is single seconds / bulk seconds:
the target is ≥ 0.5, that is, a bulk item costs at most twice a single transition.

    python -m bench.bench_bulk [--repeat 3] [--items 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_transitions import DEFAULT_URL, ensure_database  # noqa: E402
from bench.synthetic import add_departments  # noqa: E402
from workflow.actions import TransitionRequest, transition_item  # noqa: E402
from workflow.audit import verify_chain  # noqa: E402
from workflow.bulk import BulkTarget, apply_bulk, preview  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.models import Item, User  # noqa: E402
from workflow.scheme import SCHEMES_DIR, load_scheme  # noqa: E402
from workflow.setup import install_scheme  # noqa: E402
from workflow.users import create_user  # noqa: E402


@dataclass
class Figures:
    """Seconds of one repeat: the single path, the bulk run, and the bulk dry run."""

    single: float
    bulk: float
    preview: float


def build(url: str, count: int) -> tuple[int, list[tuple[int, int]]]:
    """Wipe and fill the database; return the reviewer's id and 2 × count submitted items."""
    ensure_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        a = install_scheme(s, load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
        reviewer = create_user(s, "bulk_reviewer", ["reviewer"])
        s.commit()
        aid, reviewer_id = a.id, reviewer.id
    indicators = 10
    departments = -(-2 * count // indicators)
    with engine.begin() as conn:
        add_departments(conn, aid, departments)
        conn.execute(
            text(
                "INSERT INTO items (assessment_id, department_id, indicator_id, state, version, "
                "round, appeal_count, updated_at, submitted_at) "
                "SELECT :a, d.id, i.id, 'submitted', 1, 1, 0, now(), now() "
                "FROM departments d CROSS JOIN indicators i "
                "WHERE d.assessment_id = :a AND i.assessment_id = :a AND d.position >= 1000"
            ),
            {"a": aid},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    with factory() as s:
        rows = s.execute(
            select(Item.id, Item.version)
            .where(Item.state == "submitted")
            .order_by(Item.id)
            .limit(2 * count)
        ).all()
    engine.dispose()
    assert len(rows) == 2 * count, len(rows)
    return reviewer_id, [(r[0], r[1]) for r in rows]


def run_single(url: str, reviewer_id: int, items: list[tuple[int, int]]) -> float:
    """Review each item in its own session and transaction, back to back; return seconds."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        reviewer = s.get_one(User, reviewer_id)
    started = time.perf_counter()
    for item_id, version in items:
        with factory() as s:
            transition_item(s, item_id, reviewer, TransitionRequest("review", version))
            s.commit()
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


def run_bulk(url: str, reviewer_id: int, items: list[tuple[int, int]]) -> tuple[float, float]:
    """Preview, then apply one bulk review of the items; return (apply, preview) seconds."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    targets = [BulkTarget(i, v) for i, v in items]
    with factory() as s:
        reviewer = s.get_one(User, reviewer_id)
        started = time.perf_counter()
        dry = preview(s, reviewer, "review", targets)
        dry_seconds = time.perf_counter() - started
        assert dry.counts["ok"] == len(items), dry.counts
    started = time.perf_counter()
    report = apply_bulk(factory, reviewer_id, "review", targets)
    seconds = time.perf_counter() - started
    assert report.counts["ok"] == len(items), report.counts
    with factory() as s:
        assert verify_chain(s).ok
    engine.dispose()
    return seconds, dry_seconds


def measure(repeat: int, count: int = 500) -> list[Figures]:
    """Run `repeat` times on fresh data, alternating which path goes first."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    runs = []
    for n in range(repeat):
        reviewer_id, items = build(url, count)
        single_items, bulk_items = items[:count], items[count:]
        if n % 2 == 0:
            single = run_single(url, reviewer_id, single_items)
            bulk, dry = run_bulk(url, reviewer_id, bulk_items)
        else:
            bulk, dry = run_bulk(url, reviewer_id, bulk_items)
            single = run_single(url, reviewer_id, single_items)
        runs.append(Figures(single, bulk, dry))
    return runs


def medians(runs: list[Figures]) -> Figures:
    """Return the median of each figure."""
    return Figures(
        statistics.median(r.single for r in runs),
        statistics.median(r.bulk for r in runs),
        statistics.median(r.preview for r in runs),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--items", type=int, default=500)
    args = parser.parse_args(argv)
    m = medians(measure(args.repeat, args.items))
    n = args.items
    print(f"PostgreSQL, {n} review transitions per path, median of {args.repeat} runs")
    print()
    print("| measure | seconds | per second | ratio |")
    print("|---|---|---|---|")
    print(f"| {n} single transitions, back to back | {m.single:.2f} | {n / m.single:.0f} | 1.00 |")
    print(f"| bulk review of {n} | {m.bulk:.2f} | {n / m.bulk:.0f} | {m.single / m.bulk:.2f} |")
    print(f"| dry run of {n} | {m.preview:.2f} | {n / m.preview:.0f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
