"""Results notices: own document number, 抄送, score hiding, verification codes, preliminary.

Revision ID: 0005_notice_issuing
Revises: 0004_calendar
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_notice_issuing"
down_revision = "0004_calendar"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assessments") as batch:
        batch.add_column(sa.Column("result_document_no", sa.String(100), nullable=True))
        batch.add_column(sa.Column("notice_cc", sa.String(500), nullable=True))
        batch.add_column(
            sa.Column(
                "hide_scores_until_published",
                sa.Boolean(),
                nullable=False,
                server_default=sa.true(),
            )
        )
    with op.batch_alter_table("assessments") as batch:
        batch.alter_column("hide_scores_until_published", server_default=None)
    with op.batch_alter_table("notices") as batch:
        batch.add_column(sa.Column("verification_code", sa.String(32), nullable=True))
        batch.add_column(
            sa.Column("is_preliminary", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("notices") as batch:
        batch.alter_column("is_preliminary", server_default=None)
    op.create_index(
        "ix_notices_verification_code", "notices", ["verification_code"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_notices_verification_code", table_name="notices")
    with op.batch_alter_table("notices") as batch:
        batch.drop_column("is_preliminary")
        batch.drop_column("verification_code")
    with op.batch_alter_table("assessments") as batch:
        batch.drop_column("hide_scores_until_published")
        batch.drop_column("notice_cc")
        batch.drop_column("result_document_no")
