"""Who asks (a Principal) and which DAGs they may see or change.

A DAG is seen by everyone when public; when private, by its owner and, for a project
DAG, by the project's members. Everything attached to a DAG (jobs, edges, artifact
metadata, labels) is seen exactly when the DAG is.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import bindparam, false, or_

from roar.glaas.models import Dag


@dataclass(frozen=True)
class Principal:
    user_id: int | None = None
    user_name: str | None = None
    project_id: int | None = None                  # the token's project, if it has one
    member_of: frozenset[int] = field(default_factory=frozenset)

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    @property
    def creator_identity(self) -> str:
        return "anonymous" if self.user_id is None else f"glaas:user:{self.user_id}"


ANONYMOUS = Principal()


def visible(principal: Principal):
    """A WHERE clause over Dag: the DAGs this principal may see."""
    clauses = [Dag.visibility == "public"]
    if principal.user_id is not None:
        clauses.append(Dag.owner_user_id == principal.user_id)
    if principal.member_of:
        clauses.append(Dag.project_id.in_(sorted(principal.member_of)))
    return or_(*clauses) if clauses else false()


def visible_params():
    """visible() with the principal as bound parameters (scope_params), for statements built
    once: public, or owned by :who_user, or in one of :who_projects. The same rule."""
    return or_(Dag.__table__.c.visibility == "public", Dag.__table__.c.owner_user_id == bindparam("who_user"),
               Dag.__table__.c.project_id.in_(bindparam("who_projects", expanding=True)))


def scope_params(principal: Principal) -> dict:
    """The parameters of visible_params() for this principal (no user: NULL, never equal)."""
    return {"who_user": principal.user_id, "who_projects": sorted(principal.member_of)}


def can_see(principal: Principal, dag: Dag) -> bool:
    owner = principal.user_id is not None and dag.owner_user_id == principal.user_id
    return dag.visibility == "public" or owner or (dag.project_id is not None
                                                   and dag.project_id in principal.member_of)


def can_write(principal: Principal, dag: Dag) -> bool:
    """The owner, or a member of the DAG's project. Anonymous DAGs have no writer but
    their registration session (and the legacy path, see roar.glaas.store.labels)."""
    if principal.user_id is None:
        return False
    return dag.owner_user_id == principal.user_id or (dag.project_id is not None
                                                      and dag.project_id in principal.member_of)
