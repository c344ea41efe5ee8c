"""A real queue consumer (`flask --app wsgi worker`, a subprocess) runs jobs of the demo.

On both queue storages: Redis (a dedicated database number, flushed first) and the embedded
SQLite file. The demo assessment (26 departments, everything scored and published) is made
once for the module in a SQLite database of its own with a local evidence folder; the test
process and the worker share both, as the web server and the worker do.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from storage.local import LocalStore
from web.app import create_app
from web.tasks import enqueue_after_commit, get_queue
from workflow import jobs
from workflow.db import make_engine, make_sessionmaker, unit_of_work
from workflow.demo import run_demo
from workflow.models import Assessment, AuditEvent, Job, User, utcnow
from workflow.scheme import Scheme
from workflow.setup import install_scheme
from workflow.users import create_user

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("JOBS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
LEASE_SECONDS = 10


def _redis_or_skip() -> None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is not reachable ({exc}); .ci/run starts one")


@dataclass
class Demo:
    folder: Path
    db_url: str
    settings: dict[str, str]
    assessment_id: int
    departments: list[str]
    admin_id: int


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, scheme_2018: Scheme
) -> Demo:
    """The complete demo (26 departments scored, published) in a database of its own."""
    import shutil

    folder = tmp_path_factory.mktemp("jobs-demo")
    db = folder / "demo.sqlite3"
    shutil.copy(sqlite_template, db)
    url = f"sqlite:///{db}"
    store = LocalStore(folder / "evidence")
    engine = make_engine(url)
    light = create_user.__globals__["hash_password"]("demo-password-2018")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("workflow.users.hash_password", lambda _password: light)
        with unit_of_work(make_sessionmaker(engine)) as session:
            assessment = install_scheme(session, scheme_2018)
            admin = create_user(session, "admin", ["admin"], password="demo-password-2018")
            run_demo(session, store, assessment, password="demo-password-2018", admin=admin,
                     complete=True)  # fmt: skip
            aid, admin_id = assessment.id, admin.id
            names = [d.name for d in assessment.departments]
    engine.dispose()
    settings = {
        "DATABASE_URL": url,
        "INSTANCE_DIR": str(folder),
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_ROOT": str(folder / "evidence"),
        "JOBS_LEASE_SECONDS": str(LEASE_SECONDS),
        "SECURITY_LOG": "-",
    }
    return Demo(folder, url, settings, aid, names, admin_id)


@pytest.fixture(params=["redis", "sqlite"])
def broker(request: pytest.FixtureRequest) -> str:
    """The queue's storage: Redis (flushed) or the embedded SQLite file."""
    if request.param == "redis":
        _redis_or_skip()
        return REDIS_URL
    return ""


@pytest.fixture
def app(demo: Demo, broker: str) -> Flask:
    (Path(demo.folder) / "jobs.sqlite3").unlink(missing_ok=True)
    return create_app(
        {
            "DATABASE_URL": demo.db_url,
            "INSTANCE_DIR": str(demo.folder),
            "STORAGE": {
                "STORAGE_BACKEND": "local",
                "STORAGE_LOCAL_ROOT": str(demo.folder / "evidence"),
            },
            "JOBS_BROKER_URL": broker,
            "JOBS_LEASE_SECONDS": LEASE_SECONDS,
        }
    )


