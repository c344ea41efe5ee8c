"""The scheme library: schemes stored with their source, parsed form and version; the
assessment names the stored scheme it was made from.

Revision ID: 0009_scheme_library
Revises: 0008_notifications
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_scheme_library"
down_revision = "0008_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schemes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_format", sa.String(length=16), nullable=False),
        sa.Column("parsed", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("is_example", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("frozen_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", "version"),
    )
    op.create_index("ix_schemes_code", "schemes", ["code"])
    op.create_index("ix_schemes_year", "schemes", ["year"])
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("scheme_id", sa.Integer(), nullable=True))
        batch.create_index("ix_assessments_scheme_id", ["scheme_id"])
        batch.create_foreign_key("fk_assessments_scheme_id", "schemes", ["scheme_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_constraint("fk_assessments_scheme_id", type_="foreignkey")
        batch.drop_index("ix_assessments_scheme_id")
        batch.drop_column("scheme_id")
    op.drop_index("ix_schemes_year", table_name="schemes")
    op.drop_index("ix_schemes_code", table_name="schemes")
    op.drop_table("schemes")
