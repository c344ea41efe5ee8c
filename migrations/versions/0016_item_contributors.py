"""Everyone who did the department's work on an item, for the office's guards.

0014 kept the latest submitter and the appellant; a member who submitted an earlier round
(before a return), withdrew it, or only attached or removed files, and was then made a
reviewer, verifier or scorer, could still judge the item. `items.contributor_ids` lists them
all (a JSON array of user ids, ascending), filled from the audit trail — the actors of each
item's `submit`, `withdraw`, `appeal`, `evidence_uploaded` and `evidence_removed` events —
exactly as reconciliation replays it, so `audit verify` holds across the upgrade.

Revision ID: 0016_item_contributors
Revises: 0015_audit_notice_target
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_item_contributors"
down_revision = "0015_audit_notice_target"
branch_labels = None
depends_on = None

#: The department's actions on an item (workflow/effects.py `add_contributor`).
_ACTIONS = "('submit', 'withdraw', 'appeal', 'evidence_uploaded', 'evidence_removed')"

_POSTGRESQL = (
    "UPDATE items SET contributor_ids = c.ids FROM ("
    " SELECT item_id, json_agg(DISTINCT actor_id ORDER BY actor_id) AS ids FROM audit_events"
    f" WHERE item_id IS NOT NULL AND actor_id IS NOT NULL AND action IN {_ACTIONS}"
    " GROUP BY item_id) AS c WHERE items.id = c.item_id"
)
# SQLite's json_group_array keeps the order of the rows it is given: the subquery's.
_SQLITE = (
    "UPDATE items SET contributor_ids = (SELECT json_group_array(actor_id) FROM ("
    " SELECT DISTINCT e.actor_id FROM audit_events e WHERE e.item_id = items.id"
    f" AND e.actor_id IS NOT NULL AND e.action IN {_ACTIONS} ORDER BY e.actor_id))"
    f" WHERE EXISTS (SELECT 1 FROM audit_events e WHERE e.item_id = items.id"
    f" AND e.actor_id IS NOT NULL AND e.action IN {_ACTIONS})"
)


def upgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.add_column(
            sa.Column("contributor_ids", sa.JSON(), nullable=False, server_default="[]")
        )
    dialect = op.get_bind().dialect.name
    op.execute(_POSTGRESQL if dialect == "postgresql" else _SQLITE)


def downgrade() -> None:
    with op.batch_alter_table("items") as batch_op:
        batch_op.drop_column("contributor_ids")
