"""`audit verify`, `audit checkpoint`: the chain and the tables replayed from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from storage.local import os_reason
from web.cli.common import cli_unit
from web.cli.files import new_file, overwrite_option, refuse_existing
from workflow import audit, reconcile

audit_group = AppGroup("audit", help="Verify and checkpoint the audit chain.")


#: What a checkpoint file should be, told after what is wrong with one.
CHECKPOINT_EXPECTED = "应为 audit checkpoint 写出的文件，或备份目录中的 manifest.json"


def read_checkpoint(name: str) -> dict[str, Any]:
    """Read a checkpoint file (or a backup's manifest.json, which carries one); refuse a bad
    one in one Chinese sentence naming the file and what is wrong with it."""
    path = Path(name)

    def bad(what: str) -> click.ClickException:
        return click.ClickException(f"检查点文件 {name} {what}：{CHECKPOINT_EXPECTED}")

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"无法读取检查点文件 {name}（{os_reason(exc)}）") from exc
    try:
        found = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad("不是 UTF-8 文本") from None
    except json.JSONDecodeError as exc:
        raise bad(f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列有误）") from None
    if isinstance(found, dict) and isinstance(found.get("checkpoint"), dict):
        found = found["checkpoint"]  # a backup's manifest.json carries its checkpoint
    if not isinstance(found, dict) or not {"seq", "hash"} <= found.keys():
        raise bad("中没有检查点（缺少 seq 或 hash）")
    seq, head = found["seq"], found["hash"]
    if isinstance(seq, bool) or not isinstance(seq, int | str) or not str(seq).isdecimal():
        raise bad(f"中的 seq 不是事件序号（{json.dumps(seq, ensure_ascii=False)[:40]}）")
    if not isinstance(head, str) or not head:
        raise bad(f"中的 hash 不是哈希值（{json.dumps(head, ensure_ascii=False)[:40]}）")
    return found


@audit_group.command("verify")
@click.option("--checkpoint", "checkpoint_file", type=click.Path())
def audit_verify(checkpoint_file: str | None) -> None:
    """Exit 0 when the chain holds and the tables match it; 1 naming what does not.

    --checkpoint: a file of `audit checkpoint`, or a backup's manifest.json.
    """
    cp = read_checkpoint(checkpoint_file) if checkpoint_file else None
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
