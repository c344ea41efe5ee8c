"""`backup create`, `backup verify`, `backup restore`: the database and its objects, whole."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from storage.errors import StorageError
from web.cli.common import app_store
from workflow import backup

backup_group = AppGroup("backup", help="Back up, verify and restore the database and objects.")


@backup_group.command("create")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
def backup_create(out_dir: Path) -> None:
    """Write a consistent backup (database snapshot, its objects, manifest) into OUT_DIR,
    a new or empty directory."""
    config = current_app.config
    try:
        manifest = backup.create_backup(
            current_app.extensions["engine"],
            app_store(),
            out_dir,
            dump_url=config.get("MIGRATION_DATABASE_URL") or None,
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    except StorageError as exc:
        raise click.ClickException(f"备份失败，已删除不完整的备份：{exc.message}（{exc}）") from exc
    for line in backup.iter_summary(manifest):
        click.echo(line)
    click.echo(f"备份完成：{out_dir}")


@backup_group.command("verify")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup_verify(directory: Path) -> None:
    """Re-hash every file of a backup against its manifest; exit 1 naming what differs."""
    try:
        manifest, problems = backup.verify_backup(directory)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in backup.iter_summary(manifest):
        click.echo(line)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        click.echo(f"备份校验失败：{len(problems)} 处不符", err=True)
        sys.exit(1)
    click.echo("备份校验通过：数据库文件和所有对象与清单相符")


@backup_group.command("restore")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def backup_restore(directory: Path) -> None:
    """Restore a backup into the configured, empty database and the store, verify the result
    against the backup's checkpoint, and record the restore in the audit trail."""
    extensions = current_app.extensions
    try:
        report = backup.restore_backup(
            directory,
            extensions["engine"],
            extensions["sessionmaker"],
            app_store(),
            owner_url=current_app.config.get("MIGRATION_DATABASE_URL") or None,
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    except StorageError as exc:
        raise click.ClickException(f"恢复失败：{exc.message}（{exc}）") from exc
    for line in backup.iter_summary(report.manifest):
        click.echo(line)
    for note in report.notes:
        click.echo(note)
    click.echo(
        f"已恢复并校验：审计链 {report.events} 个事件止于检查点，"
        f"{report.items} 个事项与审计记录相符，"
        f"{report.objects} 个对象（{report.object_bytes} 字节）完好"
    )
    click.echo(f"恢复已记入审计日志：第 {report.restored_seq} 号事件（{backup.RESTORED_ACTION}）")


def register(app: Flask) -> None:
    """Attach the `backup` group."""
    app.cli.add_command(backup_group)
