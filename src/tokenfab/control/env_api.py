"""The tenant environments' routes (an `APIRouter` included by `tokenfab.control.api`).

A tenant creates and changes its own environments; an operator names the tenant, sees every
environment and runs the isolation check. ``ENV`` in a path is an environment's id or, for its tenant, its
name.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam

from tokenfab.control import schemas as s
from tokenfab.control.api import API_PREFIX, ERRORS, CurrentPrincipal, OperatorPrincipal, ServiceDep

router = APIRouter(prefix=f"{API_PREFIX}/environments", tags=["environments"], responses=ERRORS)
EnvParam = Annotated[str, PathParam(max_length=64, description="environment id, or its name")]


@router.get("", response_model=s.EnvironmentsPublic)
def list_environments(service: ServiceDep, principal: CurrentPrincipal) -> s.EnvironmentsPublic:
    """Environments, newest first (a tenant sees its own)."""
    return service.list_environments(principal)


@router.post("", response_model=s.EnvironmentPublic, status_code=201)
def create_environment(
    service: ServiceDep, principal: CurrentPrincipal, body: s.EnvironmentCreate
) -> s.EnvironmentPublic:
    """Create an environment: reserve whole NVLink domains, then provision it step by step (answered once
    it is ready, or failed and rolled back). A retried request with the same ``request_key`` changes nothing."""
    return service.create_environment(principal, body)


@router.get("/design")
def design(service: ServiceDep, principal: CurrentPrincipal) -> dict:
    """The design this control plane serves (for rendering an environment's manifests on the client)."""
    return service.design.model_dump(mode="json")


@router.get("/check", response_model=s.EnvironmentCheck)
def check_environments(service: ServiceDep, principal: OperatorPrincipal) -> s.EnvironmentCheck:
    """The isolation invariant: no shared node, domain, partition key or VLAN; residency held (operator)."""
    return service.check_environments()


@router.get("/{env}", response_model=s.EnvironmentPublic)
def get_environment(service: ServiceDep, principal: CurrentPrincipal, env: EnvParam) -> s.EnvironmentPublic:
    """One environment with its nodes, network and the steps of its last operation."""
    return service.get_environment(principal, env)


@router.post("/{env}/scale", response_model=s.EnvironmentPublic)
def scale_environment(
    service: ServiceDep, principal: CurrentPrincipal, env: EnvParam, body: s.EnvironmentScale
) -> s.EnvironmentPublic:
    """Grow or shrink to a number of NVLink domains (a shrink gives back domains free of workloads)."""
    return service.scale_environment(principal, env, body)


@router.post("/{env}/upgrade", response_model=s.EnvironmentPublic)
def upgrade_environment(
    service: ServiceDep, principal: CurrentPrincipal, env: EnvParam, body: s.EnvironmentUpgrade
) -> s.EnvironmentPublic:
    """Roll out a new version."""
    return service.upgrade_environment(principal, env, body)


@router.delete("/{env}", response_model=s.EnvironmentPublic)
def delete_environment(
    service: ServiceDep, principal: CurrentPrincipal, env: EnvParam
) -> s.EnvironmentPublic:
    """Tear the environment down and give back its nodes, partition key and VLAN."""
    return service.delete_environment(principal, env)
