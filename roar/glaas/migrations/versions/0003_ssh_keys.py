"""SSH-signature authentication: users' registered public keys, and the signatures of
requests with side effects seen within their time window (replays are refused); an index
for the sweep that drops abandoned registration sessions.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("ssh_keys", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
                    sa.Column("key_type", sa.String(64), nullable=False),
                    sa.Column("key_blob", sa.Text, nullable=False),
                    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_ssh_keys_user_id", "ssh_keys", ["user_id"])
    op.create_table("seen_signatures", sa.Column("digest", sa.String(64), primary_key=True),
                    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_seen_signatures_seen_at", "seen_signatures", ["seen_at"])
    op.create_index("ix_registration_sessions_expiry", "registration_sessions", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_registration_sessions_expiry", "registration_sessions")
    op.drop_table("seen_signatures")
    op.drop_table("ssh_keys")
