"""Stage calendar, holiday overrides, late-submission facts, the scheme's blocking flag.

Revision ID: 0004_calendar
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_calendar"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(
            sa.Column(
                "blocks_late_submissions", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("submit_due_on", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("is_submitted_late", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "stage_deadlines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("assessment_id", sa.Integer(), sa.ForeignKey("assessments.id"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("working_days", sa.Integer(), nullable=True),
        sa.Column("updated_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("assessment_id", "stage"),
    )
    op.create_index("ix_stage_deadlines_assessment_id", "stage_deadlines", ["assessment_id"])
    op.create_table(
        "calendar_overrides",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False, unique=True),
        sa.Column("is_workday", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("calendar_overrides")
    op.drop_table("stage_deadlines")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("is_submitted_late")
        batch.drop_column("submit_due_on")
    with op.batch_alter_table("assessments") as batch:
        batch.drop_column("blocks_late_submissions")
