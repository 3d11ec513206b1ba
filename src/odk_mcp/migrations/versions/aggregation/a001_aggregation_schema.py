"""aggregation schema: the read model (one row per submission, one per repeat instance).

Revision ID: a001
"""

from alembic import op

revision = "a001"
down_revision = None
branch_labels = ("aggregation",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS aggregation")
    op.execute(
        """
        CREATE TABLE aggregation.rows (
            submission_id bigint PRIMARY KEY,
            project_id integer NOT NULL,
            form_id integer NOT NULL,
            xml_form_id text NOT NULL,
            draft boolean NOT NULL,
            instance_id text NOT NULL,
            version_id bigint NOT NULL,
            current_instance_id text NOT NULL,
            form_def_id integer NOT NULL,
            form_version text NOT NULL,
            instance_name text,
            submitter_id integer,
            device_id text,
            user_agent text,
            review_state text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz,
            deleted_at timestamptz,
            edits integer NOT NULL,
            attachments_expected integer NOT NULL,
            attachments_present integer NOT NULL,
            flag_count integer NOT NULL,
            finding_count integer NOT NULL,
            data jsonb NOT NULL,
            event_id bigint NOT NULL DEFAULT 0
        )
        """
    )
    op.execute("CREATE INDEX rows_feed ON aggregation.rows (form_id, draft, created_at, submission_id)")
    op.execute("CREATE INDEX rows_instance ON aggregation.rows (form_id, draft, instance_id)")
    op.execute("CREATE INDEX rows_data ON aggregation.rows USING gin (data jsonb_path_ops)")
    op.execute(
        """
        CREATE TABLE aggregation.repeat_rows (
            submission_id bigint NOT NULL,
            form_id integer NOT NULL,
            draft boolean NOT NULL,
            repeat_path text NOT NULL,
            key text NOT NULL,
            parent_key text NOT NULL,
            ordinal integer NOT NULL,
            seq integer NOT NULL,
            data jsonb NOT NULL,
            PRIMARY KEY (submission_id, repeat_path, key)
        )
        """
    )
    op.execute(
        "CREATE INDEX repeat_rows_feed ON aggregation.repeat_rows"
        " (form_id, draft, repeat_path, submission_id, seq)"
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA aggregation CASCADE")
