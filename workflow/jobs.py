"""Background jobs: requested here, run by a queue worker (web/tasks.py), downloaded when done.

A job is a row of `jobs` (`workflow.models.Job`) before it is a message on the queue:

- **request** (`start_job`): the kind and its parameters are checked, so is who may run it
  (`KINDS`), the row is added `queued` and the request is audited (`job_requested`), all in
  the caller's unit of work. The message goes onto the queue only after that commit
  (`enqueue_after_commit` in the web layer); a lost message is harmless, because the periodic
  sweep (`sweep`) enqueues every queued job whose message is older than the lease again.
- **claim** (`claim`): one conditional UPDATE (`… WHERE status = 'queued'`) takes the row and
  numbers the attempt, so a job enqueued twice runs once and two workers never share one.
- **progress** (`Progress.report`): each report is its own short transaction that also
  renews the lease (`heartbeat_at`); it is written only while the attempt still holds the row.
- **finish** (`execute`): the result file goes into the object store under ``jobs/`` first,
  then the row becomes `done` with its key, name, size and SHA-256; a failure becomes `failed`
  with a message. A message is kept in Chinese and as its msgid and parameters
  (`message_i18n`, `error_i18n`: `workflow.messages.stored`), so the pages show it in the
  language of whoever reads it. `storage gc` keeps every key a job row names and collects the
  others under ``jobs/`` (a worker that died between the two steps).
- **lease** (`sweep`): a running job whose heartbeat is older than the lease was lost with its
  worker; it goes back to `queued` and runs again from the start, up to `MAX_ATTEMPTS` claims,
  then it is `failed` (docs/reliability.md: at least once, never two live attempts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.base import CHUNK_SIZE, ObjectReader, ObjectStore
from storage.errors import StorageUnavailable
from workflow.audit import record_event
from workflow.db import is_database_outage, lock_key, serialise, unit_of_work
from workflow.errors import Conflict, DomainError, Forbidden, InvalidValue, NotFound
from workflow.maintenance import JOB_PREFIX
from workflow.messages import N_, Phrase, stored
from workflow.models import Assessment, Job, User, utcnow
from workflow.notices import require_issuable
from workflow.states import Role

log = logging.getLogger(__name__)

QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
STATUSES: Final = (QUEUED, RUNNING, DONE, FAILED)
STATUS_LABELS: Final = {
    QUEUED: N_("排队中"),
    RUNNING: N_("运行中"),
    DONE: N_("已完成"),
    FAILED: N_("失败"),
}

#: Object keys of job results start with this (`storage gc` lists it beside ``sha256/``).
RESULT_PREFIX: Final = JOB_PREFIX
#: Claims of one job before a lost one is failed instead of queued again.
MAX_ATTEMPTS: Final = 3
#: A running job not heard from for this long was lost with its worker (JOBS_LEASE_SECONDS).
DEFAULT_LEASE: Final = dt.timedelta(minutes=5)
#: Who requests the nightly verification (no user).
SYSTEM_ACTOR: Final = "system"

NOTICES: Final = "notices"
ARCHIVES: Final = "archives"
EXPORT: Final = "export"
AUDIT_VERIFY: Final = "audit_verify"
EXPORT_TABLES: Final = ("results", "matrix", "audit")


@dataclass(frozen=True)
class KindSpec:
    """What a kind of job is called and who may request it."""

    label: str
    roles: tuple[Role, ...]
    needs_assessment: bool


#: Who may run which kind. Notices: those who issue them (the engine checks again per
#: department); archives: admins; exports: office staff and auditors (the audit table:
#: auditors and admins, `_export_roles`); the verification: admins and auditors.
KINDS: Final[dict[str, KindSpec]] = {
    NOTICES: KindSpec(N_("全部部门考核结果通知书"), (Role.ADMIN, Role.SCORER), True),
    ARCHIVES: KindSpec(N_("全部部门材料归档"), (Role.ADMIN,), True),
    EXPORT: KindSpec(
        N_("导出表格"),
        (Role.ADMIN, Role.REVIEWER, Role.VERIFIER, Role.SCORER, Role.AUDITOR),
        False,
    ),
    AUDIT_VERIFY: KindSpec(N_("审计链校验与数据核对"), (Role.ADMIN, Role.AUDITOR), False),
}
EXPORT_LABELS: Final = {
    "results": N_("考核结果"),
    "matrix": N_("进度总览"),
    "audit": N_("审计日志"),
}


def _export_roles(table: str) -> tuple[Role, ...]:
    if table == "audit":
        return (Role.ADMIN, Role.AUDITOR)
    return KINDS[EXPORT].roles


def may_request(user: User, kind: str, params: Mapping[str, Any] | None = None) -> bool:
    """Tell whether the user may request a job of this kind (with these parameters)."""
    spec = KINDS.get(kind)
    if spec is None or not user.is_active:
        return False
    roles = spec.roles
    if kind == EXPORT:
        roles = _export_roles(str((params or {}).get("table", "")))
    return user.has_role(*roles)


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name, False)
    if not isinstance(value, bool):
        raise InvalidValue(
            "参数 %(name)s 须为 true 或 false", code="invalid_value", params={"name": name}
        )
    return value


def check_params(session: Session, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the job's parameters checked and normalised, or refuse them (InvalidValue)."""
    if kind not in KINDS:
        raise InvalidValue("未知的任务类型：%(kind)s", code="unknown_kind", params={"kind": kind})
    allowed = {
        NOTICES: {"assessment_id", "preliminary", "force"},
        ARCHIVES: {"assessment_id"},
        EXPORT: {"assessment_id", "table"},
        AUDIT_VERIFY: set(),
    }[kind]
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidValue(
            "该任务没有参数：%(names)s", code="unknown_field", params={"names": "、".join(unknown)}
        )
    out: dict[str, Any] = {}
    needs_assessment = KINDS[kind].needs_assessment
    if kind == EXPORT:
        table = params.get("table")
        if table not in EXPORT_TABLES:
            raise InvalidValue(
                "导出的表格须为 results、matrix 或 audit", code="invalid_value", params={}
            )
        out["table"] = table
        needs_assessment = table != "audit"
    if needs_assessment:
        aid = params.get("assessment_id")
        if (
            not isinstance(aid, int)
            or isinstance(aid, bool)
            or session.get(Assessment, aid) is None
        ):
            raise NotFound("考核不存在", code="assessment_not_found")
        out["assessment_id"] = aid
    if kind == NOTICES:
        out["preliminary"] = _flag(params, "preliminary")
        out["force"] = _flag(params, "force")
        # What refuses every notice of the year refuses the job now, not when a worker runs
        # it: no result document number, a ranked notice before publication, a preliminary
        # one after it (Conflict). A department not yet scored is skipped by the run instead.
        require_issuable(
            session.get_one(Assessment, out["assessment_id"]), preliminary=out["preliminary"]
        )
    return out


