"""submissions schema: submissions, their versions (edits), attachments, comments.

Revision ID: s001
"""

from alembic import op

revision = "s001"
down_revision = None
branch_labels = ("submissions",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS submissions")
    op.execute(
        """
        CREATE TABLE submissions.submissions (
            id bigserial PRIMARY KEY,
            project_id integer NOT NULL,
            form_id integer NOT NULL,
            xml_form_id text NOT NULL,
            draft boolean NOT NULL,
            instance_id text NOT NULL,
            current_version_id bigint,
            submitter_id integer,
            device_id text,
            user_agent text,
            review_state text CHECK (review_state IN ('hasIssues', 'edited', 'approved', 'rejected')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            deleted_at timestamptz,
            UNIQUE (form_id, draft, instance_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX submissions_listing ON submissions.submissions (form_id, draft, created_at DESC, id DESC)"
    )
    op.execute(
        """
        CREATE TABLE submissions.versions (
            id bigserial PRIMARY KEY,
            submission_id bigint NOT NULL REFERENCES submissions.submissions (id),
            form_id integer NOT NULL,
            draft boolean NOT NULL,
            instance_id text NOT NULL,
            deprecated_id text,
            instance_name text,
            form_def_id integer NOT NULL,
            form_version text NOT NULL,
            xml bytea NOT NULL,
            xml_sha256 text NOT NULL,
            data jsonb NOT NULL,
            flags jsonb NOT NULL DEFAULT '[]'::jsonb,
            current boolean NOT NULL,
            submitter_id integer,
            device_id text,
            user_agent text,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (form_id, draft, instance_id)
        )
        """
    )
    op.execute("CREATE INDEX versions_submission ON submissions.versions (submission_id, id)")
    op.execute(
        """
        ALTER TABLE submissions.submissions
            ADD CONSTRAINT submissions_current_version
            FOREIGN KEY (current_version_id) REFERENCES submissions.versions (id)
        """
    )
    op.execute(
        """
        CREATE TABLE submissions.attachments (
            version_id bigint NOT NULL REFERENCES submissions.versions (id),
            name text NOT NULL,
            blob_sha256 text,
            blob_md5 text,
            blob_size bigint,
            content_type text,
            updated_at timestamptz,
            PRIMARY KEY (version_id, name)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE submissions.comments (
            id bigserial PRIMARY KEY,
            submission_id bigint NOT NULL REFERENCES submissions.submissions (id),
            actor_id integer,
            body text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX comments_submission ON submissions.comments (submission_id, id)")


def downgrade() -> None:
    op.execute("DROP SCHEMA submissions CASCADE")
