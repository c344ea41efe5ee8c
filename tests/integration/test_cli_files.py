"""Files the commands write: an existing one is kept unless --overwrite, a failed write leaves
the old file whole, and what is written is readable by its owner only (it holds evidence and
the audit trail)."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import click
import pytest
from flask import Flask
from sqlalchemy import Engine, func, select

from web.app import create_app
from web.cli.files import free_name, new_file
from workflow.db import make_sessionmaker
from workflow.models import Job

LAST_MONTH = b'{"seq": 1, "hash": "last-month"}'


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Flask:
    flask_app = create_app(
        {
            "DATABASE_URL": db_url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "STORAGE": {"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "ev")},
        }
    )
    assert flask_app.test_cli_runner().invoke(args=["init"]).exit_code == 0
    return flask_app


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(folder: Path) -> list[Path]:
    return list(folder.glob(".*.part"))


@pytest.mark.parametrize(
    "command",
    [
        ["audit", "checkpoint", "--out"],
        ["archive", "2018", "城管局", "--out"],
        ["routine", "reminders", "2018", "--out"],
    ],
    ids=["checkpoint", "archive", "reminders"],
)
def test_an_existing_output_file_is_kept_unless_overwrite(
    app: Flask, tmp_path: Path, command: list[str]
) -> None:
    """Last month's file was replaced without a word; now it is kept and named, and the new
    one, written only with --overwrite, is 0600."""
    runner = app.test_cli_runner()
    out = tmp_path / "last-month.out"
    out.write_bytes(LAST_MONTH)
    refused = runner.invoke(args=[*command, str(out)])
    assert refused.exit_code == 1, refused.output
    assert f"文件已存在：{out}（未覆盖，原文件保留）" in refused.output
    assert "--overwrite" in refused.output and "Traceback" not in refused.output
    assert out.read_bytes() == LAST_MONTH and leftovers(tmp_path) == []
    replaced = runner.invoke(args=[*command, str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert out.read_bytes() != LAST_MONTH and mode(out) == 0o600
    fresh = tmp_path / "fresh.out"
    assert runner.invoke(args=[*command, str(fresh)]).exit_code == 0
    assert mode(fresh) == 0o600 and leftovers(tmp_path) == []
    if command[0] == "audit":
        assert set(json.loads(fresh.read_text("utf-8"))) >= {"seq", "hash"}
    if command[0] == "archive":
        with zipfile.ZipFile(fresh) as archive:
            assert archive.testzip() is None and "manifest.csv" in archive.namelist()


def test_jobs_run_refuses_an_existing_file_before_queuing(
    app: Flask, engine: Engine, tmp_path: Path
) -> None:
    """Found only after an hour's job, the refusal would waste it: it comes first, no job."""
    out = tmp_path / "结果.xlsx"
    out.write_bytes(LAST_MONTH)
    result = app.test_cli_runner().invoke(
        args=["jobs", "run", "export", "--table", "results", "--wait", "--out", str(out),
              "--timeout", "1"]
    )  # fmt: skip
    assert result.exit_code == 1 and "文件已存在" in result.output, result.output
    assert out.read_bytes() == LAST_MONTH
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_jobs_run_notices_refuses_what_the_worker_would_refuse(app: Flask, engine: Engine) -> None:
    """`notices 2018` refused without a 发文字号 at once; `jobs run notices` queued a job that
    could only fail when a worker reached it. Now the request itself is refused, no job."""
    result = app.test_cli_runner().invoke(args=["jobs", "run", "notices", "--year", "2018"])
    assert result.exit_code == 1, result.output
    assert "尚未设置考核结果通知书的发文字号" in result.output and "已排队" not in result.output
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    out = tmp_path / "archive.zip"
    out.write_bytes(LAST_MONTH)
    with pytest.raises(RuntimeError), new_file(out, overwrite=True) as stream:
        stream.write(b"half an archive")
        raise RuntimeError("the store failed half-way")
    assert out.read_bytes() == LAST_MONTH and leftovers(tmp_path) == []


def test_a_file_made_meanwhile_is_kept(tmp_path: Path) -> None:
    """Another run (or person) made the file while this one wrote: theirs stays."""
    out = tmp_path / "cp.json"
    with pytest.raises(click.ClickException, match="文件已存在"), new_file(out) as stream:
        stream.write(b"ours")
        out.write_bytes(b"theirs")
    assert out.read_bytes() == b"theirs" and leftovers(tmp_path) == []


def test_a_taken_name_in_a_folder_gets_a_number(tmp_path: Path) -> None:
    assert free_name(tmp_path, "2018年度考核结果.xlsx") == tmp_path / "2018年度考核结果.xlsx"
    (tmp_path / "2018年度考核结果.xlsx").write_bytes(b"x")
    (tmp_path / "2018年度考核结果 (2).xlsx").write_bytes(b"x")
    assert free_name(tmp_path, "2018年度考核结果.xlsx") == tmp_path / "2018年度考核结果 (3).xlsx"
