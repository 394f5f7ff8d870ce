"""inbound keys findable by age, so that housekeeping can prune them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbound_keys_seen_at", "inbound_keys", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_keys_seen_at", table_name="inbound_keys")
