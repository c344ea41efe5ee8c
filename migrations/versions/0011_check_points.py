"""The verifier's check points (核查要点) per indicator, from the scheme.

Revision ID: 0011_check_points
Revises: 0010_jobs
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_check_points"
down_revision = "0010_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Indicators installed before carry none: their items verify as before.
    with op.batch_alter_table("indicators") as batch:
        batch.add_column(
            sa.Column("check_points", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("indicators") as batch:
        batch.drop_column("check_points")
