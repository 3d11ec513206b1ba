"""users schema: a sealed (encrypted) copy of each active app user's token.

Revision ID: u002
"""

from alembic import op

revision = "u002"
down_revision = "u001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users.actors ADD COLUMN token_sealed text")


def downgrade() -> None:
    op.execute("ALTER TABLE users.actors DROP COLUMN token_sealed")
