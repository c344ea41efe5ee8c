"""`users create`, `users token`, `users tokens`, `users revoke-token`, `users reset-password`,
`users unlock`."""

from __future__ import annotations

import datetime as dt
import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.cli.common import cli_unit, latest_assessment
from web.common.labels import local_time
from web.limits import SignInHold, lift_sign_in_hold, limits_shared
from workflow.errors import DomainError
from workflow.models import ApiToken, User, utcnow
from workflow.setup import find_department
from workflow.states import ROLE_LABELS
from workflow.users import (
    create_user,
    generate_password,
    get_user,
    issue_token,
    revoke_token,
    revoke_user_tokens,
    set_password,
)

#: Who the command line is in the audit trail (as for the notices and a restore).
CLI_ACTOR = "cli"
#: Without REDIS_URL the sign-in counts live in the web server's memory, out of our reach.
LIMITS_IN_SERVER_MEMORY = (
    "登录限制的计数保存在网站服务进程的内存中（未设置 REDIS_URL），命令行无法解除：请管理员在"
    "门户“用户管理”中打开该用户并点“解除登录限制”，或重启网站服务"
)

#: The roles as `--role` takes them, with the names the office knows them by.
ROLES_HELP = ", ".join(f"{role.value} ({label})" for role, label in ROLE_LABELS.items())

users = AppGroup(
    "users",
    help=(
        "Manage users: create, API tokens (issue, list, revoke), password reset, lifting "
        f"the sign-in limits. Roles: {ROLES_HELP}."
    ),
)


@users.command("create")
@click.argument("name")
@click.option(
    "--role", "roles", multiple=True, required=True,
    help=f"One of: {ROLES_HELP}. Repeat for several.",
)  # fmt: skip
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
        if exc.code == "unknown_role":
            raise click.ClickException(f"{exc.message}（可选：{ROLES_HELP}）") from exc
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


@users.command("tokens")
@click.argument("name")
def users_tokens(name: str) -> None:
    """List the user's API tokens: id, name, issued, expires, status (never the token)."""
    with cli_unit() as session:
        user = _user(session, name)
        rows = session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
        ).all()
        now = utcnow()
        for row in rows:
            click.echo(
                f"#{row.id}\t{row.name or '（无名称）'}\t签发 {local_time(row.created_at)}\t"
                f"到期 {local_time(row.expires_at)}\t{_token_status(row, now)}"
            )
    if not rows:
        click.echo(f"用户 {name} 没有 API 令牌")


@users.command("revoke-token")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1), required=False)
@click.option(
    "--all", "owner", metavar="NAME", default=None,
    help="Revoke every API token of user NAME not revoked yet, instead of one by its id.",
)  # fmt: skip
def users_revoke_token(token_id: int | None, owner: str | None) -> None:
    """Revoke an API token by its id (`users tokens NAME` lists them), or every token of a
    user with `--all NAME`; audited (`token_revoked`, one event a token).

    A token revoked before is left as it was. Disabling the account (the portal's user page)
    revokes its tokens too, and also ends its sessions.
    """
    if token_id is not None and owner is not None:
        raise click.ClickException(
            f"令牌编号 #{token_id} 与 --all {owner} 不能同时使用：吊销一个令牌只给编号，"
            "吊销用户的全部令牌只用 --all 用户名"
        )
    if owner is not None:
        _revoke_all(owner)
        return
    if token_id is None:
        raise click.ClickException(
            "请给出要吊销的令牌编号（users tokens 用户名 可列出），"
            "或用 --all 用户名 吊销该用户的全部令牌"
        )
    with cli_unit() as session:
        try:
            before = session.get(ApiToken, token_id)
            was_revoked = before.revoked_at if before is not None else None
            row = revoke_token(session, token_id, actor=None, actor_name=CLI_ACTOR)
        except DomainError as exc:
            raise click.ClickException(f"{exc.message}：#{token_id}") from exc
        owner = session.get_one(User, row.user_id).username
    if was_revoked is not None:
        click.echo(f"令牌 #{token_id}（用户 {owner}）已于 {local_time(was_revoked)} 吊销，未再改动")
    else:
        click.echo(f"已吊销令牌 #{token_id}（用户 {owner}，{row.name or '无名称'}）")


def _revoke_all(name: str) -> None:
    """`revoke-token --all NAME`: every token of the user not revoked yet, counted and listed."""
    with cli_unit() as session:
        user = _user(session, name)
        rows = revoke_user_tokens(session, user, actor=None, actor_name=CLI_ACTOR)
        listed = "、".join(f"#{row.id}（{row.name or '无名称'}）" for row in rows)
    if rows:
        click.echo(f"已吊销用户 {name} 的 {len(rows)} 个 API 令牌：{listed}")
    else:
        click.echo(f"用户 {name} 没有未吊销的 API 令牌，未作改动")


def _token_status(row: ApiToken, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return f"已吊销（{local_time(row.revoked_at)}）"
    return "已过期" if row.expires_at <= now else "有效"


@users.command("reset-password")
@click.argument("name")
def users_reset_password(name: str) -> None:
    """Give the user a new one-time password (printed once), to be changed at first sign-in.

    The way back in for an administrator who missed the first password. Every session of the
    user ends; the reset is audited (`password_reset`, by the command line) and logged. The
    sign-in limits held against the user are lifted too (`sign_in_unlocked`), where the
    command line can reach them (REDIS_URL).
    """
    password = generate_password()
    lifted = None
    with cli_unit() as session:
        user = _user(session, name)
        try:
            set_password(session, user, password, actor=None, must_change=True)
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        if limits_shared():
            lifted = lift_sign_in_hold(
                session, user, actor=None, actor_name=CLI_ACTOR, password_reset=True
            )
        active = user.is_active
    click.echo(f"已重置用户 {name} 的密码")
    click.echo(f"一次性密码：{password}")
    click.echo("首次登录后须修改密码。")
    if lifted is not None:
        click.echo(f"已一并解除登录限制（{_hold_text(lifted)}）。")
    elif not limits_shared():
        click.echo(f"注意：{LIMITS_IN_SERVER_MEMORY}。")
    if not active:
        click.echo("注意：该账号已停用，须由管理员启用后才能登录。")


@users.command("unlock")
@click.argument("name")
def users_unlock(name: str) -> None:
    """Lift the sign-in limits held against the user (failures, delay, windows); audited.

    The counts are in Redis (REDIS_URL); without it they are in the web server's memory, and
    only the portal's user page (or a restart) can lift them.
    """
    if not limits_shared():
        raise click.ClickException(LIMITS_IN_SERVER_MEMORY)
    with cli_unit() as session:
        user = _user(session, name)
        lifted = lift_sign_in_hold(session, user, actor=None, actor_name=CLI_ACTOR)
    if lifted is None:
        click.echo(f"用户 {name} 当前没有登录限制")
    else:
        click.echo(f"已解除用户 {name} 的登录限制（{_hold_text(lifted)}）")


def _user(session: Session, name: str) -> User:
    user = get_user(session, name)
    if user is None:
        raise click.ClickException(f"用户不存在：{name}")
    return user


def _hold_text(hold: SignInHold) -> str:
    parts = [f"近期登录失败 {hold.failures} 次"]
    if hold.wait_seconds:
        parts.append(f"原需再等 {hold.wait_seconds} 秒")
    return "，".join(parts)


def register(app: Flask) -> None:
    """Attach the `users` group."""
    app.cli.add_command(users)
