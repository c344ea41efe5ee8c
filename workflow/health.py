"""The health of a running installation: what a monitor and the admins' status page ask.

An office runs this for years, mostly unattended between the assessment's busy weeks. What
stops silently is what hurts: a worker whose scheduler died sends no reminders and runs no
nightly verification, an SMTP server that refuses every message leaves the outbox growing,
a deploy that skipped `init` serves errors on the first new column. Each check here is one
cheap, bounded read, and says in words what is wrong and what to do:

- `database`: one round trip;
- `schema`: the database's Alembic revision is the migrations' head;
- `storage`: the object store answers (`ObjectStore.ping`);
- `queue`: the worker's periodic sweep ran recently (it leaves a heartbeat in the queue's own
  storage every minute: Redis in production, the SQLite file when embedded), so both the
  broker and a worker with its scheduler are alive;
- `outbox`: no message has waited for delivery longer than `OUTBOX_STALE`;
- `audit`: the latest nightly verification passed, and ran in the last two days;
- `calendar`: this year's statutory holidays are known (the holiday package, or the office's
  entries), and from `calendar.NEXT_YEAR_FROM` (1 November, Asia/Shanghai) next year's too:
  the State Council's notice comes out about then, the package learns it only in a later
  release, and deadlines counted in working days across New Year cannot be counted without it.

`database`, `schema` and `storage` are essential: without them no page can be served
(`down`, HTTP 503 on /readyz). The others leave the portal usable (`degraded`, still 200):
the status page and the monitor name them. Nothing here writes domain data; the heartbeat is
the queue's own state, not the assessment's.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from workflow.db import alembic_config, schema_revision
from workflow.jobs import AUDIT_FAILED, AUDIT_VERIFY
from workflow.messages import N_, Np_
from workflow.models import Job, OutboxMessage, utcnow
from workflow.workdays import local_date

log = logging.getLogger(__name__)

#: The worker's sweep runs every minute: three missed ones mean it is not running.
QUEUE_STALE: Final = dt.timedelta(minutes=3)
#: Delivery retries with back-off for about a day; a message waiting this long is stuck.
OUTBOX_STALE: Final = dt.timedelta(minutes=30)
#: The verification runs nightly: older than two days means it did not run last night.
AUDIT_STALE: Final = dt.timedelta(days=2)
#: How the worker is started (the hint of the queue's check).
WORKER_COMMAND: Final = "flask --app wsgi worker"
#: The key of the worker's heartbeat in the queue's storage.
HEARTBEAT_KEY: Final = "worker_heartbeat"
#: The schema check of a database without the app's tables (nothing else is asked of it).
NO_TABLES: Final = N_(
    "数据库中没有本系统的表：尚未初始化，或连接设置（DATABASE_URL、INSTANCE_DIR）指向了另一个数据库"
)

OK: Final = "ok"
DEGRADED: Final = "degraded"
DOWN: Final = "down"
#: A check that cannot be judged yet (no nightly verification has run on a new installation).
UNKNOWN: Final = "unknown"

#: The statuses in words.
STATUS_LABELS: Final = {
    OK: N_("正常"),
    DEGRADED: N_("需要处理"),
    DOWN: N_("故障"),
    UNKNOWN: N_("暂无"),
}

ESSENTIAL: Final = frozenset({"database", "schema", "storage"})

#: The checks' names in words, in the order shown.
LABELS: Final = {
    "database": N_("数据库"),
    "schema": N_("数据库结构版本"),
    "storage": N_("文件存储"),
    "queue": N_("后台任务"),
    "outbox": N_("邮件与消息推送"),
    "audit": N_("每晚审计校验"),
    "calendar": N_("节假日安排"),
}


@dataclass(frozen=True)
class Check:
    """One check's outcome: its status, what it saw, and (when not ok) what to do."""

    name: str
    status: str
    #: What was seen, a catalog template with `params` (shown in the reader's language; `Np_`
    #: when it counts by `n`).
    detail: str
    params: dict[str, Any]
    #: When it happened, for the page: the heartbeat, the oldest message, the verification.
    at: dt.datetime | None = None
    #: The command or setting to look at (`flask --app wsgi worker`, `SMTP_*`): shown as code,
    #: never translated.
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """Tell whether the check passed (an unknown one is not a failure)."""
        return self.status in (OK, UNKNOWN)


