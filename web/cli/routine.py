"""`routine reminders YEAR`: who met the monthly or quarterly quota, per period (CSV)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select

from scoring.routine import KIND_LABELS
from storage.local import os_reason
from web.cli.common import cli_unit
from web.cli.files import new_file, overwrite_option, refuse_existing
from web.common.routine_tables import matrix_csv
from workflow.models import Assessment

group = AppGroup("routine", help="Routine assessment: quota matrix and reminder list.")


@group.command("reminders")
@click.argument("year", type=int)
@click.option(
    "--kind",
    type=click.Choice(["monthly_info", "quarterly_case"]),
    default="monthly_info",
    show_default=True,
)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="CSV file (new).")
@overwrite_option
def reminders(year: int, kind: str, out: str | None, overwrite: bool) -> None:
    """Print (or write as CSV with BOM, for Excel/WPS) who met the quota per period."""
    if out:
        refuse_existing(Path(out), overwrite=overwrite)
    with cli_unit() as session:
        assessment = (
            session.execute(
                select(Assessment).where(Assessment.year == year).order_by(Assessment.id.desc())
            )
            .scalars()
            .first()
        )
        if assessment is None:
            raise click.ClickException(f"没有 {year} 年度的考核")
        text = matrix_csv(session, assessment, kind)
    if out:
        try:
            with new_file(Path(out), overwrite=overwrite) as stream:
                stream.write(("\ufeff" + text).encode("utf-8"))
        except OSError as exc:
            raise click.ClickException(f"无法写入 {out}（{os_reason(exc)}）") from exc
        click.echo(f"{KIND_LABELS[kind]}报送情况已写入 {out}")
    else:
        sys.stdout.write(text)


def register(app: Flask) -> None:
    """Attach the `routine` group."""
    app.cli.add_command(group)
