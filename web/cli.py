"""`flask --app wsgi …` commands: set-up, users, demo, audit verification."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.config import store_from_settings
from workflow import audit
from workflow.db import migrate
from workflow.demo import run_demo
from workflow.errors import DomainError
from workflow.models import Assessment, User
from workflow.scheme import load_scheme, shipped_schemes
from workflow.setup import find_department, install_scheme
from workflow.states import Role
from workflow.users import create_user, generate_password, get_user, issue_token


def cli_session() -> Session:
    """Return a new session on the app's database."""
    session: Session = current_app.extensions["sessionmaker"]()
    return session


def app_store() -> ObjectStore:
    """Return the configured object store."""
    return store_from_settings(current_app.config["STORAGE"], current_app.config["INSTANCE_DIR"])


def latest_assessment(session: Session, year: int | None = None) -> Assessment:
    """Return the assessment of a year, or the newest one."""
    stmt = select(Assessment).order_by(Assessment.year.desc(), Assessment.id.desc())
    if year is not None:
        stmt = stmt.where(Assessment.year == year)
    found = session.execute(stmt.limit(1)).scalar_one_or_none()
    if found is None:
        raise click.ClickException("没有考核方案：请先运行 flask --app wsgi init")
    return found


def register_cli(app: Flask) -> None:
    """Attach the command groups to the app."""

    @app.cli.command("init")
    def init_cmd() -> None:
        """Create or migrate the schema, load the shipped schemes, create the first admin."""
        migrate(current_app.extensions["engine"])
        with cli_session() as session, session.begin():
            for path in shipped_schemes():
                a = install_scheme(session, load_scheme(path))
                click.echo(f"考核方案：{a.year} {a.document_no}（{path.name}）")
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

    users = AppGroup("users", help="Manage users.")
    app.cli.add_command(users)

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
            with cli_session() as session, session.begin():
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
        with cli_session() as session, session.begin():
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

    @app.cli.command("demo")
    @click.option("--password", default="demo-password-2018", show_default=True)
    def demo_cmd(password: str) -> None:
        """Create a demonstration data set: users for every role, items in every state."""
        try:
            with cli_session() as session, session.begin():
                assessment = latest_assessment(session)
                admin = get_user(session, "admin")
                result = run_demo(
                    session,
                    app_store(),
                    assessment,
                    password=password,
                    admin=admin,
                    max_size=current_app.config["MAX_UPLOAD_BYTES"],
                )
        except DomainError as exc:
            raise click.ClickException(exc.message) from exc
        click.echo(f"演示用户（密码 {password}）：{', '.join(result.users)}")
        for state, count in sorted(result.states.items()):
            click.echo(f"  {state}: {count}")

    audit_group = AppGroup("audit", help="Verify and checkpoint the audit chain.")
    app.cli.add_command(audit_group)

    @audit_group.command("verify")
    @click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False))
    def audit_verify(checkpoint_file: str | None) -> None:
        """Exit 0 when the chain holds, 1 with the first bad sequence number when not."""
        cp = None
        if checkpoint_file:
            try:
                cp = json.loads(Path(checkpoint_file).read_text(encoding="utf-8"))
                int(cp["seq"]), str(cp["hash"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise click.ClickException(f"检查点文件无效：{exc}") from exc
        with cli_session() as session:
            result = audit.verify_chain(session, cp)
        if result.ok:
            click.echo(
                f"审计链完整：{result.events} 个事件，链头 #{result.head_seq} {result.head_hash}"
            )
            return
        click.echo(
            f"审计链校验失败：第一个异常事件序号 {result.first_bad_seq}（{result.problem}）",
            err=True,
        )
        sys.exit(1)

    @audit_group.command("checkpoint")
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
    def audit_checkpoint(out: str) -> None:
        """Write the current chain head to a file, for a later `verify --checkpoint`."""
        with cli_session() as session:
            cp = audit.checkpoint(session)
        Path(out).write_text(json.dumps(cp, ensure_ascii=False, indent=2), encoding="utf-8")
        click.echo(f"检查点：#{cp['seq']} {cp['hash']} → {out}")
