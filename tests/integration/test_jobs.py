"""The job engine (workflow/jobs.py) on every configured database, without a queue.

Request (who may, which parameters, audited), the atomic claim, progress with the lease,
the finish into the object store, failures in Chinese, the sweep of lost jobs, and
`storage gc` keeping job results while collecting orphans under ``jobs/``.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from typing import IO

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from storage import ObjectStore
from tests.factories import World, at_once
from workflow import jobs
from workflow.audit import payload_of
from workflow.db import make_sessionmaker
from workflow.errors import Conflict, Forbidden, InvalidValue, NotFound
from workflow.maintenance import find_orphans, verify_objects
from workflow.models import AuditEvent, Job, User, utcnow


def _request(session: Session, w: World, kind: str = jobs.EXPORT, **params: object) -> Job:
    params = params or {"table": "matrix", "assessment_id": w.assessment.id}
    job = jobs.start_job(session, w.admin, kind, params).job
    session.commit()
    return job


def test_request_is_checked_and_audited(session: Session, world: World) -> None:
    w = world
    job = _request(session, w)
    assert (job.status, job.attempt, job.created_by_id) == ("queued", 0, w.admin.id)
    event = session.execute(
        select(AuditEvent).where(AuditEvent.action == "job_requested")
    ).scalar_one()
    assert event.actor == "admin" and payload_of(event)["params"]["table"] == "matrix"

    with pytest.raises(Forbidden):  # a department user runs no jobs
        jobs.start_job(session, w.member_a, jobs.NOTICES, {"assessment_id": w.assessment.id})
    with pytest.raises(Forbidden):  # the audit log is for auditors and admins
        jobs.start_job(session, w.reviewer, jobs.EXPORT, {"table": "audit"})
    assert jobs.may_request(w.auditor, jobs.EXPORT, {"table": "audit"})
    assert not jobs.may_request(w.scorer, jobs.ARCHIVES)
    with pytest.raises(InvalidValue) as unknown:
        jobs.start_job(session, w.admin, "mine_bitcoin", {})
    assert unknown.value.code == "unknown_kind" and "未知的任务类型" in unknown.value.message
    with pytest.raises(InvalidValue):
        jobs.start_job(session, w.admin, jobs.EXPORT, {"table": "secrets"})
    with pytest.raises(InvalidValue):
        jobs.start_job(session, w.admin, jobs.AUDIT_VERIFY, {"depth": 3})
    with pytest.raises(InvalidValue):
        jobs.start_job(
            session, w.admin, jobs.NOTICES, {"assessment_id": w.assessment.id, "force": "yes"}
        )
    with pytest.raises(NotFound):
        jobs.start_job(session, w.admin, jobs.ARCHIVES, {"assessment_id": 999_999})
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Job)) == 1


def test_jobs_are_visible_to_their_requester_and_admins(session: Session, world: World) -> None:
    w = world
    own = jobs.start_job(
        session, w.reviewer, jobs.EXPORT, {"table": "matrix", "assessment_id": w.assessment.id}
    ).job
    session.commit()
    assert jobs.get_job(session, w.reviewer, own.id).id == own.id
    assert jobs.get_job(session, w.admin, own.id).id == own.id
    with pytest.raises(NotFound):
        jobs.get_job(session, w.verifier, own.id)
    assert [j.id for j in jobs.list_jobs(session, w.verifier)] == []
    assert [j.id for j in jobs.list_jobs(session, w.admin)] == [own.id]


def _write(text: str) -> jobs.Runner:
    def runner(ctx: jobs.JobContext, out: IO[bytes]) -> jobs.Output:
        for n in range(1, 4):
            ctx.progress.report(n, 3, f"第 {n} 步")
        out.write(text.encode())
        return jobs.Output("结果.txt", "text/plain", "完成了")

    return runner


def test_execute_claims_reports_and_stores_the_result(
    engine: Engine, session: Session, world: World, store: ObjectStore
) -> None:
    factory = make_sessionmaker(engine)
    job = _request(session, world)
    status = jobs.execute(
        factory, store, job.id, {jobs.EXPORT: _write("你好")}, progress_interval=0
    )
    assert status == "done"
    session.expire_all()
    row = session.get_one(Job, job.id)
    assert (row.status, row.attempt, row.progress_done, row.progress_total) == ("done", 1, 3, 3)
    assert row.filename == "结果.txt" and row.message == "完成了" and row.size == 6
    assert row.storage_key is not None and row.storage_key.startswith("jobs/")
    _, reader = jobs.open_result(session, store, world.admin, job.id)
    with reader:
        assert reader.read().decode() == "你好"
    # A second message for the same job finds it taken: nothing runs twice.
    assert jobs.execute(factory, store, job.id, {jobs.EXPORT: _write("again")}) is None
    session.expire_all()
    assert session.get_one(Job, job.id).attempt == 1
    # `storage verify` checks a job's file like any referenced object.
    assert verify_objects(session, store).ok


def test_the_same_request_joins_the_unfinished_job(
    engine: Engine, session: Session, world: World
) -> None:
    w = world
    first = _request(session, w)
    again = jobs.start_job(
        session, w.admin, jobs.EXPORT, {"table": "matrix", "assessment_id": w.assessment.id}
    )
    session.commit()
    assert again.existing and again.job.id == first.id
    requested = select(func.count()).where(AuditEvent.action == "job_requested")
    assert session.scalar(requested) == 1  # nothing requested twice, nothing audited twice
    other_params = _request(session, w, table="results", assessment_id=w.assessment.id)
    other_person = jobs.start_job(
        session, w.reviewer, jobs.EXPORT, {"table": "matrix", "assessment_id": w.assessment.id}
    ).job
    assert len({first.id, other_params.id, other_person.id}) == 3
    session.commit()
    # Running still joins; done (or failed) does not: a new run may see new data.
    factory = make_sessionmaker(engine)
    assert jobs.claim(factory, first.id) is not None
    session.expire_all()
    running = jobs.start_job(
        session, w.admin, jobs.EXPORT, {"table": "matrix", "assessment_id": w.assessment.id}
    )
    assert running.existing and running.job.status == "running"
    session.execute(update(Job).where(Job.id == first.id).values(status="done"))
    session.commit()
    assert _request(session, w).id not in (first.id, other_params.id, other_person.id)


def test_two_requests_at_once_make_one_job(engine: Engine, session: Session, world: World) -> None:
    factory = make_sessionmaker(engine)
    admin_id, aid = world.admin.id, world.assessment.id
    session.commit()
    results: list[jobs.Started] = []

    def ask() -> None:
        with factory() as s:
            admin = s.get_one(User, admin_id)
            started = jobs.start_job(
                s, admin, jobs.EXPORT, {"table": "matrix", "assessment_id": aid}
            )
            s.commit()
            results.append(started)

    at_once(ask, ask, ask, ask)
    assert len(results) == 4
    assert len({r.job.id for r in results}) == 1
    assert sorted(r.existing for r in results) == [False, True, True, True]


def test_two_claims_at_once_take_the_job_once(
    engine: Engine, session: Session, world: World
) -> None:
    factory = make_sessionmaker(engine)
    job = _request(session, world)
    results: list[jobs.Claim | None] = []
    barrier = threading.Barrier(4)

    def take() -> None:
        barrier.wait()
        results.append(jobs.claim(factory, job.id))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [r for r in results if r is not None]
    assert len(results) == 4 and len(taken) == 1 and taken[0].attempt == 1


def test_a_failure_is_recorded_in_chinese(
    engine: Engine, session: Session, world: World, store: ObjectStore
) -> None:
    factory = make_sessionmaker(engine)

    def refused(ctx: jobs.JobContext, out: IO[bytes]) -> jobs.Output:
        raise Conflict("尚未设置考核结果通知书的发文字号", code="document_no_required")

    def crashed(ctx: jobs.JobContext, out: IO[bytes]) -> jobs.Output:
        raise RuntimeError("boom")

    first = _request(session, world)
    second = _request(session, world, table="results", assessment_id=world.assessment.id)
    assert jobs.execute(factory, store, first.id, {jobs.EXPORT: refused}) == "failed"
    assert jobs.execute(factory, store, second.id, {jobs.EXPORT: crashed}) == "failed"
    session.expire_all()
    one, two = session.get_one(Job, first.id), session.get_one(Job, second.id)
    assert (one.error_code, one.error) == (
        "document_no_required",
        "尚未设置考核结果通知书的发文字号",
    )
    assert two.error_code == "job_crashed" and "任务执行中发生意外错误" in (two.error or "")
    assert f"任务编号 #{second.id}" in (two.error or "")
    assert "boom" not in (two.error or "")  # no internals for people
    with pytest.raises(Conflict):
        jobs.open_result(session, store, world.admin, one.id)


def test_a_lost_job_is_requeued_after_its_lease_then_failed(
    engine: Engine, session: Session, world: World, store: ObjectStore
) -> None:
    factory = make_sessionmaker(engine)
    job = _request(session, world)
    lease = dt.timedelta(seconds=30)
    first = jobs.claim(factory, job.id)
    assert first is not None
    # Still within its lease: nothing happens.
    assert jobs.sweep(factory, lease=lease).requeued == []
    later = utcnow() + dt.timedelta(seconds=31)
    swept = jobs.sweep(factory, lease=lease, now=later)
    assert swept.requeued == [job.id] and swept.to_enqueue == [job.id]
    # The lost attempt, should it wake up, may no longer report or finish.
    with pytest.raises(jobs.LeaseLost):
        jobs.Progress(factory, first, min_interval=0).report(1, 2)
    assert jobs.execute(factory, store, job.id, {jobs.EXPORT: _write("x")}) == "done"
    session.expire_all()
    assert session.get_one(Job, job.id).attempt == 2

    # A job lost on every attempt is failed, not retried for ever.
    other = _request(session, world)
    now = utcnow()
    for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
        assert jobs.claim(factory, other.id, now=now) is not None
        now += dt.timedelta(seconds=31)
        swept = jobs.sweep(factory, lease=lease, now=now)
        assert (other.id in swept.abandoned) == (attempt == jobs.MAX_ATTEMPTS)
    session.expire_all()
    lost = session.get_one(Job, other.id)
    assert (
        lost.status == "failed" and lost.error_code == "job_lost" and "中断" in (lost.error or "")
    )


def test_sweep_enqueues_queued_jobs_whose_message_may_be_lost(
    engine: Engine, session: Session, world: World
) -> None:
    factory = make_sessionmaker(engine)
    job = _request(session, world)
    lease = dt.timedelta(seconds=30)
    assert jobs.sweep(factory, lease=lease).to_enqueue == []  # just enqueued
    later = utcnow() + dt.timedelta(seconds=31)
    assert jobs.sweep(factory, lease=lease, now=later).to_enqueue == [job.id]
    # Its message was renewed: the next sweep leaves it alone for another lease.
    assert jobs.sweep(factory, lease=lease, now=later).to_enqueue == []


def test_gc_keeps_job_results_and_collects_orphans(
    engine: Engine, session: Session, world: World, store: ObjectStore
) -> None:
    factory = make_sessionmaker(engine)
    job = _request(session, world)
    jobs.execute(factory, store, job.id, {jobs.EXPORT: _write("kept")})
    store.put("jobs/999/1-orphan", io.BytesIO(b"lost"), 4, "text/plain")
    orphans = find_orphans(session, store, dt.timedelta(0), now=utcnow() + dt.timedelta(minutes=1))
    keys = {info.key for info in orphans}
    session.expire_all()
    assert "jobs/999/1-orphan" in keys
    assert session.get_one(Job, job.id).storage_key not in keys
