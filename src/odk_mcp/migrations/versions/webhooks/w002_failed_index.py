"""webhooks schema: an index of failed deliveries (counted by /metrics at every scrape).

Revision ID: w002
"""

from alembic import op

revision = "w002"
down_revision = "w001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX deliveries_failed ON webhooks.deliveries (subscription_id) WHERE status = 'failed'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX webhooks.deliveries_failed")
