"""A command that meets a database it cannot use says why in words, not with a traceback.

The mistakes an operator makes (PostgreSQL stopped, a database not created yet, a mistyped
`INSTANCE_DIR` or `DATABASE_URL` — SQLite then makes an empty file there —, a forgotten
`init`, new code on an old schema) all surface as a SQLAlchemy error somewhere inside the
command. When one escapes, the database is looked at once more and the command ends with a
`ClickException` naming the setting, its URL (password hidden) and what to do; an error the
look cannot explain is raised as it was.
"""

from __future__ import annotations

import functools
from typing import Any

import click
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import current_app
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError

from workflow.db import alembic_config, make_engine, schema_revision
from workflow.health import failure_reason

#: The errors a missing, unreachable or unmigrated database raises.
DATABASE_ERRORS = (OperationalError, ProgrammingError, InterfaceError)
_GUARDED = "_database_errors_explained"


def guard_commands(command: click.Command) -> None:
    """Make every command under `command` explain the database errors it ends with.

    `init` creates and migrates the schema itself: for it only a failed connection is
    explained (a migration that fails is not "a database to migrate").
    """
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            guard_commands(sub)
    callback = command.callback
    schema = command.name != "init"
    if callback is None or getattr(callback, _GUARDED, False):
        return

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except DATABASE_ERRORS as exc:
            explanation = explain_database_error(exc, schema=schema)
            if explanation is None:
                raise
            raise click.ClickException(explanation) from exc

    setattr(run, _GUARDED, True)
    command.callback = run


def explain_database_error(exc: BaseException, *, schema: bool = True) -> str | None:
    """Say what is wrong with the configured database(s), or None when nothing is.

    A database that cannot be reached is always named; with `schema`, also one without the
    app's tables (when a table was missing) and one whose schema is not this program's.
    """
    config = current_app.config
    engine: Engine = current_app.extensions["engine"]
    urls = [("DATABASE_URL", engine.url.render_as_string(hide_password=False))]
    owner = config.get("MIGRATION_DATABASE_URL") or ""
    if owner and make_url(owner).username != engine.url.username:
        urls.append(("MIGRATION_DATABASE_URL", owner))
    for setting, url in urls:
        problem = _database_problem(setting, url, exc, schema)
        if problem:
            return problem
    return None


def _database_problem(setting: str, url: str, exc: BaseException, schema: bool) -> str | None:
    shown = make_url(url).render_as_string(hide_password=True)
    probe = make_engine(url)
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
            revision = schema_revision(conn)
    except DATABASE_ERRORS as probe_exc:
        reason = failure_reason(probe_exc)
        cause = _cause(reason, probe)
        return f"无法连接数据库（{setting}：{shown}）：{cause}。\n数据库的回答：{reason}"
    finally:
        probe.dispose()
    if not schema:
        return None
    if revision is None:
        if not _missing_table(exc):
            return None
        return (
            f"数据库中没有本系统的表（{setting}：{shown}）：尚未初始化，"
            "请运行 flask --app wsgi init；如果这里本应已有数据，"
            "请检查 DATABASE_URL 和 INSTANCE_DIR 是否指向了正确的数据库"
            "（恢复备份前不要运行 init）"
        )
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    if revision == head:
        return None
    try:
        known = script.get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        return (
            f"数据库结构版本 {revision} 比本程序新（本程序最高为 {head}；{setting}：{shown}）："
            "请使用不早于数据库的程序版本"
        )
    return (
        f"数据库结构版本为 {revision}，本程序需要 {head}（{setting}：{shown}）：程序已升级而数据库"
        f"还没有；请先备份（flask --app wsgi backup create 目录），再运行 flask --app wsgi init "
        f"升级数据库。\n数据库的回答：{failure_reason(exc)}"
    )


def _missing_table(exc: BaseException) -> bool:
    """Whether the error is a table the database does not have (SQLite, PostgreSQL)."""
    reason = failure_reason(exc).lower()
    return "no such table" in reason or ("relation" in reason and "does not exist" in reason)


def _cause(reason: str, engine: Engine) -> str:
    """The likely cause of a failed connection, in words."""
    lowered = reason.lower()
    database = engine.url.database
    if engine.dialect.name == "sqlite":
        return f"无法打开数据库文件 {database}：所在目录不存在或没有读写权限"
    if "database" in lowered and "does not exist" in lowered:
        return (
            f"数据库 {database} 不存在：请先创建它（createdb -O 所有者角色 {database}），"
            "或改正连接设置中的数据库名"
        )
    if "role" in lowered and "does not exist" in lowered:
        return (
            "数据库中没有这个账号：请用 flask --app wsgi init --create-roles 创建"
            "（恢复备份前用 init --create-roles --roles-only），或改正用户名"
        )
    if "password" in lowered or "authentication" in lowered:
        return "账号或密码不对：请核对连接设置中的用户名和密码"
    return "数据库服务没有响应：请检查数据库是否在运行，以及地址和端口是否正确"