@dataclass(frozen=True)
class Started:
    """What a request for a job gave: the job, and whether it was there already."""

    job: Job
    existing: bool = False


def start_job(
    session: Session,
    actor: User | None,
    kind: str,
    params: Mapping[str, Any],
    *,
    actor_name: str = SYSTEM_ACTOR,
) -> Started:
    """Add a queued job (checked, audited) in the caller's unit of work; enqueue after commit.

    `actor` None is the system (the nightly verification) or the command line (`actor_name`
    "cli"): no role check, as for every command. The same request again (the same requester,
    kind and parameters) while that job is queued or running gives that job, not a second
    run: a double click, a retried request or a nightly verification that is still waiting
    for a worker. Two such requests at once queue on a lock, so one adds and the other joins.
    """
    if kind not in KINDS:
        raise InvalidValue("未知的任务类型：%(kind)s", code="unknown_kind", params={"kind": kind})
    if actor is not None and not may_request(actor, kind, params):
        raise Forbidden("无权运行此类后台任务", code="forbidden")
    checked = check_params(session, kind, params)
    requester = actor.id if actor is not None else None
    serialise(session, lock_key("job", kind, requester))
    unfinished = session.execute(
        select(Job)
        .where(
            Job.kind == kind,
            Job.status.in_((QUEUED, RUNNING)),
            Job.created_by_id.is_(None) if requester is None else Job.created_by_id == requester,
        )
        .order_by(Job.id)
    ).scalars()
    for job in unfinished:
        if dict(job.params or {}) == checked:
            return Started(job, existing=True)
    now = utcnow()
    job = Job(
        kind=kind,
        params=checked,
        status=QUEUED,
        progress_done=0,
        attempt=0,
        created_by_id=requester,
        created_at=now,
        enqueued_at=now,
    )
    session.add(job)
    session.flush()
    record_event(
        session,
        actor=actor,
        actor_name=actor_name,
        action="job_requested",
        target_type="job",
        target_id=job.id,
        payload={"job_id": job.id, "kind": kind, "params": checked},
    )
    return Started(job)


