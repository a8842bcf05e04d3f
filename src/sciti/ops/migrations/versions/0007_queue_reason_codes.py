"""queue items keep their reasons' codes

Revision ID: 0007
Revises: 0006

A queue item keeps each reason's code and values beside its English sentence (decision 0107), as
one JSON array in text, so the queue page says the reasons in its reader's language. Items queued
before this have none (NULL) and show their reasons in English, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not a batch: SQLite would rebuild the table and lose the queue's
# expression index (ix_risk_queue_urgency), which it cannot reflect.
def upgrade() -> None:
    op.add_column("risk_queue", sa.Column("reason_codes", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("risk_queue", "reason_codes")
