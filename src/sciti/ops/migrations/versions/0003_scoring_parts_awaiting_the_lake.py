"""scoring parts awaiting the lake

Revision ID: 0003
Revises: 0002

A scoring run's part is committed to the operational database (queue items, red places) before
its files are committed to the lake; this table remembers the parts whose lake commit is still to
come, so that one interrupted by a crash is finished, not lost.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_scoring_parts",
        sa.Column("batch_id", sa.String(length=80), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )


def downgrade() -> None:
    op.drop_table("risk_scoring_parts")
