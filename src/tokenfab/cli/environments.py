"""`tokenfab env …`: tenant environments (create, scale, upgrade, delete, list, show, manifests, check).

Like the other client commands they talk to the control plane (``--server``/``--token`` or the saved
login). ``env manifests`` renders the environment's k0rdent objects, node labels, GPU operator values,
Kueue objects, Slurm partition, OpenSM partition and Redfish plan into a folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.app import app, console, print_json
from tokenfab.cli.control import JsonOpt, ServerOpt, TokenOpt, _call, _table

env_app = typer.Typer(
    help="Tenant environments: Kubernetes, VM, Slurm or bare-metal, on whole NVLink domains.",
    no_args_is_help=True,
)
app.add_typer(env_app, name="env")
EnvArg = Annotated[str, typer.Argument(help="environment id, or its name")]
COLUMNS = ["id", "name", "tenant", "kind", "template", "state", "domains", "GPUs", "pkey", "vlan", "reason"]


def _rows(envs: list[dict]) -> list[list[Any]]:
    return [
        [
            e["id"],
            e["name"],
            e["tenant"],
            e["kind"],
            e["template"],
            e["state"],
            len(e["domains"]),
            e["gpus"],
            f"0x{e['pkey']:04x}" if e["pkey"] is not None else "",
            e["vlan"],
            e["reason"],
        ]
        for e in envs
    ]


def _show(envs: list[dict], title: str, as_json: bool, one: bool = True) -> None:
    if as_json:
        print_json(envs[0] if one else envs)
        return
    console.print(_table(title, COLUMNS, _rows(envs)))


@env_app.command("create")
def create(
    name: str,
    domains: Annotated[int, typer.Option("--domains", help="whole NVLink domains (or racks: --unit rack)")],
    unit: Annotated[
        str, typer.Option("--unit", help="size in whole NVLink domains or whole racks")
    ] = "domain",
    kind: Annotated[str, typer.Option("--kind", help="kubernetes, vm, slurm or baremetal")] = "kubernetes",
    template: Annotated[str | None, typer.Option("--template", help="k0rdent cluster template")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="operators: the owner")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    storage_tb: Annotated[float | None, typer.Option("--storage-tb")] = None,
    site: Annotated[
        list[int] | None, typer.Option("--site", help="keep it on this site (repeatable)")
    ] = None,
    request_key: Annotated[str | None, typer.Option("--request-key", help="retry-safe key")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an environment (answered once it is ready, or failed and rolled back)."""
    body = {
        "name": name,
        "domains": domains,
        "kind": kind,
        "template": template,
        "tenant": tenant,
        "version": version,
        "storage_tb": storage_tb,
        "sites": site or None,
        "request_key": request_key,
    }
    body = {k: v for k, v in body.items() if v is not None}
    env = _call(server, token, lambda c: c.call("POST", "/api/v1/environments", json=body))
    _show([env], "environment", as_json)


@env_app.command("scale")
def scale(
    env: EnvArg,
    domains: Annotated[int, typer.Option("--domains")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grow or shrink an environment to a number of NVLink domains."""
    _act(server, token, env, "scale", {"domains": domains}, as_json)


@env_app.command("upgrade")
def upgrade(
    env: EnvArg,
    version: Annotated[str, typer.Option("--version")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Roll out a new version."""
    _act(server, token, env, "upgrade", {"version": version}, as_json)


def _act(
    server: str | None, token: str | None, env: str, action: str, body: dict[str, Any], as_json: bool
) -> None:
    """POST one action on an environment (``/environments/{env}/{action}``) and show the result."""
    result = _call(server, token, lambda c: c.call("POST", f"/api/v1/environments/{env}/{action}", json=body))
    _show([result], "environment", as_json)


@env_app.command("delete")
def delete(env: EnvArg, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Tear an environment down and give back its nodes, partition key and VLAN."""
    result = _call(server, token, lambda c: c.call("DELETE", f"/api/v1/environments/{env}"))
    _show([result], "environment", as_json)


@env_app.command("list")
def list_(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Environments (a tenant sees its own)."""
    data = _call(server, token, lambda c: c.call("GET", "/api/v1/environments"))["data"]
    _show(data, "environments", as_json, one=False)


@env_app.command("show")
def show(env: EnvArg, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """One environment: its nodes, network and the steps of its last operation."""
    result = _call(server, token, lambda c: c.call("GET", f"/api/v1/environments/{env}"))
    if as_json:
        print_json(result)
        return
    _show([result], "environment", False)
    console.print(f"nodes: {', '.join(result['nodes'])}", highlight=False, soft_wrap=True)
    for step in result["steps"]:
        console.print(f"  {step['at']}  {step['op']:8s} {step['step']:10s} {step['status']}", highlight=False)


@env_app.command("check")
def check(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Prove isolation: no shared node, domain, partition key or VLAN; every environment in its residency
    (operator). Exits 1 when a problem is found."""
    result = _call(server, token, lambda c: c.call("GET", "/api/v1/environments/check"))
    if as_json:
        print_json(result)
    else:
        verdict = "ok" if result["ok"] else "PROBLEMS"
        console.print(
            f"{verdict}: {result['environments']} environments, {result['nodes']} nodes held", highlight=False
        )
        for problem in result["problems"]:
            console.print(f"  {problem}", highlight=False, soft_wrap=True)
    if not result["ok"]:
        raise typer.Exit(1)


@env_app.command("manifests")
def manifests(
    env: EnvArg,
    out: Annotated[Path, typer.Option("--out", help="folder to write into")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the environment's manifests: k0rdent objects (Kubernetes/VM), node labels, GPU operator values,
    Kueue objects, the Slurm partition, the OpenSM partition, the network, storage and Redfish plans."""
    from tokenfab.blueprint.design import Design
    from tokenfab.export.environment import write_manifests

    def fetch(client) -> tuple[dict, dict]:
        return client.call("GET", f"/api/v1/environments/{env}"), client.call(
            "GET", "/api/v1/environments/design"
        )

    environment, design_json = _call(server, token, fetch)
    written = write_manifests(Design.model_validate(design_json), environment, out)
    if as_json:
        print_json({"environment": environment["id"], "files": [str(p) for p in written]})
        return
    for path in written:
        console.print(str(path), highlight=False)
