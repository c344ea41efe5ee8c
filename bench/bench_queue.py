"""A reviewer's queue page at 1,000, 10,000 and 100,000 items; the 100k figure within 2× of 1k.

For each size the `fgf_bench` database (BENCH_DATABASE_URL) is wiped, the 2018 scheme is
installed, and synthetic departments (10 items each, one per indicator) are added with one
INSERT … SELECT over generate_series until the assessment holds the size. A fifth of the items
are `submitted` (states are spread by id). The figure is the median time of
GET /api/v1/assessments/{aid}/items?state=submitted&limit=50 through the Flask test client,
as a reviewer: the first page, and a deep page (a cursor 90 % down the queue). The EXPLAIN
(ANALYZE) plans of the page query at the largest size are kept for docs/benchmarks.md.

    python -m bench.bench_queue [--sizes 1000,10000,100000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_transitions import DEFAULT_URL, ensure_database  # noqa: E402
from bench.synthetic import add_departments  # noqa: E402
from web.api.common import encode_cursor  # noqa: E402
from web.app import create_app  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.models import Item  # noqa: E402
from workflow.scheme import SCHEMES_DIR, load_scheme  # noqa: E402
from workflow.setup import install_scheme  # noqa: E402
from workflow.users import create_user, issue_token  # noqa: E402

STATES = ("draft", "submitted", "reviewed", "verified", "scored")
PAGE = 50


@dataclass
class SizeResult:
    """The figures of one queue size."""

    items: int
    queue: int
    first_ms: float
    deep_ms: float


@dataclass
class QueueResults:
    """All sizes, plus the plans of the largest."""

    sizes: list[SizeResult] = field(default_factory=list)
    plans: dict[str, str] = field(default_factory=dict)
    repeat: int = 0


def build(url: str, size: int) -> tuple[int, str]:
    """Fill a fresh database with `size` items in one assessment; return (aid, reviewer token)."""
    ensure_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        a = install_scheme(s, load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
        reviewer = create_user(s, "rev", ["reviewer"])
        token, _ = issue_token(s, reviewer)
        s.commit()
        aid = a.id
    with engine.begin() as conn:
        indicators = conn.execute(
            text("SELECT count(*) FROM indicators WHERE assessment_id = :a"), {"a": aid}
        ).scalar_one()
        existing = conn.execute(
            text("SELECT count(*) FROM items WHERE assessment_id = :a"), {"a": aid}
        ).scalar_one()
        missing = max(0, -(-(size - existing) // indicators))  # departments to add
        add_departments(conn, aid, missing, "（综合办公室）")
        conn.execute(
            text(
                "INSERT INTO items (assessment_id, department_id, indicator_id, state, version, "
                "round, appeal_count, updated_at) "
                "SELECT :a, d.id, i.id, 'draft', 1, 0, 0, now() "
                "FROM departments d CROSS JOIN indicators i "
                "WHERE d.assessment_id = :a AND i.assessment_id = :a AND d.position >= 1000 "
                "ORDER BY d.id, i.id"
            ),
            {"a": aid},
        )
        # Trim to the exact size, then spread the states by id.
        conn.execute(
            text(
                "DELETE FROM items WHERE id IN (SELECT id FROM items WHERE assessment_id = :a "
                "ORDER BY id DESC LIMIT greatest(0, (SELECT count(*) FROM items "
                "WHERE assessment_id = :a) - :n))"
            ),
            {"a": aid, "n": size},
        )
        conn.execute(
            text(
                "UPDATE items SET state = (ARRAY['draft','submitted','reviewed','verified',"
                "'scored'])[1 + id % 5] WHERE assessment_id = :a"
            ),
            {"a": aid},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE items"))
        conn.execute(text("VACUUM ANALYZE departments"))
    engine.dispose()
    return aid, token


def page_sql(aid: int, after: int | None) -> str:
    """Return the SQL of the page query the API runs (compiled with literal values)."""
    stmt = (
        select(Item)
        .where(Item.assessment_id == aid, Item.state == "submitted")
        .order_by(Item.id)
        .limit(PAGE + 1)
    )
    if after is not None:
        stmt = stmt.where(Item.id > after)
    return str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def measure(url: str, size: int, repeat: int, plans: dict[str, str] | None) -> SizeResult:
    """Build `size` items and time the first and a deep queue page."""
    aid, token = build(url, size)
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM items WHERE assessment_id = :a AND state = 'submitted' "
                     "ORDER BY id"),
                {"a": aid},
            )
        ]  # fmt: skip
        deep_after = ids[max(0, min(int(len(ids) * 0.9), len(ids) - PAGE - 1))]
        if plans is not None:
            for label, after in (("first page", None), ("deep page", deep_after)):
                rows = conn.execute(
                    text("EXPLAIN (ANALYZE, BUFFERS) " + page_sql(aid, after))
                ).all()
                plans[label] = page_sql(aid, after) + "\n\n" + "\n".join(r[0] for r in rows)
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(
            {
                "DATABASE_URL": url,
                "INSTANCE_DIR": tmp,
                # Not under `tmp`: the logger outlives this app (the next size's users are
                # created, and logged, after the folder is gone).
                "SECURITY_LOG": os.devnull,
                "SECRET_KEY": "bench",
                "STORAGE": {"STORAGE_BACKEND": "local"},
                "RATELIMIT_STORAGE_URI": "memory://",
            }
        )
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        base = f"/api/v1/assessments/{aid}/items?state=submitted&limit={PAGE}"
        deep = base + "&cursor=" + encode_cursor("item", deep_after)

        def timed(path: str) -> float:
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = time.perf_counter() - started
            body = response.get_json()
            assert response.status_code == 200, body
            assert len(body["items"]) == PAGE, len(body["items"])
            assert all(i["state"] == "submitted" for i in body["items"])
            return elapsed * 1000

        for _ in range(3):  # warm up: caches, connection pool, token lookup
            timed(base)
            timed(deep)
        first = statistics.median(timed(base) for _ in range(repeat))
        deep_ms = statistics.median(timed(deep) for _ in range(repeat))
        app.extensions["engine"].dispose()
    return SizeResult(size, len(ids), first, deep_ms)


def run(sizes: list[int], repeat: int) -> QueueResults:
    """Measure every size; keep the plans of the largest."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    results = QueueResults(repeat=repeat)
    for size in sizes:
        plans = results.plans if size == max(sizes) else None
        results.sizes.append(measure(url, size, repeat, plans))
    return results


def table(results: QueueResults) -> str:
    """Render the sizes as a markdown table with the ratio to the smallest size."""
    base = results.sizes[0]
    lines = [
        "| items | submitted (queue) | first page ms | deep page ms | first ratio | deep ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in results.sizes:
        lines.append(
            f"| {r.items:,} | {r.queue:,} | {r.first_ms:.2f} | {r.deep_ms:.2f} | "
            f"{r.first_ms / base.first_ms:.2f} | {r.deep_ms / base.deep_ms:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table and plans."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    results = run(sizes, args.repeat)
    print(f"PostgreSQL, queue page of {PAGE} via the Flask test client, median of {args.repeat}")
    print()
    print(table(results))
    for label, plan in results.plans.items():
        print(f"\n{label}:\n{plan}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
