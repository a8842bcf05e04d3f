"""queue ordered by lane urgency

Revision ID: 0004
Revises: 0003

The officers' queue is ordered by how soon a lane's work is due (red, yellow, blue, then any
other), then by score and assessment id: a lane rule sends a record to red with any score, and
ordering by score alone put thousands of blue items before it (decision 0091). This index serves
that order, and the keyset pages cut by it, on SQLite and PostgreSQL; it replaces the
(score, assessment_id) index, which served only the old order. The expression is written out
here, not imported: a migration stays as it was when it was made.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

URGENCY = "(CASE lane WHEN 'red' THEN 3 WHEN 'yellow' THEN 2 WHEN 'blue' THEN 1 ELSE 0 END)"


def upgrade() -> None:
    with op.batch_alter_table("risk_queue", schema=None) as batch_op:
        batch_op.create_index("ix_risk_queue_urgency", [sa.text(URGENCY), "score", "assessment_id"])
        batch_op.drop_index("ix_risk_queue_order")


def downgrade() -> None:
    with op.batch_alter_table("risk_queue", schema=None) as batch_op:
        batch_op.create_index("ix_risk_queue_order", ["score", "assessment_id"], unique=False)
        batch_op.drop_index("ix_risk_queue_urgency")
