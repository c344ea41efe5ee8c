"""Synthetic departments for the benchmarks' large worlds, in one SQL statement (PostgreSQL).

Each department is the appearance, in the assessment, of a unit of its own with its name, as
`workflow.setup.install_scheme` makes them for the scheme's departments. They are numbered
after the synthetic departments the assessment has already, at positions from 1001 on.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

FIRST_POSITION = 1000

_ADD = text(
    "WITH start AS (SELECT count(*) AS k FROM departments "
    "  WHERE assessment_id = :a AND position > :first), "
    "new_units AS (INSERT INTO units (status, created_at) "
    "  SELECT 'active', now() FROM generate_series(1, :m) RETURNING id), "
    "numbered AS (SELECT id, (SELECT k FROM start) + row_number() OVER (ORDER BY id) AS n "
    "  FROM new_units), "
    "named AS (INSERT INTO unit_names (unit_id, name, full_name) "
    "  SELECT id, '合成部门' || n, '合成部门' || n || :suffix FROM numbered) "
    "INSERT INTO departments (assessment_id, unit_id, name, full_name, position) "
    "SELECT :a, id, '合成部门' || n, '合成部门' || n || :suffix, :first + n FROM numbered"
)


def add_departments(conn: Connection, assessment_id: int, count: int, suffix: str = "") -> None:
    """Add `count` synthetic departments (合成部门N, full name + `suffix`) to the assessment."""
    if count > 0:
        conn.execute(
            _ADD, {"a": assessment_id, "m": count, "suffix": suffix, "first": FIRST_POSITION}
        )
