"""users schema: long-lived API tokens a user creates for assistants (MCP), with scopes.

Revision ID: u003
"""

from alembic import op

revision = "u003"
down_revision = "u002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users.api_tokens (
            id serial PRIMARY KEY,
            actor_id integer NOT NULL REFERENCES users.actors (id),
            name text NOT NULL,
            token_hash text NOT NULL UNIQUE,
            scopes text[] NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz,
            last_used_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX api_tokens_actor ON users.api_tokens (actor_id)")


def downgrade() -> None:
    op.execute("DROP TABLE users.api_tokens")
