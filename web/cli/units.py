"""`units list` and `units change KIND …`: the same as GET /api/v1/units and
POST /api/v1/units/changes (the change is audited as the command line's)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from web.cli.common import cli_unit
from workflow.errors import DomainError
from workflow.units import (
    KIND_LABELS,
    KINDS,
    STATUS_LABELS,
    all_units,
    apply_change,
    find_unit,
    lineages,
)

units = AppGroup("units", help="Assessed units across years and their lineage.")


@units.command("list")
def units_list() -> None:
    """Print every unit: id, status, current name, former names, lineage."""
    with cli_unit() as session:
        graph = lineages(session)
        everything = all_units(session)
        names = {u.id: u.name for u in everything}
        for u in everything:
            line = f"{u.id:>5}  {STATUS_LABELS[u.status]:<4} {u.name}"
            former = [n.name for n in u.names[:-1]]
            if former:
                line += f"（曾用名：{'、'.join(former)}）"
            lin = graph.get(u.id)
            if lin is not None and lin.predecessors:
                line += f"  ← {'、'.join(names[p] for p in lin.predecessors)}"
            if lin is not None and lin.successors:
                line += f"  → {'、'.join(names[p] for p in lin.successors)}"
            click.echo(line)


def _unit_id(session: object, value: str) -> int:
    if value.isdecimal():
        return int(value)
    unit = find_unit(session, value, active_only=True)  # type: ignore[arg-type]
    if unit is None:
        raise click.ClickException(f"找不到单位：{value}")
    return unit.id


@units.command("change")
@click.argument("kind", type=click.Choice(KINDS))
@click.option("--from", "sources", multiple=True, help="A unit (id or name); repeat for several.")
@click.option("--to", "targets", multiple=True, help="A new unit's name; repeat for several.")
@click.option("--effective", "effective_on", required=True, help="Effective date, YYYY-MM-DD.")
@click.option("--document-no", required=True, help="The document behind it (文号).")
@click.option("--reason", required=True, help="Why.")
def units_change(
    kind: str,
    sources: tuple[str, ...],
    targets: tuple[str, ...],
    effective_on: str,
    document_no: str,
    reason: str,
) -> None:
    """Apply a lineage change: create, rename, merge, split or dissolve (audited)."""
    try:
        with cli_unit() as session:
            change = apply_change(
                session,
                kind=kind,
                effective_on=effective_on,
                document_no=document_no,
                reason=reason,
                from_ids=[_unit_id(session, v) for v in sources],
                to=[{"name": t} for t in targets],
                actor=None,
            )
            label = KIND_LABELS[kind]
            made = ", ".join(str(u) for u in change.to_ids)
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"已记录单位调整（{label}）#{change.id}；新单位：{made or '无'}")


def register(app: Flask) -> None:
    """Attach the `units` group."""
    app.cli.add_command(units)
