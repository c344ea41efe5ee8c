"""`health`: the installation's checks (`workflow.health`), for an operator or a healthcheck."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from web.cli.common import cli_unit
from workflow import health


@click.command("health")
@with_appcontext
@click.option(
    "--worker",
    is_flag=True,
    help="Also fail when the worker's heartbeat is missing or stale (the worker's healthcheck).",
)
def health_cmd(worker: bool) -> None:
    """Print each check; exit 1 when the database, its schema or the store fails.

    With --worker, also when the queue check fails: no worker ran the sweep in three minutes.
    """
    from web.tasks import last_beat

    with cli_unit() as session:
        result = health.check_health(session, current_app.extensions["store"], last_beat)
    for c in result.checks:
        line = f"{health.LABELS[c.name]}：{health.STATUS_LABELS[c.status]}，{c.detail % c.params}"
        if c.hint and not c.ok:
            line += f"（{c.hint}）"
        click.echo(line, err=not c.ok)
    queue = next(c for c in result.checks if c.name == "queue")
    failed = result.status == health.DOWN or (worker and not queue.ok)
    sys.exit(1 if failed else 0)


def register(app: Flask) -> None:
    """Attach `health`."""
    app.cli.add_command(health_cmd)
