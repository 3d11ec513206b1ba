"""aggregation: change stamps on the read model, for the columnar cache's incremental refresh.

Every insert or update of `aggregation.rows` stamps the row with the writing transaction's id
(`change_xid`, an xid8: 64-bit, never wraps), and every delete leaves a tombstone in
`aggregation.row_deletions`. A reader that remembers the MVCC snapshot it last read at
(`pg_current_snapshot()`) finds exactly the rows changed since with
`change_xid >= pg_snapshot_xmin(s) AND NOT pg_visible_in_snapshot(change_xid, s)`, whatever
order concurrent transactions committed in (a plain sequence or timestamp would miss a
transaction that took its number early and committed late). Repeat rows need no stamp of
their own: the projector rewrites a submission's repeat rows only in a transaction that also
upserts its root row. A TRUNCATE leaves one tombstone with form_id -1 (readers of any form
start over). Rows written before this revision have no stamp (NULL): the first
snapshot after it reads them all.

Revision ID: a003
"""

from alembic import op

revision = "a003"
down_revision = "a002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable without a default: no table rewrite on an existing read model.
    op.execute("ALTER TABLE aggregation.rows ADD COLUMN change_xid xid8")
    op.execute("CREATE INDEX rows_change ON aggregation.rows (form_id, change_xid)")
    op.execute(
        """
        CREATE FUNCTION aggregation.stamp_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.change_xid := pg_current_xact_id();
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER rows_stamp BEFORE INSERT OR UPDATE ON aggregation.rows"
        " FOR EACH ROW EXECUTE FUNCTION aggregation.stamp_change()"
    )
    op.execute(
        """
        CREATE TABLE aggregation.row_deletions (
            form_id integer NOT NULL,
            submission_id bigint NOT NULL,
            change_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
        )
        """
    )
    op.execute("CREATE INDEX row_deletions_change ON aggregation.row_deletions (form_id, change_xid)")
    op.execute(
        """
        CREATE FUNCTION aggregation.record_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO aggregation.row_deletions (form_id, submission_id)
            VALUES (OLD.form_id, OLD.submission_id);
            RETURN OLD;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER rows_deleted AFTER DELETE ON aggregation.rows"
        " FOR EACH ROW EXECUTE FUNCTION aggregation.record_deletion()"
    )
    op.execute(
        """
        CREATE FUNCTION aggregation.record_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO aggregation.row_deletions (form_id, submission_id) VALUES (-1, -1);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER rows_truncated AFTER TRUNCATE ON aggregation.rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION aggregation.record_truncate()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER rows_truncated ON aggregation.rows")
    op.execute("DROP FUNCTION aggregation.record_truncate()")
    op.execute("DROP TRIGGER rows_deleted ON aggregation.rows")
    op.execute("DROP FUNCTION aggregation.record_deletion()")
    op.execute("DROP TABLE aggregation.row_deletions")
    op.execute("DROP TRIGGER rows_stamp ON aggregation.rows")
    op.execute("DROP FUNCTION aggregation.stamp_change()")
    op.execute("DROP INDEX aggregation.rows_change")
    op.execute("ALTER TABLE aggregation.rows DROP COLUMN change_xid")