def is_visible(user: User, job: Job) -> bool:
    """Admins see every job; others the jobs they requested."""
    return user.is_active and (user.has_role(Role.ADMIN) or job.created_by_id == user.id)


def get_job(session: Session, user: User, job_id: int) -> Job:
    """Return a job the user may see, or NotFound (another's job is not there for them)."""
    job = session.get(Job, job_id)
    if job is None or not is_visible(user, job):
        raise NotFound("后台任务不存在", code="job_not_found")
    return job


def list_jobs(
    session: Session, user: User, *, limit: int = 100, before: int | None = None
) -> list[Job]:
    """Return the newest jobs the user may see (older than job `before` when given)."""
    stmt = select(Job).order_by(Job.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(Job.id < before)
    if not user.has_role(Role.ADMIN):
        stmt = stmt.where(Job.created_by_id == user.id)
    return list(session.execute(stmt).scalars())


def open_result(
    session: Session, store: ObjectStore, user: User, job_id: int
) -> tuple[Job, ObjectReader]:
    """Return a finished job and a reader of its file, or refuse (not there, not done)."""
    job = get_job(session, user, job_id)
    if job.status != DONE or job.storage_key is None:
        raise Conflict("任务尚未完成，没有可下载的文件", code="job_not_done")
    return job, store.open(job.storage_key)


# --- The worker's side --------------------------------------------------------------------


class LeaseLost(Exception):
    """This attempt no longer holds the job (its lease ran out and another claim took it)."""


@dataclass(frozen=True)
class Claim:
    """A job taken by one attempt."""

    job_id: int
    attempt: int
    kind: str
    params: dict[str, Any]
    created_by_id: int | None


Factory = Callable[[], Session]


def _unit(factory: Factory) -> AbstractContextManager[Session]:
    return unit_of_work(factory)


def claim(factory: Factory, job_id: int, *, now: dt.datetime | None = None) -> Claim | None:
    """Take a queued job for one attempt; None when it is not queued (taken, done, gone)."""
    now = now or utcnow()
    with _unit(factory) as session:
        taken = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == QUEUED)
            .values(
                status=RUNNING,
                attempt=Job.attempt + 1,
                started_at=now,
                heartbeat_at=now,
                progress_done=0,
                error=None,
                error_i18n=None,
                error_code=None,
            )
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.execute(
            select(Job.attempt, Job.kind, Job.params, Job.created_by_id).where(Job.id == job_id)
        ).one()
    return Claim(job_id, row.attempt, row.kind, dict(row.params or {}), row.created_by_id)


def _held(c: Claim) -> Any:
    return (Job.id == c.job_id, Job.status == RUNNING, Job.attempt == c.attempt)


