"""`assessments create`: a new year, the same as POST /api/v1/assessments."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from web.cli.common import cli_unit
from workflow.errors import DomainError
from workflow.schemes import find_scheme, import_file, load_scheme, use_scheme
from workflow.setup import create_assessment
from workflow.units import find_unit

#: A `--scheme` value with one of these endings names a file, never a stored code.
SCHEME_SUFFIXES = (".yaml", ".yml", ".json")

assessments = AppGroup("assessments", help="Assessments: start a new year.")


def _unit_ids(session: Session, values: tuple[str, ...]) -> list[int] | None:
    if not values:
        return None
    ids = []
    for v in values:
        if v.isdecimal():
            ids.append(int(v))
            continue
        unit = find_unit(session, v, active_only=True)
        if unit is None:
            raise click.ClickException(f"找不到单位：{v}")
        ids.append(unit.id)
    return ids


@assessments.command("create")
@click.option("--scheme", "scheme", required=True, help="A scheme file, or a stored code or id.")
@click.option("--year", type=int, required=True, help="The assessment year.")
@click.option("--document-no", required=True, help="The results notice's own 发文字号.")
@click.option("--issuer", default=None, help="The issuing office (default: the scheme's).")
@click.option(
    "--unit", "units", multiple=True, help="A unit (id or name); repeat; default: the proposal."
)
def assessments_create(
    scheme: str, year: int, document_no: str, issuer: str | None, units: tuple[str, ...]
) -> None:
    """Create a year's assessment with one item per mapped unit × indicator (audited)."""
    try:
        with cli_unit() as session:
            path = Path(scheme)
            if path.is_file():  # a scheme file, YAML or JSON (as `schemes import` takes)
                record = import_file(session, path, actor=None).record
            elif path.suffix.lower() in SCHEME_SUFFIXES or path.is_dir():
                raise click.ClickException(f"找不到方案文件：{scheme}")
            else:
                record = find_scheme(session, scheme)
            assessment = create_assessment(
                session,
                load_scheme(session, record.id),
                year=year,
                result_document_no=document_no,
                issuer=issuer,
                unit_ids=_unit_ids(session, units),
                actor=None,
            )
            use_scheme(session, record, assessment, actor=None)
            session.refresh(assessment, ["departments"])
            names = [d.name for d in assessment.departments]
            count = len(names)
            aid, code = assessment.id, assessment.code
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已创建 {year} 年度考核 #{aid}（{code}），被考核单位 {count} 个：")
    click.echo("、".join(names))


def register(app: Flask) -> None:
    """Attach the `assessments` group."""
    app.cli.add_command(assessments)
