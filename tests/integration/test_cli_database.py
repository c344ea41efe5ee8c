"""Commands on a database they cannot use: words naming the setting and what to do, exit 1.

Each of these was a SQLAlchemy traceback of sixty lines in English: PostgreSQL stopped, a
database not created yet, a mistyped INSTANCE_DIR (SQLite makes an empty file there), a
forgotten `init`, new code on an old schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

from tests.peers import free_port
from web.app import create_app
from workflow import health
from workflow.db import make_engine, migrate

#: Commands an operator runs, each reading the database first.
COMMANDS = (
    ["audit", "verify"],
    ["storage", "verify"],
    ["storage", "gc"],
    ["users", "reset-password", "admin"],
    ["units", "list"],
)


def _app(url: str, tmp_path: Path) -> Flask:
    return create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "STORAGE": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "ev")},
        }
    )


def _said_in_words(result: Result, *phrases: str) -> None:
    assert result.exit_code == 1, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output
    assert "Traceback" not in result.output and "sqlalchemy" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception


def test_a_database_without_the_apps_tables_is_named_with_init(tmp_path: Path) -> None:
    """A mistyped INSTANCE_DIR: SQLite opens an empty file there, and every command failed on
    its first table. It names the file and says to run init or correct the setting."""
    url = f"sqlite:///{tmp_path / 'typo' / 'fangguanfu.sqlite3'}"
    (tmp_path / "typo").mkdir()
    runner = _app(url, tmp_path).test_cli_runner()
    for args in (*COMMANDS, ["backup", "create", str(tmp_path / "bk")]):
        result = runner.invoke(args=args)
        _said_in_words(result, "数据库中没有本系统的表", "flask --app wsgi init", "typo")
    assert not (tmp_path / "bk").exists()  # the failed backup left nothing behind


def test_a_database_that_does_not_answer_is_named_with_its_url(tmp_path: Path) -> None:
    """PostgreSQL stopped (nothing listens at the address): the setting, its URL without the
    password, and the cause in words; the driver's own sentence follows on one line."""
    port = free_port()
    url = f"postgresql+psycopg://fgf_app:secret-pw@127.0.0.1:{port}/fangguanfu"
    runner = _app(url, tmp_path).test_cli_runner()
    for args in COMMANDS:
        result = runner.invoke(args=args)
        _said_in_words(
            result,
            "无法连接数据库",
            f"DATABASE_URL：postgresql+psycopg://fgf_app:***@127.0.0.1:{port}/fangguanfu",
            "数据库服务没有响应",
        )
        assert "secret-pw" not in result.output


def test_init_into_a_missing_sqlite_folder_is_named(tmp_path: Path) -> None:
    """`init` is explained too, when it cannot connect (the file's folder does not exist)."""
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}"
    result = _app(url, tmp_path).test_cli_runner().invoke(args=["init"])
    _said_in_words(result, "无法连接数据库", "无法打开数据库文件")


def test_new_code_on_an_old_schema_names_both_revisions(tmp_path: Path) -> None:
    """The program was upgraded and `init` not run: the command names the database's revision,
    the program's, and says to back up and run init."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    migrate(engine, "0011_check_points")
    engine.dispose()
    result = _app(url, tmp_path).test_cli_runner().invoke(args=["units", "list"])
    _said_in_words(
        result, "数据库结构版本为 0011_check_points", "backup create", "flask --app wsgi init"
    )


@pytest.mark.parametrize("args", [["audit", "verify"], ["units", "list"]])
def test_a_working_database_is_not_explained_away(app_on_world: Flask, args: list[str]) -> None:
    """On a database at the head revision the commands run as before (nothing intercepted)."""
    result = app_on_world.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output


@pytest.fixture
def app_on_world(db_url: str, tmp_path: Path) -> Flask:
    return _app(db_url, tmp_path)


def test_init_says_what_it_did_to_the_schema(tmp_path: Path) -> None:
    """An upgrade's init printed the schemes and "管理员已存在" and nothing about the schema:
    the operator could not tell whether the database was upgraded. It names the revisions."""
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    migrate(engine, "0011_check_points")
    engine.dispose()
    runner = _app(url, tmp_path).test_cli_runner()
    head = health.migrations_head()
    upgraded = runner.invoke(args=["init"])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"数据库结构：已从 0011_check_points 升级到 {head}" in upgraded.output
    again = runner.invoke(args=["init"])
    assert f"数据库结构：已是最新版本 {head}" in again.output
    fresh = _app(f"sqlite:///{tmp_path / 'new.sqlite3'}", tmp_path).test_cli_runner()
    assert f"数据库结构：已创建（{head}）" in fresh.invoke(args=["init"]).output
