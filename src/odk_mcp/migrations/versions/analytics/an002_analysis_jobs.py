"""analytics: analysis jobs (full quality scans, enumerator tables and insight reports run in
the background; a handle reports progress and returns the result).

Revision ID: an002
"""

from alembic import op

revision = "an002"
down_revision = "an001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE analytics.jobs (
            id uuid PRIMARY KEY,
            handle_hash text NOT NULL UNIQUE,
            actor_id integer NOT NULL,
            project_id integer NOT NULL,
            xml_form_id text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('quality', 'enumerators', 'report.html', 'report.pdf')),
            status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
            stage text,
            steps_done integer NOT NULL DEFAULT 0,
            steps_total integer,
            attempts integer NOT NULL DEFAULT 0,
            error jsonb,
            result jsonb,
            body bytea,
            media_type text,
            created_at timestamptz NOT NULL,
            started_at timestamptz,
            heartbeat_at timestamptz,
            finished_at timestamptz,
            expires_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX jobs_claim ON analytics.jobs (status, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE analytics.jobs")
