"""Load: 50 concurrent API clients against gunicorn (4 workers) on PostgreSQL for 60 s.

`make load` (`python -m bench.load [--seconds 60] [--clients 50] [--workers 4]`). Builds a
fresh `fgf_load` database (migrations, the 2018 scheme plus synthetic departments, users and
tokens made through workflow.users), local-folder storage in a temporary directory, and starts
gunicorn on 127.0.0.1:<free port>. Half of the clients are departments (upload evidence to a
draft item, read it, submit it), the rest reviewers, verifiers and scorers (read their queue,
move an item on). Afterwards it checks: no 5xx and no request without an answer; every 2xx
transition (and upload) has exactly one audit event; every item's version is 1 + its
transition events; the chain verifies. Prints throughput and p50/p95/p99 per request kind.
Exit status 0 only when every check passes. gunicorn is always stopped (process group).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Gunicorn,
    Stats,
    accounting,
    check_database,
    run_clients,
    setup_world,
)
from storage.local import LocalStore  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the load, print the figures and the checks; 0 when all pass."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--departments", type=int, default=300)
    parser.add_argument("--database", default="fgf_load")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 3600 or not 2 <= args.clients <= 500:
        parser.error("--seconds must be in 1..3600 and --clients in 2..500")
    print(f"setting up {args.database} …", flush=True)
    world = setup_world(args.database, departments=args.departments)
    stats = Stats()
    with tempfile.TemporaryDirectory(prefix="fgf-load-") as tmp:
        evidence = Path(tmp) / "evidence"
        env = {
            "DATABASE_URL": world.url,
            "INSTANCE_DIR": tmp,
            "SECRET_KEY": "load-test",
            "STORAGE_BACKEND": "local",
            "STORAGE_LOCAL_ROOT": str(evidence),
        }
        with Gunicorn(env, workers=args.workers, log=Path(tmp) / "gunicorn.log") as server:
            print(f"gunicorn {args.workers} workers on {server.base}; {args.clients} clients "
                  f"for {args.seconds:g} s …", flush=True)  # fmt: skip
            seconds = run_clients(world, server.base, stats, args.clients, args.seconds)
        store = LocalStore(evidence)
        db = check_database(world.url, store.exists)
        log_tail = (Path(tmp) / "gunicorn.log").read_text(errors="replace")[-3000:]
    return report(stats, db, seconds, args, log_tail)


def report(stats: Stats, db: object, seconds: float, args: argparse.Namespace, log: str) -> int:
    """Print the figures and checks; return the exit status."""
    from bench.harness import Consistency

    assert isinstance(db, Consistency)
    total = sum(len(v) for v in stats.latencies.values())
    print()
    print(f"{total} requests in {seconds:.1f} s = {total / seconds:.1f} requests/s "
          f"({args.clients} clients, gunicorn {args.workers} workers, PostgreSQL)")  # fmt: skip
    print()
    print(stats.table(seconds))
    print()
    print("| action | 2xx answers | audit events | equal |")
    print("|---|---|---|---|")
    rows = accounting(stats, db)
    for action, ok, events, same in rows:
        print(f"| {action} | {ok} | {events} | {'yes' if same else 'NO'} |")
    checks = {
        "no 5xx": stats.total(500, 599) == 0,
        "every request answered": stats.total(0, 0) == 0,
        "every success has exactly one event": all(r[3] for r in rows),
        "every item's version = 1 + its transition events": db.version_mismatches == 0,
        "every evidence row has its object": db.rows_without_object == 0,
        f"chain verifies ({db.chain_events} events)": db.chain_ok,
    }
    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if stats.errors:
        print("client errors:", dict(stats.errors))
    if not all(checks.values()):
        print("\ngunicorn log (tail):\n" + log)
        return 1
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main(sys.argv[1:])
    print(f"\n(load run: {time.monotonic() - started:.0f} s in all)")
    raise SystemExit(code)
