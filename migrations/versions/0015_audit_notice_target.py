"""A partial index on the notices' audit events, for the public verification.

`/verify/<code>` compares the notice's row with its issuing event before it confirms
anything (`workflow.notices.verify_notice`): one lookup by `target_id` among the events whose
`target_type` is `notice`. No other index leads there: `ix_audit_action_seq` would read every
notice event ever issued, on a public, rate-limited page. The index holds only those events
(a few per department and year), so appends of every other event do not maintain it.

Revision ID: 0015_audit_notice_target
Revises: 0014_item_authors
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_audit_notice_target"
down_revision = "0014_item_authors"
branch_labels = None
depends_on = None

_WHERE = "target_type = 'notice'"


def upgrade() -> None:
    op.create_index(
        "ix_audit_notice_target",
        "audit_events",
        ["target_id"],
        postgresql_where=sa.text(_WHERE),
        sqlite_where=sa.text(_WHERE),
    )


def downgrade() -> None:
    op.drop_index("ix_audit_notice_target", table_name="audit_events")
