"""The GLaaS server's tables (SQLAlchemy 2). The schema itself is made by the
Alembic migrations in roar/glaas/migrations; a test checks the two agree.

What is global and what follows a scope:
- `artifacts` (+ `artifact_hashes`): that a hash exists, its size. Public by design.
- `dags`: a finalized registration, with its owner, project and visibility.
- `jobs`, `job_io`, `dag_artifacts`, `labels`: belong to one DAG and are seen
  exactly by those who can see that DAG.
- `registration_sessions`, `staged`: work in progress, never visible in lookups.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

HASH = String(128)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Member(Base):
    __tablename__ = "project_members"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)   # public, names it for revoke
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(HASH, unique=True)   # primary digest (blake3 first)
    size: Mapped[int | None] = mapped_column(BigInteger)   # the first size sent; shown only per DAG
    is_composite: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ArtifactHash(Base):
    __tablename__ = "artifact_hashes"
    __table_args__ = (UniqueConstraint("algorithm", "digest"), Index("ix_artifact_hashes_digest", "digest"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"), index=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(HASH)


class Dag(Base):
    __tablename__ = "dags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    git_repo: Mapped[str | None] = mapped_column(Text)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_branch: Mapped[str | None] = mapped_column(Text)
    creator_identity: Mapped[str] = mapped_column(String(128))
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(16))   # public | private
    legacy: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DagArtifact(Base):
    """An artifact as one DAG registered it: its metadata follows that DAG's scope."""

    __tablename__ = "dag_artifacts"
    __table_args__ = (UniqueConstraint("artifact_id", "dag_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_id: Mapped[int] = mapped_column(ForeignKey("dags.id"), index=True)
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    size: Mapped[int | None] = mapped_column(BigInteger)   # as this DAG registered it
    source_type: Mapped[str | None] = mapped_column(String(16))
    source_url: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[str | None] = mapped_column(Text)   # the client's metadata string, as sent
    components: Mapped[str | None] = mapped_column(Text)   # a composite's members (JSON list)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_id: Mapped[int] = mapped_column(ForeignKey("dags.id"), index=True)
    job_uid: Mapped[str] = mapped_column(String(64), unique=True)   # a job belongs to one DAG
    command: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[float | None] = mapped_column(Float)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    git_branch: Mapped[str | None] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    job_type: Mapped[str] = mapped_column(String(16))
    step_number: Mapped[int] = mapped_column(Integer)
    parent_job_uid: Mapped[str | None] = mapped_column(String(64))
    extra: Mapped[str | None] = mapped_column(Text)   # metadata (a JSON string)


class JobIO(Base):
    __tablename__ = "job_io"
    __table_args__ = (
        UniqueConstraint("job_id", "direction", "artifact_id"),
        # "which job produced this artifact" is the hot lookup
        Index("ix_job_io_artifact", "artifact_id", "direction"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    direction: Mapped[str] = mapped_column(String(3))   # in | out
    path: Mapped[str | None] = mapped_column(Text)


class Label(Base):
    """One version of the labels of one entity (a DAG, a job or an artifact in a DAG)."""

    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("dag_id", "entity_key", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_id: Mapped[int] = mapped_column(ForeignKey("dags.id"))
    entity_key: Mapped[str] = mapped_column(String(160))   # dag | job:<uid> | artifact:<hash>
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)   # JSON object
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RegistrationSession(Base):
    __tablename__ = "registration_sessions"
    __table_args__ = (Index("ix_registration_sessions_expiry", "status", "expires_at"),)   # the sweep
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    mode: Mapped[str] = mapped_column(String(32))   # anonymous_public | authenticated
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    client_session_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))   # open | finalized
    dag_id: Mapped[int | None] = mapped_column(ForeignKey("dags.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Staged(Base):
    """What a registration session has sent so far, as sent (JSON): read at finalize."""

    __tablename__ = "staged"
    __table_args__ = (UniqueConstraint("session_id", "kind", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("registration_sessions.id"))
    kind: Mapped[str] = mapped_column(String(16))   # job | artifact | in | out
    key: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)


class SshKey(Base):
    """A public key a user registered for SSH-signature authentication."""

    __tablename__ = "ssh_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)   # SHA256:<base64>, the keyid
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    key_type: Mapped[str] = mapped_column(String(64))
    key_blob: Mapped[str] = mapped_column(Text)   # base64, as in the .pub line
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SeenSignature(Base):
    """Signatures of requests with side effects, kept for their time window: a replay is refused."""

    __tablename__ = "seen_signatures"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)   # sha256 of the signature
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
