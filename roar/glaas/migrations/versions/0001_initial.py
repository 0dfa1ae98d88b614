"""The first GLaaS schema: users, tokens, artifacts, DAGs, jobs, labels, staging.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
HASH = sa.String(128)


def upgrade() -> None:
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(64), nullable=False, unique=True),
                    sa.Column("created_at", TS, nullable=False))
    op.create_table("projects", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("slug", sa.String(64), nullable=False, unique=True),
                    sa.Column("created_at", TS, nullable=False))
    op.create_table("project_members",
                    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True))
    op.create_table("tokens", sa.Column("id", sa.String(32), primary_key=True),
                    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
                    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id")),
                    sa.Column("created_at", TS, nullable=False),
                    sa.Column("revoked_at", TS))
    op.create_table("artifacts", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("hash", HASH, nullable=False, unique=True),
                    sa.Column("size", sa.BigInteger),
                    sa.Column("is_composite", sa.Boolean, nullable=False),
                    sa.Column("registered_at", TS, nullable=False))
    op.create_table("artifact_hashes", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
                    sa.Column("algorithm", sa.String(32), nullable=False),
                    sa.Column("digest", HASH, nullable=False),
                    sa.UniqueConstraint("algorithm", "digest"))
    op.create_index("ix_artifact_hashes_artifact_id", "artifact_hashes", ["artifact_id"])
    op.create_index("ix_artifact_hashes_digest", "artifact_hashes", ["digest"])
    op.create_table("dags", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("hash", sa.String(64), nullable=False, unique=True),
                    sa.Column("git_repo", sa.Text), sa.Column("git_commit", sa.String(64)),
                    sa.Column("git_branch", sa.Text),
                    sa.Column("creator_identity", sa.String(128), nullable=False),
                    sa.Column("owner_user_id", sa.Integer, sa.ForeignKey("users.id")),
                    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id")),
                    sa.Column("visibility", sa.String(16), nullable=False),
                    sa.Column("legacy", sa.Boolean, nullable=False),
                    sa.Column("created_at", TS, nullable=False))
    op.create_index("ix_dags_owner_user_id", "dags", ["owner_user_id"])
    op.create_index("ix_dags_project_id", "dags", ["project_id"])
    op.create_table("dag_artifacts", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("dag_id", sa.Integer, sa.ForeignKey("dags.id"), nullable=False),
                    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
                    sa.Column("source_type", sa.String(16)), sa.Column("source_url", sa.Text),
                    sa.Column("extra", sa.Text), sa.Column("components", sa.Text),
                    sa.UniqueConstraint("artifact_id", "dag_id"))
    op.create_index("ix_dag_artifacts_dag_id", "dag_artifacts", ["dag_id"])
    op.create_table("jobs", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("dag_id", sa.Integer, sa.ForeignKey("dags.id"), nullable=False),
                    sa.Column("job_uid", sa.String(64), nullable=False, unique=True),
                    sa.Column("command", sa.Text, nullable=False),
                    sa.Column("timestamp", sa.Float), sa.Column("git_commit", sa.String(64)),
                    sa.Column("git_branch", sa.Text), sa.Column("duration_seconds", sa.Float),
                    sa.Column("exit_code", sa.Integer),
                    sa.Column("job_type", sa.String(16), nullable=False),
                    sa.Column("step_number", sa.Integer, nullable=False),
                    sa.Column("parent_job_uid", sa.String(64)), sa.Column("extra", sa.Text))
    op.create_index("ix_jobs_dag_id", "jobs", ["dag_id"])
    op.create_table("job_io", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
                    sa.Column("artifact_id", sa.Integer, sa.ForeignKey("artifacts.id"), nullable=False),
                    sa.Column("direction", sa.String(3), nullable=False),
                    sa.Column("path", sa.Text),
                    sa.UniqueConstraint("job_id", "direction", "artifact_id"))
    op.create_index("ix_job_io_artifact", "job_io", ["artifact_id", "direction"])
    op.create_table("labels", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("dag_id", sa.Integer, sa.ForeignKey("dags.id"), nullable=False),
                    sa.Column("entity_key", sa.String(160), nullable=False),
                    sa.Column("version", sa.Integer, nullable=False),
                    sa.Column("body", sa.Text, nullable=False),
                    sa.Column("created_at", TS, nullable=False),
                    sa.UniqueConstraint("dag_id", "entity_key", "version"))
    op.create_table("registration_sessions", sa.Column("id", sa.String(40), primary_key=True),
                    sa.Column("token_sha256", sa.String(64), unique=True),
                    sa.Column("mode", sa.String(32), nullable=False),
                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
                    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id")),
                    sa.Column("client_session_id", sa.String(128)),
                    sa.Column("status", sa.String(16), nullable=False),
                    sa.Column("dag_id", sa.Integer, sa.ForeignKey("dags.id")),
                    sa.Column("created_at", TS, nullable=False),
                    sa.Column("expires_at", TS, nullable=False))
    op.create_table("staged", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("session_id", sa.String(40), sa.ForeignKey("registration_sessions.id"),
                              nullable=False),
                    sa.Column("kind", sa.String(16), nullable=False),
                    sa.Column("key", sa.String(200), nullable=False),
                    sa.Column("body", sa.Text, nullable=False),
                    sa.UniqueConstraint("session_id", "kind", "key"))


def downgrade() -> None:
    for table in ("staged", "registration_sessions", "labels", "job_io", "jobs", "dag_artifacts", "dags",
                  "artifact_hashes", "artifacts", "tokens", "project_members", "projects", "users"):
        op.drop_table(table)
