"""users schema: actors (users, app users, public links), sessions, role assignments.

Revision ID: u001
"""

from alembic import op

revision = "u001"
down_revision = None
branch_labels = ("users",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS users")
    op.execute(
        """
        CREATE TABLE users.actors (
            id serial PRIMARY KEY,
            type text NOT NULL CHECK (type IN ('user', 'field_key', 'public_link')),
            display_name text NOT NULL,
            email text,
            password_hash text,
            project_id integer,
            created_by integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            deleted_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX actors_live_email ON users.actors (lower(email))"
        " WHERE deleted_at IS NULL AND email IS NOT NULL"
    )
    op.execute("CREATE INDEX actors_project ON users.actors (project_id) WHERE project_id IS NOT NULL")
    op.execute(
        """
        CREATE TABLE users.sessions (
            token_hash text PRIMARY KEY,
            actor_id integer NOT NULL REFERENCES users.actors (id),
            csrf text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX sessions_actor ON users.sessions (actor_id)")
    op.execute(
        """
        CREATE TABLE users.assignments (
            id serial PRIMARY KEY,
            actor_id integer NOT NULL REFERENCES users.actors (id),
            role_id integer NOT NULL,
            project_id integer,
            form_id text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CHECK (form_id IS NULL OR project_id IS NOT NULL)
        )
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX assignments_unique ON users.assignments"
        " (actor_id, role_id, coalesce(project_id, 0), coalesce(form_id, ''))"
    )
    op.execute("CREATE INDEX assignments_scope ON users.assignments (project_id, form_id)")


def downgrade() -> None:
    op.execute("DROP SCHEMA users CASCADE")
