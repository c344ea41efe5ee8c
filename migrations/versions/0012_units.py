"""Units that outlive years: units, their names over time, aliases, lineage changes.

Every existing department becomes the appearance of a unit: one unit per department name
(the departments of several years with the same name are one unit), named and aliased as its
newest department. Users move from a department row to its unit (`users.unit_id`) and keep
their accounts and tokens. Departments, items, notices and audit events are not touched, so
the audit chain and reconciliation stay as they were.

Revision ID: 0012_units
Revises: 0011_check_points
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_units"
down_revision = "0011_check_points"
branch_labels = None
depends_on = None


def _create_tables() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "unit_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("unit_names") as batch_op:
        batch_op.create_index("ix_unit_names_unit_id", ["unit_id"], unique=False)
        batch_op.create_index("ix_unit_names_name", ["name"], unique=False)
    op.create_table(
        "unit_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("unit_id", "alias"),
    )
    with op.batch_alter_table("unit_aliases") as batch_op:
        batch_op.create_index("ix_unit_aliases_unit_id", ["unit_id"], unique=False)
    op.create_table(
        "unit_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("document_no", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "unit_change_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["change_id"], ["unit_changes.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("change_id", "unit_id", "role"),
    )
    with op.batch_alter_table("unit_change_units") as batch_op:
        batch_op.create_index("ix_unit_change_units_change_id", ["change_id"], unique=False)
        batch_op.create_index("ix_unit_change_units_unit_id", ["unit_id"], unique=False)


def _migrate_rows() -> None:
    """One unit per department name; departments and users pointed at it."""
    conn = op.get_bind()
    deps = conn.execute(
        sa.text("SELECT id, name, full_name FROM departments ORDER BY id")
    ).all()
    newest: dict[str, tuple[int, str]] = {}
    order: list[str] = []
    for dep_id, name, full_name in deps:
        if name not in newest:
            order.append(name)
        newest[name] = (dep_id, full_name)
    now = sa.func.now() if conn.dialect.name == "postgresql" else sa.func.current_timestamp()
    units_t = sa.table(
        "units", sa.column("id"), sa.column("status"), sa.column("created_at")
    )
    for name in order:
        dep_id, full_name = newest[name]
        unit_id = conn.execute(
            units_t.insert().values(status="active", created_at=now).returning(units_t.c.id)
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO unit_names (unit_id, name, full_name) VALUES (:u, :n, :f)"
            ),
            {"u": unit_id, "n": name, "f": full_name},
        )
        conn.execute(
            sa.text(
                "INSERT INTO unit_aliases (unit_id, alias, kind) SELECT :u, alias, kind"
                " FROM department_aliases WHERE department_id = :d"
            ),
            {"u": unit_id, "d": dep_id},
        )
        conn.execute(
            sa.text("UPDATE departments SET unit_id = :u WHERE name = :n"),
            {"u": unit_id, "n": name},
        )
    conn.execute(
        sa.text(
            "UPDATE users SET unit_id = (SELECT d.unit_id FROM departments d"
            " WHERE d.id = users.department_id) WHERE department_id IS NOT NULL"
        )
    )


def upgrade() -> None:
    _create_tables()
    with op.batch_alter_table("departments") as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
    _migrate_rows()
    with op.batch_alter_table("departments") as batch_op:
        batch_op.alter_column("unit_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key("fk_departments_unit_id_units", "units", ["unit_id"], ["id"])
        batch_op.create_unique_constraint(
            "uq_departments_assessment_id_unit_id", ["assessment_id", "unit_id"]
        )
        batch_op.create_index("ix_departments_unit_id", ["unit_id"], unique=False)
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_index("ix_users_department_id")
        batch_op.drop_column("department_id")
        batch_op.create_foreign_key("fk_users_unit_id_units", "units", ["unit_id"], ["id"])
        batch_op.create_index("ix_users_unit_id", ["unit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("department_id", sa.Integer(), nullable=True))
    # A user returns to their unit's newest department.
    op.execute(
        "UPDATE users SET department_id = (SELECT max(d.id) FROM departments d"
        " WHERE d.unit_id = users.unit_id) WHERE unit_id IS NOT NULL"
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_index("ix_users_unit_id")
        batch_op.drop_constraint("fk_users_unit_id_units", type_="foreignkey")
        batch_op.drop_column("unit_id")
        batch_op.create_foreign_key(
            "users_department_id_fkey", "departments", ["department_id"], ["id"]
        )
        batch_op.create_index("ix_users_department_id", ["department_id"], unique=False)
    with op.batch_alter_table("departments") as batch_op:
        batch_op.drop_index("ix_departments_unit_id")
        batch_op.drop_constraint("uq_departments_assessment_id_unit_id", type_="unique")
        batch_op.drop_constraint("fk_departments_unit_id_units", type_="foreignkey")
        batch_op.drop_column("unit_id")
    op.drop_table("unit_change_units")
    op.drop_table("unit_changes")
    op.drop_table("unit_aliases")
    op.drop_table("unit_names")
    op.drop_table("units")
