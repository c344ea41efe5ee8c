"""`users create`, `users token`."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from web.cli.common import cli_unit, latest_assessment
from workflow.errors import DomainError
from workflow.setup import find_department
from workflow.users import create_user, generate_password, get_user, issue_token

users = AppGroup("users", help="Manage users.")


@users.command("create")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, help="Repeat for several.")
@click.option("--department", default=None, help="Department name or alias.")
@click.option("--year", type=int, default=None, help="Assessment year of the department.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
def users_create(
    name: str, roles: tuple[str, ...], department: str | None, year: int | None,
    password_stdin: bool,
) -> None:  # fmt: skip
    """Create a user with roles (and a department for department users)."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else generate_password()
    try:
        with cli_unit() as session:
            dep = None
            if department:
                assessment = latest_assessment(session, year)
                dep = find_department(session, assessment.id, department)
                if dep is None:
                    raise click.ClickException(f"找不到部门：{department}")
            create_user(
                session, name, roles, department=dep, password=password,
                must_change_password=not password_stdin,
            )  # fmt: skip
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已创建用户 {name}")
    if not password_stdin:
        click.echo(f"一次性密码：{password}")


@users.command("token")
@click.argument("name")
def users_token(name: str) -> None:
    """Print a new API token for the user."""
    with cli_unit() as session:
        user = get_user(session, name)
        if user is None:
            raise click.ClickException(f"用户不存在：{name}")
        try:
            token, _row = issue_token(
                session, user, name="cli", days=current_app.config["TOKEN_DAYS"]
            )
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
    click.echo(token)


def register(app: Flask) -> None:
    """Attach the `users` group."""
    app.cli.add_command(users)
