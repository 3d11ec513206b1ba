"""entities schema: an index for owner-only lists, whose collectors download only the live
entities they created (`creator_id`), in the CSV's order.

Revision ID: n003
"""

from alembic import op

revision = "n003"
down_revision = "n002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX entities_live_by_creator ON entities.entities (dataset_id, creator_id, id)"
        " WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX entities.entities_live_by_creator")
