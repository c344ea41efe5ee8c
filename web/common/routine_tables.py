"""The routine quota matrix as a table: the office's reminder list (CSV, .xlsx, pages, CLI)."""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy.orm import Session

from scoring.routine import PeriodCount
from workflow.models import Assessment, utcnow
from workflow.routine import quota_matrix
from workflow.spreadsheets import safe_csv_writer

CELL = {"met": "达标", "late": "达标（含迟报）", "short": "未达标", "missing": "未报送"}


def cell_status(count: PeriodCount) -> str:
    """Classify one department × period: met, met with late records, short, nothing sent."""
    if count.is_missing:
        return "missing"
    if not count.is_met:
        return "short"
    return "late" if count.late else "met"


def quota_table(
    session: Session, assessment: Assessment, kind: str
) -> tuple[list[str], list[list[Any]]]:
    """Return the department × period matrix of a kind: headers and rows (CSV and .xlsx)."""
    rows = quota_matrix(session, assessment, kind, utcnow())
    periods = [c.period for c in rows[0][1]] if rows else []
    headers = ["部门", *periods, "达标期数", "需提醒期间"]
    table: list[list[Any]] = []
    for dep, counts in rows:
        statuses = [cell_status(c) for c in counts]
        remind = [
            c.period for c, s in zip(counts, statuses, strict=True) if s in ("short", "missing")
        ]
        table.append(
            [
                dep.name,
                *(
                    f"{CELL[s]}（{c.accepted}/{c.minimum}）"
                    for c, s in zip(counts, statuses, strict=True)
                ),
                sum(1 for c in counts if c.is_met),
                "、".join(remind),
            ]
        )
    return headers, table


def matrix_csv(session: Session, assessment: Assessment, kind: str) -> str:
    """Return the department × period matrix of a kind as CSV text."""
    headers, rows = quota_table(session, assessment, kind)
    out = io.StringIO()
    writer = safe_csv_writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()