@dataclass(frozen=True)
class Health:
    """All checks, and the installation's status: down, degraded or ok."""

    checks: tuple[Check, ...]

    @property
    def status(self) -> str:
        """`down` when an essential check fails, `degraded` when another does, else `ok`."""
        failed = {c.name for c in self.checks if not c.ok}
        if failed & ESSENTIAL:
            return DOWN
        return DEGRADED if failed else OK

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of /readyz: statuses and ages only (no addresses, no errors)."""
        return {
            "status": self.status,
            "checks": {
                c.name: {
                    "status": c.status,
                    **({"at": c.at.isoformat()} if c.at is not None else {}),
                }
                for c in self.checks
            },
        }


@functools.cache
def migrations_head() -> str | None:
    """The newest revision of the shipped migrations (read once per process)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _database(session: Session) -> list[Check]:
    try:
        session.execute(text("SELECT 1")).one()
        revision = schema_revision(session.connection())
    except Exception as exc:
        # One line: /readyz is polled every few seconds during an outage.
        log.error("health: the database does not answer: %s", failure_reason(exc))
        session.rollback()
        fail = N_("数据库无法连接或查询失败，请检查数据库服务和连接设置")
        return [
            Check("database", DOWN, fail, {}, hint="DATABASE_URL"),
            Check("schema", UNKNOWN, N_("数据库无法访问，未能检查"), {}),
        ]
    head = migrations_head()
    if revision is None:
        schema = Check("schema", DOWN, NO_TABLES, {}, hint="flask --app wsgi init")
    elif revision != head:
        schema = Check(
            "schema",
            DOWN,
            N_("数据库结构版本为 %(current)s，程序需要 %(head)s：请运行数据库升级命令"),
            {"current": revision, "head": head or "-"},
            hint="flask --app wsgi init",
        )
    else:
        schema = Check("schema", OK, N_("已是最新版本 %(head)s"), {"head": head})
    return [Check("database", OK, N_("连接正常"), {}), schema]


def failure_reason(exc: BaseException) -> str:
    """The first line of an error in its driver's words (a database error without
    SQLAlchemy's SQL and link), for a one-line log record."""
    reason = str(getattr(exc, "orig", None) or exc).strip()
    return reason.splitlines()[0] if reason else type(exc).__name__


def _storage(store: ObjectStore) -> Check:
    try:
        store.ping()
    except Exception as exc:
        log.error("health: the object store does not answer: %s", failure_reason(exc))
        return Check(
            "storage", DOWN, N_("文件存储无法访问，请检查存储服务和存储设置"), {}, hint="STORAGE_*"
        )
    return Check("storage", OK, N_("访问正常"), {})


