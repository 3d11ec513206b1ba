"""analytics schema: data-quality findings (with dismissals), project areas, form baselines.

Revision ID: an001
"""

from alembic import op

revision = "an001"
down_revision = None
branch_labels = ("analytics",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS analytics")
    op.execute(
        """
        CREATE TABLE analytics.findings (
            id bigserial PRIMARY KEY,
            project_id integer NOT NULL,
            form_id integer NOT NULL,
            xml_form_id text NOT NULL,
            fingerprint text NOT NULL,
            rule text NOT NULL,
            severity text NOT NULL,
            message text NOT NULL,
            evidence jsonb NOT NULL,
            submission_id bigint,
            field text,
            enumerator text,
            source text NOT NULL,
            found_at timestamptz NOT NULL DEFAULT now(),
            dismissed_at timestamptz,
            dismissed_by integer,
            dismissal_comment text,
            UNIQUE (form_id, fingerprint)
        )
        """
    )
    op.execute("CREATE INDEX findings_submission ON analytics.findings (form_id, submission_id)")
    op.execute("CREATE INDEX findings_enumerator ON analytics.findings (form_id, enumerator)")
    op.execute(
        """
        CREATE TABLE analytics.areas (
            project_id integer PRIMARY KEY,
            area jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE analytics.baselines (
            form_id integer PRIMARY KEY,
            scanned_at timestamptz NOT NULL DEFAULT now(),
            submissions integer NOT NULL,
            baseline jsonb NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA analytics CASCADE")
