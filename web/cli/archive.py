"""`archive YEAR DEPARTMENT --out FILE`: a department's evidence, manifest and audit events."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from storage.errors import StorageError
from storage.local import os_reason
from web.cli.common import app_store, cli_unit, latest_assessment
from web.cli.files import new_file, overwrite_option, refuse_existing
from workflow.archive import write_department_archive
from workflow.errors import DomainError
from workflow.setup import find_department


@click.command("archive")
@with_appcontext
@click.argument("year", type=int)
@click.argument("department")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
@overwrite_option
def archive_cmd(year: int, department: str, out: str, overwrite: bool) -> None:
    """Write one department's evidence, manifest and audit events to a new ZIP file (0600)."""
    target = Path(out)
    refuse_existing(target, overwrite=overwrite)
    try:
        with cli_unit() as session:
            assessment = latest_assessment(session, year)
            dep = find_department(session, assessment.id, department)
            if dep is None:
                raise click.ClickException(f"找不到部门：{department}")
            with new_file(target, overwrite=overwrite) as stream:
                summary = write_department_archive(session, app_store(), dep, stream)
    except (DomainError, StorageError) as exc:
        raise click.ClickException(f"归档失败：{exc.message}") from exc
    except OSError as exc:
        raise click.ClickException(f"归档失败：无法写入 {out}（{os_reason(exc)}）") from exc
    click.echo(
        f"{dep.name}：{summary.files} 个文件（{summary.bytes} 字节），"
        f"{summary.removed} 个已删除材料列入清单，{summary.events} 个审计事件 → {out}"
    )


def register(app: Flask) -> None:
    """Attach `archive`."""
    app.cli.add_command(archive_cmd)
