"""forms schema: per-form settings of which fields are sensitive (personal data).

Revision ID: f003
"""

from alembic import op

revision = "f003"
down_revision = "f002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE forms.field_sensitivity (
            form_id integer NOT NULL REFERENCES forms.forms (id),
            path text NOT NULL,
            sensitive boolean NOT NULL,
            updated_by integer,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (form_id, path)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE forms.field_sensitivity")
