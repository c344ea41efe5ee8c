"""`demo`: users for every role and items in every state (or everything scored)."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.cli.common import app_store, cli_unit, latest_assessment
from workflow.demo import run_demo, run_years_demo
from workflow.errors import DomainError
from workflow.models import Assessment
from workflow.users import get_user


@click.command("demo")
@with_appcontext
@click.option("--password", default="demo-password-2018", show_default=True)
@click.option(
    "--complete", is_flag=True, help="Score every item and publish (for notices) instead."
)
@click.option(
    "--years",
    is_flag=True,
    help="Two years: 2018 scored and published, the 示例 reorganisation, 示例 2019 scored.",
)
def demo_cmd(password: str, complete: bool, years: bool) -> None:
    """Create a demonstration data set: users for every role, items in every state."""
    if years:
        _years(password)
        return
    try:
        with cli_unit() as session:
            assessment = latest_assessment(session)
            admin = get_user(session, "admin")
            result = run_demo(
                session,
                app_store(),
                assessment,
                password=password,
                admin=admin,
                max_size=current_app.config["MAX_UPLOAD_BYTES"],
                complete=complete,
            )
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"演示用户（密码 {password}）：{', '.join(result.users)}")
    for state, count in sorted(result.states.items()):
        click.echo(f"  {state}: {count}")


def _years(password: str) -> None:
    try:
        with cli_unit() as session:
            first = earliest_assessment(session)
            admin = get_user(session, "admin")
            made = run_years_demo(
                session,
                app_store(),
                first,
                password=password,
                admin=admin,
                max_size=current_app.config["MAX_UPLOAD_BYTES"],
            )
            second = (made.second.year, made.second.id, len(made.second.departments))
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"演示用户（密码 {password}）：{', '.join(made.first.users + made.second_users)}")
    click.echo(f"{first.year} 年度：全部评分并公示；示例机构改革 {made.changes} 项调整")
    click.echo(f"{second[0]} 年度（示例）：考核 #{second[1]}，被考核单位 {second[2]} 个，全部评分")


def earliest_assessment(session: Session) -> Assessment:
    """The first year's assessment (the one `init` installed)."""
    found = session.scalars(
        select(Assessment).order_by(Assessment.year, Assessment.id).limit(1)
    ).first()
    if found is None:
        raise click.ClickException("没有考核方案：请先运行 flask --app wsgi init")
    return found


def register(app: Flask) -> None:
    """Attach `demo`."""
    app.cli.add_command(demo_cmd)
