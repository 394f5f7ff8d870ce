"""messages findable by time, so that the operators' day reports read a day, not every message

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op


revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_created_at", "messages", ["created_at"], postgresql_using="brin")


def downgrade() -> None:
    op.drop_index("ix_messages_created_at", table_name="messages")
