"""forms schema: encryption keys. A form version whose XForm carries a `base64RsaPublicKey`
(on the model's `<submission>` element) is an encrypted form: ODK Collect encrypts each
submission to that key. Each distinct public key is stored once; the definition's `key_id`
(there since f001) names it, and the form's `keyId` shows it, as in ODK Central. Only public
keys: the server never holds a private key (managed encryption is not built).

Revision ID: f004
"""

from alembic import op

revision = "f004"
down_revision = "f003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE forms.keys (
            id serial PRIMARY KEY,
            public text NOT NULL UNIQUE,
            managed boolean NOT NULL DEFAULT false,
            hint text,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE forms.keys")