WorkerStarter = Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def start_worker(demo: Demo, broker: str) -> Iterator[WorkerStarter]:
    """Start `flask --app wsgi worker` subprocesses on the demo; all are stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = {**os.environ, **demo.settings, "JOBS_BROKER_URL": broker, "PYTHONPATH": str(ROOT)}
        log = open(demo.folder / f"worker-{len(started)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(proc)
        deadline = time.monotonic() + 60
        path = demo.folder / f"worker-{len(started) - 1}.log"
        while "Huey consumer started" not in path.read_text(errors="replace"):
            assert proc.poll() is None, path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.2)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def request_notices(app: Flask, demo: Demo, *, force: bool = False, enqueue: int = 1) -> int:
    """Request the notices job as the admin and enqueue it after the commit (`enqueue` times)."""
    factory = app.extensions["sessionmaker"]
    with unit_of_work(factory) as session:
        admin = session.get_one(User, demo.admin_id)
        job = jobs.start_job(
            session, admin, jobs.NOTICES, {"assessment_id": demo.assessment_id, "force": force}
        ).job
        for _ in range(enqueue):
            enqueue_after_commit(session, job.id, get_queue(app))
        return job.id


def follow(
    app: Flask, job_id: int, *, until: Callable[[Job], bool], timeout: float = 180
) -> tuple[Job, list[int]]:
    """Poll the row until `until(row)`; return it and the progress values seen."""
    factory = app.extensions["sessionmaker"]
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        with factory() as session:
            row = session.get_one(Job, job_id)
        if not seen or seen[-1] != row.progress_done:
            seen.append(row.progress_done)
        if until(row):
            return row, seen
        assert row.status != jobs.FAILED or until(row), row.error
        assert time.monotonic() < deadline, f"job {job_id} still {row.status} {row.progress_done}"
        time.sleep(0.1)


def finished(row: Job) -> bool:
    return row.status in (jobs.DONE, jobs.FAILED)


def zip_of(app: Flask, row: Job) -> zipfile.ZipFile:
    assert row.storage_key is not None
    path = Path(app.config["INSTANCE_DIR"]) / f"job-{row.id}.zip"
    with app.extensions["store"].open(row.storage_key) as reader:
        path.write_bytes(reader.read())
    return zipfile.ZipFile(path)


def issued_count(app: Flask) -> int:
    with app.extensions["sessionmaker"]() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "notice_issued")
            )
            or 0
        )


def test_notices_for_every_department(app: Flask, demo: Demo, start_worker: WorkerStarter) -> None:
    start_worker()
    job_id = request_notices(app, demo)
    row, seen = follow(app, job_id, until=finished)
    assert row.status == jobs.DONE, row.error
    total = len(demo.departments) + 1  # and the summary table
    assert row.progress_total == total and row.progress_done == total
    # It rose, and a poll saw it under way. (Reports come at most every 0.5 s: a fast run
    # shows one value between 0 and the end, not several; asking for three failed a CI run.)
    assert seen == sorted(seen) and seen[-1] == total and any(0 < v < total for v in seen)
    names = zip_of(app, row).namelist()
    assert len(names) == total
    for department in demo.departments:
        assert sum(department in name and name.endswith(".docx") for name in names) == 1, department
    assert any("汇总表" in name for name in names)
    assert row.filename == "2018年度考核结果通知书.zip"
    assert "已印发 26 份" in (row.message or "")


def test_double_enqueue_runs_once(app: Flask, demo: Demo, start_worker: WorkerStarter) -> None:
    before = issued_count(app)
    job_id = request_notices(app, demo, force=True, enqueue=2)
    start_worker()
    row, _ = follow(app, job_id, until=finished)
    assert row.status == jobs.DONE and row.attempt == 1
    time.sleep(1.5)  # the second message is read and ignored meanwhile
    assert issued_count(app) - before == len(demo.departments)
    with app.extensions["sessionmaker"]() as session:
        assert session.get_one(Job, job_id).attempt == 1


def test_a_failing_job_shows_failed_in_chinese(
    app: Flask, demo: Demo, start_worker: WorkerStarter
) -> None:
    factory = app.extensions["sessionmaker"]
    job_id = request_notices(app, demo)  # accepted: the results' 发文字号 is set
    with unit_of_work(factory) as session:  # and cleared before any worker ran the job
        number = session.get_one(Assessment, demo.assessment_id).result_document_no
        session.execute(update(Assessment).values(result_document_no=None))
    try:
        start_worker()
        row, _ = follow(app, job_id, until=finished)
    finally:
        with unit_of_work(factory) as session:
            session.execute(update(Assessment).values(result_document_no=number))
    assert row.status == jobs.FAILED and row.storage_key is None
    assert row.error_code == "document_no_required" and "发文字号" in (row.error or "")


def test_killed_worker_job_is_requeued_after_its_lease(
    app: Flask, demo: Demo, start_worker: WorkerStarter
) -> None:
    worker = start_worker()
    job_id = request_notices(app, demo, force=True)
    row, _ = follow(app, job_id, until=lambda r: r.progress_done >= 3)
    worker.kill()  # SIGKILL mid-job: no chance to clean up
    worker.wait()
    with app.extensions["sessionmaker"]() as session:
        stuck = session.get_one(Job, job_id)
    assert stuck.status == jobs.RUNNING and stuck.attempt == 1
    assert 3 <= stuck.progress_done < len(demo.departments) + 1
    # Within the lease nothing moves; after it the sweep gives the job back to the queue.
    factory = app.extensions["sessionmaker"]
    lease = app.config["JOBS_LEASE_SECONDS"]
    assert jobs.sweep(factory, lease=dt.timedelta(seconds=lease)).requeued == []
    swept = jobs.sweep(
        factory, lease=dt.timedelta(seconds=lease), now=utcnow() + dt.timedelta(seconds=lease + 1)
    )
    assert swept.requeued == [job_id]
    start_worker()
    for job in swept.to_enqueue:
        get_queue(app).enqueue(job)
    row, _ = follow(app, job_id, until=finished)
    assert row.status == jobs.DONE and row.attempt == 2
    assert len(zip_of(app, row).namelist()) == len(demo.departments) + 1


def test_cli_run_wait_writes_the_file(
    app: Flask, demo: Demo, broker: str, start_worker: WorkerStarter, tmp_path: Path
) -> None:
    start_worker()
    env = {**os.environ, **demo.settings, "JOBS_BROKER_URL": broker, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run", "export",
         "--table", "results", "--wait", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "已排队" in done.stdout and "已导出" in done.stdout
    assert "100%" in done.stderr  # the progress bar reached the end
    files = list(tmp_path.glob("2018年度考核结果-*.xlsx"))
    assert len(files) == 1 and files[0].read_bytes()[:2] == b"PK"
    assert files[0].stat().st_mode & 0o777 == 0o600  # the results of every department
    listed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "list"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "导出表格：考核结果\t已完成" in listed.stdout


def test_a_started_worker_beats_and_the_health_check_sees_it(
    app: Flask, demo: Demo, start_worker: WorkerStarter
) -> None:
    """A real consumer leaves its heartbeat in the queue's storage (Redis, or the SQLite file)
    as it starts: the web process reads it there, and the queue check turns ok."""
    from web.tasks import last_beat
    from workflow import health

    assert last_beat(app) is None
    before = utcnow()
    start_worker()
    deadline = time.monotonic() + 30
    while (seen := last_beat(app)) is None:
        assert time.monotonic() < deadline, "no heartbeat from the worker"
        time.sleep(0.2)
    assert before - dt.timedelta(seconds=1) <= seen <= utcnow()
    with app.app_context(), unit_of_work(app.extensions["sessionmaker"]) as session:
        result = health.check_health(session, app.extensions["store"], lambda: last_beat(app))
    queue = next(c for c in result.checks if c.name == "queue")
    # The worker beats again on its own (each consumer as it starts, the sweep each minute):
    # the check sees this heartbeat or a later one.
    assert queue.status == health.OK and queue.at is not None and queue.at >= seen
