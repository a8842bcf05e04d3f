"""queue lookup by kind and record

Revision ID: 0002
Revises: 0001

Every commit that queues assessments looks up the records' open items by kind and record id.
With an index on the record id alone, SQLite's planner chose the (kind, office, lane) index and
read every item of the kind per lookup, so commits slowed down as the queue grew.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_queue", schema=None) as batch_op:
        batch_op.create_index("ix_risk_queue_record", ["kind", "record_id"], unique=False)
        batch_op.drop_index("ix_risk_queue_record_id")


def downgrade() -> None:
    with op.batch_alter_table("risk_queue", schema=None) as batch_op:
        batch_op.create_index("ix_risk_queue_record_id", ["record_id"], unique=False)
        batch_op.drop_index("ix_risk_queue_record")
