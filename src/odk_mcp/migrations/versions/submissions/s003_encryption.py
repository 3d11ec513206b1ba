"""submissions schema: encrypted submissions (forms with a `base64RsaPublicKey`).

ODK Collect sends such a submission as a small envelope XML naming its encrypted parts; the
envelope is stored verbatim as any submission is, and `encryption` keeps what a decryption
needs from it: the RSA-encrypted symmetric key, the name of the encrypted data file (an
attachment, like the encrypted media), and the signature. NULL for a plain submission.

Revision ID: s003
"""

from alembic import op

revision = "s003"
down_revision = "s002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE submissions.versions ADD COLUMN encryption jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE submissions.versions DROP COLUMN encryption")
