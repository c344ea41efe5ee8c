"""Who submitted an item (its latest round) and who appealed it, for the office's guards.

A department's member made a reviewer, verifier or scorer leaves their unit, so the
own-department guard no longer sees them; these columns let the engine refuse them their own
submission and their own appeal (`own_submission`). Filled from the audit trail — the actor
of each item's latest `submit` and `appeal` event — exactly as reconciliation replays them, so
`audit verify` holds across the upgrade.

Revision ID: 0014_item_authors
Revises: 0013_stored_texts
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_item_authors"
down_revision = "0013_stored_texts"
branch_labels = None
depends_on = None

_LATEST_ACTOR = (
    "(SELECT e.actor_id FROM audit_events e WHERE e.item_id = items.id AND e.action = '{action}'"
    " ORDER BY e.seq DESC LIMIT 1)"
)


def upgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.add_column(sa.Column("submitted_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("appealed_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_items_submitted_by_id_users", "users", ["submitted_by_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_items_appealed_by_id_users", "users", ["appealed_by_id"], ["id"]
        )
    op.execute(
        f"UPDATE items SET submitted_by_id = {_LATEST_ACTOR.format(action='submit')},"
        f" appealed_by_id = {_LATEST_ACTOR.format(action='appeal')}"
        " WHERE round > 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.drop_constraint("fk_items_appealed_by_id_users", type_="foreignkey")
        batch_op.drop_constraint("fk_items_submitted_by_id_users", type_="foreignkey")
        batch_op.drop_column("appealed_by_id")
        batch_op.drop_column("submitted_by_id")
