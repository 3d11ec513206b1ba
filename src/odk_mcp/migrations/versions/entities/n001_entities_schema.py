"""entities schema: entity lists (datasets), their properties, entities and entity versions.

The current label, data and version of each entity are kept on the entity row itself (the
versions table keeps the history), so listing, OData and CSV downloads read one table.
`datasets.revision` is bumped by every change to a list's entities or properties: it is what
the manifest hash and the CSV ETag are made from.

Revision ID: n001
"""

from alembic import op

revision = "n001"
down_revision = None
branch_labels = ("entities",)
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS entities")
    op.execute(
        """
        CREATE TABLE entities.datasets (
            id serial PRIMARY KEY,
            project_id integer NOT NULL,
            name text NOT NULL,
            approval_required boolean NOT NULL DEFAULT false,
            owner_only boolean NOT NULL DEFAULT false,
            revision bigint NOT NULL DEFAULT 0,
            created_by integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz
        )
        """
    )
    # Central refuses two lists whose names differ only in case.
    op.execute("CREATE UNIQUE INDEX datasets_name ON entities.datasets (project_id, lower(name))")
    op.execute(
        """
        CREATE TABLE entities.properties (
            id serial PRIMARY KEY,
            dataset_id integer NOT NULL REFERENCES entities.datasets (id),
            name text NOT NULL,
            published_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX properties_name ON entities.properties (dataset_id, lower(name))")
    op.execute(
        """
        CREATE TABLE entities.entities (
            id bigserial PRIMARY KEY,
            dataset_id integer NOT NULL REFERENCES entities.datasets (id),
            uuid uuid NOT NULL UNIQUE,
            label text NOT NULL,
            data jsonb NOT NULL DEFAULT '{}'::jsonb,
            version integer NOT NULL,
            conflict text CHECK (conflict IN ('soft', 'hard')),
            creator_id integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz,
            deleted_at timestamptz
        )
        """
    )
    # Keyset paging (OData, REST, CSV) walks live entities of one list by id.
    op.execute("CREATE INDEX entities_live ON entities.entities (dataset_id, id) WHERE deleted_at IS NULL")
    op.execute(
        "CREATE INDEX entities_deleted ON entities.entities (dataset_id, id) WHERE deleted_at IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE entities.versions (
            id bigserial PRIMARY KEY,
            entity_id bigint NOT NULL REFERENCES entities.entities (id),
            version integer NOT NULL,
            base_version integer,
            label text NOT NULL,
            data jsonb NOT NULL,
            data_received jsonb NOT NULL,
            conflicting_properties text[],
            conflict text CHECK (conflict IN ('soft', 'hard')),
            resolved boolean NOT NULL DEFAULT false,
            creator_id integer,
            user_agent text,
            source jsonb NOT NULL,
            branch_id uuid,
            trunk_version integer,
            branch_base_version integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (entity_id, version)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA entities CASCADE")
