"""aggregation: a submission's encryption status in the read model (`__system/status`).

`notDecrypted` for an encrypted submission whose encrypted data file has arrived,
`missingEncryptedFormData` while it has not, NULL for a plain submission (the values of ODK
Central's OData). Nullable without a default: no table rewrite; rows written before stay NULL,
which is right, since this server stored no encrypted submission before this revision.

Revision ID: a005
"""

from alembic import op

revision = "a005"
down_revision = "a004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE aggregation.rows ADD COLUMN status text")


def downgrade() -> None:
    op.execute("ALTER TABLE aggregation.rows DROP COLUMN status")
