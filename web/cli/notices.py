"""`notices YEAR --out DIR` (= `notices issue`), `notices base FILE`: the Word score notices."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from storage.local import os_reason
from web.cli.common import app_store, cli_unit, latest_assessment
from web.cli.files import new_file
from workflow.errors import DomainError


class NoticesGroup(AppGroup):
    """`notices YEAR --out DIR` is short for `notices issue YEAR --out DIR`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Route a leading year (anything not a subcommand or option) to `issue`."""
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["issue", *args]
        return super().parse_args(ctx, args)


notices_group = NoticesGroup(
    "notices", help="Word score notices: `notices YEAR --out DIR`, `notices base FILE`."
)


@notices_group.command("issue")
@click.argument("year", type=int)
@click.option(
    "--out", "out", required=True, type=click.Path(file_okay=False),
    help="Folder the notices are written into (made when missing).",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Issue new versions even when nothing changed.")
@click.option("--preliminary", is_flag=True, help="Before publication: 初步结果 without a rank.")
def notices_issue(year: int, out: str, force: bool, preliminary: bool) -> None:
    """Write every complete department's notice and the summary; exit 1 if any skipped."""
    from tqdm import tqdm

    from workflow import notices

    store = app_store()
    target = Path(out)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"无法创建输出目录 {out}（{os_reason(exc)}）") from exc
    base_url = str(current_app.config.get("PUBLIC_BASE_URL") or "")
    if not base_url:
        click.echo("未设置 PUBLIC_BASE_URL：通知书只印验证码，不印二维码", err=True)
    with cli_unit() as session:
        assessment = latest_assessment(session, year)
        if assessment.year != year:
            raise click.ClickException(f"没有 {year} 年度的考核方案")
        if not notices.result_document_no(assessment):
            raise click.ClickException(
                "尚未设置考核结果通知书的发文字号（管理员在“考核设置”中填写）"
            )
        if not preliminary and not notices.publication_started(assessment):
            raise click.ClickException(
                "考核结果尚未公示，不能印发载明排名的通知书；可加 --preliminary 印发初步结果"
            )
        if preliminary and notices.publication_started(assessment):
            raise click.ClickException(
                "考核结果已公示，不再印发初步结果；请去掉 --preliminary 印发载明排名的通知书"
            )
        for note in notices.issue_notes(assessment):  # as the portal's issue page warns
            click.echo(f"注意：{note.message}", err=True)
        assessment_id = assessment.id
    bar = tqdm(total=None, desc="考核结果通知书", unit="份", file=sys.stderr)

    def progress(done: int, total: int, _name: str) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        run = notices.issue_for_all_departments(
            current_app.extensions["sessionmaker"],
            store,
            assessment_id,
            None,
            preliminary=preliminary,
            only_if_changed=not force,
            verify_base_url=base_url,
            progress=progress,
        )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        bar.close()
    clashes = []
    try:
        for row in [*run.notices, *([run.summary] if run.summary is not None else [])]:
            content, path = notices.read_object(store, row.storage_key), target / row.filename
            if path.exists() or path.is_symlink():
                # The same version is the same document; another one of that name (a restore
                # rolled the versions back) is never replaced.
                if not path.is_file() or path.read_bytes() != content:
                    clashes.append(row.filename)
                continue
            with new_file(path) as stream:
                stream.write(content)
    except OSError as exc:  # issued and recorded all the same: run it again to write them
        raise click.ClickException(
            f"已印发，但无法写入 {out}（{os_reason(exc)}）；可换目录重新运行写出"
        ) from exc
    if run.issued_nothing:
        click.echo("未印发任何考核结果通知书或汇总表", err=True)
    elif run.summary is None:
        click.echo(f"已写出 {len(run.notices)} 份考核结果通知书到 {target}（汇总表未印发）")
    else:
        click.echo(f"已写出 {len(run.notices)} 份考核结果通知书和{run.summary.filename}到 {target}")
    if run.skipped:
        click.echo(f"跳过 {len(run.skipped)} 个评分未完成的部门：", err=True)
        for line in run.skipped:
            click.echo(f"  {line}", err=True)
    if run.summary_skipped is not None:
        click.echo(f"汇总表未印发：{run.summary_skipped}", err=True)
    if clashes:
        click.echo(
            f"已印发，但 {out} 中已有 {len(clashes)} 个同名而内容不同的文件，未覆盖："
            f"{'、'.join(clashes)}；可换目录重新运行写出",
            err=True,
        )
    if run.skipped or run.summary is None or clashes:
        sys.exit(1)


@notices_group.command("base")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--year", type=int, default=None, help="Assessment year (default: newest).")
def notices_base(file: str, year: int | None) -> None:
    """Set the letterhead .docx that every later notice is rendered on."""
    from workflow import notices

    path = Path(file)
    try:
        with cli_unit() as session, path.open("rb") as stream:
            assessment = latest_assessment(session, year)
            base = notices.set_notice_base(
                session, app_store(), assessment, stream, path.name, None
            )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"通知书信头已更新：{base.filename}（SHA-256 {base.sha256}）")


def register(app: Flask) -> None:
    """Attach the `notices` group."""
    app.cli.add_command(notices_group)
