"""`audit verify`, `audit checkpoint`: the chain and the tables replayed from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from web.cli.common import cli_unit
from web.cli.files import new_file, os_reason, overwrite_option, refuse_existing
from workflow import audit, reconcile

audit_group = AppGroup("audit", help="Verify and checkpoint the audit chain.")


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False))
def audit_verify(checkpoint_file: str | None) -> None:
    """Exit 0 when the chain holds and the tables match it; 1 naming what does not.

    --checkpoint: a file of `audit checkpoint`, or a backup's manifest.json.
    """
    cp = None
    if checkpoint_file:
        try:
            cp = json.loads(Path(checkpoint_file).read_text(encoding="utf-8"))
            if isinstance(cp, dict) and isinstance(cp.get("checkpoint"), dict):
                cp = cp["checkpoint"]  # a backup's manifest.json carries its checkpoint
            int(cp["seq"]), str(cp["hash"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"检查点文件无效：{exc}") from exc
    with cli_unit() as session:
        check = reconcile.check_audit(session, cp)
    result, tables = check.chain, check.tables
    if result.ok:
        click.echo(
            f"审计链完整：{result.events} 个事件，链头 #{result.head_seq} {result.head_hash}"
        )
    else:
        click.echo(
            f"审计链校验失败：第一个异常事件序号 {result.first_bad_seq}（{result.problem}）",
            err=True,
        )
    if tables.ok:
        click.echo(
            f"数据核对一致：{tables.items} 个事项按 {tables.events} 个事件重放，与现有数据相符"
        )
    else:
        click.echo(f"数据核对发现 {len(tables.differences)} 处不一致：", err=True)
        for line in reconcile.iter_descriptions(tables):
            click.echo(f"  {line}", err=True)
    if not check.ok:
        sys.exit(1)


@audit_group.command("checkpoint")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False))
@overwrite_option
def audit_checkpoint(out: str, overwrite: bool) -> None:
    """Write the current chain head to a new file (0600), for a later `verify --checkpoint`."""
    target = Path(out)
    refuse_existing(target, overwrite=overwrite)
    with cli_unit() as session:
        cp = audit.checkpoint(session)
    try:
        with new_file(target, overwrite=overwrite) as stream:
            stream.write(json.dumps(cp, ensure_ascii=False, indent=2).encode("utf-8"))
    except OSError as exc:
        raise click.ClickException(f"无法写入检查点文件 {out}（{os_reason(exc)}）") from exc
    click.echo(f"检查点：#{cp['seq']} {cp['hash']} → {out}")


def register(app: Flask) -> None:
    """Attach the `audit` group."""
    app.cli.add_command(audit_group)
