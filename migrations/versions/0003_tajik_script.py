"""the script a user is answered in, and messages as typed

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('script', sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column('writes_latin', sa.Boolean(), nullable=True))
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('typed_text', sa.Text(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (PostgreSQL, SQLite ≥ 3.35), not a batch copy: on SQLite a batch recreates the
    # users table, and with foreign keys on, dropping the old one would delete every conversation by cascade.
    op.execute('ALTER TABLE messages DROP COLUMN typed_text')
    op.execute('ALTER TABLE users DROP COLUMN writes_latin')
    op.execute('ALTER TABLE users DROP COLUMN script')
