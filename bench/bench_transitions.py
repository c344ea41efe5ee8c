"""Transitions per second with the audit chain, against a bare UPDATE + INSERT of the same rows.

Runs on PostgreSQL (BENCH_DATABASE_URL, default a `fgf_bench` database on 127.0.0.1, created
when missing). Each transition is its own transaction, as in a request. Prints a table.

    python -m bench.bench_transitions [--departments 26] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.local import LocalStore  # noqa: E402
from tests.factories import add_evidence  # noqa: E402
from workflow import actions, itemrow  # noqa: E402
from workflow.audit import canonical_json, chained_values, verify_chain  # noqa: E402
from workflow.db import make_engine, make_sessionmaker, migrate  # noqa: E402
from workflow.models import Indicator, Item, ScoringPoint, User, utcnow  # noqa: E402
from workflow.scheme import SCHEMES_DIR, load_scheme  # noqa: E402
from workflow.setup import install_scheme  # noqa: E402
from workflow.users import create_user  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/fgf_bench"


def ensure_database(url: str) -> None:
    """Create the benchmark database when it is missing, then wipe and migrate it."""
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    name = url.rsplit("/", 1)[1]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(engine)
    engine.dispose()


def run_engine(url: str, store: LocalStore) -> tuple[int, float]:
    """Drive every item draft → scored through the real operations; return (count, seconds)."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        a = install_scheme(s, load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
        users = {
            "member": [
                create_user(s, f"m{n}", ["department"], department=d)
                for n, d in enumerate(a.departments)
            ],
            "reviewer": create_user(s, "rev", ["reviewer"]),
            "verifier": create_user(s, "ver", ["verifier"]),
            "scorer": create_user(s, "sc", ["scorer"]),
        }
        dep_index = {d.id: n for n, d in enumerate(a.departments)}
        items = list(s.execute(select(Item).order_by(Item.id)).scalars())
        maxima: dict[int, dict[str, Decimal]] = {}
        # The verifier answers every check point (核查要点) of the indicator: all 是.
        checks = {
            ind.id: {c["code"]: {"answer": "yes"} for c in ind.check_points}
            for ind in s.execute(select(Indicator)).scalars()
        }
        for p in s.execute(select(ScoringPoint)).scalars():
            maxima.setdefault(p.indicator_id, {})[p.code] = p.max_points
        for it in items:
            add_evidence(s, store, it, users["member"][dep_index[it.department_id]])
        s.commit()
        plan = [(it.id, it.department_id, it.indicator_id) for it in items]
        versions = {it.id: it.version for it in items}
    reasons = {ind: {code: "基准测试" for code in points} for ind, points in maxima.items()}
    count = 0
    started = time.perf_counter()
    for item_id, dep_id, ind_id in plan:
        steps = [
            ("submit", users["member"][dep_index[dep_id]], {}),
            ("review", users["reviewer"], {}),
            ("verify", users["verifier"], {"checks": checks[ind_id]}),
            # Routine records suggest scores for some points: a reason covers any deviation.
            ("score", users["scorer"], {"scores": maxima[ind_id], "deductions": reasons[ind_id]}),
        ]
        for action, user, extra in steps:
            # As a client does: the version comes from the previous response.
            with factory() as s:
                # The user belongs to the request's session, as a signed-in request's does
                # (its own department is looked up there: workflow/permissions.py); no query.
                actor = s.merge(user, load=False)
                item = actions.transition_item(
                    s, item_id, actor, actions.TransitionRequest(action, versions[item_id], **extra)
                )
                s.commit()
                versions[item_id] = item.version
            count += 1
    seconds = time.perf_counter() - started
    with factory() as s:
        assert verify_chain(s).ok
    engine.dispose()
    return count, seconds


_BARE_TABLE = text(
    "CREATE TABLE IF NOT EXISTS bench_bare (seq bigserial primary key, item_id int, "
    "at timestamptz, actor text, action text, payload text, hash text)"
)
_BARE_UPDATE = text("UPDATE items SET updated_at = :t, version = version + 1 WHERE id = :i")
_BARE_INSERT = text(
    "INSERT INTO bench_bare (item_id, at, actor, action, payload, hash) "
    "VALUES (:i, :t, 'bench', 'noop', '{}', 'x')"
)


def _bare_pair(conn: Connection | Session, item_id: int) -> None:
    """The bare pair: one UPDATE of the item row, one INSERT of a row like an event."""
    conn.execute(_BARE_UPDATE, {"t": dt.datetime.now(dt.UTC), "i": item_id})
    conn.execute(_BARE_INSERT, {"i": item_id, "t": dt.datetime.now(dt.UTC)})


