"""The job queue (Huey): its storage, the tasks, the periodic schedule and the job runners.

Huey keeps its queue in Redis when ``JOBS_BROKER_URL`` is a ``redis://`` URL (production:
the compose `worker` service) and in a SQLite file under INSTANCE_DIR otherwise (embedded:
``make run`` starts a consumer beside the web server). The queue only carries job ids: the
`jobs` table is the truth (workflow/jobs.py), so a lost or duplicated message costs nothing.

Tasks and their periodic schedule:

- ``run_job(job_id)``: claims the job and runs it (``RUNNERS``: notices for every department,
  archives of every department, exports, the audit verification);
- every minute: ``sweep`` (lost jobs back to the queue, queued jobs enqueued again; then the
  worker's heartbeat, ``beat``, which `workflow.health` reads; each consumer also beats once
  as it starts) and the outbox delivery (``workflow.delivery.deliver_due``), which also runs
  at once after every commit that wrote outbox rows (``deliver_now``, through
  ``workflow.notify.on_outbox_commit``);
- daily at ``REMINDERS_AT`` Asia/Shanghai: ``workflow.reminders.send_reminders``;
- nightly at ``AUDIT_VERIFY_AT`` Asia/Shanghai: an ``audit_verify`` job, which alerts the
  admins when the chain or the tables do not hold (``workflow.notify.alert_admins``).

Huey's crontab has no time zone, so the daily tasks are matched by ``at_local_time``, which
converts the scheduler's UTC minute to the zone first.

The worker (``flask --app wsgi worker``) builds the Flask app once per process and runs every
task with the app's session factory and object store (its threads share them).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import zipfile
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from flask import Flask, current_app, has_app_context
from flask_babel import force_locale
from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import TaskWrapper
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from web.common.audit_rows import audit_xlsx
from workflow import delivery, health, jobs, notices, notify, reminders
from workflow.archive import write_department_archive
from workflow.db import unit_of_work
from workflow.exports import matrix_table, results_xlsx
from workflow.messages import N_, Lines, Np_, Phrase, Term
from workflow.models import Assessment, Department, utcnow
from workflow.spreadsheets import XLSX_CONTENT_TYPE, xlsx_bytes

log = logging.getLogger(__name__)

QUEUE_NAME = "fangguanfu"
LOCAL_ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
ZIP_CONTENT_TYPE = "application/zip"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"


def at_local_time(hhmm: str, zone: dt.tzinfo = LOCAL_ZONE) -> Callable[[dt.datetime], bool]:
    """A periodic-task test that is true in the minute `hhmm` (e.g. "09:00") of `zone`.

    Huey passes the scheduler's time as a naive UTC datetime (``utc=True``).
    """
    hour, minute = (int(part) for part in hhmm.split(":"))

    def validate(timestamp: dt.datetime) -> bool:
        local = timestamp.replace(tzinfo=dt.UTC).astimezone(zone)
        return (local.hour, local.minute) == (hour, minute)

    return validate


def local_today(now: dt.datetime | None = None) -> dt.date:
    """Today in Asia/Shanghai."""
    return (now or utcnow()).astimezone(LOCAL_ZONE).date()


# --- The runners: what each kind of job does -------------------------------------------------


def _safe_name(text: str) -> str:
    return "".join("_" if ch in '/\\:*?"<>|' else ch for ch in text)


def run_notices(ctx: jobs.JobContext, out: IO[bytes], base_url: str) -> jobs.Output:
    """Notices of every department and the summary, as one ZIP."""
    params = ctx.claim.params
    aid = int(params["assessment_id"])
    with unit_of_work(ctx.factory) as session:
        year = session.get_one(Assessment, aid).year

    def progress(done: int, total: int, name: str) -> None:
        ctx.progress.report(done, total, Phrase(N_("正在印发：%(name)s"), {"name": name}))

    run = notices.issue_for_all_departments(
        ctx.factory,
        ctx.store,
        aid,
        ctx.claim.created_by_id,
        preliminary=bool(params.get("preliminary")),
        only_if_changed=not params.get("force"),
        verify_base_url=base_url,
        progress=progress,
    )
    issued = [*run.notices, *([run.summary] if run.summary is not None else [])]
    not_issued = list(run.skipped)
    if run.summary_skipped is not None:
        not_issued.append(f"汇总表：{run.summary_skipped}")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for row in issued:
            archive.writestr(row.filename, notices.read_object(ctx.store, row.storage_key))
        if not_issued:
            archive.writestr("未印发的部门.txt", "\n".join(not_issued) + "\n")
    return jobs.Output(f"{year}年度考核结果通知书.zip", ZIP_CONTENT_TYPE, notices_outcome(run))


def notices_outcome(run: notices.IssueRun) -> str:
    """Say in one line what the notices job issued, and what not and why (a `Phrase`: the
    page shows it in the reader's language)."""
    message: str
    if run.issued_nothing:
        message = Term(N_("未印发任何考核结果通知书或汇总表"))
    elif run.summary is None:
        message = Phrase(
            Np_("已印发 %(n)s 份考核结果通知书，汇总表未印发（%(reason)s）"),
            {"n": len(run.notices), "reason": run.summary_skipped},
        )
    else:
        message = Phrase(Np_("已印发 %(n)s 份考核结果通知书和汇总表"), {"n": len(run.notices)})
    if run.skipped:
        message = Phrase(
            Np_("%(issued)s；%(n)s 个部门评分未完成，未印发（见压缩包内清单）"),
            {"issued": message, "n": len(run.skipped)},
        )
    return message


#: What a job's line said before its counts took their English forms (it read "department(s),
#: evidence file(s)"): kept in the catalog for the rows stored with it.
EARLIER_JOB_LINES = (N_("已归档 %(departments)s 个部门，共 %(files)s 个材料文件"),)


def run_archives(ctx: jobs.JobContext, out: IO[bytes]) -> jobs.Output:
    """Every department's archive (evidence, manifest, audit events), one ZIP inside another."""
    aid = int(ctx.claim.params["assessment_id"])
    with unit_of_work(ctx.factory) as session:
        year = session.get_one(Assessment, aid).year
        departments = list(
            session.execute(
                select(Department.id, Department.name)
                .where(Department.assessment_id == aid)
                .order_by(Department.position, Department.id)
            ).all()
        )
    total = len(departments)
    files = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as outer:
        for done, (dep_id, name) in enumerate(departments, start=1):
            with tempfile.TemporaryFile(prefix="fgf-archive-") as part:
                with unit_of_work(ctx.factory) as session:
                    summary = write_department_archive(
                        session, ctx.store, session.get_one(Department, dep_id), part
                    )
                files += summary.files
                part.seek(0)
                info = zipfile.ZipInfo(f"{_safe_name(name)}.zip", utcnow().timetuple()[:6])
                with outer.open(info, "w", force_zip64=True) as member:
                    while chunk := part.read(1024 * 1024):
                        member.write(chunk)
            ctx.progress.report(done, total, Phrase(N_("正在归档：%(name)s"), {"name": name}))
    return jobs.Output(
        f"{year}年度全部部门材料归档.zip", ZIP_CONTENT_TYPE, archives_outcome(total, files)
    )


def archives_outcome(departments: int, files: int) -> str:
    """The archives job's line (a `Phrase`): its two counts each take their own English form
    (1 department, 12 evidence files; it read "department(s), evidence file(s)")."""
    return Phrase(
        Np_("已归档 %(n)s 个部门，%(files)s"),
        {"n": departments, "files": Phrase(Np_("共 %(n)s 个材料文件"), {"n": files})},
    )


def run_export(ctx: jobs.JobContext, out: IO[bytes]) -> jobs.Output:
    """A table as .xlsx: results and matrix as the downloads build them, the audit log as the
    audit page's and the API's (`web.common.audit_rows`), in Chinese."""
    table = str(ctx.claim.params["table"])
    ctx.progress.report(0, 1, Term(N_("正在生成表格")))
    name: str
    with unit_of_work(ctx.factory) as session:
        if table == "audit":
            # The page's .xlsx, in Chinese: a worker has no request to take a language from.
            with force_locale("zh"):
                content = audit_xlsx(session, [])
            name = Term(N_("审计日志"))
        else:
            a = session.get_one(Assessment, int(ctx.claim.params["assessment_id"]))
            if table == "results":
                content = results_xlsx(session, a)
                name = Phrase(N_("%(year)s年度考核结果"), {"year": a.year})
            else:
                headers, body = matrix_table(session, a)
                content = xlsx_bytes("进度总览", headers, body, caption=f"{a.title} 进度总览")
                name = Phrase(N_("%(year)s年度进度总览"), {"year": a.year})
    out.write(content)
    ctx.progress.report(1, 1, Term(N_("表格已生成")))
    stamp = dt.datetime.now(LOCAL_ZONE).strftime("%Y%m%d-%H%M%S")
    done = Phrase(N_("已导出%(table)s"), {"table": name})
    return jobs.Output(f"{name}-{stamp}.xlsx", XLSX_CONTENT_TYPE, done)


#: A line under another, two spaces in: a layout, the same in every language (not in the
#: catalog, so it renders as it is).
INDENTED = "  %(line)s"
#: Called with (session, title, body) when the nightly verification finds a problem.
AuditAlert = Callable[[Session, str, str], None]


def alert_admins_hook(session: Session, title: str, body: str) -> None:
    """Tell the admins and auditors the audit verification failed (inbox and their channels,
    `workflow.notify.alert_admins`), and the log."""
    log.error("%s\n%s", title, body)
    notify.alert_admins(session, title, body, dedup=f"audit_verify:{local_today()}")


def run_audit_verify(
    ctx: jobs.JobContext, out: IO[bytes], alert: AuditAlert = alert_admins_hook
) -> jobs.Output:
    """The chain and the tables replayed from it (`audit verify`); a report; alert on failure."""
    from workflow import reconcile

    ctx.progress.report(0, 1, Term(N_("正在校验审计链")))
    with unit_of_work(ctx.factory) as session:
        check = reconcile.check_audit(session)
    chain, tables = check.chain, check.tables
    # The lines are phrases: the file is in Chinese, the job's line and the admins' message
    # are shown in the language of whoever reads them.
    lines: list[str] = []
    if chain.ok:
        lines.append(
            Phrase(
                N_("审计链完整：%(events)s 个事件，链头 #%(seq)s %(hash)s"),
                {"events": chain.events, "seq": chain.head_seq, "hash": chain.head_hash},
            )
        )
    else:
        lines.append(
            Phrase(
                N_("审计链校验失败：第一个异常事件序号 %(seq)s（%(problem)s）"),
                {"seq": chain.first_bad_seq, "problem": chain.problem},
            )
        )
    differences = Phrase(Np_("数据核对发现 %(n)s 处不一致"), {"n": len(tables.differences)})
    if tables.ok:
        lines.append(
            Phrase(
                N_("数据核对一致：%(items)s 个事项按 %(events)s 个事件重放，与现有数据相符"),
                {"items": tables.items, "events": tables.events},
            )
        )
    else:
        lines.append(Phrase(Np_("数据核对发现 %(n)s 处不一致："), {"n": len(tables.differences)}))
        # Each difference a phrase too (it was plain Chinese in the English inbox), indented.
        lines.extend(
            Phrase(INDENTED, {"line": line}) for line in reconcile.iter_descriptions(tables)
        )
    report = Lines([*lines, ""])
    out.write(report.encode("utf-8"))
    if not check.ok:
        with unit_of_work(ctx.factory) as session:
            alert(session, Term(N_("审计校验未通过")), report)
    ctx.progress.report(1, 1, Term(N_("校验完成")))
    stamp = dt.datetime.now(LOCAL_ZONE).strftime("%Y%m%d-%H%M%S")
    message: str
    if check.ok:
        message = Term(N_("审计链完整，数据核对一致"))
    else:
        found = [lines[0]] if not chain.ok else []
        if not tables.ok:
            found.append(differences)
        if len(found) == 2:
            found = [Phrase(N_("%(first)s；%(second)s"), {"first": found[0], "second": found[1]})]
        message = Phrase(
            N_("审计校验未通过，已通知管理员：%(found)s。详见报告文件"), {"found": found[0]}
        )
    problem = None if check.ok else jobs.AUDIT_FAILED
    return jobs.Output(f"审计校验报告-{stamp}.txt", TEXT_CONTENT_TYPE, message, problem)


def runners_for(app: Flask) -> dict[str, jobs.Runner]:
    """The runner of each kind of job, with what they need from the app."""
    base_url = str(app.config.get("PUBLIC_BASE_URL") or "")
    return {
        jobs.NOTICES: lambda ctx, out: run_notices(ctx, out, base_url),
        jobs.ARCHIVES: run_archives,
        jobs.EXPORT: run_export,
        jobs.AUDIT_VERIFY: run_audit_verify,
    }


# --- The queue ---------------------------------------------------------------------------------


def make_huey(broker_url: str, instance_dir: str) -> Huey:
    """Huey on Redis for a ``redis://`` URL, else on a SQLite file under the instance folder."""
    if broker_url:
        return RedisHuey(QUEUE_NAME, url=broker_url, results=False)
    path = Path(instance_dir) / "jobs.sqlite3"
    return SqliteHuey(QUEUE_NAME, filename=str(path), results=False)


@dataclass
class JobQueue:
    """The app's queue: Huey and its tasks, bound to the app's database and store."""

    app: Flask
    huey: Huey
    run_job: TaskWrapper
    sweep: TaskWrapper
    deliver_now: TaskWrapper

    def enqueue(self, job_id: int) -> None:
        """Put a job's message on the queue (the row must be committed)."""
        self.run_job(job_id)


def build_queue(app: Flask) -> JobQueue:
    """Create the app's Huey instance and register the tasks and the periodic schedule."""
    huey = make_huey(app.config["JOBS_BROKER_URL"], app.config["INSTANCE_DIR"])
    lease = dt.timedelta(seconds=float(app.config["JOBS_LEASE_SECONDS"]))
    factory = app.extensions["sessionmaker"]
    store: ObjectStore = app.extensions["store"]
    runners = runners_for(app)

    # Every task runs inside the app's context (the delivery reads its settings from it, and
    # a commit that writes outbox rows wakes the delivery through `get_queue`).
    @huey.task(name="run_job")
    def run_job(job_id: int) -> None:
        with app.app_context():
            jobs.execute(factory, store, job_id, runners)

    @huey.periodic_task(crontab(minute="*"), name="sweep_jobs")
    def sweep() -> None:
        with app.app_context():
            result = jobs.sweep(factory, lease=lease)
        for job_id in result.to_enqueue:
            run_job(job_id)
        beat(huey)

    @huey.on_startup()
    def started() -> None:  # the first heartbeat, before the first minute's sweep
        beat(huey)

    @huey.task(name="deliver_now")
    def deliver_now() -> None:
        with app.app_context():
            delivery.deliver_due(factory)

    @huey.periodic_task(crontab(minute="*"), name="deliver_outbox")
    def deliver_outbox() -> None:
        with app.app_context():
            delivery.deliver_due(factory)

    @huey.periodic_task(at_local_time(app.config["REMINDERS_AT"]), name="send_reminders")
    def send_reminders() -> None:
        with app.app_context():
            reminders.send_reminders(factory, local_today())

    @huey.periodic_task(at_local_time(app.config["AUDIT_VERIFY_AT"]), name="nightly_audit")
    def nightly_audit() -> None:
        with app.app_context(), unit_of_work(factory) as session:
            started = jobs.start_job(session, None, jobs.AUDIT_VERIFY, {})
            if not started.existing:  # last night's is still waiting for a worker
                enqueue_after_commit(session, started.job.id, queue)

    queue = JobQueue(app, huey, run_job, sweep, deliver_now)
    return queue


def beat(huey: Huey, now: dt.datetime | None = None) -> None:
    """Leave the worker's heartbeat in the queue's storage: the scheduler and a consumer ran
    the minute's sweep (`workflow.health`, the `queue` check)."""
    huey.put(health.HEARTBEAT_KEY, (now or utcnow()).isoformat())


def last_beat(app: Flask | None = None) -> dt.datetime | None:
    """The worker's last heartbeat, read without taking it (None: no worker has run yet)."""
    value = get_queue(app).huey.get(health.HEARTBEAT_KEY, peek=True)
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else None


def wake_delivery() -> None:
    """After a commit that wrote outbox rows: deliver now rather than at the next minute."""
    if has_app_context():
        get_queue().deliver_now()


notify.on_outbox_commit(wake_delivery)  # registered once, for every app of the process


def get_queue(app: Flask | None = None) -> JobQueue:
    """The app's queue, built on first use."""
    if app is None or app is current_app:  # the proxy: tasks must hold the app itself
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    assert app is not None
    queue: JobQueue | None = app.extensions.get("jobs")
    if queue is None:
        queue = build_queue(app)
        app.extensions["jobs"] = queue
    return queue


_PENDING = "jobs_to_enqueue"


def enqueue_after_commit(session: Session, job_id: int, queue: JobQueue | None = None) -> None:
    """Enqueue the job once the session's transaction commits; forget it on a rollback.

    A failed enqueue is logged and left to the sweep (the row is committed and queued).
    """
    queue = queue or get_queue()
    pending: list[int] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []

        def _after_commit(s: Session) -> None:
            ids = list(s.info.get(_PENDING) or [])
            s.info[_PENDING] = []
            for one in ids:
                try:
                    queue.enqueue(one)
                except Exception:  # the broker is down: the sweep enqueues it later
                    log.exception("job %s committed but not enqueued; the sweep will", one)

        def _after_rollback(s: Session) -> None:
            s.info[_PENDING] = []

        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", lambda s, _t: _after_rollback(s))
    pending.append(job_id)
