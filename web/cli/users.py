"""`users create`, `users token`, `users reset-password`."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from web.cli.common import cli_unit, latest_assessment
from workflow.errors import DomainError
from workflow.setup import find_department
from workflow.users import (
    create_user,
    generate_password,
    get_user,
    issue_token,
    set_password,
)

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


@users.command("reset-password")
@click.argument("name")
def users_reset_password(name: str) -> None:
    """Give the user a new one-time password (printed once), to be changed at first sign-in.

    The way back in for an administrator who missed the first password. Every session of the
    user ends; the reset is audited (`password_reset`, by the command line) and logged.
    """
    password = generate_password()
    with cli_unit() as session:
        user = get_user(session, name)
        if user is None:
            raise click.ClickException(f"用户不存在：{name}")
        try:
            set_password(session, user, password, actor=None, must_change=True)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        active = user.is_active
    click.echo(f"已重置用户 {name} 的密码")
    click.echo(f"一次性密码：{password}")
    click.echo("首次登录后须修改密码。")
    if not active:
        click.echo("注意：该账号已停用，须由管理员启用后才能登录。")


def register(app: Flask) -> None:
    """Attach the `users` group."""
    app.cli.add_command(users)
