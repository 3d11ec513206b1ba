"""webhooks schema: subscriptions, their deliveries (the outgoing queue and its log) and the
circuit-breaker state of each receiving endpoint.

Revision ID: w001
"""

from alembic import op

revision = "w001"
down_revision = None
branch_labels = ("webhooks",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS webhooks")
    op.execute(
        """
        CREATE TABLE webhooks.subscriptions (
            id serial PRIMARY KEY,
            project_id integer NOT NULL,
            url text NOT NULL,
            origin text NOT NULL,
            events text[] NOT NULL,
            xml_form_ids text[],
            fields text[],
            secret_sealed text NOT NULL,
            active boolean NOT NULL DEFAULT true,
            created_by integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            deleted_at timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX subscriptions_live_by_project ON webhooks.subscriptions (project_id)"
        " WHERE deleted_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE webhooks.deliveries (
            id uuid PRIMARY KEY,
            subscription_id integer NOT NULL REFERENCES webhooks.subscriptions (id),
            project_id integer NOT NULL,
            event_id bigint NOT NULL,
            event text NOT NULL,
            xml_form_id text,
            instance_id text,
            body bytea NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'cancelled')),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            locked_until timestamptz,
            last_status integer,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            delivered_at timestamptz,
            UNIQUE (event_id, subscription_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX deliveries_due ON webhooks.deliveries (next_attempt_at, created_at)"
        " WHERE status = 'pending'"
    )
    op.execute(
        "CREATE INDEX deliveries_sending ON webhooks.deliveries (locked_until) WHERE status = 'sending'"
    )
    op.execute("CREATE INDEX deliveries_log ON webhooks.deliveries (subscription_id, created_at DESC)")
    op.execute(
        """
        CREATE TABLE webhooks.endpoints (
            origin text PRIMARY KEY,
            state text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half_open')),
            consecutive_failures integer NOT NULL DEFAULT 0,
            open_until timestamptz,
            probe_until timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA webhooks CASCADE")
