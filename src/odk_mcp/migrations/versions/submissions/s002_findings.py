"""submissions schema: validation findings (required/constraint) recorded with each version.

Revision ID: s002
"""

from alembic import op

revision = "s002"
down_revision = "s001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE submissions.versions ADD COLUMN findings jsonb NOT NULL DEFAULT '[]'::jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE submissions.versions DROP COLUMN findings")
