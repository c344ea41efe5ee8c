"""What every command shares: its unit of work, the object store, the assessment of a year."""

from __future__ import annotations

from contextlib import AbstractContextManager

import click
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.base import ObjectStore
from storage.config import store_from_settings
from workflow.db import unit_of_work
from workflow.models import Assessment


def cli_unit() -> AbstractContextManager[Session]:
    """Return the command's unit of work: committed once at the end, rolled back on error."""
    return unit_of_work(current_app.extensions["sessionmaker"])


def app_store() -> ObjectStore:
    """Return the configured object store."""
    return store_from_settings(current_app.config["STORAGE"], current_app.config["INSTANCE_DIR"])


def latest_assessment(session: Session, year: int | None = None) -> Assessment:
    """Return the assessment of a year, or the newest one."""
    stmt = select(Assessment).order_by(Assessment.year.desc(), Assessment.id.desc())
    if year is not None:
        stmt = stmt.where(Assessment.year == year)
    found = session.execute(stmt.limit(1)).scalar_one_or_none()
    if found is None and year is not None:
        raise click.ClickException(f"没有 {year} 年度的考核")
    if found is None:
        raise click.ClickException("没有考核方案：请先运行 flask --app wsgi init")
    return found
