"""events: an index for the audit trail of one entity (`GET …/entities/{uuid}/audits`).

Partial, on entity targets only: the audit rows of every other write (one per submission)
pay nothing for it.

Revision ID: e003
"""

from alembic import op

revision = "e003"
down_revision = "e002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX audits_entity_target ON events.audits (target_id, logged_at DESC, id DESC)"
        " WHERE target_type = 'entity'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX events.audits_entity_target")
