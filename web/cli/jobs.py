"""`worker` (the queue consumer, with the periodic tasks), `jobs run KIND`, `jobs list`."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from storage.errors import StorageError
from storage.local import os_reason
from web.cli.common import app_store, cli_unit, latest_assessment
from web.cli.files import free_name, new_file, overwrite_option, refuse_existing
from workflow import jobs
from workflow.errors import DomainError
from workflow.models import Job

jobs_group = AppGroup("jobs", help="Background jobs: run one, list them.")


@click.command("worker")
@with_appcontext
@click.option("--workers", type=click.IntRange(1, 32), default=None, help="Default: JOBS_WORKERS.")
@click.option("--no-periodic", is_flag=True, help="Run queued jobs only, no schedule.")
def worker_cmd(workers: int | None, no_periodic: bool) -> None:
    """Run the queue consumer: jobs, and every minute the sweep and the outbox delivery."""
    from huey.consumer import Consumer

    from web.tasks import get_queue

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    queue = get_queue()
    consumer = Consumer(
        queue.huey,
        workers=workers or int(current_app.config["JOBS_WORKERS"]),
        periodic=not no_periodic,
        worker_type="thread",
        initial_delay=0.1,
        max_delay=1.0,
        # SIGTERM (docker stop, `make run` ending) lets running jobs finish; SIGINT stops now.
        # A job stopped half-way stays `running` until its lease ends, then runs again.
        graceful_signal="TERM",
    )
    broker = current_app.config["JOBS_BROKER_URL"] or "SQLite"
    click.echo(f"后台任务进程已启动（队列：{broker.split('@')[-1]}），Ctrl+C 停止", err=True)
    consumer.run()


def _params(
    kind: str, year: int | None, table: str | None, preliminary: bool, force: bool
) -> dict[str, object]:
    params: dict[str, object] = {}
    if kind in (jobs.NOTICES, jobs.ARCHIVES) or (kind == jobs.EXPORT and table != "audit"):
        with cli_unit() as session:
            params["assessment_id"] = latest_assessment(session, year).id
    if kind == jobs.EXPORT:
        params["table"] = table
    if kind == jobs.NOTICES:
        params["preliminary"] = preliminary
        params["force"] = force
    return params


@jobs_group.command("run")
@click.argument("kind", type=click.Choice(sorted(jobs.KINDS)))
@click.option("--year", type=int, default=None, help="Assessment year (default: newest).")
@click.option("--table", type=click.Choice(jobs.EXPORT_TABLES), help="For `export`.")
@click.option("--preliminary", is_flag=True, help="Notices before publication: 初步结果.")
@click.option("--force", is_flag=True, help="Notices: issue new versions even when unchanged.")
@click.option("--wait", is_flag=True, help="Show the progress, then write the file.")
@click.option(
    "--out",
    type=click.Path(),
    help="With --wait: a new file, or a folder (default: here; a taken name gets ' (2)').",
)
@overwrite_option
@click.option("--timeout", type=float, default=3600, show_default=True, help="With --wait.")
def jobs_run(
    kind: str,
    year: int | None,
    table: str | None,
    preliminary: bool,
    force: bool,
    wait: bool,
    out: str | None,
    overwrite: bool,
    timeout: float,
) -> None:
    """Queue a job (a worker runs it); with --wait follow it and write its file (0600)."""
    from web.tasks import enqueue_after_commit, get_queue

    folder = Path(out) if out else Path.cwd()
    if wait and not folder.is_dir():  # a file named by the operator: refused before any work
        refuse_existing(folder, overwrite=overwrite)
    queue = get_queue()
    try:
        with cli_unit() as session:
            started = jobs.start_job(
                session,
                None,
                kind,
                _params(kind, year, table, preliminary, force),
                actor_name="cli",
            )
            if not started.existing:
                enqueue_after_commit(session, started.job.id, queue)
            job_id, status = started.job.id, started.job.status
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    if started.existing:
        click.echo(
            f"相同的后台任务 #{job_id} 尚未完成（{jobs.status_label(status)}），未重复发起"
            f"（{jobs.KINDS[kind].label}）"
        )
    else:
        click.echo(f"后台任务 #{job_id} 已排队（{jobs.KINDS[kind].label}）")
    if not wait:
        return
    row = _follow(job_id, timeout)
    if row.status == jobs.FAILED:
        raise click.ClickException(f"后台任务 #{job_id} 失败：{row.error}")
    assert row.storage_key is not None and row.filename is not None
    target = folder
    if folder.is_dir():  # the job's own file name: never over a file already there
        target = folder / row.filename if overwrite else free_name(folder, row.filename)
    try:
        with (
            app_store().open(row.storage_key) as reader,
            new_file(target, overwrite=overwrite) as stream,
        ):
            for chunk in reader.iter_chunks():
                stream.write(chunk)
    except (OSError, StorageError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else exc.message
        raise click.ClickException(
            f"后台任务 #{job_id} 已完成，但无法写入 {target}（{reason}）；"
            "结果文件可在门户的“后台任务”页下载"
        ) from exc
    click.echo(f"{row.message or '已完成'} → {target}（{row.size} 字节）")


def _follow(job_id: int, timeout: float) -> Job:
    """Poll the job's row with a progress bar until it is done or failed."""
    from tqdm import tqdm

    factory = current_app.extensions["sessionmaker"]
    deadline = time.monotonic() + timeout
    with tqdm(total=None, desc=f"任务 #{job_id}", unit="项", file=sys.stderr) as bar:
        while True:
            with factory() as session:
                row = session.get_one(Job, job_id)
            if row.progress_total is not None:
                bar.total = row.progress_total
            bar.update(row.progress_done - bar.n)
            if row.message:
                bar.set_postfix_str(row.message, refresh=False)
            if row.status in (jobs.DONE, jobs.FAILED):
                return row
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"等待超时：后台任务 #{job_id} 仍为“{jobs.status_label(row.status)}”"
                    "（是否启动了 flask --app wsgi worker？）"
                )
            time.sleep(0.5)


@jobs_group.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def jobs_list(limit: int) -> None:
    """The newest jobs: id, kind, status, progress, file or error."""
    from sqlalchemy import select

    with cli_unit() as session:
        rows = list(session.execute(select(Job).order_by(Job.id.desc()).limit(limit)).scalars())
        for row in rows:
            progress = f"{row.progress_done}/{row.progress_total or '?'}"
            tail = row.filename or row.error or row.message or ""
            click.echo(
                f"#{row.id}\t{jobs.kind_label(row)}\t{jobs.status_label(row.status)}\t"
                f"{progress}\t{row.created_at:%Y-%m-%d %H:%M}\t{tail}"
            )
    if not rows:
        click.echo("还没有后台任务")


def register(app: Flask) -> None:
    """Attach `worker` and the `jobs` group."""
    app.cli.add_command(worker_cmd)
    app.cli.add_command(jobs_group)
