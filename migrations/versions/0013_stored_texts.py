"""Job lines and inbox messages kept as msgids and parameters, shown in the reader's language.

Revision ID: 0013_stored_texts
Revises: 0012_units

Nullable: rows written before keep their Chinese text and are shown as written.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_stored_texts"
down_revision = "0012_units"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("message_i18n", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("error_i18n", sa.JSON(), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("title_i18n", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("body_i18n", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("body_i18n")
        batch.drop_column("title_i18n")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("error_i18n")
        batch.drop_column("message_i18n")
