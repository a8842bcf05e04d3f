"""batch claims with a lease

Revision ID: 0005
Revises: 0004

A batch is worked on by one process at a time (decision 0094): the process that takes it writes
its name in ``claimed_by`` and renews ``claimed_until`` while it works. Two ingests of the same
unit at once used to both append its rows; a claim that runs out lets recovery take the batch of
a process that died. Batches registered before this have no claim and are free to be taken.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
