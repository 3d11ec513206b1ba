"""events: subscriptions and per-consumer deliveries of outbox events (the event pipeline).

A trigger on `events.outbox` creates one pending delivery per subscribed consumer in the
emitting transaction, so a delivery exists if and only if its event was committed, and
wakes the workers with a NOTIFY (sent at commit, never for a rolled-back event).

Revision ID: e002
"""

from alembic import op

revision = "e002"
down_revision = "e001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE events.subscriptions (
            consumer text NOT NULL,
            event text NOT NULL,
            PRIMARY KEY (consumer, event)
        )
        """
    )
    op.execute("CREATE INDEX subscriptions_event ON events.subscriptions (event)")
    op.execute(
        """
        CREATE TABLE events.deliveries (
            event_id bigint NOT NULL REFERENCES events.outbox (id) ON DELETE CASCADE,
            consumer text NOT NULL,
            status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'dead')),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            locked_until timestamptz,
            last_error text,
            processed_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (event_id, consumer)
        )
        """
    )
    # Done deliveries pile up; the index covers only the open ones the worker claims and the
    # admin counts, so it stays small however long the history.
    op.execute(
        "CREATE INDEX deliveries_open ON events.deliveries (status, next_attempt_at, event_id)"
        " WHERE status <> 'done'"
    )
    op.execute(
        """
        CREATE FUNCTION events.fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO events.deliveries (event_id, consumer)
            SELECT NEW.id, s.consumer FROM events.subscriptions AS s WHERE s.event = NEW.event;
            IF FOUND THEN
                -- One empty payload: PostgreSQL folds repeats within a transaction into one.
                PERFORM pg_notify('odk_mcp_deliveries', '');
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_fan_out AFTER INSERT ON events.outbox"
        " FOR EACH ROW EXECUTE FUNCTION events.fan_out()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_fan_out ON events.outbox")
    op.execute("DROP FUNCTION events.fan_out()")
    op.execute("DROP TABLE events.deliveries")
    op.execute("DROP TABLE events.subscriptions")
