"""An artifact's size as each DAG registered it: the size is metadata and follows the
DAG's scope, so a public DAG that consumes a private artifact does not show its size.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dag_artifacts", sa.Column("size", sa.BigInteger))
    # no backfill: which DAG sent the size of an artifact stored before is not known, and
    # copying it to every DAG would show one DAG's size through the others

def downgrade() -> None:
    with op.batch_alter_table("dag_artifacts") as batch:
        batch.drop_column("size")
