"""users schema: public links (ODK Central's "public access links"), anonymous web-form
respondents of one form. The link itself is an actor of type `public_link` with a session that
never expires and the `pub-link` role on its form; this table binds it to that form and keeps
Enketo's single-submission flag (`once`).

Revision ID: u004
"""

from alembic import op

revision = "u004"
down_revision = "u003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users.public_links (
            actor_id integer PRIMARY KEY REFERENCES users.actors (id),
            project_id integer NOT NULL,
            xml_form_id text NOT NULL,
            once boolean NOT NULL DEFAULT false
        )
        """
    )
    op.execute("CREATE INDEX public_links_form ON users.public_links (project_id, xml_form_id)")


def downgrade() -> None:
    op.execute("DROP TABLE users.public_links")
