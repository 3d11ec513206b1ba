"""forms schema: projects and the form catalogue (definitions and versions come in later revisions).

Revision ID: f001
"""

from alembic import op

revision = "f001"
down_revision = None
branch_labels = ("forms",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS forms")
    op.execute(
        """
        CREATE TABLE forms.projects (
            id serial PRIMARY KEY,
            name text NOT NULL,
            description text,
            archived boolean NOT NULL DEFAULT false,
            key_id integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            deleted_at timestamptz
        )
        """
    )
    op.execute(
        """
        CREATE TABLE forms.forms (
            id serial PRIMARY KEY,
            project_id integer NOT NULL REFERENCES forms.projects (id),
            xml_form_id text NOT NULL,
            state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closing', 'closed')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            deleted_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX forms_live_xml_form_id ON forms.forms (project_id, xml_form_id)"
        " WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA forms CASCADE")
