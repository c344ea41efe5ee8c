"""Routine records: outcome and who registered them; the 公示 page's audience.

Revision ID: 0006_routine_outcome
Revises: 0005_notice_issuing
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_routine_outcome"
down_revision = "0005_notice_issuing"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routine_records") as batch:
        batch.add_column(sa.Column("outcome", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column(
                "registered_by", sa.String(16), nullable=False, server_default="department"
            )
        )
    # Meetings and inspections are the office's registrations; a task is the office's when
    # its author is not a member of the department it concerns.
    op.execute(
        "UPDATE routine_records SET registered_by = 'office' WHERE kind IN ('meeting', "
        "'inspection') OR (kind = 'task' AND NOT EXISTS (SELECT 1 FROM users u WHERE "
        "u.id = routine_records.created_by_id AND u.department_id = routine_records.department_id))"
    )
    # An office registration was never the department's late report.
    op.execute("UPDATE routine_records SET is_late = false WHERE registered_by = 'office'")
    op.execute(
        "UPDATE routine_records SET outcome = CASE WHEN is_late THEN 'late' ELSE 'done' END "
        "WHERE kind IN ('meeting', 'inspection', 'task')"
    )
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(
            sa.Column(
                "publication_page", sa.String(16), nullable=False, server_default="public"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.drop_column("publication_page")
    with op.batch_alter_table("routine_records") as batch:
        batch.drop_column("registered_by")
        batch.drop_column("outcome")
