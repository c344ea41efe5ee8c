"""`schemes import FILE`, `schemes list`, `schemes diff ID`: the scheme library from the shell."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from web.cli.common import cli_unit
from workflow.errors import DomainError, InvalidValue
from workflow.schemes import (
    STATUS_TEXT,
    diff_stored,
    find_scheme,
    frozen_ids,
    import_file,
    list_schemes,
    previous_scheme,
)

group = AppGroup("schemes", help="The scheme library: import, list, compare.")

CHANGE_TEXT = {"added": "新增", "removed": "删除", "reweighted": "调整分值", "retitled": "改名"}


@group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(path: Path) -> None:
    """Store a scheme YAML file (checked like the API: every problem by place)."""
    try:
        with cli_unit() as session:
            saved = import_file(session, path, actor=None, origin="cli")
            record = saved.record
            status = STATUS_TEXT[saved.status]
            click.echo(f"{record.code} 第 {record.version} 版（id {record.id}）：{status}")
    except InvalidValue as exc:
        for problem in exc.detail if isinstance(exc.detail, list) else []:
            click.echo(f"  {problem['path']}: {problem['message']}", err=True)
        raise click.ClickException(str(exc)) from None


@group.command("list")
def list_cmd() -> None:
    """List the stored schemes, newest first."""
    with cli_unit() as session:
        rows = list_schemes(session, limit=500)
        frozen = frozen_ids(session, [r.id for r in rows])
        for r in rows:
            marks = ("已冻结" if r.id in frozen else "可修改") + ("，示例" if r.is_example else "")
            click.echo(f"{r.id}\t{r.code}\t第 {r.version} 版\t{r.year}\t{r.title}（{marks}）")


@group.command("diff")
@click.argument("scheme")
@click.option("--against", default=None, help="id or code to compare with (default: previous)")
def diff_cmd(scheme: str, against: str | None) -> None:
    """Show the points added, removed and re-weighted against the previous year or version."""
    with cli_unit() as session:
        try:
            record = find_scheme(session, scheme)
            old = find_scheme(session, against) if against else previous_scheme(session, record)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        if old is None:
            raise click.ClickException("没有可比较的方案")
        click.echo(f"{old.code} 第 {old.version} 版 → {record.code} 第 {record.version} 版")
        for c in diff_stored(session, old, record):
            figures = f"{c.before if c.before is not None else '—'} → "
            figures += f"{c.after if c.after is not None else '—'}"
            click.echo(f"  {CHANGE_TEXT[c.kind]}\t{c.level}\t{c.code}\t{c.title}\t{figures}")


def register(app: Flask) -> None:
    """Attach the `schemes` group."""
    app.cli.add_command(group)
