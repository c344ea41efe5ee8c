"""`archive YEAR DEPARTMENT --out FILE`: a department's evidence, manifest and audit events."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from storage.errors import StorageError
from web.cli.common import app_store, cli_unit, latest_assessment
from workflow.archive import write_department_archive
from workflow.errors import DomainError
from workflow.setup import find_department


@click.command("archive")
@with_appcontext
@click.argument("year", type=int)
@click.argument("department")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
def archive_cmd(year: int, department: str, out: str) -> None:
    """Write one department's evidence, manifest and audit events to a ZIP file."""
    target = Path(out)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with cli_unit() as session:
            assessment = latest_assessment(session, year)
            dep = find_department(session, assessment.id, department)
            if dep is None:
                raise click.ClickException(f"找不到部门：{department}")
            with open(partial, "wb") as stream:
                summary = write_department_archive(session, app_store(), dep, stream)
        os.replace(partial, target)
    except (DomainError, StorageError) as exc:
        raise click.ClickException(f"归档失败：{exc.message}") from exc
    except OSError as exc:
        raise click.ClickException(f"归档失败：无法写入 {out}（{exc.strerror}）") from exc
    finally:
        partial.unlink(missing_ok=True)
    click.echo(
        f"{dep.name}：{summary.files} 个文件（{summary.bytes} 字节），"
        f"{summary.removed} 个已删除材料列入清单，{summary.events} 个审计事件 → {out}"
    )


def register(app: Flask) -> None:
    """Attach `archive`."""
    app.cli.add_command(archive_cmd)
