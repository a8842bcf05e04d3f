"""batch count: replaced

Revision ID: 0008
Revises: 0007

A connector with ``on_change: replace`` (a source table updated in place, decision 0112) stores a
changed row over the record stored before instead of quarantining it. Such rows are counted among
the batch's ``stored``; ``replaced`` says how many of them replaced a stored record, so that counts
still reconcile as received = stored + quarantined + already_stored. Batches committed before this
read 0: none of them replaced anything.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("replaced")
