"""Request payloads of the GLaaS API (pydantic), with the limits that keep a bad or
hostile one to a 422 with a clear message. Types are strict (no bool for an int, no
string for a number). Unknown fields are ignored, as the hosted
service does, so newer clients still talk to this server. Whole bodies are capped by
roar.glaas.app (413)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Digest = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{8,128}$")]
SessionHash = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")]
JobUid = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
Path = Annotated[str, Field(max_length=4096)]
Short = Annotated[str, Field(max_length=1024)]
Algorithm = Literal["blake3", "sha256", "sha512", "md5", "composite-blake3", "composite-sha256"]
SourceType = Literal["s3", "gs", "https", "hf"]
Size = Annotated[int, Field(ge=0, le=2**63 - 1)]
MAX_ITEMS = 5000
JOB_METADATA = 1 << 20     # a job's metadata string: packages and runtime, well under 1 MiB
ARTIFACT_METADATA = 64 << 10


class Payload(BaseModel):
    # strict: JSON `false` is not a size of 0, nor "123" a project id 123 (fuzzing found both)
    model_config = ConfigDict(extra="ignore", strict=True)


class HashIn(Payload):
    algorithm: Algorithm
    digest: Digest


class ArtifactIn(Payload):
    hashes: Annotated[list[HashIn], Field(min_length=1, max_length=8)]
    size: Size | None = None
    source_type: SourceType | None = None
    source_url: Path | None = None
    metadata: Annotated[str, Field(max_length=ARTIFACT_METADATA)] | None = None
    session_hash: SessionHash | None = None   # legacy path only


class ArtifactsBatch(Payload):
    artifacts: Annotated[list[ArtifactIn], Field(max_length=MAX_ITEMS)]


class JobIn(Payload):
    command: Annotated[str, Field(max_length=64 << 10)]
    timestamp: float | None = None
    job_uid: JobUid
    git_commit: Annotated[str, Field(max_length=64)] | None = None
    git_branch: Short | None = None
    duration_seconds: float | None = None
    exit_code: int | None = None
    job_type: Annotated[str, Field(pattern=r"^[a-z_-]{1,16}$")] = "run"
    step_number: Annotated[int, Field(ge=1, le=10**9)]
    metadata: Annotated[str, Field(max_length=JOB_METADATA)] | None = None
    parent_job_uid: JobUid | None = None


class JobsBatch(Payload):
    jobs: Annotated[list[JobIn], Field(min_length=1, max_length=MAX_ITEMS)]


class EdgeIn(Payload):
    hash: Digest
    path: Path | None = None
    size: Size | None = None
    source_type: SourceType | None = None
    metadata: Annotated[str, Field(max_length=ARTIFACT_METADATA)] | None = None
    byte_ranges: Annotated[list[Any], Field(max_length=1000)] | None = None


class EdgesBatch(Payload):
    artifacts: Annotated[list[EdgeIn], Field(max_length=MAX_ITEMS)]


class ComponentIn(Payload):
    relative_path: Path
    leaf_kind: Annotated[str, Field(max_length=32)] | None = None
    component_algorithm: Annotated[str, Field(max_length=32)] | None = None
    component_digest: Digest
    component_size: Size | None = None
    component_type: Annotated[str, Field(max_length=32)] | None = None


class CompositeIn(Payload):
    hash: Digest
    hashes: Annotated[list[HashIn], Field(max_length=8)] | None = None
    size: Size | None = None
    session_hash: SessionHash | None = None
    component_count_total: Annotated[int, Field(ge=0)] | None = None
    components: Annotated[list[ComponentIn], Field(max_length=MAX_ITEMS)] = []
    membership_index: dict[str, Any] | None = None


class ViewEdges(Payload):
    view_edges: Annotated[list[dict[str, Any]], Field(max_length=1000)] = []


class RegistrationSessionIn(Payload):
    client_session_id: Annotated[str, Field(max_length=128)] | None = None
    mode: Literal["anonymous_public", "authenticated"] | None = None


class ScopeRequest(Payload):
    owner_id: Annotated[str, Field(max_length=128)] | int | None = None
    owner_type: Literal["user", "organization"] | None = None
    owner_resolution: Literal["current_user"] | None = None
    visibility: Literal["public", "private"] | None = None
    project_id: Annotated[str, Field(max_length=128)] | int | None = None


class Expected(Payload):
    jobs: Annotated[int, Field(ge=0)] | None = None
    inputs: Annotated[int, Field(ge=0)] | None = None
    outputs: Annotated[int, Field(ge=0)] | None = None


class FinalizeIn(Payload):
    git_repo: Path | None = None
    git_commit: Annotated[str, Field(max_length=64)] | None = None
    git_branch: Short | None = None
    scope_request: ScopeRequest | None = None
    expected: Expected | None = None


class LegacySessionIn(Payload):
    hash: SessionHash
    git_repo: Path | None = None
    git_commit: Annotated[str, Field(max_length=64)] | None = None
    git_branch: Short | None = None
    scope_request: ScopeRequest | None = None


class LabelDoc(Payload):
    entity_type: Literal["dag", "job", "artifact"]
    session_hash: SessionHash
    job_uid: JobUid | None = None
    artifact_hash: Digest | None = None
    metadata: dict[str, Any] = {}
    key_origins: dict[str, Any] | None = None
    deleted_keys: Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=1000)] | None = None
    base_version: Annotated[int, Field(ge=0)] | None = None


class LabelsBatch(Payload):
    labels: Annotated[list[LabelDoc], Field(max_length=MAX_ITEMS)]


class ReconcileIn(Payload):
    session_hash: SessionHash | None = None
    mode: Annotated[str, Field(max_length=64)] | None = None
    dry_run: bool = False
    prune: bool = False
    labels: Annotated[list[LabelDoc], Field(max_length=MAX_ITEMS)]
    scope: ScopeRequest | None = None
