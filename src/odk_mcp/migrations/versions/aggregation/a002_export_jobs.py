"""aggregation: export jobs (large exports run in the background; a handle reports progress).

Revision ID: a002
"""

from alembic import op

revision = "a002"
down_revision = "a001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE aggregation.export_jobs (
            id uuid PRIMARY KEY,
            handle_hash text NOT NULL UNIQUE,
            actor_id integer NOT NULL,
            project_id integer NOT NULL,
            xml_form_id text NOT NULL,
            draft boolean NOT NULL,
            format text NOT NULL,
            options jsonb NOT NULL,
            status text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'expired')),
            rows_done bigint NOT NULL DEFAULT 0,
            rows_total bigint,
            attempts integer NOT NULL DEFAULT 0,
            error jsonb,
            file_name text NOT NULL,
            file_size bigint,
            created_at timestamptz NOT NULL,
            started_at timestamptz,
            heartbeat_at timestamptz,
            finished_at timestamptz,
            expires_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX export_jobs_claim ON aggregation.export_jobs (status, created_at)")


def downgrade() -> None:
    op.execute("DROP TABLE aggregation.export_jobs")
