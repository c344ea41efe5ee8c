"""`storage gc`, `storage verify`: orphans, crash leftovers and integrity of the object store."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from storage.errors import StorageError
from web.cli.common import app_store, cli_unit
from workflow import maintenance

storage_group = AppGroup("storage", help="Maintain the object store: orphans, integrity.")


@storage_group.command("gc")
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    default=maintenance.DEFAULT_GRACE.total_seconds() / 3600,
    show_default=True,
    help="Never touch objects younger than this (uploads in flight).",
)
@click.option("--delete", is_flag=True, help="Remove the listed objects.")
def storage_gc(grace_hours: float, delete: bool) -> None:
    """List, then with --delete remove, objects that no row refers to and the temporary
    files of interrupted writes."""
    grace = timedelta(hours=grace_hours)
    try:
        store = app_store()
        with cli_unit() as session:
            if delete:
                orphans = maintenance.delete_orphans(session, store, grace)
                leftovers = maintenance.delete_leftovers(store, grace)
            else:
                orphans = maintenance.find_orphans(session, store, grace)
                leftovers = maintenance.find_leftovers(store, grace)
    except StorageError as exc:
        raise click.ClickException(f"{exc.message}（{exc}）") from exc
    for info in orphans + leftovers:
        click.echo(f"{info.key}\t{info.size}\t{info.modified_at:%Y-%m-%dT%H:%M:%SZ}")
    verb = "已删除" if delete else "发现"
    hint = "" if delete or not (orphans or leftovers) else "；加 --delete 删除"
    total = sum(info.size for info in orphans)
    click.echo(
        f"{verb} {len(orphans)} 个无引用对象（共 {total} 字节，早于 {grace_hours:g} 小时）"
        + ("" if leftovers else hint)
    )
    if leftovers:  # only the local folder has them, and only after a crash
        total = sum(info.size for info in leftovers)
        click.echo(
            f"{verb} {len(leftovers)} 个中断写入留下的临时文件"
            f"（共 {total} 字节，早于 {grace_hours:g} 小时）{hint}"
        )


@storage_group.command("verify")
def storage_verify() -> None:
    """Re-read every referenced object; exit 1 when any is missing or altered."""
    try:
        with cli_unit() as session:
            report = maintenance.verify_objects(session, app_store())
    except StorageError as exc:
        raise click.ClickException(f"{exc.message}（{exc}）") from exc
    for problem in report.problems:
        ids = ",".join(str(i) for i in problem.evidence_ids) or "-"
        others = f"（另见 {', '.join(problem.other_refs)}）" if problem.other_refs else ""
        label = "缺失" if problem.problem == "missing" else "已改动"
        click.echo(f"{label}\t材料 {ids}{others}\t{problem.key}\t{problem.detail}", err=True)
    click.echo(
        f"已校验 {report.checked} 个对象（{report.bytes_read} 字节）："
        f"缺失 {len(report.missing)}，改动 {len(report.altered)}"
    )
    if not report.ok:
        sys.exit(1)


def register(app: Flask) -> None:
    """Attach the `storage` group."""
    app.cli.add_command(storage_group)
