"""The control plane's client commands (`tokenfab serve` is in `tokenfab.cli.serve`): login, submit, status, cancel, scale,
queue, nodes, drain, cordon, mark-failed, return-to-service, tenants, api-token, power, usage, audit.

Client commands talk to ``--server`` (or $TOKENFAB_SERVER, or the server saved by `login`) with the token
from ``--token``, $TOKENFAB_TOKEN or ~/.config/tokenfab/credentials.json (written 0600 by `login`).
A 4xx answer exits 2 with the server's one-line message; an unreachable server exits 1; a server that
cannot start (`serve`) exits 3. ``--json`` prints one object; lists as ``{"data": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.table import Table

from tokenfab.cli.app import (
    EXIT_FAILED,
    app,
    console,
    err_console,
    fail_bad_input,
    print_json,
)

ServerOpt = Annotated[
    str | None, typer.Option("--server", "-s", help="control plane URL (default: saved or $TOKENFAB_SERVER)")
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", "-t", help="API token (default: $TOKENFAB_TOKEN or saved)")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", "-j", help='print JSON for scripts (lists as {"data": [...]})')
]


def _client(server: str | None, token: str | None):
    from tokenfab.control.client import ControlClient, resolve  # the [server] extra, loaded when used

    url, secret = resolve(server, token)
    if not secret:
        fail_bad_input("no API token: run `tokenfab login`, pass --token or set TOKENFAB_TOKEN")
    return ControlClient(url, secret)


def _call(server: str | None, token: str | None, action: Callable[[Any], Any]) -> Any:
    from tokenfab.control.client import ClientError

    with _client(server, token) as client:
        try:
            return action(client)
        except ClientError as exc:
            if exc.status == 0 or exc.status >= 500:
                err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
                raise typer.Exit(EXIT_FAILED) from None
            where = f" ({exc.field})" if exc.field and exc.field not in exc.message else ""
            fail_bad_input(f"{exc.status}: {exc.message}{where}")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(
            column,
            justify="right" if column.endswith(("GPUs", "free", "kW", "id", "prio")) else "left",
            no_wrap=column in ("id", "name"),  # an id is what a user copies into the next command: never cut
        )
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


def _workload_rows(workloads: list[dict]) -> list[list[Any]]:
    rows = []
    for w in workloads:
        placement = w.get("placement")
        where = f"racks {','.join(map(str, placement['racks']))}" if placement else ""
        state = {
            "running": "[green]running[/]",
            "queued": "[yellow]queued[/]",
            "failed": "[red]failed[/]",
        }.get(w["state"], w["state"])
        rows.append(
            [w["id"], w["name"], w["tenant"], w["kind"], _gpus_text(w), state, where or w["queue_reason"]]
        )
    return rows


def _gpus_text(workload: dict) -> str:
    """Whole GPUs, or a small workload's share of one GPU (e.g. 0.25)."""
    fraction = workload.get("spec", {}).get("gpu_fraction") if workload["kind"] == "small" else None
    return f"{fraction:g}" if fraction else str(workload["gpus"])


WORKLOAD_COLUMNS = ["id", "name", "tenant", "kind", "GPUs", "state", "where / why waiting"]


# --- client commands ------------------------------------------------------------------------------


