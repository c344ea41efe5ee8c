"""`notify deliver` and `notify remind`: one outbox pass, and the daily reminders, by hand.

The worker runs both on its schedule; these are for a server without one, for catching up
after an outage, and for trying the SMTP settings.
"""

from __future__ import annotations

import datetime as dt

import click
from flask import Flask, current_app
from flask.cli import AppGroup

notify_group = AppGroup("notify", help="Notifications: deliver the outbox, send reminders.")


@notify_group.command("deliver")
def notify_deliver() -> None:
    """Deliver every due e-mail and webhook message now (one pass, with retries recorded)."""
    from workflow.delivery import DeliverySettings, deliver_due

    report = deliver_due(
        current_app.extensions["sessionmaker"],
        settings=DeliverySettings.from_config(current_app.config),
    )
    click.echo(f"已发送 {report.sent} 条，待重试 {report.retried} 条，放弃 {report.dead} 条")


@notify_group.command("remind")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Run the reminders as of 09:00 (Asia/Shanghai) of this day (default: now).",
)
def notify_remind(day: dt.datetime | None) -> None:
    """Write today's reminders and digests (once a day: a second run adds nothing)."""
    from workflow.reminders import send_reminders

    report = send_reminders(
        current_app.extensions["sessionmaker"], day.date() if day is not None else None
    )
    click.echo(f"已生成提醒 {report.notifications} 条，每日汇总 {report.digests} 条")
    for problem in report.skipped_assessments:
        click.echo(f"已跳过：{problem}", err=True)


def register(app: Flask) -> None:
    """Attach the group."""
    app.cli.add_command(notify_group)