def run_bare(url: str, count: int) -> float:
    """The same number of single-row UPDATE + INSERT pairs, one transaction each, raw SQL."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(_BARE_TABLE)
        ids = [r[0] for r in conn.execute(text("SELECT id FROM items ORDER BY id"))]
    started = time.perf_counter()
    for n in range(count):
        with engine.begin() as conn:
            _bare_pair(conn, ids[n % len(ids)])
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_bare"))
    engine.dispose()
    return seconds


_SAME_TABLE = text(
    "CREATE TABLE IF NOT EXISTS bench_events (LIKE audit_events INCLUDING DEFAULTS "
    "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
)
_SAME_UPDATE = text(
    "UPDATE items SET state = :state, version = version + 1, reviewed_by_id = NULL, "
    "updated_at = :t WHERE id = :i"
)
_SAME_INSERT = text(
    "INSERT INTO bench_events (seq, at, actor_id, actor, action, target_type, target_id, "
    "item_id, department_id, from_state, to_state, comment, payload, prev_hash, hash) "
    "VALUES (:seq, :t, NULL, 'rev', 'review', 'item', :target, :i, :dep, 'submitted', "
    "'reviewed', NULL, :payload, :prev, :hash)"
)


def run_same_rows(url: str, count: int) -> float:
    """The bare pair writing the rows a transition writes: the item's UPDATE of its state,
    version, stamp and time, and an event row like the engine's (the same columns, sizes and
    six indexes, in a copy of `audit_events` without its triggers). The hashes are computed
    before the clock starts: this is the database's share of a transition and nothing else.
    """
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(_SAME_TABLE)
        rows = conn.execute(text("SELECT id, department_id FROM items ORDER BY id")).all()
    hashes = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(count + 1)]
    payload = canonical_json({"round": 1, "version": 3, "comment": None})
    started = time.perf_counter()
    for n in range(count):
        item_id, department_id = rows[n % len(rows)]
        at = dt.datetime.now(dt.UTC)
        with engine.begin() as conn:
            conn.execute(_SAME_UPDATE, {"state": "reviewed", "t": at, "i": item_id})
            conn.execute(
                _SAME_INSERT,
                {"seq": n + 1, "t": at, "target": str(item_id), "i": item_id,
                 "dep": department_id, "payload": payload, "prev": hashes[n],
                 "hash": hashes[n + 1]},
            )  # fmt: skip
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_events"))
    engine.dispose()
    return seconds


def run_session_floor(url: str, count: int) -> float:
    """The bare pair inside a request's ORM session, after a locking read of the item row.

    No guards, no audit chain, no objects: what any transition through a per-request
    `Session` costs at least (the session, its user, the lock, the two writes, the commit).
    """
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with engine.begin() as conn:
        conn.execute(_BARE_TABLE)
    with factory() as s:
        ids = list(s.execute(select(Item.id).order_by(Item.id)).scalars())
        user = s.execute(select(User).order_by(User.id)).scalars().first()
        s.expunge_all()
    started = time.perf_counter()
    for n in range(count):
        item_id = ids[n % len(ids)]
        with factory() as s:
            s.merge(user, load=False)
            s.execute(text("SELECT * FROM items WHERE id = :i FOR UPDATE"), {"i": item_id}).one()
            _bare_pair(s, item_id)
            s.commit()
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE bench_bare"))
    engine.dispose()
    return seconds


def _on_cursor(stmt: Any) -> Callable[[Any, dict[str, Any]], Any]:
    """Run a Core statement on a raw psycopg cursor: compiled once, its constants bound."""
    compiled = stmt.compile(dialect=postgresql.dialect(paramstyle="pyformat"))
    sql = str(compiled)
    constants = {k: v for k, v in compiled.params.items() if v is not None}

    def run(cursor: Any, params: dict[str, Any]) -> Any:
        cursor.execute(sql, {**constants, **params})
        return cursor.fetchone()

    return run


def _on_connection(conn: Connection, stmt: Any) -> Callable[[dict[str, Any]], Any]:
    """Run a Core statement on a SQLAlchemy connection; its one row."""
    return lambda params: conn.execute(stmt, params).one()


def run_chained_floor(url: str, count: int, *, driver: bool = False) -> float:
    """The least a guarded transition with the audit chain can cost, with no engine around it.

    In a request's session, on its connection (no ORM objects, no ORM execution): the item's
    locking read with the chain head (the engine's own statement), one guard (the state), the
    event's hash, and the engine's one statement that writes the item, moves the head and
    appends the event; then the commit. Each run flips an item between submitted and reviewed,
    so every write is a real transition with a real, verifiable event. What any design with a
    guard read before the write and a hash chain costs at least. With `driver`, the same two
    statements go to the session's raw psycopg cursor, past SQLAlchemy's execution.
    """
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        ids = list(s.execute(select(Item.id).order_by(Item.id)).scalars())
        user = s.execute(select(User).where(User.username == "rev")).scalar_one()
        s.expunge_all()
    read_stmt = itemrow._read_statement()
    write_stmt = itemrow._update_and_append_statement(("state", "reviewed_by_id", "updated_at"))
    raw_read, raw_write = _on_cursor(read_stmt), _on_cursor(write_stmt)
    n_item = len(itemrow.ITEM_KEYS)
    state_at = itemrow.ITEM_KEYS.index("state")
    started = time.perf_counter()
    for n in range(count):
        item_id = ids[n % len(ids)]
        with factory() as s:
            actor = s.merge(user, load=False)
            conn = s.connection()
            cursor = conn.connection.driver_connection.cursor() if driver else None
            read, write = (
                (functools.partial(raw_read, cursor), functools.partial(raw_write, cursor))
                if cursor is not None
                else (_on_connection(conn, read_stmt), _on_connection(conn, write_stmt))
            )
            row = read({"item_id": item_id})
            item = dict(zip(itemrow.ITEM_KEYS, row[:n_item], strict=True))
            seq, head_hash = row[-2:]
            before = row[state_at]
            if before not in ("submitted", "reviewed"):  # the guard
                raise AssertionError(f"item {item_id} is {before}")
            after = "submitted" if before == "reviewed" else "reviewed"
            now = utcnow()
            event = chained_values(
                seq, head_hash, actor=actor, action="review", target_type="item",
                target_id=item_id, item_id=item_id, department_id=item["department_id"],
                from_state=before, to_state=after, comment=None,
                payload={"round": item["round"], "version": item["version"] + 1},
            )  # fmt: skip
            params = {
                "w_state": after, "w_reviewed_by_id": actor.id, "w_updated_at": now,
                "w_id": item_id, "w_version": item["version"],
                "w_next_version": item["version"] + 1, "e_prev_seq": seq,
                **{f"e_{k}": v for k, v in event.items()},
            }  # fmt: skip
            if tuple(write(params)) != (1, 1):
                raise AssertionError(f"item {item_id} or the chain head moved")
            s.commit()
    seconds = time.perf_counter() - started
    with factory() as s:
        assert verify_chain(s).ok
    engine.dispose()
    return seconds


@dataclass(frozen=True)
class Measured:
    """Transitions per run and the median seconds of each way of writing them."""

    count: int
    engine: float
    bare: float
    floor: float
    same: float
    chained: float
    driver: float


def measure(repeat: int) -> Measured:
    """Run the engine, the bare pairs and the session floor `repeat` times each; medians."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    engine_runs, bare_runs, floor_runs, same_runs = [], [], [], []
    chained_runs, driver_runs = [], []
    count = 0
    for _ in range(repeat):
        ensure_database(url)
        with tempfile.TemporaryDirectory() as tmp:
            count, seconds = run_engine(url, LocalStore(Path(tmp)))
        engine_runs.append(seconds)
        bare_runs.append(run_bare(url, count))
        floor_runs.append(run_session_floor(url, count))
        same_runs.append(run_same_rows(url, count))
        reset = make_engine(url)
        with reset.begin() as conn:  # the chained floor reviews submitted items
            conn.execute(text("UPDATE items SET state = 'submitted'"))
        reset.dispose()
        chained_runs.append(run_chained_floor(url, count))
        driver_runs.append(run_chained_floor(url, count, driver=True))
    return Measured(
        count,
        statistics.median(engine_runs),
        statistics.median(bare_runs),
        statistics.median(floor_runs),
        statistics.median(same_runs),
        statistics.median(chained_runs),
        statistics.median(driver_runs),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    m = measure(args.repeat)
    count, e, b, f, r, c, d = m.count, m.engine, m.bare, m.floor, m.same, m.chained, m.driver
    print(f"PostgreSQL, {count} transitions per run (26 departments × 10 items × 4 steps), "
          f"median of {args.repeat} runs")  # fmt: skip
    print()
    print("| measure | seconds | per second | ratio to the same rows | ratio to the light pair |")
    print("|---|---|---|---|---|")
    print(f"| transitions with guards + audit chain | {e:.2f} | {count / e:.0f} | {r / e:.2f} | "
          f"{b / e:.2f} |")  # fmt: skip
    print(f"| the least guarded, chained transition (no ORM) | {c:.2f} | {count / c:.0f} | "
          f"{r / c:.2f} | {b / c:.2f} |")  # fmt: skip
    print(f"| the same on the driver's cursor | {d:.2f} | {count / d:.0f} | {r / d:.2f} | "
          f"{b / d:.2f} |")  # fmt: skip
    print(f"| the light pair in an ORM session, after a lock | {f:.2f} | {count / f:.0f} | | "
          f"{b / f:.2f} |")  # fmt: skip
    print(f"| bare UPDATE + INSERT of the same rows | {r:.2f} | {count / r:.0f} | 1.00 | "
          f"{b / r:.2f} |")  # fmt: skip
    print(f"| bare UPDATE + INSERT, light rows | {b:.2f} | {count / b:.0f} | | 1.00 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