@app.command("login")
def login(
    token: Annotated[str, typer.Option("--token", "-t", prompt=True, hide_input=True, help="API token")],
    server: ServerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a token against the server and save both in ~/.config/tokenfab/credentials.json (0600)."""
    from tokenfab.control.client import resolve, save_credentials

    url, _ = resolve(server, token)
    me = _call(url, token, lambda c: c.whoami())
    path = save_credentials(url, token)
    if as_json:
        print_json({"server": url, "credentials_path": str(path), **me})
        return
    who = f"tenant {me['tenant']}" if me["tenant"] else "operator"
    console.print(f"logged in to {url} as {who} (token {me['name']}); saved to {path}", highlight=False)


@app.command("submit")
def submit(
    name: Annotated[str, typer.Argument(help="workload name")],
    gpus: Annotated[
        int, typer.Option("--gpus", help="training: GPUs of the gang; inference: per replica; small: omit")
    ] = 0,
    kind: Annotated[str, typer.Option("--kind", help="training, inference or small")] = "training",
    gpu_fraction: Annotated[
        float | None, typer.Option("--gpu-fraction", help="small: share of one GPU, 0 < f < 1")
    ] = None,
    cpu_cores: Annotated[float, typer.Option("--cpu-cores", help="small: CPU cores")] = 0.0,
    memory_gb: Annotated[float, typer.Option("--memory-gb", help="small: host memory [GB]")] = 0.0,
    preemptible: Annotated[
        bool,
        typer.Option(
            "--preemptible/--not-preemptible", help="may be evicted by the same tenant's higher priority"
        ),
    ] = True,
    replicas: Annotated[int, typer.Option("--replicas")] = 1,
    tenant: Annotated[str | None, typer.Option("--tenant", help="operators: the owner")] = None,
    priority: Annotated[int, typer.Option("--priority")] = 0,
    slice_gpus: Annotated[int, typer.Option("--slice-gpus")] = 0,
    whole_domains: Annotated[bool, typer.Option("--whole-domains")] = False,
    on_failure: Annotated[str, typer.Option("--on-failure", help="requeue or fail")] = "requeue",
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Submit a training job, an inference service or a small (fractional-GPU) workload."""
    body = dict(
        name=name,
        gpus=gpus,
        kind=kind,
        gpu_fraction=gpu_fraction,
        cpu_cores=cpu_cores,
        memory_gb=memory_gb,
        preemptible=preemptible,
        replicas=replicas,
        tenant=tenant,
        priority=priority,
        slice_gpus=slice_gpus,
        whole_domains=whole_domains,
        on_failure=on_failure,
    )
    workload = _call(server, token, lambda c: c.submit(**body))
    if as_json:
        print_json(workload)
        return
    console.print(_table("submitted", WORKLOAD_COLUMNS, _workload_rows([workload])))


@app.command("status")
def status(
    workload_id: Annotated[str | None, typer.Argument(help="one workload (default: all visible)")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Workloads and where they run (or why they wait)."""
    if workload_id:
        data = [_call(server, token, lambda c: c.workload(workload_id))]
    else:
        data = _call(server, token, lambda c: c.workloads(state))["data"]
    if as_json:
        print_json(data[0] if workload_id else data)
        return
    console.print(_table("workloads", WORKLOAD_COLUMNS, _workload_rows(data)))


@app.command("cancel")
def cancel(
    workload_id: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Cancel a workload and free its GPUs."""
    workload = _call(server, token, lambda c: c.cancel(workload_id))
    if as_json:
        print_json(workload)
        return
    console.print(f"{workload['id']} {workload['state']}", highlight=False)


@app.command("scale")
def scale(
    workload_id: str,
    replicas: Annotated[int, typer.Option("--replicas")],
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an inference service's replicas."""
    workload = _call(server, token, lambda c: c.scale(workload_id, replicas))
    if as_json:
        print_json(workload)
        return
    console.print(_table("scaled", WORKLOAD_COLUMNS, _workload_rows([workload])))


@app.command("queue")
def queue(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Waiting workloads in the order they will be tried, with the reason each waits."""
    data = _call(server, token, lambda c: c.queue())["data"]
    if as_json:
        print_json(data)
        return
    console.print(_table("queue", WORKLOAD_COLUMNS, _workload_rows(data)))


@app.command("nodes")
def nodes(
    rack: Annotated[int | None, typer.Option("--rack")] = None,
    health: Annotated[str | None, typer.Option("--health", help="ok, cordoned, draining or failed")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Nodes with their health, free GPUs and workloads."""
    data = _call(server, token, lambda c: c.nodes(rack, health))["data"]
    if as_json:
        print_json(data)
        return
    rows = [
        [
            n["id"],
            n["rack"],
            n["domain"],
            n["gpus"],
            n["gpus_free"],
            n["health"],
            ", ".join(n["workloads"]),
            n["health_reason"],
        ]
        for n in data
    ]
    console.print(
        _table("nodes", ["id", "rack", "domain", "GPUs", "free", "health", "workloads", "reason"], rows)
    )


def _health_command(action: str, help_text: str) -> Callable:
    def command(
        rack: Annotated[int | None, typer.Option("--rack", help="every node of this rack")] = None,
        node: Annotated[int | None, typer.Option("--node", help="one node")] = None,
        reason: Annotated[str, typer.Option("--reason")] = "",
        server: ServerOpt = None,
        token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        if (rack is None) == (node is None):
            fail_bad_input("name exactly one of --rack or --node")
        level, element = ("rack", rack) if rack is not None else ("node", node)
        result = _call(server, token, lambda c: c.health(level, element, action, reason))
        if as_json:
            print_json(result)
            return
        console.print(
            f"{level} {element}: {len(result['nodes'])} node(s) {result['health']}; "
            f"requeued {len(result['requeued'])}, failed {len(result['failed'])}",
            highlight=False,
        )

    command.__doc__ = help_text
    return command


app.command("drain")(
    _health_command("drain", "Drain a rack or node: no new work, its workloads are requeued.")
)
app.command("cordon")(_health_command("cordon", "Cordon a rack or node: no new work, running work stays."))
app.command("mark-failed")(
    _health_command(
        "fail", "Mark a rack or node failed: its workloads are requeued or failed per their policy."
    )
)
app.command("return-to-service")(_health_command("return", "Return a rack or node to service."))


tenants_app = typer.Typer(
    help="Tenants: list (default), add, set.", invoke_without_command=True, no_args_is_help=False
)
app.add_typer(tenants_app, name="tenants")


@tenants_app.callback()
def tenants(
    ctx: typer.Context, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Tenants: list (the default), add, set."""
    if ctx.invoked_subcommand is None:
        tenants_list(server, token, as_json)


@tenants_app.command("list")
def tenants_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List tenants with quota, residency and GPUs held."""
    data = _call(server, token, lambda c: c.tenants())["data"]
    if as_json:
        print_json(data)
        return
    rows = [
        [
            t["name"],
            t["quota_gpus"] if t["quota_gpus"] is not None else "∞",
            t["gpus_allocated"],
            t["workloads_active"],
            t["allowed_sites"],
            t["allowed_halls"],
        ]
        for t in data
    ]
    console.print(_table("tenants", ["name", "quota GPUs", "held GPUs", "active", "sites", "halls"], rows))


def _ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        fail_bad_input(f"expected comma-separated integers, got {text!r}")


@tenants_app.command("add")
def tenants_add(
    name: str,
    quota_gpus: Annotated[int | None, typer.Option("--quota-gpus")] = None,
    sites: Annotated[str | None, typer.Option("--sites", help="pinned site ids, e.g. 0,1")] = None,
    halls: Annotated[str | None, typer.Option("--halls", help="pinned hall ids")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant (operator)."""
    tenant = _call(
        server,
        token,
        lambda c: c.create_tenant(
            name=name, quota_gpus=quota_gpus, allowed_sites=_ids(sites), allowed_halls=_ids(halls)
        ),
    )
    print_json(tenant) if as_json else console.print(f"tenant {tenant['name']} created", highlight=False)


@tenants_app.command("set")
def tenants_set(
    name: str,
    quota_gpus: Annotated[int | None, typer.Option("--quota-gpus")] = None,
    sites: Annotated[str | None, typer.Option("--sites")] = None,
    halls: Annotated[str | None, typer.Option("--halls")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a tenant's quota or residency (operator)."""
    changes = {
        k: v
        for k, v in {
            "quota_gpus": quota_gpus,
            "allowed_sites": _ids(sites),
            "allowed_halls": _ids(halls),
        }.items()
        if v is not None
    }
    tenant = _call(server, token, lambda c: c.update_tenant(name, **changes))
    print_json(tenant) if as_json else console.print(f"tenant {tenant['name']} updated", highlight=False)


token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="api-token")


@token_app.command("create")
def token_create(
    name: str,
    role: Annotated[str, typer.Option("--role", help="operator or tenant")] = "tenant",
    tenant: Annotated[str | None, typer.Option("--tenant")] = None,
    expires_in_s: Annotated[int | None, typer.Option("--expires-in-s")] = None,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed once."""
    created = _call(
        server,
        token,
        lambda c: c.create_token(name=name, role=role, tenant=tenant, expires_in_s=expires_in_s),
    )
    if as_json:
        print_json(created)
        return
    console.print(
        f"token {created['id']} ({created['role']}): {created['token']}", highlight=False, soft_wrap=True
    )
    console.print("it is shown this once; only its hash is stored", style="dim")


@token_app.command("list")
def token_list(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    data = _call(server, token, lambda c: c.tokens())["data"]
    if as_json:
        print_json(data)
        return
    rows = [
        [
            t["id"],
            t["name"],
            t["role"],
            t["tenant"],
            t["expires_at"],
            "revoked" if t["revoked_at"] else "live",
        ]
        for t in data
    ]
    console.print(_table("API tokens", ["id", "name", "role", "tenant", "expires", "state"], rows))


@token_app.command("revoke")
def token_revoke(
    token_id: str, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke a token."""
    revoked = _call(server, token, lambda c: c.revoke_token(token_id))
    print_json(revoked) if as_json else console.print(f"token {revoked['id']} revoked", highlight=False)


@app.command("power")
def power(
    cap_kw: Annotated[float | None, typer.Option("--cap-kw", help="set the facility cap [kW]")] = None,
    curtail_kw: Annotated[
        float | None, typer.Option("--curtail-kw", help="inject a grid curtailment to this cap")
    ] = None,
    restore: Annotated[bool, typer.Option("--restore", help="inject a grid restore (lift the cap)")] = False,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Facility power: cap, draw and grid events."""
    if curtail_kw is not None:
        status_ = _call(server, token, lambda c: c.grid_event("curtailment", curtail_kw))
    elif restore:
        status_ = _call(server, token, lambda c: c.grid_event("restore"))
    elif cap_kw is not None:
        status_ = _call(server, token, lambda c: c.set_power_cap(cap_kw))
    else:
        status_ = _call(server, token, lambda c: c.power())
    if as_json:
        print_json(status_)
        return
    cap = f"{status_['cap_kw']:,.1f} kW" if status_["cap_kw"] is not None else "none"
    console.print(
        f"facility draw {status_['facility_draw_kw']:,.1f} kW (IT {status_['it_draw_kw']:,.1f} kW, "
        f"PUE {status_['pue']:.3f}); cap {cap}; design {status_['facility_design_kw']:,.1f} kW",
        highlight=False,
    )
    if status_["evicted"]:
        console.print(f"evicted to the queue: {', '.join(status_['evicted'])}", highlight=False)
    rows = [[e["at"], e["kind"], e["cap_kw"], e["draw_kw"], e["message"]] for e in status_["events"][:10]]
    if rows:
        console.print(_table("grid events", ["at", "kind", "cap kW", "draw kW", "message"], rows))


@app.command("usage")
def usage(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """GPUs held, GPU-hours and tokens per second per tenant."""
    data = _call(server, token, lambda c: c.usage())["data"]
    if as_json:
        print_json(data)
        return
    rows = [
        [
            u["tenant"],
            u["gpus_allocated"],
            f"{u['gpu_hours']:.2f}",
            f"{u['tokens_per_s']:,.0f}",
            ", ".join(f"{k} {v}" for k, v in u["workloads"].items()),
        ]
        for u in data
    ]
    console.print(_table("usage", ["tenant", "held GPUs", "GPU-hours", "tokens/s", "workloads"], rows))


@app.command("audit")
def audit(
    limit: Annotated[int, typer.Option("--limit", min=1, max=5000)] = 50,
    server: ServerOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The audit log, newest first."""
    data = _call(server, token, lambda c: c.audit(limit))["data"]
    if as_json:
        print_json(data)
        return
    rows = [[a["id"], a["at"], a["actor"], a["action"], a["target"]] for a in data]
    console.print(_table("audit log", ["id", "at", "actor", "action", "target"], rows))
