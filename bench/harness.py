"""Shared pieces of the load and fault runs: a fresh database, gunicorn, API clients, figures.

Everything listens and talks on 127.0.0.1 only. gunicorn runs in its own process group, so
`Gunicorn.stop()` (always called from a `finally`) ends the master and every worker.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_transitions import ensure_database  # noqa: E402
from bench.synthetic import add_departments  # noqa: E402
from workflow.audit import verify_chain  # noqa: E402
from workflow.db import make_engine, make_sessionmaker  # noqa: E402
from workflow.demo import demo_pdf  # noqa: E402
from workflow.scheme import SCHEMES_DIR, load_scheme  # noqa: E402
from workflow.setup import install_scheme  # noqa: E402
from workflow.users import create_user, issue_token  # noqa: E402

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/"
TRANSITIONS = ("submit", "review", "verify", "score")
#: Answers a client may get in a healthy run: wins, and lost races / already-moved items.
EXPECTED_4XX = {404, 409, 422}


def free_port() -> int:
    """Return a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    """What the clients need: the assessment and a token per user."""

    url: str
    aid: int
    departments: list[str]  # one token per department user
    reviewers: list[str]
    verifiers: list[str]
    scorers: list[str]


def setup_world(name: str, departments: int = 200, staff: int = 3) -> World:
    """Wipe and migrate database `name`, install the 2018 scheme with extra departments, users.

    The scheme has 26 departments × 10 indicators; synthetic departments (INSERT … SELECT)
    bring it to `departments`, so there is work for a whole run. Users and tokens are made
    through workflow.users.
    """
    url = PG_BASE + name
    ensure_database(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with factory() as s:
        a = install_scheme(s, load_scheme(SCHEMES_DIR / "jiaohe-2018.yaml"))
        s.commit()
        aid = a.id
    with engine.begin() as conn:
        have = conn.execute(
            text("SELECT count(*) FROM departments WHERE assessment_id = :a"), {"a": aid}
        ).scalar_one()
        add_departments(conn, aid, departments - have)
        conn.execute(
            text(
                "INSERT INTO items (assessment_id, department_id, indicator_id, state, version, "
                "round, appeal_count, updated_at) "
                "SELECT :a, d.id, i.id, 'draft', 1, 0, 0, now() "
                "FROM departments d CROSS JOIN indicators i "
                "WHERE d.assessment_id = :a AND i.assessment_id = :a AND d.position >= 1000"
            ),
            {"a": aid},
        )
    from workflow.models import Department

    with factory() as s:
        deps = list(
            s.execute(
                select(Department).where(Department.assessment_id == aid).order_by(Department.id)
            ).scalars()
        )
        dep_tokens = [
            issue_token(s, create_user(s, f"dep{n}", ["department"], department=d))[0]
            for n, d in enumerate(deps)
        ]
        roles = {}
        for role in ("reviewer", "verifier", "scorer"):
            roles[role] = [
                issue_token(s, create_user(s, f"{role}{n}", [role]))[0] for n in range(staff)
            ]
        s.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()
    return World(url, aid, dep_tokens, roles["reviewer"], roles["verifier"], roles["scorer"])


class Gunicorn:
    """gunicorn serving wsgi:app on 127.0.0.1:<free port>, in its own process group."""

    def __init__(
        self,
        env: Mapping[str, str],
        workers: int = 4,
        log: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        if workers > 1 and not self.env.get("REDIS_URL"):
            # Load and fault runs measure throughput, not sign-in limits: accept per-process
            # counts (the app refuses several workers without a shared store otherwise).
            self.env.setdefault("ALLOW_PER_PROCESS_LIMITS", "true")
        self.workers = workers
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "--workers",
                str(self.workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.base + "/api/v1/openapi.json", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process group (master and workers)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        """Stop master and workers: TERM, then KILL after 10 s; never leaves one behind."""
        if self.process is None:
            return
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill(signal.SIGKILL)
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # stray workers of the group
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Gunicorn:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Stats:
    """Every request's kind, status and latency; thread-safe."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, str, int]] = field(default_factory=list)

    def add(self, kind: str, status: int, seconds: float) -> None:
        """Record one answer (status 0: no answer, a connection error)."""
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1
            self.timeline.append((time.monotonic(), kind, status))

    def count(self, kind: str, low: int, high: int) -> int:
        """Return how many answers of `kind` had a status in [low, high]."""
        return sum(n for s, n in self.statuses[kind].items() if low <= s <= high)

    def total(self, low: int, high: int) -> int:
        """Return the answers of every kind with a status in [low, high]."""
        return sum(self.count(k, low, high) for k in self.statuses)

    def table(self, seconds: float) -> str:
        """Per kind: count, rate, p50/p95/p99 in ms and the statuses seen."""
        lines = [
            "| request | count | per s | p50 ms | p95 ms | p99 ms | statuses |",
            "|---|---|---|---|---|---|---|",
        ]
        every: list[float] = []
        for kind in sorted(self.latencies):
            values = sorted(self.latencies[kind])
            every += values
            lines.append(_row(kind, values, seconds, self.statuses[kind]))
        total: Counter[int] = Counter()
        for c in self.statuses.values():
            total.update(c)
        lines.append(_row("**all**", sorted(every), seconds, total))
        return "\n".join(lines)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def _row(kind: str, values: list[float], seconds: float, statuses: Counter[int]) -> str:
    seen = ", ".join(f"{s}×{n}" for s, n in sorted(statuses.items()))
    return (
        f"| {kind} | {len(values)} | {len(values) / seconds:.1f} | "
        f"{statistics.median(values) * 1000 if values else 0:.0f} | {_pct(values, 0.95):.0f} | "
        f"{_pct(values, 0.99):.0f} | {seen} |"
    )


class Client:
    """One simulated user: a requests session with a bearer token, recording into Stats."""

    def __init__(self, base: str, token: str, stats: Stats, timeout: float = 30) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.stats = stats
        self.timeout = timeout

    def call(self, kind: str, method: str, path: str, **kw: Any) -> requests.Response | None:
        """Send one request; record it; None when there was no answer."""
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            self.stats.add(kind, 0, time.perf_counter() - started)
            with self.stats.lock:
                self.stats.errors[f"{kind}: {type(exc).__name__}"] += 1
            return None
        self.stats.add(kind, response.status_code, time.perf_counter() - started)
        return response

    def queue(self, aid: int, state: str) -> list[dict[str, Any]]:
        """Return the first page of items in `state`."""
        r = self.call("queue page", "GET", f"/api/v1/assessments/{aid}/items",
                      params={"state": state, "limit": 50})  # fmt: skip
        if r is None or r.status_code != 200:
            return []
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def transition(self, item_id: int, body: dict[str, Any]) -> requests.Response | None:
        """POST one action."""
        return self.call(body["action"], "POST", f"/api/v1/items/{item_id}/transitions", json=body)

    def upload(self, item_id: int, seed: str) -> requests.Response | None:
        """Upload a small real PDF as evidence."""
        files = {"file": ("材料.pdf", demo_pdf(seed), "application/pdf")}
        return self.call("upload", "POST", f"/api/v1/items/{item_id}/evidence", files=files)


STAFF_STEP = {"reviewer": ("submitted", "review"), "verifier": ("reviewed", "verify"),
              "scorer": ("verified", "score")}  # fmt: skip


def staff_loop(
    client: Client, role: str, aid: int, stop: threading.Event, rng: random.Random
) -> None:
    """Take an item from the role's queue and move it on; repeat."""
    state, action = STAFF_STEP[role]
    while not stop.is_set():
        items = client.queue(aid, state)
        if not items:
            if stop.wait(0.3):
                return
            continue
        item = rng.choice(items)
        body: dict[str, Any] = {"action": action, "version": item["version"]}
        if action == "verify":  # every check point (核查要点) answered 是
            detail = client.call("item detail", "GET", f"/api/v1/items/{item['id']}")
            if detail is None or detail.status_code != 200:
                continue
            data = detail.json()
            body["version"] = data["version"]
            body["checks"] = {c["code"]: {"answer": "yes"} for c in data["check_points"]}
        if action == "score":
            detail = client.call("item detail", "GET", f"/api/v1/items/{item['id']}")
            if detail is None or detail.status_code != 200:
                continue
            data = detail.json()
            body["version"] = data["version"]
            body["scores"] = {p["code"]: str(Decimal(p["max_points"])) for p in data["sub_items"]}
            # Routine records may suggest another score: a reason covers any deviation.
            body["deductions"] = {p["code"]: "压力测试" for p in data["sub_items"]}
        client.transition(item["id"], body)


def run_clients(
    world: World, base: str, stats: Stats, clients: int, seconds: float, seed: int = 8
) -> float:
    """Run `clients` threads (half departments, the rest reviewers/verifiers/scorers)."""
    stop = threading.Event()
    threads = []
    n_dep = clients // 2
    for i in range(clients):
        rng = random.Random(seed * 1000 + i)
        if i < n_dep:
            tokens = world.departments[i::n_dep]

            def dep_worker(
                tokens: list[str] = tokens, i: int = i, rng: random.Random = rng
            ) -> None:
                while not stop.is_set():
                    for k, token in enumerate(tokens):
                        if stop.is_set():
                            return
                        department_loop_once(Client(base, token, stats), world.aid, stop,
                                             f"c{i}-{k}-{seed}", rng)  # fmt: skip

            threads.append(threading.Thread(target=dep_worker, daemon=True))
        else:
            role = ("reviewer", "verifier", "scorer")[(i - n_dep) % 3]
            pool = {"reviewer": world.reviewers, "verifier": world.verifiers,
                    "scorer": world.scorers}[role]  # fmt: skip
            c = Client(base, pool[i % len(pool)], stats)
            threads.append(
                threading.Thread(
                    target=staff_loop, args=(c, role, world.aid, stop, rng), daemon=True
                )
            )
    started = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    return time.monotonic() - started


def department_loop_once(
    client: Client, aid: int, stop: threading.Event, seed: str, rng: random.Random
) -> None:
    """One department's turn: up to three items uploaded and submitted."""
    for n in range(3):
        if stop.is_set():
            return
        items = client.queue(aid, "draft")
        if not items:
            return
        item = rng.choice(items)
        up = client.upload(item["id"], f"{seed}-{n}-{rng.random()}")
        if up is None or up.status_code != 201 or stop.is_set():
            continue
        detail = client.call("item detail", "GET", f"/api/v1/items/{item['id']}")
        if detail is None or detail.status_code != 200:
            continue
        client.transition(item["id"], {"action": "submit", "version": detail.json()["version"]})


@dataclass
class Consistency:
    """What the database says after a run."""

    events_by_action: dict[str, int]
    chain_ok: bool
    chain_events: int
    chain_problem: str | None
    version_mismatches: int
    evidence_rows: int
    rows_without_object: int


def check_database(url: str, store_exists: Any = None) -> Consistency:
    """Count events, verify the chain, compare versions with transition events."""
    engine = make_engine(url)
    with engine.connect() as conn:
        by_action = dict(
            conn.execute(text("SELECT action, count(*) FROM audit_events GROUP BY action")).all()
        )
        mismatches = conn.execute(
            text(
                "SELECT count(*) FROM items i LEFT JOIN (SELECT item_id, count(*) AS n "
                "FROM audit_events WHERE action IN ('submit','review','return','verify',"
                "'score','appeal','rescore','reject_appeal') GROUP BY item_id) e "
                "ON e.item_id = i.id WHERE i.version <> 1 + coalesce(e.n, 0)"
            )
        ).scalar_one()
        keys = [r[0] for r in conn.execute(text("SELECT storage_key FROM evidence"))]
    missing = 0
    if store_exists is not None:
        missing = sum(1 for k in set(keys) if not store_exists(k))
    with make_sessionmaker(engine)() as s:
        v = verify_chain(s)
    engine.dispose()
    return Consistency(by_action, v.ok, v.events, v.problem, int(mismatches), len(keys), missing)


def accounting(stats: Stats, db: Consistency) -> list[tuple[str, int, int, bool]]:
    """Per action: (action, 2xx answers, events); equal when every success has one event."""
    rows = []
    for action in TRANSITIONS:
        ok = stats.count(action, 200, 299)
        events = db.events_by_action.get(action, 0)
        rows.append((action, ok, events, ok == events))
    ok = stats.count("upload", 200, 299)
    events = db.events_by_action.get("evidence_uploaded", 0)
    rows.append(("upload", ok, events, ok == events))
    return rows


@contextlib.contextmanager
def temp_env(**env: str) -> Iterator[None]:
    """Set environment variables for the duration."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
