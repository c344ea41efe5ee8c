"""Verifying an audit chain of N events (default 1,000,000) on PostgreSQL; target under 10 s.

Builds a valid chain with COPY in a `fgf_bench` database (BENCH_DATABASE_URL), then times
`verify_chain` (median of repeats) and reports events per second.

    python -m bench.bench_audit [--events 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_transitions import DEFAULT_URL, ensure_database  # noqa: E402
from workflow.audit import (  # noqa: E402
    GENESIS_HASH,
    canonical_json,
    format_time,
    hash_body,
    verify_chain,
)
from workflow.db import make_engine, make_sessionmaker  # noqa: E402


def build_chain(url: str, events: int) -> float:
    """Write a valid chain of `events` rows with COPY; return the seconds it took."""
    engine = make_engine(url)
    started = time.perf_counter()
    base = dt.datetime(2018, 8, 1, tzinfo=dt.UTC)
    prev = GENESIS_HASH
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        with cur.copy(  # type: ignore[attr-defined]
            "COPY audit_events (seq, at, actor_id, actor, action, target_type, target_id, "
            "item_id, department_id, from_state, to_state, comment, payload, prev_hash, hash) "
            "FROM STDIN"
        ) as copy:
            for seq in range(1, events + 1):
                at = base + dt.timedelta(seconds=seq)
                payload = canonical_json({"scores": {"1.1": "5.00"}, "n": seq})
                body = {
                    "seq": seq, "at": format_time(at), "actor_id": 1, "actor": "bench",
                    "action": "score", "target_type": "item", "target_id": str(seq % 260),
                    "item_id": seq % 260, "department_id": seq % 26, "from_state": "verified",
                    "to_state": "scored", "comment": None, "payload": payload,
                }  # fmt: skip
                digest = hash_body(prev, body)
                copy.write_row(
                    (seq, at, 1, "bench", "score", "item", str(seq % 260), seq % 260, seq % 26,
                     "verified", "scored", None, payload, prev, digest)
                )  # fmt: skip
                prev = digest
        cur.execute("UPDATE audit_chain_head SET seq = %s, hash = %s WHERE id = 1", (events, prev))
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Build the chain once, verify it `repeat` times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    built = build_chain(url, args.events)
    engine = make_engine(url)
    runs = []
    for _ in range(args.repeat):
        with make_sessionmaker(engine)() as s:
            started = time.perf_counter()
            result = verify_chain(s)
            runs.append(time.perf_counter() - started)
        assert result.ok and result.events == args.events, result
    engine.dispose()
    median = statistics.median(runs)
    print(f"PostgreSQL, chain of {args.events:,} events, median of {args.repeat} verifications")
    print()
    print("| measure | seconds | events per second | target |")
    print("|---|---|---|---|")
    print(f"| build (hash + COPY) | {built:.2f} | {args.events / built:,.0f} | — |")
    print(
        f"| verify_chain | {median:.2f} | {args.events / median:,.0f} | < 10 s for 1,000,000 "
        f"({'met' if median * 1_000_000 / args.events < 10 else 'missed'}) |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
