"""`init`: schema (as the owner role when two are configured), shipped schemes, first admin."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import make_url, select

from web.cli.common import cli_unit
from workflow import roles
from workflow.db import make_engine, migrate
from workflow.models import User
from workflow.scheme import load_scheme, shipped_schemes
from workflow.schemes import EXAMPLE_MARK, STATUS_TEXT, import_shipped
from workflow.setup import install_scheme
from workflow.states import Role
from workflow.users import create_user, generate_password


def create_database_roles() -> None:
    """Create or update both roles through the superuser and hand the database to the owner."""
    config = current_app.config
    owner_url = config.get("MIGRATION_DATABASE_URL") or ""
    app_url = current_app.extensions["engine"].url.render_as_string(hide_password=False)
    if not owner_url or not config.get("DATABASE_ADMIN_URL"):
        raise click.ClickException(
            "--create-roles 需要 MIGRATION_DATABASE_URL（所有者）和 DATABASE_ADMIN_URL（超级用户）"
        )
    try:
        for line in roles.create_roles(config["DATABASE_ADMIN_URL"], owner_url, app_url):
            click.echo(f"已就绪：{line}")
    except roles.RoleSetupError as exc:
        raise click.ClickException(str(exc)) from exc


def migrate_database(create_roles: bool) -> None:
    """Migrate as the owner role (when two are configured) and grant the app role its rights."""
    config = current_app.config
    app_engine = current_app.extensions["engine"]
    owner_url = config.get("MIGRATION_DATABASE_URL") or ""
    if create_roles:
        create_database_roles()
    if not owner_url or make_url(owner_url).username == app_engine.url.username:
        before, after = migrate(app_engine)
        click.echo(schema_line(before, after))
    else:
        owner_engine = make_engine(owner_url)
        try:
            before, after = migrate(owner_engine)
            click.echo(schema_line(before, after))
            roles.grant_app_privileges(owner_engine, str(app_engine.url.username))
        finally:
            owner_engine.dispose()
        user = app_engine.url.username
        click.echo(f"数据库权限：{user} 只能读写数据，审计日志只可读取和追加")
    for warning in roles.app_role_warnings(app_engine):
        click.echo(
            f"警告：{warning}，审计触发器可被关闭；请用 init --create-roles 分开两个角色", err=True
        )


def schema_line(before: str | None, after: str | None) -> str:
    """Say what the migration did: created, upgraded from one revision to another, or nothing."""
    if before is None:
        return f"数据库结构：已创建（{after}）"
    if before != after:
        return f"数据库结构：已从 {before} 升级到 {after}"
    return f"数据库结构：已是最新版本 {after}"


@click.command("init")
@with_appcontext
@click.option(
    "--create-roles",
    is_flag=True,
    help="Create the owner and app roles of MIGRATION_DATABASE_URL and DATABASE_URL "
    "through the superuser DATABASE_ADMIN_URL (PostgreSQL).",
)
@click.option(
    "--roles-only",
    is_flag=True,
    help="Only what --create-roles does to the roles and the database's owner: no schema, "
    "no rows (a new server, before `backup restore`).",
)
def init_cmd(create_roles: bool, roles_only: bool) -> None:
    """Create or migrate the schema, load the shipped schemes, create the first admin."""
    if roles_only:
        # A restore needs the roles but an empty database: init's schemes and admin are rows.
        create_database_roles()
        click.echo(
            "只创建了角色，数据库仍是空的：现在可以恢复备份"
            "（flask --app wsgi backup restore 目录）；不恢复时请再运行 flask --app wsgi init"
        )
        return
    migrate_database(create_roles)
    with cli_unit() as session:
        for path in shipped_schemes():
            if EXAMPLE_MARK in path.name:
                continue  # a 示例 scheme is never installed as real rules (only stored)
            a = install_scheme(session, load_scheme(path))
            click.echo(f"考核方案：{a.year} {a.document_no}（{path.name}）")
        for saved in import_shipped(session):
            click.echo(
                f"方案库：{saved.record.code} 第 {saved.record.version} 版"
                f"（{STATUS_TEXT[saved.status]}）"
            )
        has_admin = any(u.has_role(Role.ADMIN) for u in session.execute(select(User)).scalars())
        if not has_admin:
            password = generate_password()
            create_user(
                session,
                "admin",
                ["admin"],
                password=password,
                display_name="系统管理员",
                must_change_password=True,
            )
            click.echo(f"已创建管理员 admin，一次性密码：{password}（首次登录后请修改）")
        else:
            click.echo("管理员已存在。")


def register(app: Flask) -> None:
    """Attach `init`."""
    app.cli.add_command(init_cmd)
