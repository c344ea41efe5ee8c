"""Faults: PostgreSQL restarted under load, the S3 endpoint cut, the app killed mid-upload.

`make faults` (`python -m bench.faults [postgres] [s3] [kill]`); each scenario prints PASS or
FAIL with its figures; the exit status is 0 only when all pass. Everything runs on 127.0.0.1
against gunicorn (4 workers) and a fresh `fgf_faults` database.

- postgres: clients run for `--seconds` (30); PostgreSQL is restarted with pg_ctlcluster after
  a third of it (needs root; the scenario is skipped otherwise). Every answer must be a success,
  an expected 4xx (409 lost race, …) or a 503 — never a 500 and never no answer; afterwards
  every item's version equals 1 + its transition events (nothing half-applied), each action has
  an event per success (and at most one more per 503, a commit whose answer was lost), every
  evidence row has its object, the chain verifies. A probe reads a queue page every 0.1 s and
  gives the recovery time. PostgreSQL is started again in a `finally` whatever happens.
- s3: storage is S3 on a moto server in a child process, reached through a TCP proxy
  (tests/storage/fixtures.py `FaultyLink`); the proxy is cut for a third of the run and
  restored. Uploads in the cut must answer 503, queue pages 200, uploads succeed again after
  it, and every evidence row's object exists once the endpoint is back. (The proxy, not a moto
  restart, makes the outage: moto keeps objects in memory, so a restarted moto would have lost
  everything and "nothing lost" could not be checked.)
- kill: a department uploads a 16 MiB file; the moment its object lands in the local store,
  gunicorn's whole process group gets SIGKILL — between the object write and the row's commit.
  No evidence row may lack its object, and `flask --app wsgi storage gc --grace-hours 0` must
  list the leftover object.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_upload import moto_server  # noqa: E402
from bench.harness import (  # noqa: E402
    EXPECTED_4XX,
    TRANSITIONS,
    Consistency,
    Gunicorn,
    Stats,
    World,
    check_database,
    run_clients,
    setup_world,
)
from storage import LocalStore, S3Store  # noqa: E402
from storage.ingest import object_key_for  # noqa: E402
from tests.storage.fixtures import FaultyLink  # noqa: E402

DATABASE = "fgf_faults"
MIB = 1024 * 1024


def say(text: str) -> None:
    """Print at once (the scenarios are long)."""
    print(text, flush=True)


def verdict(name: str, checks: dict[str, bool], figures: list[str]) -> bool:
    """Print a scenario's result; return whether every check passed."""
    ok = all(checks.values())
    say(f"\n{'PASS' if ok else 'FAIL'}  {name}")
    for figure in figures:
        say(f"      {figure}")
    for check, passed in checks.items():
        say(f"   {'ok ' if passed else 'BAD'}  {check}")
    return ok


def pg_cluster() -> list[str]:
    """Return the pg_ctlcluster arguments naming this machine's cluster."""
    versions = sorted(os.listdir("/etc/postgresql"))
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main"]


