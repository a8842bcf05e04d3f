"""batch count: already stored

Revision ID: 0006
Revises: 0005

A row or unit whose records are all stored already with the same values (a file sent again) is
counted in the batch as ``already_stored`` instead of being quarantined (decision 0105), so counts
reconcile as received = stored + quarantined + already_stored. Batches committed before this had
no such count: theirs is 0, and their identical rows stay where they were put (quarantine entries
that say "identical; nothing is missing"), since the old reason cannot tell a wholly identical
unit from one that also held new records.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("already_stored", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("already_stored")
