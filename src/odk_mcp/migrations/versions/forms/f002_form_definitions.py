"""forms schema: form definitions (draft and published versions), attachments, conversions.

Revision ID: f002
"""

from alembic import op

revision = "f002"
down_revision = "f001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE forms.form_defs (
            id serial PRIMARY KEY,
            form_id integer NOT NULL REFERENCES forms.forms (id),
            version text NOT NULL DEFAULT '',
            name text NOT NULL,
            xml bytea NOT NULL,
            md5 text NOT NULL,
            sha256 text NOT NULL,
            schema jsonb NOT NULL,
            source_sha256 text,
            source_type text,
            key_id integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX form_defs_published_version ON forms.form_defs (form_id, version)"
        " WHERE published_at IS NOT NULL"
    )
    op.execute("CREATE INDEX form_defs_form ON forms.form_defs (form_id)")
    op.execute(
        """
        ALTER TABLE forms.forms
            ADD COLUMN current_def_id integer REFERENCES forms.form_defs (id),
            ADD COLUMN draft_def_id integer REFERENCES forms.form_defs (id),
            ADD COLUMN draft_token_hash text,
            ADD COLUMN created_by integer
        """
    )
    op.execute("CREATE UNIQUE INDEX forms_draft_token ON forms.forms (draft_token_hash)")
    op.execute(
        """
        CREATE TABLE forms.form_attachments (
            form_def_id integer NOT NULL REFERENCES forms.form_defs (id),
            name text NOT NULL,
            type text NOT NULL,
            blob_sha256 text,
            blob_md5 text,
            blob_size bigint,
            content_type text,
            updated_at timestamptz,
            PRIMARY KEY (form_def_id, name)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE forms.conversions (
            id uuid PRIMARY KEY,
            project_id integer NOT NULL REFERENCES forms.projects (id),
            actor_id integer,
            source_sha256 text NOT NULL,
            source_type text NOT NULL,
            params jsonb NOT NULL,
            status text NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
            xml_form_id text,
            problem jsonb,
            attempts integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "CREATE INDEX conversions_unfinished ON forms.conversions (status) WHERE status IN ('pending', 'running')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE forms.conversions")
    op.execute("DROP TABLE forms.form_attachments")
    op.execute(
        "ALTER TABLE forms.forms DROP COLUMN current_def_id, DROP COLUMN draft_def_id,"
        " DROP COLUMN draft_token_hash, DROP COLUMN created_by"
    )
    op.execute("DROP TABLE forms.form_defs")