def pg_is_up() -> bool:
    """Tell whether PostgreSQL accepts connections on 127.0.0.1:5432."""
    result = subprocess.run(
        ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "2"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def ensure_pg_running() -> None:
    """Start PostgreSQL when it is down, and wait until it answers (up to 60 s)."""
    if pg_is_up():
        return
    subprocess.run([*pg_cluster(), "start"], capture_output=True, check=False)
    deadline = time.monotonic() + 60
    while not pg_is_up():
        if time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not come back")
        time.sleep(0.5)


class Probe:
    """Read a queue page every `interval` seconds and keep (time, status)."""

    def __init__(self, base: str, token: str, aid: int, interval: float = 0.1) -> None:
        self.url = f"{base}/api/v1/assessments/{aid}/items?state=submitted&limit=1"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as http:
            while not self._stop.wait(self.interval):
                try:
                    status = http.get(self.url, headers=self.headers, timeout=10).status_code
                except requests.RequestException:
                    status = 0
                self.samples.append((time.monotonic(), status))

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def in_window(stats: Stats, kind: str, start: float, end: float) -> dict[int, int]:
    """Return the statuses of `kind` answered between `start` and `end`."""
    seen: dict[int, int] = {}
    with stats.lock:
        for at, k, status in stats.timeline:
            if k == kind and start <= at <= end:
                seen[status] = seen.get(status, 0) + 1
    return seen


def unexpected(stats: Stats, allowed: set[int]) -> dict[str, dict[int, int]]:
    """Return, per kind, the statuses outside 2xx and `allowed`."""
    bad: dict[str, dict[int, int]] = {}
    for kind, counter in stats.statuses.items():
        for status, n in counter.items():
            if not (200 <= status < 300 or status in allowed):
                bad.setdefault(kind, {})[status] = n
    return bad


def events_match(stats: Stats, db: Consistency, tolerate_503: bool) -> tuple[bool, list[str]]:
    """Every success has exactly one event; a 503 may hide at most one committed event."""
    ok = True
    lines = []
    for action, kind, event in [(a, a, a) for a in TRANSITIONS] + [
        ("upload", "upload", "evidence_uploaded")
    ]:
        wins = stats.count(kind, 200, 299)
        lost = stats.count(kind, 503, 503) + stats.count(kind, 0, 0) if tolerate_503 else 0
        events = db.events_by_action.get(event, 0)
        good = wins <= events <= wins + lost
        ok = ok and good
        lines.append(f"{action}: {wins} successes, {events} events, {lost} 503/unanswered")
    return ok, lines


def app_env(world: World, tmp: str, **storage: str) -> dict[str, str]:
    """The environment of gunicorn (and of the flask CLI) for a scenario."""
    return {
        "DATABASE_URL": world.url,
        "INSTANCE_DIR": tmp,
        "SECRET_KEY": "fault-test",
        **storage,
    }


@contextlib.contextmanager
def background(target: Callable[[], object]) -> Iterator[threading.Thread]:
    """Run `target` in a thread for the duration of the block, then join it."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(timeout=120)


# ------------------------------------------------------------------ PostgreSQL restart


def scenario_postgres(args: argparse.Namespace) -> bool:
    """Restart PostgreSQL in the middle of the load."""
    name = "PostgreSQL restarted in the middle of the load"
    if os.geteuid() != 0 or not shutil.which("pg_ctlcluster"):
        say(f"\nSKIP  {name} (needs root and pg_ctlcluster)")
        return True
    world = setup_world(DATABASE, departments=300)
    stats = Stats()
    restart: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fgf-faults-") as tmp:
        evidence = Path(tmp) / "evidence"
        env = app_env(world, tmp, STORAGE_BACKEND="local", STORAGE_LOCAL_ROOT=str(evidence))
        try:
            with Gunicorn(env, log=Path(tmp) / "gunicorn.log") as server:
                probe = Probe(server.base, world.reviewers[0], world.aid)

                def load() -> None:
                    run_clients(world, server.base, stats, args.clients, args.seconds, seed=1)

                with probe, background(load):
                    time.sleep(args.seconds / 3)
                    say("   restarting PostgreSQL …")
                    restart["start"] = time.monotonic()
                    subprocess.run([*pg_cluster(), "restart"], capture_output=True, check=True)
                    restart["end"] = time.monotonic()
                    say(f"   restart took {restart['end'] - restart['start']:.1f} s")
        finally:
            ensure_pg_running()
        db = check_database(world.url, LocalStore(evidence).exists)
    failed = [(t, s) for t, s in probe.samples if s != 200 and t >= restart["start"]]
    recovered = next(
        (t for t, s in probe.samples if s == 200 and t >= restart["end"]), float("nan")
    )
    outage = (recovered - failed[0][0]) if failed else 0.0
    after = recovered - restart["end"]
    bad = unexpected(stats, EXPECTED_4XX | {503})
    matched, lines = events_match(stats, db, tolerate_503=True)
    figures = [
        f"{sum(len(v) for v in stats.latencies.values())} requests in {args.seconds:g} s, "
        f"{args.clients} clients; 503 answers: {stats.total(503, 503)}; "
        f"probe failures during the restart: {len(failed)}",
        f"pg_ctlcluster restart: {restart['end'] - restart['start']:.1f} s; queue page failing "
        f"for {outage:.1f} s; first 200 {after:.2f} s after PostgreSQL was back",
        *lines,
    ]
    checks = {
        "no 500 and no request without an answer (only 2xx, 404/409/422 or 503)": not bad,
        "the pool recovers within 5 s of PostgreSQL being back": 0 <= after < 5,
        "every success has its one event (a 503 may hide one committed event)": matched,
        "no half-applied transition: each version = 1 + its transition events": (
            db.version_mismatches == 0
        ),
        "every evidence row has its object": db.rows_without_object == 0,
        f"the chain verifies ({db.chain_events} events)": db.chain_ok,
    }
    if bad:
        figures.append(f"unexpected statuses: {bad}")
    return verdict(name, checks, figures)


# ------------------------------------------------------------------ S3 endpoint stopped


def scenario_s3(args: argparse.Namespace) -> bool:
    """Cut the S3 endpoint for a third of the run."""
    name = "S3 endpoint stopped in the middle of the load"
    world = setup_world(DATABASE, departments=300)
    stats = Stats()
    window: dict[str, float] = {}
    bucket = "evidence-faults"
    with moto_server() as endpoint, tempfile.TemporaryDirectory(prefix="fgf-faults-") as tmp:
        link = FaultyLink(endpoint)
        link.start()
        storage = {
            "STORAGE_BACKEND": "s3",
            "S3_ENDPOINT": link.endpoint,
            "S3_ACCESS_KEY": "bench",
            "S3_SECRET_KEY": "bench",
            "S3_BUCKET": bucket,
            "S3_SECURE": "false",
        }
        try:
            with Gunicorn(app_env(world, tmp, **storage), log=Path(tmp) / "gunicorn.log") as srv:

                def load() -> None:
                    run_clients(world, srv.base, stats, args.clients, args.seconds, seed=2)

                with background(load):
                    time.sleep(args.seconds / 3)
                    say("   cutting the S3 endpoint …")
                    window["cut"] = time.monotonic()
                    link.cut()
                    time.sleep(args.seconds / 3)
                    window["restored"] = time.monotonic()
                    link.restore()
                    say("   S3 endpoint restored")
        finally:
            link.cut()
        # Check the objects directly against moto (the link is gone now).
        store = S3Store(endpoint, "bench", "bench", bucket, secure=False)
        db = check_database(world.url, store.exists)
    # Requests in flight at the cut may still end either way: look from 1 s after it.
    cut_from, cut_to = window["cut"] + 1, window["restored"]
    uploads_in_cut = in_window(stats, "upload", cut_from, cut_to)
    pages_in_cut = in_window(stats, "queue page", cut_from, cut_to)
    uploads_after = in_window(stats, "upload", window["restored"] + 1, float("inf"))
    bad = unexpected(stats, EXPECTED_4XX | {503})
    matched, lines = events_match(stats, db, tolerate_503=False)
    figures = [
        f"uploads during the cut: {uploads_in_cut}; queue pages during the cut: {pages_in_cut}",
        f"uploads after the endpoint returned: {uploads_after}",
        f"evidence rows: {db.evidence_rows}, without their object: {db.rows_without_object}",
        *lines,
    ]
    checks = {
        "uploads answer 503 while the endpoint is down": bool(uploads_in_cut)
        and set(uploads_in_cut) == {503},
        "queue pages still work (all 200) while it is down": bool(pages_in_cut)
        and set(pages_in_cut) == {200},
        "uploads succeed again once it returns": uploads_after.get(201, 0) > 0,
        "no 500 and no request without an answer": not bad,
        "nothing lost: every evidence row's object exists": db.rows_without_object == 0,
        "every success has exactly one event": matched,
        f"the chain verifies ({db.chain_events} events)": db.chain_ok,
    }
    if bad:
        figures.append(f"unexpected statuses: {bad}")
    return verdict(name, checks, figures)


# ------------------------------------------------------------------ app killed mid-upload


def big_pdf(size: int, seed: int) -> bytes:
    """Return `size` bytes that ingest accepts as a PDF, unique per seed."""
    block = hashlib.sha256(f"fault-{seed}-{time.time_ns()}".encode()).digest() * 2048  # 64 KiB
    body = (block * (size // len(block) + 1))[: size - 9]
    return b"%PDF-1.7\n" + body


def scenario_kill(args: argparse.Namespace) -> bool:
    """SIGKILL gunicorn between an upload's object write and its row."""
    name = "app killed in the middle of an upload"
    world = setup_world(DATABASE, departments=26)
    attempts: list[str] = []
    leftover: str | None = None
    with tempfile.TemporaryDirectory(prefix="fgf-faults-") as tmp:
        evidence = Path(tmp) / "evidence"
        env = app_env(world, tmp, STORAGE_BACKEND="local", STORAGE_LOCAL_ROOT=str(evidence))
        store = LocalStore(evidence)
        for attempt in range(1, 6):
            data = big_pdf(16 * MIB, attempt)
            key = object_key_for(hashlib.sha256(data).hexdigest())
            path = evidence.joinpath(*key.split("/"))
            server = Gunicorn(env, workers=2, log=Path(tmp) / "gunicorn.log")
            outcome: dict[str, object] = {}
            try:
                server.start()
                headers = {"Authorization": f"Bearer {world.departments[0]}"}
                items = requests.get(
                    f"{server.base}/api/v1/assessments/{world.aid}/items",
                    params={"state": "draft", "limit": 1},
                    headers=headers,
                    timeout=10,
                ).json()["items"]
                item_id = items[0]["id"]

                def upload(
                    item_id: int = item_id,
                    data: bytes = data,
                    server: Gunicorn = server,
                    headers: dict[str, str] = headers,
                    outcome: dict[str, object] = outcome,
                ) -> None:
                    try:
                        r = requests.post(
                            f"{server.base}/api/v1/items/{item_id}/evidence",
                            files={"file": ("大文件.pdf", data, "application/pdf")},
                            headers=headers,
                            timeout=60,
                        )
                        outcome["status"] = r.status_code
                    except requests.RequestException as exc:
                        outcome["status"] = type(exc).__name__

                with background(upload) as thread:
                    deadline = time.monotonic() + 60
                    while not path.exists() and thread.is_alive() and time.monotonic() < deadline:
                        pass  # spin: the window between the rename and the commit is short
                    server.kill()  # SIGKILL to the master and every worker
                    killed_after_object = path.exists()
            finally:
                server.stop()
            db = check_database(world.url, store.exists)
            row = key_has_row(world.url, key)
            attempts.append(
                f"attempt {attempt}: object written before the kill: {killed_after_object}; "
                f"client saw {outcome.get('status')}; row committed: {row}"
            )
            if db.rows_without_object:
                break
            if killed_after_object and not row:
                leftover = key
                break
        gc = subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "--app", "wsgi", "storage", "gc",
             "--grace-hours", "0"],
            cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    figures = [*attempts, "storage gc: " + (gc.stdout.strip().splitlines() or ["(no output)"])[-1]]
    checks = {
        "no evidence row without its object": db.rows_without_object == 0,
        "a kill landed between the object and its row (a leftover exists)": leftover is not None,
        "`storage gc --grace-hours 0` lists the leftover": leftover is not None
        and leftover in gc.stdout,
        f"the chain verifies ({db.chain_events} events)": db.chain_ok,
    }
    if gc.returncode != 0:
        figures.append(f"storage gc failed: {gc.stderr[-500:]}")
    return verdict(name, checks, figures)


def key_has_row(url: str, key: str) -> bool:
    """Tell whether an evidence row refers to `key`."""
    from sqlalchemy import text

    from workflow.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM evidence WHERE storage_key = :k"), {"k": key}
        ).first()
    engine.dispose()
    return found is not None


SCENARIOS: dict[str, Callable[[argparse.Namespace], bool]] = {
    "postgres": scenario_postgres,
    "s3": scenario_s3,
    "kill": scenario_kill,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios (all by default); 0 when every one passes."""
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"scenarios ({', '.join(SCENARIOS)})")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario: {', '.join(unknown)}")
    results = []
    try:
        for name in args.names or list(SCENARIOS):
            say(f"\n## {name}")
            results.append(SCENARIOS[name](args))
    finally:
        if os.geteuid() == 0 and shutil.which("pg_ctlcluster"):
            ensure_pg_running()  # CI runs against the same server after us
    say(f"\n{sum(results)} of {len(results)} scenarios passed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