@dataclass
class Progress:
    """Reports one attempt's progress, each report in its own short transaction."""

    factory: Factory
    claim: Claim
    #: Reports closer together than this are skipped (the last one always goes).
    min_interval: float = 0.5
    _last: float = field(default=0.0, repr=False)

    def report(self, done: int, total: int | None, message: str | None = None) -> None:
        """Write the progress and renew the lease; raise LeaseLost when the job was taken.

        `message` is best a `Phrase` (or a `Term`): the page shows it in the reader's language.
        """
        now_mono = time.monotonic()
        if total is not None and done < total and now_mono - self._last < self.min_interval:
            return
        self._last = now_mono
        with _unit(self.factory) as session:
            result = session.execute(
                update(Job)
                .where(*_held(self.claim))
                .values(
                    progress_done=done,
                    progress_total=total,
                    message=None if message is None else str(message),
                    message_i18n=stored(message),
                    heartbeat_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(self.claim.job_id)


@dataclass(frozen=True)
class Output:
    """What a runner produced: the file written to its stream, and a line for people (a
    `Phrase`: kept with its msgid and parameters, shown in the reader's language)."""

    filename: str
    content_type: str
    message: str
    #: The work ran, but what it found is a problem (an audit verification that did not
    #: pass): the job is done, its file is there, and it is shown as 未通过, not 已完成.
    problem: str | None = None


@dataclass(frozen=True)
class JobContext:
    """What a runner gets: the session factory, the store, its claim and its progress."""

    factory: Factory
    store: ObjectStore
    claim: Claim
    progress: Progress

    def actor(self, session: Session) -> User | None:
        """The user who requested the job (None: the system)."""
        if self.claim.created_by_id is None:
            return None
        return session.get(User, self.claim.created_by_id)


#: Runs one kind of job: writes the file to the stream, reports progress, returns its name.
#: A refusal (`DomainError`) fails the job with its message (kept as its template and
#: parameters, shown in the reader's language).
Runner = Callable[[JobContext, IO[bytes]], Output]


def execute(
    factory: Factory,
    store: ObjectStore,
    job_id: int,
    runners: Mapping[str, Runner],
    *,
    progress_interval: float = 0.5,
) -> str | None:
    """Claim the job, run it and record the outcome; return the final status or None.

    None: the job was not queued (a duplicate message), or this attempt lost its lease.
    """
    taken = claim(factory, job_id)
    if taken is None:
        log.info("job %s is not queued; message ignored", job_id)
        return None
    runner = runners.get(taken.kind)
    progress = Progress(factory, taken, min_interval=progress_interval)
    with tempfile.TemporaryFile(prefix="fgf-job-") as out:
        try:
            if runner is None:
                raise Conflict(
                    "未知的任务类型：%(kind)s", code="unknown_kind", params={"kind": taken.kind}
                )
            output = runner(JobContext(factory, store, taken, progress), out)
            out.flush()
            return _finish(factory, store, taken, out, output)
        except LeaseLost:
            log.warning("job %s attempt %s lost its lease; stopped", job_id, taken.attempt)
            return None
        except DomainError as exc:
            return _fail(factory, taken, exc.code, Phrase(exc.template, exc.params))
        except Exception as exc:
            log.exception("job %s (%s) failed", job_id, taken.kind)  # the detail: here only
            code, message = crash_message(exc, job_id)
            return _fail(factory, taken, code, message)


#: What a job that broke off says, by cause: people read what happened and what to do, with
#: the job's number for the administrator, who finds the exception in the worker's log (it
#: said 任务执行出错（OperationalError）: a class name means nothing to a department).
JOB_DATABASE_DOWN = N_(
    "数据库暂时不可用，任务未能完成。请稍后重新发起；如仍不成功，请联系管理员并告知任务编号 "
    "#%(job)s。"
)
JOB_STORAGE_DOWN = N_(
    "文件存储暂时不可用，任务未能完成。请稍后重新发起；如仍不成功，请联系管理员并告知任务编号 "
    "#%(job)s。"
)
JOB_CRASHED = N_(
    "任务执行中发生意外错误，未能完成。请联系管理员并告知任务编号 #%(job)s，"
    "管理员可据此在服务器日志中查明原因。"
)
#: What a crashed job said before (its exception's class name): kept in the catalog for the
#: rows stored with it.
EARLIER_JOB_MESSAGES = (N_("任务执行出错（%(error)s），请联系管理员"),)


def crash_message(exc: BaseException, job_id: int) -> tuple[str, Phrase]:
    """The error code and the text people read of a job that broke off on `exc`: the
    database or the file store unavailable (try again later), or an unexpected error; never
    the exception itself."""
    if is_database_outage(exc):
        code, template = "database_unavailable", JOB_DATABASE_DOWN
    elif isinstance(exc, StorageUnavailable):
        code, template = "storage_unavailable", JOB_STORAGE_DOWN
    else:
        code, template = "job_crashed", JOB_CRASHED
    return code, Phrase(template, {"job": job_id})


def _finish(
    factory: Factory, store: ObjectStore, c: Claim, out: IO[bytes], output: Output
) -> str | None:
    out.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := out.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    sha256 = digest.hexdigest()
    key = f"{RESULT_PREFIX}{c.job_id}/{c.attempt}-{sha256}"
    out.seek(0)
    store.put(key, out, size, output.content_type)  # the object first, then the row
    with _unit(factory) as session:
        result = session.execute(
            update(Job)
            .where(*_held(c))
            .values(
                status=DONE,
                storage_key=key,
                filename=output.filename,
                size=size,
                sha256=sha256,
                message=str(output.message),
                message_i18n=stored(output.message),
                error_code=output.problem,
                finished_at=utcnow(),
                heartbeat_at=utcnow(),
                progress_done=func.coalesce(Job.progress_total, Job.progress_done),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None  # lost meanwhile: the object is an orphan for `storage gc`
    return DONE


def _fail(factory: Factory, c: Claim, code: str, message: str) -> str | None:
    with _unit(factory) as session:
        result = session.execute(
            update(Job)
            .where(*_held(c))
            .values(
                status=FAILED,
                error_code=code,
                error=str(message),
                error_i18n=stored(message),
                finished_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
    return FAILED


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: jobs given back to the queue, failed for good, to enqueue again."""

    requeued: list[int]
    abandoned: list[int]
    to_enqueue: list[int]


def sweep(
    factory: Factory,
    *,
    lease: dt.timedelta = DEFAULT_LEASE,
    now: dt.datetime | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> SweepResult:
    """Give lost running jobs back to the queue (or fail them) and list queued jobs to enqueue.

    A running job whose heartbeat is older than `lease` lost its worker. A queued job whose
    message is older than `lease` may have lost its message (an enqueue that failed after the
    commit, a broker restarted without its data): its `enqueued_at` is renewed and its id
    returned for the caller to enqueue again. Claims make a duplicate message harmless.
    """
    now = now or utcnow()
    cutoff = now - lease
    requeued: list[int] = []
    abandoned: list[int] = []
    with _unit(factory) as session:
        stale = session.execute(
            select(Job.id, Job.attempt).where(Job.status == RUNNING, Job.heartbeat_at < cutoff)
        ).all()
        for job_id, attempt in stale:
            held = (Job.id == job_id, Job.status == RUNNING, Job.attempt == attempt)
            if attempt >= max_attempts:
                lost = Phrase(
                    N_("任务执行 %(attempts)s 次均中断（工作进程停止），已放弃；请重新发起"),
                    {"attempts": attempt},
                )
                values: dict[str, Any] = {
                    "status": FAILED,
                    "error_code": "job_lost",
                    "error": str(lost),
                    "error_i18n": stored(lost),
                    "finished_at": now,
                }
                target = abandoned
            else:
                values = {"status": QUEUED, "enqueued_at": now - lease - dt.timedelta(seconds=1)}
                target = requeued
            result = session.execute(
                update(Job)
                .where(*held)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                target.append(job_id)
        due = list(
            session.execute(
                select(Job.id).where(Job.status == QUEUED, Job.enqueued_at <= cutoff)
            ).scalars()
        )
        if due:
            session.execute(
                update(Job)
                .where(Job.id.in_(due), Job.status == QUEUED)
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
    if requeued or abandoned:
        log.warning("jobs lost with their worker: requeued %s, failed %s", requeued, abandoned)
    return SweepResult(requeued, abandoned, due)


#: A done job whose result is a problem (`Output.problem`).
NOT_PASSED: Final = N_("未通过")
AUDIT_FAILED: Final = "audit_failed"


def status_label(status: str) -> str:
    """The Chinese word for a status."""
    return STATUS_LABELS.get(status, status)


def shows_problem(job: Job) -> bool:
    """Tell whether a done job found a problem (its list entry reads 未通过, in red)."""
    return job.status == DONE and job.error_code is not None


def kind_label(job: Job) -> str:
    """The Chinese name of a job: its kind, and the table of an export."""
    spec = KINDS.get(job.kind)
    if spec is None:
        return job.kind
    if job.kind == EXPORT:
        return f"{spec.label}：{EXPORT_LABELS.get(str(job.params.get('table')), '')}"
    return spec.label


def percent(job: Job) -> int:
    """Progress in whole percent (100 when done)."""
    if job.status == DONE:
        return 100
    if not job.progress_total:
        return 0
    return min(100, job.progress_done * 100 // job.progress_total)
