"""entities schema: the entity declarations of published forms, what each submission did to
entities (the idempotence record of the submission consumer, and the approval queue), and the
count of live entities per list.

Revision ID: n002
"""

from alembic import op

revision = "n002"
down_revision = "n001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The live entities of each list, kept with every change: OData's unfiltered $count.
    op.execute("ALTER TABLE entities.datasets ADD COLUMN live_entities bigint NOT NULL DEFAULT 0")
    op.execute(
        "UPDATE entities.datasets d SET live_entities ="
        " (SELECT count(*) FROM entities.entities e WHERE e.dataset_id = d.id AND e.deleted_at IS NULL)"
    )
    op.execute(
        """
        CREATE TABLE entities.form_defs (
            form_def_id integer PRIMARY KEY,
            project_id integer NOT NULL,
            xml_form_id text NOT NULL,
            form_name text,
            dataset_id integer REFERENCES entities.datasets (id),
            actions text[] NOT NULL DEFAULT '{}',
            spec_version text,
            saveto jsonb NOT NULL DEFAULT '[]'::jsonb,
            problem text,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX form_defs_dataset ON entities.form_defs (dataset_id, xml_form_id)")
    op.execute(
        """
        CREATE TABLE entities.submission_outcomes (
            submission_id bigint NOT NULL,
            instance_id text NOT NULL,
            project_id integer NOT NULL,
            xml_form_id text NOT NULL,
            dataset_id integer REFERENCES entities.datasets (id),
            entity_uuid uuid,
            outcome text NOT NULL CHECK (outcome IN ('created', 'updated', 'pending', 'error', 'skipped')),
            problem jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            PRIMARY KEY (submission_id, instance_id)
        )
        """
    )
    op.execute(
        "CREATE INDEX submission_outcomes_pending ON entities.submission_outcomes (dataset_id)"
        " WHERE outcome = 'pending'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE entities.submission_outcomes")
    op.execute("DROP TABLE entities.form_defs")
    op.execute("ALTER TABLE entities.datasets DROP COLUMN live_entities")
