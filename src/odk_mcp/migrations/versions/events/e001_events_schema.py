"""events schema: the audit log and the outbox of domain events.

Revision ID: e001
"""

from alembic import op

revision = "e001"
down_revision = None
branch_labels = ("events",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS events")
    op.execute(
        """
        CREATE TABLE events.audits (
            id bigserial PRIMARY KEY,
            actor_id integer,
            action text NOT NULL,
            project_id integer,
            target_type text,
            target_id text,
            details jsonb NOT NULL DEFAULT '{}'::jsonb,
            logged_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX audits_logged_at ON events.audits (logged_at)")
    op.execute("CREATE INDEX audits_action_logged_at ON events.audits (action, logged_at)")
    op.execute(
        """
        CREATE TABLE events.outbox (
            id bigserial PRIMARY KEY,
            event text NOT NULL,
            payload jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA events CASCADE")
