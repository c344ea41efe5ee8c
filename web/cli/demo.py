"""`demo`: users for every role and items in every state (or everything scored)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from web.cli.common import app_store, cli_unit, latest_assessment
from workflow.demo import run_demo
from workflow.errors import DomainError
from workflow.users import get_user


@click.command("demo")
@with_appcontext
@click.option("--password", default="demo-password-2018", show_default=True)
@click.option(
    "--complete", is_flag=True, help="Score every item and publish (for notices) instead."
)
def demo_cmd(password: str, complete: bool) -> None:
    """Create a demonstration data set: users for every role, items in every state."""
    try:
        with cli_unit() as session:
            assessment = latest_assessment(session)
            admin = get_user(session, "admin")
            result = run_demo(
                session,
                app_store(),
                assessment,
                password=password,
                admin=admin,
                max_size=current_app.config["MAX_UPLOAD_BYTES"],
                complete=complete,
            )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"演示用户（密码 {password}）：{', '.join(result.users)}")
    for state, count in sorted(result.states.items()):
        click.echo(f"  {state}: {count}")


def register(app: Flask) -> None:
    """Attach `demo`."""
    app.cli.add_command(demo_cmd)
