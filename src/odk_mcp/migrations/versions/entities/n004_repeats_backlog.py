"""entities schema: several entity declarations per form definition (blocks in repeats, lists
fed by one form: spec 2025.1), outcomes per submission version and list, and the backlog of
offline updates that arrived before the update they follow (Central's
`entity_submission_backlog`).

Revision ID: n004
"""

from alembic import op

revision = "n004"
down_revision = "n003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per declared block: the container path ("" = the top-level meta) joins the key.
    op.execute("ALTER TABLE entities.form_defs ADD COLUMN entity_path text NOT NULL DEFAULT ''")
    op.execute("ALTER TABLE entities.form_defs DROP CONSTRAINT form_defs_pkey")
    op.execute("ALTER TABLE entities.form_defs ADD PRIMARY KEY (form_def_id, entity_path)")
    # One outcome per submission version and list (lists may differ in requiring approval).
    op.execute("DELETE FROM entities.submission_outcomes WHERE dataset_id IS NULL")
    op.execute("ALTER TABLE entities.submission_outcomes ALTER COLUMN dataset_id SET NOT NULL")
    op.execute("ALTER TABLE entities.submission_outcomes DROP CONSTRAINT submission_outcomes_pkey")
    op.execute(
        "ALTER TABLE entities.submission_outcomes ADD PRIMARY KEY (submission_id, instance_id, dataset_id)"
    )
    op.execute("ALTER TABLE entities.submission_outcomes DROP CONSTRAINT submission_outcomes_outcome_check")
    op.execute(
        "ALTER TABLE entities.submission_outcomes ADD CONSTRAINT submission_outcomes_outcome_check CHECK"
        " (outcome IN ('created', 'updated', 'applied', 'held', 'pending', 'error', 'skipped'))"
    )
    op.execute(
        """
        CREATE TABLE entities.backlog (
            id bigserial PRIMARY KEY,
            submission_id bigint NOT NULL,
            instance_id text NOT NULL,
            project_id integer NOT NULL,
            xml_form_id text NOT NULL,
            dataset_id integer NOT NULL REFERENCES entities.datasets (id),
            entity_uuid uuid NOT NULL,
            branch_id uuid,
            branch_base_version integer,
            held_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (submission_id, instance_id, entity_uuid)
        )
        """
    )
    # The update that follows an applied one in its branch; the held ones past the wait.
    op.execute("CREATE INDEX backlog_next ON entities.backlog (entity_uuid, branch_base_version)")
    op.execute("CREATE INDEX backlog_age ON entities.backlog (held_at)")


def downgrade() -> None:
    op.execute("DROP TABLE entities.backlog")
    op.execute("ALTER TABLE entities.submission_outcomes DROP CONSTRAINT submission_outcomes_outcome_check")
    op.execute("DELETE FROM entities.submission_outcomes WHERE outcome IN ('applied', 'held')")
    op.execute(
        "ALTER TABLE entities.submission_outcomes ADD CONSTRAINT submission_outcomes_outcome_check CHECK"
        " (outcome IN ('created', 'updated', 'pending', 'error', 'skipped'))"
    )
    op.execute("ALTER TABLE entities.submission_outcomes DROP CONSTRAINT submission_outcomes_pkey")
    op.execute(
        "DELETE FROM entities.submission_outcomes a USING entities.submission_outcomes b"
        " WHERE a.submission_id = b.submission_id AND a.instance_id = b.instance_id"
        " AND a.dataset_id > b.dataset_id"
    )
    op.execute("ALTER TABLE entities.submission_outcomes ADD PRIMARY KEY (submission_id, instance_id)")
    op.execute("ALTER TABLE entities.submission_outcomes ALTER COLUMN dataset_id DROP NOT NULL")
    op.execute("ALTER TABLE entities.form_defs DROP CONSTRAINT form_defs_pkey")
    op.execute("DELETE FROM entities.form_defs WHERE entity_path <> ''")
    op.execute("ALTER TABLE entities.form_defs ADD PRIMARY KEY (form_def_id)")
    op.execute("ALTER TABLE entities.form_defs DROP COLUMN entity_path")