def _queue(heartbeat: Callable[[], dt.datetime | None], now: dt.datetime) -> Check:
    try:
        seen = heartbeat()
    except Exception as exc:
        log.error("health: the queue's storage does not answer: %s", failure_reason(exc))
        return Check(
            "queue",
            DEGRADED,
            N_("任务队列无法访问，请检查队列服务和队列设置"),
            {},
            hint="JOBS_BROKER_URL",
        )
    if seen is None:
        return Check(
            "queue",
            DEGRADED,
            N_("尚未收到后台任务进程的运行信号：请启动后台任务进程（含定时任务）"),
            {},
            hint=WORKER_COMMAND,
        )
    if now - seen > QUEUE_STALE:
        return Check(
            "queue",
            DEGRADED,
            N_(
                "后台任务进程已 %(minutes)s 分钟无运行信号：提醒、消息推送和每晚审计校验都已"
                "停止，请检查后台任务进程"
            ),
            {"minutes": int((now - seen).total_seconds() // 60)},
            seen,
            WORKER_COMMAND,
        )
    return Check("queue", OK, N_("后台任务进程运行正常"), {}, seen)


def _outbox(session: Session, now: dt.datetime) -> Check:
    oldest, waiting = session.execute(
        select(func.min(OutboxMessage.created_at), func.count()).where(
            OutboxMessage.status == "pending"
        )
    ).one()
    if oldest is None:
        return Check("outbox", OK, N_("没有待发送的消息"), {})
    if now - oldest > OUTBOX_STALE:
        return Check(
            "outbox",
            DEGRADED,
            Np_(
                "%(n)s 条消息待发送，最早的已等待 %(minutes)s 分钟："
                "请检查邮件服务器设置和后台任务进程"
            ),
            {"n": waiting, "minutes": int((now - oldest).total_seconds() // 60)},
            oldest,
            "SMTP_*",
        )
    return Check("outbox", OK, Np_("%(n)s 条消息待发送"), {"n": waiting}, oldest)


def _audit(session: Session, now: dt.datetime) -> Check:
    last = session.execute(
        select(Job.status, Job.error_code, Job.finished_at)
        .where(Job.kind == AUDIT_VERIFY, Job.status.in_(("done", "failed")))
        .order_by(Job.finished_at.desc(), Job.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return Check("audit", UNKNOWN, N_("尚未运行过审计校验"), {})
    status, code, finished = last
    if status != "done" or code == AUDIT_FAILED:
        detail = (
            N_("最近一次审计校验未通过：请在“后台任务”中查看报告")
            if code == AUDIT_FAILED
            else N_("最近一次审计校验未能完成：请在“后台任务”中查看原因")
        )
        return Check("audit", DEGRADED, detail, {}, finished)
    if finished is not None and now - finished > AUDIT_STALE:
        return Check(
            "audit",
            DEGRADED,
            N_("最近一次审计校验在 %(days)s 天前：每晚的校验没有运行，请检查后台任务进程"),
            {"days": (now - finished).days},
            finished,
            WORKER_COMMAND,
        )
    return Check("audit", OK, N_("最近一次审计校验通过"), {}, finished)


def _calendar(session: Session, now: dt.datetime) -> Check:
    from workflow.calendar import next_year_needed, work_calendar, year_known  # reads items

    calendar = work_calendar(session)
    today = local_date(now)
    if not year_known(calendar, today.year):
        return Check(
            "calendar",
            DEGRADED,
            N_(
                "系统尚未收录 %(year)s 年的法定节假日安排：按工作日计算的期限无法计算，"
                "每日提醒已停止。请在“考核日程”页粘贴国务院办公厅的节假日安排通知录入"
            ),
            {"year": today.year},
        )
    needed = next_year_needed(calendar, today)
    if needed is not None:
        return Check(
            "calendar",
            DEGRADED,
            N_(
                "系统尚未收录 %(year)s 年的法定节假日安排：国务院办公厅的通知发布后，"
                "请在“考核日程”页粘贴录入，跨年的期限才能按工作日计算"
            ),
            {"year": needed},
        )
    return Check("calendar", OK, N_("%(year)s 年的节假日安排已收录"), {"year": today.year})


def check_health(
    session: Session,
    store: ObjectStore,
    heartbeat: Callable[[], dt.datetime | None],
    *,
    now: dt.datetime | None = None,
) -> Health:
    """Run every check (see the module's docstring); never raises for what it checks.

    `heartbeat` reads the worker's last heartbeat from the queue's storage (None: none yet).
    The database's checks come first: when it is down, or has none of the app's tables (never
    initialised, or the settings name another database), the others of its data are not asked.
    """
    now = now or utcnow()
    checks = _database(session)
    checks.append(_storage(store))
    checks.append(_queue(heartbeat, now))
    if checks[0].status == OK and checks[1].detail != NO_TABLES:
        checks.append(_outbox(session, now))
        checks.append(_audit(session, now))
        checks.append(_calendar(session, now))
    return Health(tuple(checks))
